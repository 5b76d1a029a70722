package rabbit

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Duplicate filter bounds: a _unique_id is remembered for dedupTTL, and
// at most dedupMax of them.
const (
	dedupTTL = 60 * time.Second
	dedupMax = 10000
)

// listener consumes the three queues of one server on a connection of
// its own. Next takes the deliveries from the consumer's buffer, checks
// them, acknowledges them and returns them.
type listener struct {
	consumer
	addr driver.Address
	seen *dedup
}

// listen sets up a listener, retrying transient failures until ctx is
// done, and starts its goroutine.
func (c *Conn) listen(ctx context.Context, addr driver.Address, opts driver.ListenOptions) (*listener, error) {
	prefetch := opts.Prefetch
	if prefetch == 0 {
		prefetch = c.s.prefetch
	}
	ex := c.s.controlExchange(exchangeName(addr))
	l := &listener{
		consumer: consumer{
			prefetch: prefetch,
			log:      c.s.log.With("topic", addr.Topic, "server", addr.Server),
		},
		addr: addr,
		seen: newDedup(dedupTTL, dedupMax),
	}
	l.consumeQueue(c.s.topicQueue(ex, addr.Topic))
	if addr.Server != "" {
		l.consumeQueue(c.s.topicQueue(ex, addr.Topic+"."+addr.Server))
	}
	fanout := c.s.fanoutQueue(addr.Topic, newFanoutQueueName(addr.Topic))
	l.consumeQueue(fanout)
	l.private = fanout.name
	if err := c.startConsumer(ctx, &l.consumer, fmt.Sprintf("listen on topic %q", addr.Topic)); err != nil {
		return nil, err
	}
	return l, nil
}

// Next returns the next request. See driver.Listener.
func (l *listener) Next(ctx context.Context) (driver.Delivery, error) {
	for {
		if l.stopped() {
			return nil, driver.ErrClosed
		}
		select {
		case in := <-l.in:
			if dv := l.accept(&in.Delivery); dv != nil {
				return dv, nil
			}
		case <-l.ctx.Done():
			return nil, driver.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// accept checks, acknowledges and decodes a delivery, as oslo's server
// does: a message that is not an oslo request is rejected without
// requeueing; a valid one is acknowledged before it is returned (at most
// once); a duplicate _unique_id is acknowledged and dropped.
func (l *listener) accept(d *amqp.Delivery) *delivery {
	body, err := messageBody(d, l.c.s.maxMessage)
	var req *driver.Request
	if err == nil {
		req, err = wire.DecodeRequest(body)
	}
	if err != nil {
		l.log.Error("rabbit: rejecting a message that is not an oslo request",
			"exchange", d.Exchange, "routing_key", d.RoutingKey, "err", err)
		_ = d.Reject(false)
		return nil
	}
	if err := d.Ack(false); err != nil {
		l.log.Warn("rabbit: discarding a request that could not be acknowledged", "msg_id", req.MsgID, "err", err)
		return nil
	}
	if req.UniqueID != "" && l.seen.duplicate(req.UniqueID, time.Now()) {
		l.log.Debug("rabbit: ignoring a duplicate message", "unique_id", req.UniqueID, "msg_id", req.MsgID)
		return nil
	}
	req.SenderUserID = d.UserId
	return &delivery{c: l.c, req: req}
}

// Close stops consuming, deletes the fanout queue and closes the
// listener's connection. See driver.Listener.
func (l *listener) Close() error {
	l.stop()
	return nil
}

// dedup remembers the _unique_ids seen in the last ttl, at most max.
type dedup struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	seen  map[string]struct{}
	order []dedupEntry // order[head:] are in seen, oldest first
	head  int
}

type dedupEntry struct {
	id string
	at time.Time
}

func newDedup(ttl time.Duration, max int) *dedup {
	return &dedup{ttl: ttl, max: max, seen: map[string]struct{}{}}
}

// duplicate records id and reports whether it was already recorded.
func (d *dedup) duplicate(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.head < len(d.order) && (len(d.order)-d.head >= d.max || now.Sub(d.order[d.head].at) > d.ttl) {
		delete(d.seen, d.order[d.head].id)
		d.order[d.head] = dedupEntry{}
		d.head++
	}
	if d.head > 0 && d.head*2 >= len(d.order) {
		d.order = append(d.order[:0], d.order[d.head:]...)
		d.head = 0
	}
	if _, ok := d.seen[id]; ok {
		return true
	}
	d.seen[id] = struct{}{}
	d.order = append(d.order, dedupEntry{id, now})
	return false
}
