package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// notifyKey returns the routing key of a notification of priority on
// topic, which is also the name of its queue: "<topic>.<priority>".
func notifyKey(topic, priority string) string {
	return topic + "." + priority
}

// notifyQueueLocked returns the notification queue bound to key,
// declaring it if needed.
func (ex *exchange) notifyQueueLocked(key string) *queue {
	q := ex.notify[key]
	if q == nil {
		q = &queue{name: key}
		ex.notify[key] = q
	}
	return q
}

// bindPoolLocked binds the pool queue q to key, once.
func (ex *exchange) bindPoolLocked(key string, q *queue) {
	if !slices.Contains(ex.pools[key], q) {
		ex.pools[key] = append(ex.pools[key], q)
	}
}

// poolLocked returns the pool queue called name, declaring it if needed.
func (b *Broker) poolLocked(name string) *queue {
	q := b.pools[name]
	if q == nil {
		if b.pools == nil {
			b.pools = make(map[string]*queue)
		}
		q = &queue{name: name}
		b.pools[name] = q
	}
	return q
}

// Notify declares, as oslo's notifier does, the exchange addr.Exchange
// and the queue "<topic>.<priority>" bound to it (priority lower-cased),
// then sends n there and to the pool queues bound to that routing key.
// Messages wait in the queues until a listener takes them. It does not
// block. The body is n encoded by package wire, enveloped when
// opts.Envelope is set; an empty n.UniqueID is replaced by a new one in
// the message sent (n is not modified). opts.Retry and
// opts.ResendUnconfirmed are ignored: nothing here fails to be
// delivered.
//
// It fails with an error wrapping ctx.Err() if ctx is done and
// [driver.ErrClosed] if c is closed; also if n is nil or has no
// priority, if addr lacks an exchange or a topic or names a server or a
// fanout, and if n cannot be encoded.
func (c *Conn) Notify(ctx context.Context, addr driver.Address, n *driver.Notification, opts driver.NotifyOptions) error {
	if n == nil {
		return errors.New("memory: notify: nil notification")
	}
	if err := checkNotifyAddress(addr); err != nil {
		return fmt.Errorf("memory: notify %s: %w", n.EventType, err)
	}
	if n.Priority == "" {
		return fmt.Errorf("memory: notify %s: the notification has no priority", n.EventType)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: notify %s: %w", n.EventType, err)
	}
	m := *n
	if m.UniqueID == "" {
		m.UniqueID = wire.NewID()
	}
	body, err := wire.EncodeNotification(&m, opts.Envelope)
	if err != nil {
		return fmt.Errorf("memory: notify %s: %w", n.EventType, err)
	}
	key := notifyKey(addr.Topic, strings.ToLower(n.Priority))
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return fmt.Errorf("memory: notify %s: %w", n.EventType, driver.ErrClosed)
	}
	ex := b.exchangeLocked(addr.Exchange)
	now := time.Now()
	msg := message{body: body}
	ex.notifyQueueLocked(key).enqueueLocked(msg, now)
	for _, q := range ex.pools[key] {
		q.enqueueLocked(msg, now)
	}
	return nil
}

// checkNotifyAddress rejects the addresses that a notification cannot be
// sent to.
func checkNotifyAddress(addr driver.Address) error {
	if err := checkAddress(addr); err != nil {
		return err
	}
	switch {
	case addr.Server != "":
		return errors.New("a notification cannot be sent to a server")
	case addr.Fanout:
		return errors.New("a notification cannot be sent with fanout")
	}
	return nil
}

