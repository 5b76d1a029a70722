package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// listener consumes the topic, server and fanout queues of one server.
type listener struct {
	conn     *Conn
	ex       *exchange
	topic    string
	prefetch int // 0: unbounded
	mailbox      // inbox: messages pushed by the queues, oldest first

	// Guarded by conn.b.mu:
	queues []*queue // topic, [server,] fanout
	fanout *queue
}

var _ driver.Listener = (*listener)(nil)

// pushed is a message that a queue pushed to a listener.
type pushed struct {
	msg  message
	from *queue
}

// mailbox is the part of a listener, of requests or of notifications,
// that its queues push to and its Next waits on.
type mailbox struct {
	notify chan struct{} // one token: the inbox may have changed
	done   chan struct{} // closed by Close

	// Guarded by Broker.mu:
	inbox  []pushed // pushed by the queues, not yet taken by Next
	closed bool
}

// newMailbox returns an empty, open mailbox.
func newMailbox() mailbox {
	return mailbox{notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// pushLocked appends m, from q, to the inbox and wakes a Next.
func (mb *mailbox) pushLocked(m message, q *queue) {
	mb.inbox = append(mb.inbox, pushed{msg: m, from: q})
	mb.wake()
}

// wake tells one waiting Next, if any, to look at the inbox.
func (mb *mailbox) wake() {
	select {
	case mb.notify <- struct{}{}:
	default: // a token is already there
	}
}

// popLocked removes the oldest message from the inbox and returns it,
// or false if the inbox is empty.
func (mb *mailbox) popLocked() (pushed, bool) {
	if len(mb.inbox) == 0 {
		return pushed{}, false
	}
	p := mb.inbox[0]
	mb.inbox[0] = pushed{}
	mb.inbox = mb.inbox[1:]
	if len(mb.inbox) == 0 {
		mb.inbox = nil
	}
	return p, true
}

// closeLocked marks the mailbox closed and ends the waits of Next. It
// reports false, doing nothing, if the mailbox was already closed.
func (mb *mailbox) closeLocked() bool {
	if mb.closed {
		return false
	}
	mb.closed = true
	close(mb.done)
	return true
}

// await blocks until take, called with mu (the broker's) held, returns
// true, and returns what take returned with it. It calls take again
// each time the mailbox wakes. It returns [driver.ErrClosed] once mb is
// closed, and ctx.Err() if ctx ends first.
func await[T any](ctx context.Context, mu *sync.Mutex, mb *mailbox, take func() (T, bool)) (T, error) {
	var zero T
	for {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		mu.Lock()
		if mb.closed {
			mu.Unlock()
			return zero, driver.ErrClosed
		}
		v, ok := take()
		mu.Unlock()
		if ok {
			return v, nil
		}
		select {
		case <-mb.notify:
		case <-mb.done:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

func (l *listener) hasRoomLocked() bool {
	return l.prefetch == 0 || len(l.inbox) < l.prefetch
}

// Next blocks until a request reaches the listener and returns it. It
// returns [driver.ErrClosed] once the listener or its connection is
// closed, and ctx.Err() if ctx ends first. A call request whose caller's
// deadline has passed is dropped rather than returned. Concurrent calls
// of Next each get different requests.
func (l *listener) Next(ctx context.Context) (driver.Delivery, error) {
	take := func() (message, bool) { return l.takeLocked(time.Now()) }
	for {
		m, err := await(ctx, &l.conn.b.mu, &l.mailbox, take)
		if err != nil {
			return nil, err
		}
		req, err := wire.DecodeRequest(m.body)
		if err != nil {
			// Not reachable for bodies that this package encoded; a
			// broker would drop such a message the same way.
			continue
		}
		return &delivery{conn: l.conn, req: req, msgID: req.MsgID, replyTo: req.ReplyTo}, nil
	}
}

// takeLocked removes the oldest unexpired message from the inbox.
func (l *listener) takeLocked(now time.Time) (message, bool) {
	var (
		m     message
		found bool
	)
	for !found {
		p, ok := l.popLocked()
		if !ok {
			break
		}
		m, found = p.msg, !p.msg.expired(now)
	}
	if l.prefetch > 0 {
		// Room was made: let the queues push what they hold.
		for _, q := range l.queues {
			q.dispatchLocked(now)
		}
	}
	if len(l.inbox) > 0 {
		l.wake() // for another Next waiting on the same listener
	}
	return m, found
}

// Close stops consuming: the listener leaves its queues, the messages
// pushed to it and not yet returned by Next go back to the front of the
// topic and server queues, and its fanout queue is deleted with its
// messages. Next calls in progress return [driver.ErrClosed];
// deliveries already returned stay usable. Close does not block, is
// idempotent and returns nil.
func (l *listener) Close() error {
	b := l.conn.b
	b.mu.Lock()
	defer b.mu.Unlock()
	l.closeLocked(time.Now())
	return nil
}

func (l *listener) closeLocked(now time.Time) {
	if !l.mailbox.closeLocked() {
		return
	}
	delete(l.conn.listeners, l)
	for _, q := range l.queues {
		q.removeConsumerLocked(l)
	}
	l.ex.removeFanoutLocked(l.topic, l.fanout)
	// Give back, in order, what the shared queues pushed to l.
	back := make(map[*queue][]message)
	for _, p := range l.inbox {
		if !p.from.fanout {
			back[p.from] = append(back[p.from], p.msg)
		}
	}
	l.inbox = nil
	for _, q := range l.queues {
		if ms := back[q]; len(ms) > 0 {
			q.requeueLocked(ms)
			q.dispatchLocked(now)
		}
	}
}

// delivery is a request returned by Next.
type delivery struct {
	conn    *Conn // the connection of the listener
	req     *driver.Request
	msgID   string // empty for casts
	replyTo string
	replied atomic.Bool
}

var _ driver.Delivery = (*delivery)(nil)

// Request returns the decoded request, which belongs to the caller.
func (d *delivery) Request() *driver.Request { return d.req }

// Reply sends r, the final reply of a call, to the caller; a nil r is a
// null result. It does not block. For a cast it does nothing and returns
// nil. If the caller no longer waits for the reply (its context ended),
// the reply is dropped and Reply returns nil.
//
// Reply fails with an error wrapping ctx.Err() if ctx is done,
// [driver.ErrUndeliverable] if the caller's connection is closed,
// [driver.ErrClosed] if the listener's connection is closed, if r cannot
// be encoded (then the reply is not sent and may be tried again), and if
// a reply was already sent.
func (d *delivery) Reply(ctx context.Context, r *driver.Reply) error {
	if d.msgID == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: reply to msg id %s: %w", d.msgID, err)
	}
	body, err := wire.EncodeReply(r, d.msgID, wire.NewID(), true)
	if err != nil {
		return fmt.Errorf("memory: reply to msg id %s: %w", d.msgID, err)
	}
	if !d.replied.CompareAndSwap(false, true) {
		return fmt.Errorf("memory: reply to msg id %s: a reply was already sent", d.msgID)
	}
	return d.send(body)
}

// Heartbeat tells the caller that the call is still running, restarting
// its call monitor. It does not block. It does nothing and returns nil
// for a cast and after the final reply. It fails like [delivery.Reply].
func (d *delivery) Heartbeat(ctx context.Context) error {
	if d.msgID == "" || d.replied.Load() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: heartbeat to msg id %s: %w", d.msgID, err)
	}
	body, err := wire.EncodeReply(nil, d.msgID, wire.NewID(), false)
	if err != nil {
		return fmt.Errorf("memory: heartbeat to msg id %s: %w", d.msgID, err)
	}
	return d.send(body)
}

func (d *delivery) send(body []byte) error {
	c := d.conn
	c.b.mu.Lock()
	closed := c.closed
	c.b.mu.Unlock()
	if closed {
		return fmt.Errorf("memory: reply to msg id %s: %w", d.msgID, driver.ErrClosed)
	}
	if err := c.b.routeReply(d.replyTo, body); err != nil {
		return fmt.Errorf("memory: reply to msg id %s: %w", d.msgID, err)
	}
	return nil
}
