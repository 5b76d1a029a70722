package rabbit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

var _ driver.NotifyConn = (*Conn)(nil)

// Notify publishes n as oslo's notifier does: it declares the control
// exchange addr.Exchange and the queue "<topic>.<priority>" (priority
// lower-cased) bound to it with that routing key, both once per
// publishing channel, so that nothing is lost before a listener exists;
// then it publishes n with that routing key, with the properties of
// every oslo message and without the mandatory flag, and returns once
// the broker has confirmed it. The queue has the flags and arguments of
// oslo's topic queues (amqp_durable_queues, amqp_auto_delete,
// rabbit_quorum_queue...), without x-expires: it keeps the notifications
// until a listener takes them.
//
// The body is n encoded by package wire, in the 2.0 envelope when
// opts.Envelope is set (oslo's messagingv2 driver), bare otherwise (its
// messaging driver), and compressed when the Config asks for it. An
// empty n.UniqueID is replaced by a new one in the message sent (n is
// not modified). opts.Retry and opts.ResendUnconfirmed act as for
// [Conn.Cast], and the errors are Cast's; a broker that refuses the
// queue's declaration (a queue of that name with other flags) fails the
// notification with an error wrapping driver.ErrDeliveryFailure. It also
// fails if n is nil or has no priority, and with an error wrapping
// messaging.ErrInvalidTarget if addr has no topic or names a server or a
// fanout.
func (c *Conn) Notify(ctx context.Context, addr driver.Address, n *driver.Notification, opts driver.NotifyOptions) error {
	if c.closed() {
		return driver.ErrClosed
	}
	if n == nil {
		return errors.New("rabbit: notify: nil notification")
	}
	if err := checkAddress(addr); err != nil {
		return err
	}
	if addr.Server != "" || addr.Fanout {
		return fmt.Errorf("rabbit: notify %s: a notification goes to a topic, not to a server or a fanout: %w",
			n.EventType, messaging.ErrInvalidTarget)
	}
	if n.Priority == "" {
		return fmt.Errorf("rabbit: notify %s: the notification has no priority", n.EventType)
	}
	m := *n
	if m.UniqueID == "" {
		m.UniqueID = wire.NewID()
	}
	body, err := wire.EncodeNotification(&m, opts.Envelope)
	if err != nil {
		return fmt.Errorf("rabbit: notify %s: %w", n.EventType, err)
	}
	msg, err := publishing(body, c.s.compress, 0)
	if err != nil {
		return fmt.Errorf("rabbit: notify %s: %w", n.EventType, err)
	}
	ex := c.s.controlExchange(exchangeName(addr))
	key := addr.Topic + "." + strings.ToLower(n.Priority)
	out := &outgoing{
		declare:  ex,
		queue:    c.s.topicQueue(ex, key),
		exchange: ex.name,
		key:      key,
		msg:      msg,
		what:     fmt.Sprintf("notification %s to %q", n.EventType, key),
	}
	ctx, done := c.bind(ctx)
	defer done()
	if err := c.send(ctx, out, opts.Retry, opts.ResendUnconfirmed); err != nil {
		return c.fail(ctx, out.what, err)
	}
	return nil
}