// ListenNotifications starts consuming the notifications of targets and
// returns the listener; it does not block. Without a pool, it consumes
// the queue "<topic>.<priority>" of every target and priority, on the
// target's exchange, declaring it if needed: the listeners without a
// pool share its messages. With a pool, it declares the queue called
// pool, shared by the whole broker, binds it to every "<topic>.<priority>"
// of the targets on their exchanges, and consumes it: each pool gets its
// own copy of the notifications sent from then on, and the listeners of
// a pool share it. The queues and the bindings outlive the listener.
// Messages already waiting in the queues are pushed to the new listener
// in its turn.
//
// opts.Prefetch, when positive, bounds the notifications pushed to the
// listener and not yet acknowledged or requeued (whether Next returned
// them or not); 0 means no bound.
//
// It fails with an error wrapping ctx.Err() if ctx is done and
// [driver.ErrClosed] if c is closed; also if targets is empty, if a
// target lacks an exchange, a topic or priorities, if a priority is
// empty, and with an error wrapping [messaging.ErrInvalidOption] if
// opts.Prefetch is negative.
func (c *Conn) ListenNotifications(ctx context.Context, targets []driver.NotifyTarget, pool string, opts driver.ListenOptions) (driver.NotifyListener, error) {
	if err := checkNotifyTargets(targets); err != nil {
		return nil, fmt.Errorf("memory: listen for notifications: %w", err)
	}
	if opts.Prefetch < 0 {
		return nil, fmt.Errorf("memory: listen for notifications: negative prefetch %d: %w", opts.Prefetch, messaging.ErrInvalidOption)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: listen for notifications: %w", err)
	}
	l := &notifyListener{
		conn:     c,
		prefetch: opts.Prefetch,
		mailbox:  newMailbox(),
		unacked:  make(map[*notifyDelivery]struct{}),
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("memory: listen for notifications: %w", driver.ErrClosed)
	}
	var pq *queue
	if pool != "" {
		pq = b.poolLocked(pool)
		l.queues = []*queue{pq}
	}
	for _, t := range targets {
		ex := b.exchangeLocked(t.Exchange)
		for _, p := range t.Priorities {
			key := notifyKey(t.Topic, p)
			if pq != nil {
				ex.bindPoolLocked(key, pq)
				continue
			}
			if q := ex.notifyQueueLocked(key); !slices.Contains(l.queues, q) {
				l.queues = append(l.queues, q)
			}
		}
	}
	c.nlisteners[l] = struct{}{}
	now := time.Now()
	for _, q := range l.queues {
		q.addConsumerLocked(l)
		q.dispatchLocked(now)
	}
	return l, nil
}

// checkNotifyTargets rejects target lists that name no queue.
func checkNotifyTargets(targets []driver.NotifyTarget) error {
	if len(targets) == 0 {
		return errors.New("no target")
	}
	for _, t := range targets {
		switch {
		case t.Exchange == "":
			return fmt.Errorf("target %q has no exchange", t.Topic)
		case t.Topic == "":
			return errors.New("a target has no topic")
		case len(t.Priorities) == 0:
			return fmt.Errorf("target %q has no priorities", t.Topic)
		case slices.Contains(t.Priorities, ""):
			return fmt.Errorf("target %q has an empty priority", t.Topic)
		}
	}
	return nil
}

// notifyListener consumes notification queues. What the queues push to
// it waits in its inbox; Next moves it to the unacknowledged deliveries,
// which Ack and Requeue settle.
type notifyListener struct {
	conn     *Conn
	prefetch int // 0: unbounded
	mailbox      // inbox: pushed by the queues, not yet returned by Next

	// Guarded by conn.b.mu:
	queues  []*queue
	unacked map[*notifyDelivery]struct{}
	seq     uint64 // deliveries returned by Next so far
}

var _ driver.NotifyListener = (*notifyListener)(nil)

// hasRoomLocked counts the notifications returned by Next and not yet
// settled as well as those waiting for Next, as a broker's prefetch
// counts unacknowledged messages.
func (l *notifyListener) hasRoomLocked() bool {
	return l.prefetch == 0 || len(l.inbox)+len(l.unacked) < l.prefetch
}

// Next blocks until a notification reaches the listener and returns it,
// unacknowledged: it stays counted against the prefetch limit until its
// Ack or Requeue. It returns [driver.ErrClosed] once the listener or its
// connection is closed, and ctx.Err() if ctx ends first. Concurrent
// calls of Next each get different notifications.
func (l *notifyListener) Next(ctx context.Context) (driver.NotifyDelivery, error) {
	b := l.conn.b
	take := func() (*notifyDelivery, bool) {
		d := l.takeLocked()
		return d, d != nil
	}
	for {
		d, err := await(ctx, &b.mu, &l.mailbox, take)
		if err != nil {
			return nil, err
		}
		n, err := wire.DecodeNotification(d.msg.body)
		if err == nil {
			d.n = n
			return d, nil
		}
		// Not reachable for bodies that this package encoded; a broker's
		// listener rejects such a message, which is then gone.
		b.mu.Lock()
		if d.state == unsettled {
			d.settleLocked(settledAcked)
			l.dispatchLocked(time.Now())
		}
		b.mu.Unlock()
	}
}

// takeLocked moves the oldest message of the inbox to the unacknowledged
// deliveries and returns its delivery, or nil.
func (l *notifyListener) takeLocked() *notifyDelivery {
	p, ok := l.popLocked()
	if !ok {
		return nil
	}
	if len(l.inbox) > 0 {
		l.wake() // for another Next waiting on the same listener
	}
	l.seq++
	d := &notifyDelivery{l: l, msg: p.msg, from: p.from, seq: l.seq}
	l.unacked[d] = struct{}{}
	return d
}

