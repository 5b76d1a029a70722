package driver

import (
	"context"
	"encoding/json"
)

// NotifyConn is implemented by connections that carry oslo
// notifications. RabbitMQ and the memory driver do.
type NotifyConn interface {
	Conn
	// Notify publishes n on addr.Exchange with the routing key
	// addr.Topic + "." + the lower-cased n.Priority, after declaring,
	// as oslo's notifier does, the exchange and the queue
	// "<topic>.<priority>" bound with that key, so that nothing is lost
	// before a listener exists. It returns once the broker has accepted
	// the message. addr.Server and addr.Fanout must be zero. Errors are
	// those of RPCConn.Cast.
	Notify(ctx context.Context, addr Address, n *Notification, opts NotifyOptions) error
	// ListenNotifications starts consuming the notifications of targets
	// and returns once consuming has started. Without a pool, each
	// (target, priority) is the queue "<topic>.<priority>" on the
	// target's exchange, shared by every listener without a pool (they
	// share its messages). With a pool, one queue named pool is bound to
	// every "<topic>.<priority>" of the targets, so that each pool gets
	// its own copy and the listeners of one pool share it. Messages that
	// are not oslo notifications are rejected (not requeued) and logged
	// by the driver, never returned.
	ListenNotifications(ctx context.Context, targets []NotifyTarget, pool string, opts ListenOptions) (NotifyListener, error)
}

// NotifyTarget names the notifications a listener consumes.
type NotifyTarget struct {
	Exchange   string   // never empty when a driver sees it
	Topic      string   // e.g. "notifications"
	Priorities []string // lower case: "audit", "debug", "info", "warn", "error", "critical", "sample"
}

// NotifyOptions tune one notification.
type NotifyOptions struct {
	// Envelope selects the format: true for oslo's messagingv2 driver
	// (the 2.0 envelope), false for its messaging (v1) driver, which
	// publishes the bare dictionary.
	Envelope bool
	// Retry and ResendUnconfirmed are as in SendOptions.
	Retry             int
	ResendUnconfirmed bool
}

// A NotifyListener yields received notifications.
type NotifyListener interface {
	// Next blocks until a notification arrives and returns it,
	// unacknowledged. It returns ErrClosed once the listener is closed,
	// and ctx.Err() if ctx is done first.
	Next(ctx context.Context) (NotifyDelivery, error)
	// Close stops consuming. Deliveries not yet acknowledged return to
	// their queue for redelivery. Close is idempotent.
	Close() error
}

// A NotifyDelivery is one received notification. Exactly one of Ack
// and Requeue should be called; further calls return an error. After
// the listener or its Conn is closed they fail with an error wrapping
// ErrClosed, and after a lost connection with another error; in both
// cases the broker delivers the notification again, so a caller should
// treat it as acknowledged only when Ack returned nil.
type NotifyDelivery interface {
	// Notification returns the decoded notification. The caller may
	// modify it.
	Notification() *Notification
	// Ack acknowledges the notification: the broker forgets it.
	Ack() error
	// Requeue returns the notification to its queue, to be delivered
	// again, possibly to another listener (oslo's REQUEUE).
	Requeue() error
}

// Notification is an oslo notification: the message dictionary that
// oslo's Notifier builds, without the envelope.
type Notification struct {
	MessageID   string          // str(uuid4()): 36 characters with dashes
	PublisherID string          // e.g. "compute.host1"
	EventType   string          // e.g. "compute.instance.create.end"
	Priority    string          // as on the wire: upper case, e.g. "INFO"
	Payload     json.RawMessage // any JSON value; nil means null
	// Timestamp is oslo's str(utcnow()): "2026-11-21 04:49:35.023246",
	// UTC, without the microseconds when they are zero.
	Timestamp string
	// Context is the sanitised request context, flattened on the wire
	// into _context_<key> fields. Decoders produce numbers as
	// json.Number.
	Context  map[string]any
	UniqueID string // oslo's _unique_id, 32 hex digits
}
