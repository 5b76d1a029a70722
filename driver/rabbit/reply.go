package rabbit

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// replyWaiter is the client side of calls: one reply queue per Conn,
// consumed on a connection of its own by one goroutine that routes each
// reply to the call waiting for its _msg_id. It is made at the first
// Call and runs until the Conn closes, reconnecting (and declaring the
// queue again) after failures.
type replyWaiter struct {
	c     *Conn
	queue string

	mu       sync.Mutex
	calls    map[string]*pendingCall
	ready    bool          // consuming: calls may be published
	failures int           // failed connection attempts so far
	lastErr  error         // of the last failed attempt
	changed  chan struct{} // closed and replaced when the above change
}

// replyWaiter returns the Conn's reply waiter, starting it if needed.
func (c *Conn) replyWaiter() (*replyWaiter, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed() {
		return nil, driver.ErrClosed
	}
	if c.replies == nil {
		w := &replyWaiter{
			c:       c,
			queue:   newReplyQueueName(),
			calls:   map[string]*pendingCall{},
			changed: make(chan struct{}),
		}
		if !c.start(w.run) {
			return nil, driver.ErrClosed
		}
		c.replies = w
	}
	return c.replies, nil
}

// replySession is one connection of the reply consumer.
type replySession struct {
	link       *link
	ch         *amqp.Channel
	deliveries <-chan amqp.Delivery
}

const replyConsumerTag = "1"

// run connects, consumes and reconnects until the Conn closes; then it
// deletes the reply queue and closes its connection.
func (w *replyWaiter) run() {
	ctx := w.c.base
	log := w.c.s.log.With("reply_queue", w.queue)
	attempt := 0
	kind := driver.EventConnected
	for {
		sess, err := w.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attempt++
			w.setState(false, err)
			log.Warn("rabbit: cannot consume the reply queue, retrying", "attempt", attempt, "err", err)
			if !sleep(ctx, w.c.s.retryDelay(attempt)) {
				return
			}
			continue
		}
		attempt = 0
		w.setState(true, nil)
		w.c.ev.emit(kind, sess.link.addr, w.queue, nil)
		kind = driver.EventReconnected
		w.consume(ctx, sess)
		w.setState(false, nil)
		if ctx.Err() != nil {
			w.teardown(sess)
			return
		}
		sess.link.close()
		log.Warn("rabbit: reply queue consumer lost, reconnecting", "err", sess.link.cause())
		if !sleep(ctx, w.c.s.reconnectDelay()) {
			return
		}
	}
}

// connect declares the reply queue and starts consuming it.
func (w *replyWaiter) connect(ctx context.Context) (*replySession, error) {
	l, err := w.c.dial(ctx, "reply", w.queue)
	if err != nil {
		return nil, err
	}
	sess := &replySession{link: l}
	// Bounded, so that a link that goes silent while the queue is being
	// set up is torn down rather than waited for.
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	err = w.c.guard(ctx, l, func() (err error) {
		if sess.ch, err = l.conn.Channel(); err != nil {
			return err
		}
		if err = declareQueue(sess.ch, w.c.s.replyQueue(w.queue)); err != nil {
			return err
		}
		sess.deliveries, err = sess.ch.Consume(w.queue, replyConsumerTag, false, false, false, false, w.c.s.consumerArgs())
		return err
	})
	if err != nil {
		l.close()
		return nil, fmt.Errorf("rabbit: reply queue %s: %w", w.queue, err)
	}
	return sess, nil
}

// replyAckBatch bounds the replies acknowledged together.
const replyAckBatch = 64

// consume routes replies until the session ends or ctx is done. Replies
// are acknowledged together, with one basic.ack (multiple) for those
// that arrived back to back, as soon as no other reply is ready: the
// reply queue has one consumer, so its delivery tags arrive in order.
// A reply is handed to its call before it is acknowledged; if the
// connection fails in between, the broker delivers it again after the
// reconnection, and the call, already ended, ignores it.
func (w *replyWaiter) consume(ctx context.Context, sess *replySession) {
	var last uint64 // the highest delivery tag not yet acknowledged, or 0
	flush := func() {
		if last == 0 {
			return
		}
		if err := sess.ch.Ack(last, true); err != nil {
			w.c.s.log.Warn("rabbit: cannot acknowledge replies", "reply_queue", w.queue, "err", err)
		}
		last = 0
	}
	defer flush()
	for {
		var (
			d  amqp.Delivery
			ok bool
		)
		select {
		case d, ok = <-sess.deliveries:
		default:
			flush()
			select {
			case d, ok = <-sess.deliveries:
			case <-ctx.Done():
				return
			}
		}
		if !ok {
			return
		}
		if w.handle(&d, sess.link.addr) {
			last = d.DeliveryTag
		} else {
			// Acknowledge what came before the rejected message,
			// then reject it.
			flush()
			_ = d.Reject(false)
		}
		if ctx.Err() != nil {
			return
		}
		if n := d.DeliveryTag; last != 0 && n%replyAckBatch == 0 {
			flush()
		}
	}
}