// ListenNotifications starts consuming notifications, as oslo's
// notification listener does, on a connection of its own, and returns
// once consuming has started. It retries failed connections until ctx
// is done.
//
// Without a pool, it declares and consumes the queue "<topic>.<priority>"
// of every target and priority, bound to the target's control exchange:
// the queue the notifier declares, shared by the listeners without a
// pool. With a pool, it declares one queue named pool, with the same
// flags and arguments, binds it to every "<topic>.<priority>" of the
// targets on their exchanges, and consumes it: each pool gets its own
// copy of every notification sent once it exists, shared by the
// listeners of the pool. Every distinct queue has one consumer, with the
// tags "1", "2", ... in the order of the targets. Queues and bindings
// outlive the listener.
//
// The basic.qos prefetch is opts.Prefetch, or the Config's PrefetchCount
// (rabbit_qos_prefetch_count) when opts.Prefetch is 0; with neither
// there is no basic.qos, as in oslo. Notifications are acknowledged by
// their delivery's Ack, so the prefetch bounds those returned by Next
// and not yet settled, plus those waiting for Next.
//
// Messages that are not oslo notifications (a content type other than
// application/json, a body that is not a JSON object or not a valid
// envelope) are rejected without requeueing and logged, as oslo does.
// There is no duplicate filter: a notification delivered again by the
// broker (after a lost connection or a Requeue) is returned again.
//
// It returns driver.ErrClosed after Close, an error wrapping
// driver.ErrDeliveryFailure when the broker refuses a declaration, an
// error wrapping ctx.Err(), an error wrapping messaging.ErrInvalidTarget
// for an empty target list or a target without topic or priorities, and
// one wrapping messaging.ErrInvalidOption for a prefetch outside
// [0, 65535].
func (c *Conn) ListenNotifications(ctx context.Context, targets []driver.NotifyTarget, pool string, opts driver.ListenOptions) (driver.NotifyListener, error) {
	if c.closed() {
		return nil, driver.ErrClosed
	}
	if err := checkNotifyTargets(targets); err != nil {
		return nil, err
	}
	if opts.Prefetch < 0 || opts.Prefetch > 65535 {
		return nil, fmt.Errorf("rabbit: listen for notifications: prefetch %d: %w", opts.Prefetch, messaging.ErrInvalidOption)
	}
	prefetch := opts.Prefetch
	if prefetch == 0 {
		prefetch = c.s.prefetch
	}
	topics := make([]string, 0, len(targets))
	for _, t := range targets {
		topics = append(topics, t.Topic)
	}
	l := &notifyListener{consumer: consumer{
		prefetch: prefetch,
		log:      c.s.log.With("topics", strings.Join(topics, ","), "pool", pool),
	}}
	for _, t := range targets {
		ex := c.s.controlExchange(exchangeName(driver.Address{Exchange: t.Exchange}))
		for _, p := range t.Priorities {
			key := t.Topic + "." + p
			name := key
			if pool != "" {
				name = pool
			}
			l.consumeQueue(c.s.sharedQueue(ex, name, key))
		}
	}
	what := fmt.Sprintf("listen for notifications on topics %q", topics)
	ctx, done := c.bind(ctx)
	defer done()
	if err := c.startConsumer(ctx, &l.consumer, what); err != nil {
		return nil, c.fail(ctx, what, err)
	}
	return l, nil
}

// checkNotifyTargets rejects target lists that name no queue.
func checkNotifyTargets(targets []driver.NotifyTarget) error {
	if len(targets) == 0 {
		return fmt.Errorf("rabbit: listen for notifications: no target: %w", messaging.ErrInvalidTarget)
	}
	for _, t := range targets {
		if t.Topic == "" {
			return fmt.Errorf("rabbit: listen for notifications: a target has no topic: %w", messaging.ErrInvalidTarget)
		}
		if len(t.Priorities) == 0 {
			return fmt.Errorf("rabbit: listen for notifications: target %q has no priorities: %w", t.Topic, messaging.ErrInvalidTarget)
		}
		for _, p := range t.Priorities {
			if p == "" {
				return fmt.Errorf("rabbit: listen for notifications: target %q has an empty priority: %w", t.Topic, messaging.ErrInvalidTarget)
			}
		}
	}
	return nil
}

// notifyListener consumes notification queues. Next hands out the
// deliveries unacknowledged; their Ack and Requeue settle them with the
// broker.
type notifyListener struct {
	consumer
}

var _ driver.NotifyListener = (*notifyListener)(nil)

