package notify

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-oslo/messaging"
)

// Notification is one notification: oslo's message dictionary, and the
// request context it travels with. A [Notifier] builds it; a [Listener]
// hands it to handlers, which must treat it as read-only, since every
// handler of a delivery sees the same value.
type Notification struct {
	// MessageID identifies the notification: str(uuid4()), 36
	// characters with dashes. A Notifier gives every topic and sink the
	// same MessageID.
	MessageID string
	// PublisherID names the sender, such as "compute.host1".
	PublisherID string
	// EventType names the event, such as "compute.instance.create.end".
	EventType string
	// Priority is the notification's priority. On a received
	// notification it is the sender's priority in lower case, always
	// one of the seven (others are dropped by the listener).
	Priority Priority
	// Payload is the JSON encoding of the payload: on a sent
	// notification after the serializer's SerializeEntity, on a
	// received one after its DeserializeEntity. Nil means null.
	Payload json.RawMessage
	// Timestamp is the time of sending in oslo's str(utcnow()) form, UTC
	// with no zone: "2026-11-21 04:49:35.023246", without the fraction
	// when the microseconds are zero. See [Notification.Time].
	Timestamp string
	// Context is the request context: on a sent notification, the
	// sanitised metadata (see [Notifier.Notify]) after the serializer's
	// SerializeContext; on a received one, the context as received,
	// before DeserializeContext, with numbers as json.Number values.
	Context messaging.Metadata
}

// Time parses [Notification.Timestamp], oslo's UTC time without a zone,
// and also accepts RFC 3339 times. It returns an error for other forms.
func (n *Notification) Time() (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, n.Timestamp); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("notify: timestamp %q is not in oslo's format", n.Timestamp)
}

// formatTimestamp formats t as Python's str() of a naive UTC datetime:
// microseconds, and no fraction at all when they are zero.
func formatTimestamp(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.000000")
}
