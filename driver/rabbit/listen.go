package rabbit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	// listenBuffer bounds the deliveries that wait for Next when the
	// listener has no prefetch.
	listenBuffer = 64
)

// listener consumes the three queues of one server on a connection of
// its own. A goroutine moves deliveries into a bounded buffer; Next
// takes them out, checks them, acknowledges them and returns them.
// Deliveries stay unacknowledged in the buffer, so with a prefetch the
// broker sends no more than that many ahead of Next.
type listener struct {
	c        *Conn
	addr     driver.Address
	prefetch int
	queues   []*queue // topic, server, fanout
	log      *slog.Logger

	in     chan amqp.Delivery
	ctx    context.Context //nolint:containedctx // lifetime of the listener: done when it or the Conn closes
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
	seen   *dedup

	closeOnce sync.Once
}

// listenSession is one connection of a listener.
type listenSession struct {
	link       *link
	ch         *amqp.Channel
	deliveries []<-chan amqp.Delivery // one per queue, tags "1", "2", "3"
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
		c:        c,
		addr:     addr,
		prefetch: prefetch,
		done:     make(chan struct{}),
		seen:     newDedup(dedupTTL, dedupMax),
		log:      c.s.log.With("topic", addr.Topic, "server", addr.Server),
	}
	l.queues = append(l.queues, c.s.topicQueue(ex, addr.Topic))
	if addr.Server != "" {
		l.queues = append(l.queues, c.s.topicQueue(ex, addr.Topic+"."+addr.Server))
	}
	l.queues = append(l.queues, c.s.fanoutQueue(addr.Topic, newFanoutQueueName(addr.Topic)))
	size := listenBuffer
	if prefetch > 0 {
		size = prefetch
	}
	l.in = make(chan amqp.Delivery, size)

	var sess *listenSession
	for attempt := 1; ; attempt++ {
		var err error
		if sess, err = l.setup(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, driver.ErrClosed) {
			return nil, err
		}
		if permanent(err) {
			return nil, fmt.Errorf("rabbit: listen on topic %q: %w: %w", addr.Topic, driver.ErrDeliveryFailure, err)
		}
		l.log.Warn("rabbit: cannot start consuming, retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, c.s.retryDelay(attempt)) {
			return nil, ctx.Err()
		}
	}

	c.lmu.Lock()
	if c.closed() {
		c.lmu.Unlock()
		sess.link.close()
		return nil, driver.ErrClosed
	}
	l.ctx, l.cancel = context.WithCancel(c.base)
	c.listeners[l] = struct{}{}
	c.lmu.Unlock()
	if !c.start(func() { l.run(sess) }) {
		l.cancel()
		sess.link.close()
		close(l.done)
		c.lmu.Lock()
		delete(c.listeners, l)
		c.lmu.Unlock()
		return nil, driver.ErrClosed
	}
	return l, nil
}

// setup connects, declares the queues and starts the consumers.
func (l *listener) setup(ctx context.Context) (*listenSession, error) {
	lk, err := l.c.dial(ctx, "listen")
	if err != nil {
		return nil, err
	}
	sess := &listenSession{link: lk}
	err = l.c.guard(ctx, lk, func() (err error) {
		if sess.ch, err = lk.conn.Channel(); err != nil {
			return err
		}
		if l.prefetch > 0 {
			if err = sess.ch.Qos(l.prefetch, 0, false); err != nil {
				return err
			}
		}
		for _, q := range l.queues {
			if err = declareQueue(sess.ch, q); err != nil {
				return fmt.Errorf("declare queue %q: %w", q.name, err)
			}
		}
		for i, q := range l.queues {
			d, err := sess.ch.Consume(q.name, strconv.Itoa(i+1), false, false, false, false, l.c.s.consumerArgs())
			if err != nil {
				return fmt.Errorf("consume queue %q: %w", q.name, err)
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

// run moves deliveries into l.in and reconnects after failures, until
// the listener closes.
func (l *listener) run(sess *listenSession) {
	defer close(l.done)
	for {
		if l.pump(sess) {
			l.teardown(sess)
			return
		}
		sess.link.close()
		l.log.Warn("rabbit: listener connection or consumer lost, reconnecting", "err", sess.link.cause())
		delay := l.c.s.reconnectDelay()
		for attempt := 1; ; attempt++ {
			if !sleep(l.ctx, delay) {
				return
			}
			var err error
			if sess, err = l.setup(l.ctx); err == nil {
				break
			}
			if l.ctx.Err() != nil {
				return
			}
			l.log.Warn("rabbit: cannot resume consuming, retrying", "attempt", attempt, "err", err)
			delay = l.c.s.retryDelay(attempt)
		}
		l.log.Info("rabbit: listener resumed consuming")
	}
}

// pump forwards deliveries until the listener closes (true) or a
// consumer ends with its channel or connection, or because the broker
// cancelled it (false).
func (l *listener) pump(sess *listenSession) (stopped bool) {
	var d0, d1, d2 <-chan amqp.Delivery
	d0 = sess.deliveries[0]
	if len(sess.deliveries) > 1 {
		d1 = sess.deliveries[1]
	}
	if len(sess.deliveries) > 2 {
		d2 = sess.deliveries[2]
	}
	for {
		var (
			d  amqp.Delivery
			ok bool
		)
		select {
		case <-l.ctx.Done():
			return true
		case d, ok = <-d0:
		case d, ok = <-d1:
		case d, ok = <-d2:
		}
		if !ok {
			return false
		}
		select {
		case l.in <- d:
		case <-l.ctx.Done():
			return true
		}
	}
}

// teardown cancels the consumers, deletes the fanout queue and closes
// the connection, within teardownTimeout. Deliveries left in l.in were
// not acknowledged: the broker requeues them.
func (l *listener) teardown(sess *listenSession) {
	t := time.AfterFunc(teardownTimeout, func() { sess.link.abort("listener teardown timed out") })
	defer t.Stop()
	for i := range sess.deliveries {
		_ = sess.ch.Cancel(strconv.Itoa(i+1), false)
	}
	fanout := l.queues[len(l.queues)-1].name
	if _, err := sess.ch.QueueDelete(fanout, false, false, false); err != nil {
		l.log.Debug("rabbit: cannot delete the fanout queue", "queue", fanout, "err", err)
	}
	_ = sess.ch.Close()
	sess.link.close()
}

// Next returns the next request. See driver.Listener.
func (l *listener) Next(ctx context.Context) (driver.Delivery, error) {
	for {
		if l.ctx.Err() != nil {
			return nil, driver.ErrClosed
		}
		select {
		case d := <-l.in:
			if dv := l.accept(&d); dv != nil {
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
	body, err := messageBody(d)
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
	return &delivery{c: l.c, req: req}
}

// Close stops consuming, deletes the fanout queue and closes the
// listener's connection. See driver.Listener.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		<-l.done
		l.c.lmu.Lock()
		delete(l.c.listeners, l)
		l.c.lmu.Unlock()
	})
	<-l.done
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