// Next returns the next notification, unacknowledged. See
// driver.NotifyListener. Deliveries that arrived on a channel lost since
// are skipped: they can no longer be acknowledged, and the broker
// delivers them again.
func (l *notifyListener) Next(ctx context.Context) (driver.NotifyDelivery, error) {
	for {
		if l.stopped() {
			return nil, driver.ErrClosed
		}
		select {
		case in := <-l.in:
			if d := l.accept(&in); d != nil {
				return d, nil
			}
		case <-l.ctx.Done():
			return nil, driver.ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// accept checks and decodes a delivery. A message that is not an oslo
// notification is rejected without requeueing, as oslo does.
func (l *notifyListener) accept(in *inbound) *notifyDelivery {
	d := &in.Delivery
	if !in.sess.usable() {
		l.log.Debug("rabbit: skipping a notification of a lost channel; the broker delivers it again",
			"exchange", d.Exchange, "routing_key", d.RoutingKey)
		return nil
	}
	body, err := messageBody(d, l.c.s.maxMessage)
	var n *driver.Notification
	if err == nil {
		n, err = wire.DecodeNotification(body)
	}
	if err != nil {
		l.log.Error("rabbit: rejecting a message that is not an oslo notification",
			"exchange", d.Exchange, "routing_key", d.RoutingKey, "err", err)
		_ = d.Reject(false)
		return nil
	}
	l.handed.Add(1)
	return &notifyDelivery{l: l, in: in, n: n}
}

// Close stops consuming and closes the listener's connection: the broker
// requeues every notification not acknowledged, those returned by Next
// included, whose deliveries then fail to settle. See
// driver.NotifyListener.
func (l *notifyListener) Close() error {
	l.stop()
	return nil
}

// notifyDelivery is a notification returned by Next.
type notifyDelivery struct {
	l  *notifyListener
	in *inbound
	n  *driver.Notification

	mu      sync.Mutex
	settled string // "acknowledged" or "requeued" once Ack or Requeue was called
}

var _ driver.NotifyDelivery = (*notifyDelivery)(nil)

// Notification returns the decoded notification. See
// driver.NotifyDelivery.
func (d *notifyDelivery) Notification() *driver.Notification { return d.n }

// Ack acknowledges the notification (basic.ack) on the channel it came
// on. It fails if Ack or Requeue was already called, and when that
// channel is gone (a lost connection, the listener's Close): the broker
// then delivers the notification again, and the error wraps
// driver.ErrClosed if the listener was closed.
func (d *notifyDelivery) Ack() error {
	return d.settle("acknowledge", "acknowledged", func() error { return d.in.Ack(false) })
}

// Requeue returns the notification to its queue (basic.reject with
// requeue), to be delivered again, possibly to another listener, as
// oslo's requeue does. It fails as Ack does.
func (d *notifyDelivery) Requeue() error {
	return d.settle("requeue", "requeued", func() error { return d.in.Reject(true) })
}

func (d *notifyDelivery) settle(op, done string, f func() error) error {
	d.mu.Lock()
	if d.settled != "" {
		was := d.settled
		d.mu.Unlock()
		return fmt.Errorf("rabbit: %s notification %s: already %s", op, d.id(), was)
	}
	d.settled = done
	d.mu.Unlock()
	d.l.handed.Add(-1)
	if !d.in.sess.usable() {
		return d.lost(op, errors.New("the channel it came on is closed"))
	}
	if err := f(); err != nil {
		return d.lost(op, err)
	}
	return nil
}

// lost is the error of a settlement that could not reach the broker.
func (d *notifyDelivery) lost(op string, err error) error {
	if d.l.stopped() {
		return fmt.Errorf("rabbit: %s notification %s: %w: the listener is closed and the broker delivers the notification again (%w)",
			op, d.id(), driver.ErrClosed, err)
	}
	return fmt.Errorf("rabbit: %s notification %s: the connection was lost and the broker delivers the notification again: %w",
		op, d.id(), err)
}

// id names the notification in errors.
func (d *notifyDelivery) id() string {
	if d.n.MessageID == "" {
		return "(no message_id)"
	}
	return d.n.MessageID
}
