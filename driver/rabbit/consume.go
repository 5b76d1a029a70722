package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
)

// listenBuffer bounds the deliveries that wait for Next when the
// listener has no prefetch.
const listenBuffer = 64

// consumer is the engine of a listener: it consumes a set of queues on
// an AMQP connection of its own. It declares the queues, with their
// exchanges and bindings, sets the prefetch, starts one basic.consume
// per queue, and moves the deliveries into a bounded buffer for the
// listener's Next. After a connection or consumer failure it connects,
// declares and consumes again, until it is stopped.
//
// Deliveries stay unacknowledged in the buffer, so with a prefetch the
// broker sends no more than that many ahead of Next. Each carries the
// session it came on: its acknowledgement must go to that session's
// channel, and once that channel is gone the broker delivers the message
// again on its own.
type consumer struct {
	c        *Conn
	prefetch int
	// queues are declared, with their exchanges and bindings, in this
	// order; a queue bound to several keys appears once per binding.
	queues []*queue
	// consume names the distinct queues consumed, with the consumer
	// tags "1", "2", ... in this order.
	consume []string
	// private names a queue deleted when the consumer stops, or is "".
	private string
	log     *slog.Logger

	in     chan inbound
	ctx    context.Context //nolint:containedctx // lifetime of the consumer: done when it or the Conn closes
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	// handed counts the notifications returned by Next and not yet
	// settled with Ack or Requeue (RPC listeners acknowledge in Next).
	handed atomic.Int64

	stopOnce sync.Once
}

// inbound is a delivery with the session it came on.
type inbound struct {
	amqp.Delivery
	sess *listenSession
}

// listenSession is one connection of a consumer.
type listenSession struct {
	link       *link
	ch         *amqp.Channel
	deliveries []<-chan amqp.Delivery // one per consumed queue
}

// usable reports whether the session's channel is still open, so that
// its deliveries can still be acknowledged.
func (s *listenSession) usable() bool { return s.link.alive() && !s.ch.IsClosed() }

// consumeQueue adds q to the queues that cs declares and, unless it is
// already there, to those it consumes. A queue that has the same name,
// exchange and key as one already added is skipped.
func (cs *consumer) consumeQueue(q *queue) {
	for _, x := range cs.queues {
		if x.name == q.name && x.key == q.key && exchangeOf(x) == exchangeOf(q) {
			return
		}
	}
	cs.queues = append(cs.queues, q)
	for _, name := range cs.consume {
		if name == q.name {
			return
		}
	}
	cs.consume = append(cs.consume, q.name)
}

func exchangeOf(q *queue) string {
	if q.bind == nil {
		return ""
	}
	return q.bind.name
}

// startConsumer sets cs up, retrying transient failures until ctx is
// done, and starts its goroutine. what names the listener in errors.
func (c *Conn) startConsumer(ctx context.Context, cs *consumer, what string) error {
	size := listenBuffer
	if cs.prefetch > 0 {
		size = cs.prefetch
	}
	cs.c = c
	cs.in = make(chan inbound, size)
	cs.done = make(chan struct{})

	var sess *listenSession
	for attempt := 1; ; attempt++ {
		var err error
		if sess, err = cs.setup(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, driver.ErrClosed) {
			return err
		}
		if permanent(err) {
			return fmt.Errorf("rabbit: %s: %w: %w", what, driver.ErrDeliveryFailure, err)
		}
		cs.log.Warn("rabbit: cannot start consuming, retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, c.s.retryDelay(attempt)) {
			return fmt.Errorf("%w (after %d failed attempt(s), the last: %w)", ctx.Err(), attempt, err)
		}
	}

	c.lmu.Lock()
	if c.closed() {
		c.lmu.Unlock()
		sess.link.close()
		return driver.ErrClosed
	}
	cs.ctx, cs.cancel = context.WithCancel(c.base)
	c.listeners[cs] = struct{}{}
	c.lmu.Unlock()
	c.ev.emit(driver.EventConnected, sess.link.addr, cs.consume[0], nil)
	if !c.start(func() { cs.run(sess) }) {
		cs.cancel()
		sess.link.close()
		close(cs.done)
		c.lmu.Lock()
		delete(c.listeners, cs)
		c.lmu.Unlock()
		return driver.ErrClosed
	}
	return nil
}

// setup connects, declares the queues and starts the consumers.
func (cs *consumer) setup(ctx context.Context) (*listenSession, error) {
	lk, err := cs.c.dial(ctx, "listen", cs.consume[0])
	if err != nil {
		return nil, err
	}
	sess := &listenSession{link: lk}
	// Bounded, so that a link that goes silent while the queues are
	// being set up is torn down rather than waited for.
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	err = cs.c.guard(ctx, lk, func() (err error) {
		if sess.ch, err = lk.conn.Channel(); err != nil {
			return err
		}
		if cs.prefetch > 0 {
			if err = sess.ch.Qos(cs.prefetch, 0, false); err != nil {
				return err
			}
		}
		for _, q := range cs.queues {
			if err = declareQueue(sess.ch, q); err != nil {
				return fmt.Errorf("declare queue %q: %w", q.name, err)
			}
		}
		for i, name := range cs.consume {
			d, err := sess.ch.Consume(name, strconv.Itoa(i+1), false, false, false, false, cs.c.s.consumerArgs())
			if err != nil {
				return fmt.Errorf("consume queue %q: %w", name, err)
			}
			sess.deliveries = append(sess.deliveries, d)
		}
		return nil
	})
	if err != nil {
		lk.close()
		return nil, err
	}
	return sess, nil
}