// handle hands one reply to its call and reports true, or false for a
// message that is not an oslo reply, which the caller rejects, as oslo
// does.
func (w *replyWaiter) handle(d *amqp.Delivery, addr string) bool {
	log := w.c.s.log
	body, err := messageBody(d, w.c.s.maxMessage)
	var m *wire.ReplyMessage
	if err == nil {
		m, err = wire.DecodeReply(body)
	}
	if err != nil {
		log.Error("rabbit: rejecting a message on the reply queue", "reply_queue", w.queue, "err", err)
		return false
	}
	w.mu.Lock()
	pc := w.calls[m.MsgID]
	w.mu.Unlock()
	if pc == nil {
		log.Debug("rabbit: no call waits for this reply, dropping it", "msg_id", m.MsgID)
		w.c.ev.emit(driver.EventLateReply, addr, w.queue, nil)
		return true
	}
	pc.deliver(m)
	return true
}

// teardown cancels the consumer, deletes the reply queue and closes the
// connection, within teardownTimeout.
func (w *replyWaiter) teardown(sess *replySession) {
	t := time.AfterFunc(teardownTimeout, func() { sess.link.abort("reply queue teardown timed out") })
	defer t.Stop()
	_ = sess.ch.Cancel(replyConsumerTag, false)
	if _, err := sess.ch.QueueDelete(w.queue, false, false, false); err != nil {
		w.c.s.log.Debug("rabbit: cannot delete the reply queue", "reply_queue", w.queue, "err", err)
	}
	sess.link.close()
}

func (w *replyWaiter) setState(ready bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = ready
	if ready {
		w.lastErr = nil // lastErr is the error of the attempts since the last success
	}
	if err != nil {
		w.failures++
		w.lastErr = err
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// waitReady blocks until the reply queue is being consumed. With retry
// >= 0 it gives up, with an error wrapping driver.ErrDeliveryFailure,
// after more than retry failed connection attempts during the wait; at
// at once when the last attempt since the queue was last consumed was
// refused by the broker for good (see permanent). When ctx ends first, the error wraps the last
// attempt's error, if any, with ctx.Err().
func (w *replyWaiter) waitReady(ctx context.Context, retry int) error {
	w.mu.Lock()
	start := w.failures
	w.mu.Unlock()
	for {
		w.mu.Lock()
		ready, failures, last, changed := w.ready, w.failures, w.lastErr, w.changed
		w.mu.Unlock()
		if ready {
			return nil
		}
		if retry >= 0 && failures-start > retry {
			return fmt.Errorf("%w: %w", driver.ErrDeliveryFailure, last)
		}
		if last != nil && permanent(last) {
			// The broker refused the reply queue (access refused,
			// inequivalent arguments): retrying will not help this
			// call, though the consumer keeps trying in case the
			// broker's configuration changes.
			return fmt.Errorf("%w: %w", driver.ErrDeliveryFailure, last)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (reply queue: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		}
	}
}

// register makes msgID's replies go to the returned pendingCall until
// unregister.
func (w *replyWaiter) register(msgID string) *pendingCall {
	pc := &pendingCall{done: make(chan struct{}), beat: make(chan struct{}, 1)}
	w.mu.Lock()
	w.calls[msgID] = pc
	w.mu.Unlock()
	return pc
}

func (w *replyWaiter) unregister(msgID string, pc *pendingCall) {
	w.mu.Lock()
	if w.calls[msgID] == pc {
		delete(w.calls, msgID)
	}
	w.mu.Unlock()
}

// pendingCall collects the replies of one call.
type pendingCall struct {
	mu      sync.Mutex
	result  json.RawMessage
	failure *driver.Failure
	ended   bool
	done    chan struct{} // closed at the final reply
	beat    chan struct{} // one pending heartbeat at most
}

// deliver applies one reply message as oslo's client does: the last
// non-null result or failure wins, ending ends the call, and a
// non-final message with neither is a heartbeat. It never blocks.
func (pc *pendingCall) deliver(m *wire.ReplyMessage) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.ended {
		return
	}
	switch {
	case m.Failure != nil:
		pc.failure, pc.result = m.Failure, nil
	case m.Result != nil:
		pc.result, pc.failure = m.Result, nil
	}
	if m.Ending {
		pc.ended = true
		close(pc.done)
		return
	}
	if m.IsHeartbeat() {
		select {
		case pc.beat <- struct{}{}:
		default:
		}
	}
}

// wait blocks until the final reply, the monitor timeout, ctx or the
// Conn's closing.
func (pc *pendingCall) wait(ctx context.Context, c *Conn, monitor time.Duration, what, queue string) (*driver.Reply, error) {
	var monitorC <-chan time.Time
	if monitor > 0 {
		t := time.NewTimer(monitor)
		defer t.Stop()
		monitorC = t.C
		for {
			select {
			case <-pc.done:
				return pc.reply(), nil
			case <-pc.beat:
				t.Reset(monitor)
			case <-monitorC:
				return nil, fmt.Errorf("rabbit: %s: no reply or heartbeat for %v: %w", what, monitor, driver.ErrHeartbeatTimeout)
			case <-ctx.Done():
				return nil, pc.timeout(ctx, c, what, queue)
			}
		}
	}
	for {
		select {
		case <-pc.done:
			return pc.reply(), nil
		case <-pc.beat:
		case <-ctx.Done():
			return nil, pc.timeout(ctx, c, what, queue)
		}
	}
}

func (pc *pendingCall) timeout(ctx context.Context, c *Conn, what, queue string) error {
	if c.closed() {
		return fmt.Errorf("rabbit: %s: %w", what, driver.ErrClosed)
	}
	return fmt.Errorf("rabbit: timed out waiting for a reply to %s on reply queue %s: %w", what, queue, ctx.Err())
}

func (pc *pendingCall) reply() *driver.Reply {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return &driver.Reply{Result: pc.result, Failure: pc.failure}
}
