package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Conn is a connection to a [Broker]. It implements [driver.RPCConn]
// and [driver.NotifyConn] and is safe for concurrent use. Get one from
// [Broker.Conn] or, through the registry, from [Driver.Open].
//
// Closing a Conn closes its listeners, fails its calls in progress with
// [driver.ErrClosed] and deletes its reply queue.
type Conn struct {
	b       *Broker
	replyTo string // name of the reply queue; immutable

	// Guarded by b.mu:
	closed     bool
	waiters    map[string]*waiter // calls in progress, by msg id
	listeners  map[*listener]struct{}
	nlisteners map[*notifyListener]struct{}
}

var (
	_ driver.RPCConn    = (*Conn)(nil)
	_ driver.NotifyConn = (*Conn)(nil)
)

// waiter is a call in progress. Its channels belong to the goroutine of
// the call, which creates them; the broker only sends to them, without
// blocking.
type waiter struct {
	done chan outcome  // the final reply or error; one send at most
	beat chan struct{} // heartbeats, coalesced
}

type outcome struct {
	reply *driver.Reply
	err   error
}

// Ping reports whether c is usable. It does not block: it returns nil,
// an error wrapping [driver.ErrClosed] after [Conn.Close], or an error
// wrapping ctx.Err() if ctx is already done.
func (c *Conn) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: ping: %w", err)
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.closed {
		return fmt.Errorf("memory: ping: %w", driver.ErrClosed)
	}
	return nil
}

// Close closes c and its listeners, RPC and notification listeners
// alike, fails the calls in progress on c with an error wrapping
// [driver.ErrClosed], and deletes c's reply queue, so that replies still
// to come fail with [driver.ErrUndeliverable]. It does not block and is
// idempotent: it always returns nil.
func (c *Conn) Close() error {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	delete(b.replies, c.replyTo)
	now := time.Now()
	for l := range c.listeners {
		l.closeLocked(now)
	}
	for l := range c.nlisteners {
		l.closeLocked(now)
	}
	for id, w := range c.waiters {
		delete(c.waiters, id)
		w.done <- outcome{err: driver.ErrClosed}
	}
	return nil
}

// Call sends the request req to addr and blocks until the final reply
// arrives. It sets req.ReplyTo, and req.MonitorTimeout when
// opts.MonitorTimeout is positive. The deadline of ctx, if any, is the
// time to live of the request: a request still queued at the deadline
// is dropped.
//
// It fails with an error wrapping ctx.Err() when ctx ends first,
// [driver.ErrHeartbeatTimeout] when opts.MonitorTimeout is positive and
// neither a reply nor a heartbeat arrived for that long,
// [driver.ErrClosed] when c is or gets closed, and
// [driver.ErrUndeliverable] when opts.Mandatory is set and no queue is
// bound to addr. Without a queue and without Mandatory, the request is
// dropped and Call waits until ctx ends, as it would with RabbitMQ.
// It also fails if req is nil or has no MsgID, if addr is a fanout or
// lacks an exchange or topic, and if req cannot be encoded.
func (c *Conn) Call(ctx context.Context, addr driver.Address, req *driver.Request, opts driver.SendOptions) (*driver.Reply, error) {
	if req == nil {
		return nil, errors.New("memory: call: nil request")
	}
	if req.MsgID == "" {
		return nil, fmt.Errorf("memory: call %s: the request has no msg id", req.Method)
	}
	if addr.Fanout {
		return nil, fmt.Errorf("memory: call %s: a call cannot be used with fanout", req.Method)
	}
	if err := checkAddress(addr); err != nil {
		return nil, fmt.Errorf("memory: call %s: %w", req.Method, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: call %s: %w", req.Method, err)
	}
	req.ReplyTo = c.replyTo
	if opts.MonitorTimeout > 0 {
		s := opts.MonitorTimeout.Seconds()
		req.MonitorTimeout = &s
	}
	body, err := wire.EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("memory: call %s: %w", req.Method, err)
	}
	m := message{body: body}
	if d, ok := ctx.Deadline(); ok {
		m.expires = d
	}

	w := &waiter{done: make(chan outcome, 1), beat: make(chan struct{}, 1)}
	b := c.b
	b.mu.Lock()
	if c.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("memory: call %s: %w", req.Method, driver.ErrClosed)
	}
	if _, dup := c.waiters[req.MsgID]; dup {
		b.mu.Unlock()
		return nil, fmt.Errorf("memory: call %s: msg id %s is already waiting for a reply on this connection", req.Method, req.MsgID)
	}
	if err := b.publishLocked(addr, m, opts.Mandatory, time.Now()); err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("memory: call %s: %w", req.Method, err)
	}
	c.waiters[req.MsgID] = w
	b.mu.Unlock()
	defer c.forget(req.MsgID, w)

	var monitor <-chan time.Time
	var timer *time.Timer
	if opts.MonitorTimeout > 0 {
		timer = time.NewTimer(opts.MonitorTimeout)
		defer timer.Stop()
		monitor = timer.C
	}
	finish := func(o outcome) (*driver.Reply, error) {
		if o.err != nil {
			return nil, fmt.Errorf("memory: call %s to %s (msg id %s): %w",
				req.Method, describe(addr), req.MsgID, o.err)
		}
		return o.reply, nil
	}
	for {
		select {
		case o := <-w.done:
			return finish(o)
		case <-w.beat:
			if timer != nil {
				timer.Reset(opts.MonitorTimeout)
			}
		case <-monitor:
			// A reply or heartbeat that arrived while this goroutine was
			// waiting to run still counts.
			select {
			case o := <-w.done:
				return finish(o)
			case <-w.beat:
				timer.Reset(opts.MonitorTimeout)
				continue
			default:
			}
			return nil, fmt.Errorf("memory: call %s to %s (msg id %s): no reply or heartbeat for %v: %w",
				req.Method, describe(addr), req.MsgID, opts.MonitorTimeout, driver.ErrHeartbeatTimeout)
		case <-ctx.Done():
			select {
			case o := <-w.done:
				return finish(o)
			default:
			}
			return nil, fmt.Errorf("memory: call %s to %s: no reply to msg id %s: %w",
				req.Method, describe(addr), req.MsgID, ctx.Err())
		}
	}
}