// run moves deliveries into cs.in and reconnects after failures, until
// the consumer stops.
func (cs *consumer) run(sess *listenSession) {
	defer close(cs.done)
	for {
		if cs.pump(sess) {
			cs.teardown(sess)
			return
		}
		sess.link.close()
		cs.log.Warn("rabbit: listener connection or consumer lost, reconnecting", "err", sess.link.cause())
		delay := cs.c.s.reconnectDelay()
		for attempt := 1; ; attempt++ {
			if !sleep(cs.ctx, delay) {
				return
			}
			var err error
			if sess, err = cs.setup(cs.ctx); err == nil {
				break
			}
			if cs.ctx.Err() != nil {
				return
			}
			cs.log.Warn("rabbit: cannot resume consuming, retrying", "attempt", attempt, "err", err)
			delay = cs.c.s.retryDelay(attempt)
		}
		cs.log.Info("rabbit: listener resumed consuming")
		cs.c.ev.emit(driver.EventReconnected, sess.link.addr, cs.consume[0], nil)
	}
}

// pump forwards deliveries until the consumer stops (true) or one of
// the session's consumers ends with its channel or connection, or
// because the broker cancelled it (false).
func (cs *consumer) pump(sess *listenSession) (stopped bool) {
	recv := sess.receiver(cs.ctx.Done())
	for {
		d, ok, stop := recv()
		if stop {
			return true
		}
		if !ok {
			return false
		}
		select {
		case cs.in <- inbound{Delivery: d, sess: sess}:
		case <-cs.ctx.Done():
			return true
		}
	}
}

// receiver returns a function that waits for the next delivery of any
// of the session's consumers: it returns the delivery and true, false
// when a consumer's channel closed, or stopped set when stop is closed
// first. Up to three consumers (every RPC listener) are served by a
// plain select; more by reflection.
func (s *listenSession) receiver(stop <-chan struct{}) func() (d amqp.Delivery, ok, stopped bool) {
	if len(s.deliveries) <= 3 {
		var c [3]<-chan amqp.Delivery // nil channels block
		copy(c[:], s.deliveries)
		return func() (d amqp.Delivery, ok, stopped bool) {
			select {
			case <-stop:
				return d, false, true
			case d, ok = <-c[0]:
			case d, ok = <-c[1]:
			case d, ok = <-c[2]:
			}
			return d, ok, false
		}
	}
	cases := make([]reflect.SelectCase, 0, len(s.deliveries)+1)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stop)})
	for _, ch := range s.deliveries {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	return func() (d amqp.Delivery, ok, stopped bool) {
		i, v, ok := reflect.Select(cases)
		switch {
		case i == 0:
			return d, false, true
		case !ok:
			return d, false, false
		}
		return v.Interface().(amqp.Delivery), true, false
	}
}

// teardown cancels the consumers, deletes the private queue and closes
// the connection, within teardownTimeout. Deliveries not acknowledged,
// those left in cs.in included, go back to their queues: the broker
// requeues them when the channel closes.
func (cs *consumer) teardown(sess *listenSession) {
	t := time.AfterFunc(teardownTimeout, func() { sess.link.abort("listener teardown timed out") })
	defer t.Stop()
	for i := range sess.deliveries {
		_ = sess.ch.Cancel(strconv.Itoa(i+1), false)
	}
	if cs.private != "" {
		if _, err := sess.ch.QueueDelete(cs.private, false, false, false); err != nil {
			cs.log.Debug("rabbit: cannot delete the listener's queue", "queue", cs.private, "err", err)
		}
	}
	_ = sess.ch.Close()
	sess.link.close()
}

// stop stops consuming and waits until the connection is closed. It is
// idempotent.
func (cs *consumer) stop() {
	cs.stopOnce.Do(func() {
		cs.cancel()
		<-cs.done
		cs.c.lmu.Lock()
		delete(cs.c.listeners, cs)
		cs.c.lmu.Unlock()
	})
	<-cs.done
}

// unacked is the number of the consumer's deliveries not yet
// acknowledged: those waiting for Next, and the notifications returned
// by Next and not yet settled.
func (cs *consumer) unacked() int { return len(cs.in) + int(cs.handed.Load()) }

// Unacked returns the number of deliveries that the Conn's listeners
// hold unacknowledged: those received from the broker and waiting for
// Next (RPC listeners acknowledge a request when Next returns it), and
// the notifications returned by a notification listener's Next and not
// yet settled with Ack or Requeue. Those of a lost connection count
// until Next skips them or they are settled, although the broker will
// deliver them again; those of a closed listener no longer count. With
// a prefetch, the listener's share is bounded by it. Package metrics'
// Unacked exposes it as a gauge.
func (c *Conn) Unacked() int {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	n := 0
	for cs := range c.listeners {
		n += cs.unacked()
	}
	return n
}

// stopped reports whether the consumer was stopped, by its listener's
// Close or the Conn's.
func (cs *consumer) stopped() bool { return cs.ctx.Err() != nil }
