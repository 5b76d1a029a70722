package rabbit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// eventBuffer bounds the events waiting for the handler.
const eventBuffer = 256

// eventQueue hands the Conn's events to the handler set by
// SetEventHandler, on a goroutine of its own started by the first event,
// so that the goroutines doing I/O never wait for the handler. Events
// that find the queue full are dropped and counted.
type eventQueue struct {
	c *Conn

	mu      sync.Mutex
	h       func(driver.Event)
	q       chan driver.Event
	closed  bool
	done    chan struct{} // closed when the handler goroutine returns
	dropped atomic.Int64  // since the last report
}

// SetEventHandler makes the Conn report its events to h. It implements
// driver.EventNotifier: messaging.Open calls it, before any other
// method, when the transport is given an event handler. A nil h is
// ignored.
//
// The Conn reports driver.EventConnected, EventDisconnected and
// EventReconnected for each of its AMQP connections (publishing, reply
// queue, each listener: Queue names the reply queue or the listener's
// first queue), EventReplyDropped when a final reply is abandoned to a
// missing or dead reply queue, and EventLateReply when its reply queue
// receives a reply or heartbeat that no call waits for.
func (c *Conn) SetEventHandler(h func(driver.Event)) {
	if h == nil {
		return
	}
	c.ev.mu.Lock()
	c.ev.h = h
	c.ev.mu.Unlock()
}

// emit queues an event for the handler, if there is one, without
// blocking.
func (e *eventQueue) emit(kind driver.EventKind, addr, queue string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil || e.closed {
		return
	}
	if e.q == nil {
		e.q = make(chan driver.Event, eventBuffer)
		e.done = make(chan struct{})
		go e.run(e.h, e.q)
	}
	select {
	case e.q <- driver.Event{Kind: kind, Time: time.Now(), Addr: addr, Queue: queue, Err: err}:
	default:
		e.dropped.Add(1)
	}
}

// run calls h for each event until the queue is closed.
func (e *eventQueue) run(h func(driver.Event), q <-chan driver.Event) {
	defer close(e.done)
	for ev := range q {
		e.call(h, ev)
		if n := e.dropped.Swap(0); n > 0 {
			e.c.s.log.Warn("rabbit: the event handler is too slow, events were dropped", "dropped", n)
		}
	}
}

// call runs h on ev; a panic in the application's handler is logged, not
// allowed to end the process from the driver's goroutine.
func (e *eventQueue) call(h func(driver.Event), ev driver.Event) {
	defer func() {
		if v := recover(); v != nil {
			e.c.s.log.Error("rabbit: the event handler panicked", "event", string(ev.Kind), "panic", fmt.Sprint(v))
		}
	}()
	h(ev)
}

// close stops the handler goroutine after the events already queued and
// waits for it. Later events are ignored. It is idempotent.
func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	q, done := e.q, e.done
	e.q = nil
	e.mu.Unlock()
	if q != nil {
		close(q)
		<-done
	}
	if n := e.dropped.Swap(0); n > 0 {
		e.c.s.log.Warn("rabbit: the event handler is too slow, events were dropped", "dropped", n)
	}
}