// dispatchLocked lets the queues push to l, and to their other
// consumers, after room was made.
func (l *notifyListener) dispatchLocked(now time.Time) {
	for _, q := range l.queues {
		q.dispatchLocked(now)
	}
}

// Close stops consuming: the listener leaves its queues, and the
// notifications pushed to it and not yet acknowledged or requeued, those
// Next returned as well as those waiting for Next, go back to the front
// of their queues, in their order, to be delivered again. Their
// deliveries can no longer be acknowledged or requeued. Next calls in
// progress return [driver.ErrClosed]. Close does not block, is
// idempotent and returns nil.
func (l *notifyListener) Close() error {
	b := l.conn.b
	b.mu.Lock()
	defer b.mu.Unlock()
	l.closeLocked(time.Now())
	return nil
}

func (l *notifyListener) closeLocked(now time.Time) {
	if !l.mailbox.closeLocked() {
		return
	}
	delete(l.conn.nlisteners, l)
	for _, q := range l.queues {
		q.removeConsumerLocked(l)
	}
	// Per queue, the deliveries that Next returned came before those
	// still in the inbox.
	taken := make([]*notifyDelivery, 0, len(l.unacked))
	for d := range l.unacked {
		taken = append(taken, d)
	}
	slices.SortFunc(taken, func(a, b *notifyDelivery) int { return cmp.Compare(a.seq, b.seq) })
	back := make(map[*queue][]message)
	for _, d := range taken {
		back[d.from] = append(back[d.from], d.msg)
		d.state = settledReturned
	}
	clear(l.unacked)
	for _, p := range l.inbox {
		back[p.from] = append(back[p.from], p.msg)
	}
	l.inbox = nil
	for _, q := range l.queues {
		if ms := back[q]; len(ms) > 0 {
			q.requeueLocked(ms)
			q.dispatchLocked(now)
		}
	}
}

// States of a notifyDelivery.
const (
	unsettled       = iota
	settledAcked    // Ack was called
	settledRequeued // Requeue was called
	settledReturned // the listener closed first: the message went back
)

// notifyDelivery is a notification returned by Next.
type notifyDelivery struct {
	l    *notifyListener
	n    *driver.Notification // set before Next returns; owned by the caller
	msg  message
	from *queue
	seq  uint64

	state int // guarded by l.conn.b.mu
}

var _ driver.NotifyDelivery = (*notifyDelivery)(nil)

// Notification returns the decoded notification, which belongs to the
// caller.
func (d *notifyDelivery) Notification() *driver.Notification { return d.n }

// Ack acknowledges the notification: the broker forgets it, and the
// listener has room for one more. It does not block. It fails if Ack or
// Requeue was already called, and with an error wrapping
// [driver.ErrClosed] if the listener was closed first: the notification
// then went back to its queue.
func (d *notifyDelivery) Ack() error {
	b := d.l.conn.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := d.checkLocked("acknowledge"); err != nil {
		return err
	}
	d.settleLocked(settledAcked)
	d.l.dispatchLocked(time.Now())
	return nil
}

// Requeue puts the notification back at the front of its queue, from
// which it is delivered again to the next listener in turn, possibly
// this one. It does not block, and fails as [notifyDelivery.Ack] does.
func (d *notifyDelivery) Requeue() error {
	b := d.l.conn.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := d.checkLocked("requeue"); err != nil {
		return err
	}
	d.settleLocked(settledRequeued)
	d.from.requeueLocked([]message{d.msg})
	now := time.Now()
	d.from.dispatchLocked(now)
	d.l.dispatchLocked(now)
	return nil
}

// checkLocked returns why d cannot be settled, or nil.
func (d *notifyDelivery) checkLocked(op string) error {
	switch d.state {
	case settledAcked:
		return fmt.Errorf("memory: %s notification %s: already acknowledged", op, d.id())
	case settledRequeued:
		return fmt.Errorf("memory: %s notification %s: already requeued", op, d.id())
	case settledReturned:
		return fmt.Errorf("memory: %s notification %s: the listener was closed and the notification went back to its queue: %w",
			op, d.id(), driver.ErrClosed)
	}
	return nil
}

// settleLocked records the end of d.
func (d *notifyDelivery) settleLocked(state int) {
	d.state = state
	delete(d.l.unacked, d)
}

// id names the notification in errors.
func (d *notifyDelivery) id() string {
	if d.n == nil || d.n.MessageID == "" {
		return "(no message id)"
	}
	return d.n.MessageID
}