// forget removes the waiter w of msgID, if it is still registered.
func (c *Conn) forget(msgID string, w *waiter) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.waiters[msgID] == w {
		delete(c.waiters, msgID)
	}
}

// Cast sends the request req to addr (every listener of addr.Topic if
// addr.Fanout is set) and returns once it is queued; it does not block.
// Without a queue bound to addr the request is dropped, unless
// opts.Mandatory is set: then Cast fails with an error wrapping
// [driver.ErrUndeliverable].
//
// It fails with an error wrapping ctx.Err() if ctx is done and
// [driver.ErrClosed] if c is closed; also if req is nil or has a MsgID
// (calls go through [Conn.Call]), if addr lacks an exchange or topic, and
// if req cannot be encoded.
func (c *Conn) Cast(ctx context.Context, addr driver.Address, req *driver.Request, opts driver.SendOptions) error {
	if req == nil {
		return errors.New("memory: cast: nil request")
	}
	if req.MsgID != "" {
		return fmt.Errorf("memory: cast %s: the request has a msg id, which only calls may have", req.Method)
	}
	if err := checkAddress(addr); err != nil {
		return fmt.Errorf("memory: cast %s: %w", req.Method, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: cast %s: %w", req.Method, err)
	}
	body, err := wire.EncodeRequest(req)
	if err != nil {
		return fmt.Errorf("memory: cast %s: %w", req.Method, err)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return fmt.Errorf("memory: cast %s: %w", req.Method, driver.ErrClosed)
	}
	if err := b.publishLocked(addr, message{body: body}, opts.Mandatory, time.Now()); err != nil {
		return fmt.Errorf("memory: cast %s: %w", req.Method, err)
	}
	return nil
}

// Listen declares the queues of addr.Topic and, if addr.Server is not
// empty, of addr.Topic + "." + addr.Server on addr.Exchange, plus a
// fanout queue for this listener, and starts consuming them. Messages
// already waiting in the topic and server queues are pushed to the new
// listener in its turn. addr.Fanout is ignored. Listen does not block.
//
// opts.Prefetch, when positive, bounds the messages pushed to the
// listener and not yet returned by Next; 0 means no bound.
//
// It fails with an error wrapping ctx.Err() if ctx is done and
// [driver.ErrClosed] if c is closed; also if addr lacks an exchange or a
// topic, and with an error wrapping [messaging.ErrInvalidOption] if
// opts.Prefetch is negative.
func (c *Conn) Listen(ctx context.Context, addr driver.Address, opts driver.ListenOptions) (driver.Listener, error) {
	if err := checkAddress(addr); err != nil {
		return nil, fmt.Errorf("memory: listen: %w", err)
	}
	if opts.Prefetch < 0 {
		return nil, fmt.Errorf("memory: listen: negative prefetch %d: %w", opts.Prefetch, messaging.ErrInvalidOption)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: listen: %w", err)
	}
	l := &listener{
		conn:     c,
		topic:    addr.Topic,
		prefetch: opts.Prefetch,
		mailbox:  newMailbox(),
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("memory: listen: %w", driver.ErrClosed)
	}
	ex := b.exchangeLocked(addr.Exchange)
	l.ex = ex
	l.queues = append(l.queues, ex.queueLocked(addr.Topic))
	if addr.Server != "" {
		l.queues = append(l.queues, ex.queueLocked(routingKey(addr)))
	}
	l.fanout = &queue{name: addr.Topic + "_fanout_" + wire.NewID(), fanout: true}
	ex.fanout[addr.Topic] = append(ex.fanout[addr.Topic], l.fanout)
	l.queues = append(l.queues, l.fanout)
	c.listeners[l] = struct{}{}
	now := time.Now()
	for _, q := range l.queues {
		q.addConsumerLocked(l)
		q.dispatchLocked(now)
	}
	return l, nil
}

// checkAddress rejects the addresses no queue can be bound to.
func checkAddress(addr driver.Address) error {
	switch {
	case addr.Exchange == "":
		return errors.New("the address has no exchange")
	case addr.Topic == "":
		return errors.New("the address has no topic")
	}
	return nil
}

// describe returns addr as exchange/topic[.server] for error messages.
func describe(addr driver.Address) string {
	return addr.Exchange + "/" + routingKey(addr)
}
