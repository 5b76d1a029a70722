package rabbit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Reply retries and the cache of reply queues known to be gone, as
// oslo's ObsoleteReplyQueuesCache.
const (
	replyRetryInterval = 250 * time.Millisecond
	deadQueueTTL       = 60 * time.Second
	deadQueueMax       = 200
)

// delivery is one received request. Its replies go through the Conn's
// publishing connection, so they work after the listener has closed.
type delivery struct {
	c   *Conn
	req *driver.Request

	mu      sync.Mutex
	replied bool
}

// Request returns the decoded request. See driver.Delivery.
func (d *delivery) Request() *driver.Request { return d.req }

// Reply sends the final reply of a call to its reply queue, on the
// default exchange with the mandatory flag. If the broker returns it
// because the queue does not exist, it tries again every 0.25 s for
// kombu_missing_consumer_retry_timeout from that first return, then
// gives up, remembers the queue as gone for 60 s and returns an error
// wrapping driver.ErrUndeliverable. A later reply to a queue remembered
// as gone is published once, without retries, and dropped if the broker
// returns it; if not, the caller has declared its queue again, and it
// is forgotten as gone. It is a no-op for
// casts; a second Reply returns an error. Other errors are as for
// Conn.Cast.
func (d *delivery) Reply(ctx context.Context, r *driver.Reply) error {
	if !d.req.IsCall() {
		return nil
	}
	d.mu.Lock()
	if d.replied {
		d.mu.Unlock()
		return fmt.Errorf("rabbit: reply to msg_id %s: already sent", d.req.MsgID)
	}
	d.replied = true
	d.mu.Unlock()
	if r == nil {
		r = &driver.Reply{}
	}
	return d.c.reply(ctx, d.req, r, true)
}

// Heartbeat sends a call-monitor heartbeat (ending false, null result)
// to the caller. It is a no-op for casts, for requests without a
// positive _timeout (oslo's client fails on heartbeats it did not ask
// for) and after Reply. A missing reply queue fails at once with an
// error wrapping driver.ErrUndeliverable.
func (d *delivery) Heartbeat(ctx context.Context) error {
	if !d.req.IsCall() || d.req.MonitorTimeout == nil || *d.req.MonitorTimeout <= 0 {
		return nil
	}
	d.mu.Lock()
	replied := d.replied
	d.mu.Unlock()
	if replied {
		return nil
	}
	return d.c.reply(ctx, d.req, nil, false)
}

// reply publishes a reply (final) or a heartbeat (r nil, not final) to
// req's reply queue.
func (c *Conn) reply(ctx context.Context, req *driver.Request, r *driver.Reply, final bool) error {
	what := "reply"
	if !final {
		what = "heartbeat"
	}
	what = fmt.Sprintf("%s to msg_id %s on %s", what, req.MsgID, req.ReplyTo)
	if c.closed() {
		return driver.ErrClosed
	}
	if req.ReplyTo == "" {
		return fmt.Errorf("rabbit: %s: the request names no reply queue", what)
	}
	body, err := wire.EncodeReply(r, req.MsgID, wire.NewID(), final)
	if err != nil {
		return fmt.Errorf("rabbit: %s: %w", what, err)
	}
	msg, err := publishing(body, c.s.compress, 0)
	if err != nil {
		return fmt.Errorf("rabbit: %s: %w", what, err)
	}
	out := &outgoing{exchange: "", key: req.ReplyTo, mandatory: c.s.directMandatory, msg: msg, what: what}

	ctx, done := c.bind(ctx)
	defer done()
	if c.dead.has(req.ReplyTo, time.Now()) {
		// The queue was found missing lately, but its caller may have
		// declared it again since (after a reconnection, it keeps its
		// name): one mandatory publish, without waiting, tells.
		err := c.send(ctx, out, -1, true)
		if err == nil {
			c.dead.remove(req.ReplyTo)
			return nil
		}
		if !errors.Is(err, driver.ErrUndeliverable) {
			return c.fail(ctx, what, err)
		}
		c.s.log.Warn("rabbit: reply queue doesn't exist, dropping the reply", "reply_queue", req.ReplyTo, "msg_id", req.MsgID)
		err = fmt.Errorf("rabbit: %s: %w: the reply queue is gone", what, driver.ErrUndeliverable)
		if final {
			c.ev.emit(driver.EventReplyDropped, "", req.ReplyTo, err)
		}
		return err
	}
	var missingSince time.Time // of the first basic.return
	for {
		err := c.send(ctx, out, -1, true) // a second copy of a reply is dropped by the caller
		if err == nil || !final || !errors.Is(err, driver.ErrUndeliverable) {
			return c.fail(ctx, what, err)
		}
		// The wait for the queue counts from the first time the broker
		// returned the reply, not from the first attempt: time spent
		// reconnecting to a broker that was down does not count.
		if missingSince.IsZero() {
			missingSince = time.Now()
		}
		if time.Since(missingSince) >= c.s.missingConsumer {
			c.dead.add(req.ReplyTo, time.Now())
			c.s.log.Error("rabbit: the reply failed to send because its reply queue is missing, abandoning it",
				"msg_id", req.MsgID, "reply_queue", req.ReplyTo, "after", time.Since(missingSince).Round(time.Millisecond))
			c.ev.emit(driver.EventReplyDropped, "", req.ReplyTo, err)
			return err
		}
		c.s.log.Debug("rabbit: the reply queue is missing, retrying the reply", "msg_id", req.MsgID, "reply_queue", req.ReplyTo)
		if !sleep(ctx, replyRetryInterval) {
			return c.fail(ctx, what, ctx.Err())
		}
	}
}

// deadQueues remembers reply queues that were found missing.
type deadQueues struct {
	mu sync.Mutex
	at map[string]time.Time // when each was found missing
}

func newDeadQueues() *deadQueues { return &deadQueues{at: map[string]time.Time{}} }

func (q *deadQueues) has(name string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	at, ok := q.at[name]
	if ok && now.Sub(at) >= deadQueueTTL {
		delete(q.at, name)
		return false
	}
	return ok
}

func (q *deadQueues) remove(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.at, name)
}

func (q *deadQueues) add(name string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for n, at := range q.at {
		if now.Sub(at) >= deadQueueTTL {
			delete(q.at, n)
		}
	}
	if _, ok := q.at[name]; !ok && len(q.at) >= deadQueueMax {
		oldest, first := "", true
		for n, at := range q.at {
			if first || at.Before(q.at[oldest]) {
				oldest, first = n, false
			}
		}
		delete(q.at, oldest)
	}
	q.at[name] = now
}
