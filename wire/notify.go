package wire

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/go-oslo/messaging/driver"
)

// Message keys of a notification, in the order oslo's Notifier writes
// them (before _unique_id and the _context_* keys).
const (
	keyMessageID   = "message_id"
	keyPublisherID = "publisher_id"
	keyEventType   = "event_type"
	keyPriority    = "priority"
	keyPayload     = "payload"
	keyTimestamp   = "timestamp"
)

// EncodeNotification returns the body of a notification: the dictionary
// with the keys message_id, publisher_id, event_type, priority, payload,
// timestamp, _unique_id and the sorted _context_* keys, in that order,
// as oslo's Notifier and rabbit driver build it. With envelope set the
// dictionary is wrapped in the 2.0 envelope, as oslo's messagingv2
// driver sends it; without, it is the body itself, as oslo's messaging
// (v1) driver sends it.
//
// Every field is written as it is, empty strings included: filling in
// the message id, timestamp and unique id is the notifier's job. A nil
// or empty Payload is null. It fails if n is nil, n.Payload is not valid
// JSON, or a context value cannot be encoded.
func EncodeNotification(n *driver.Notification, envelope bool) ([]byte, error) {
	if n == nil {
		return nil, errors.New("wire: nil notification")
	}
	var b bytes.Buffer
	b.WriteString(`{"message_id":`)
	writeString(&b, n.MessageID)
	b.WriteString(`,"publisher_id":`)
	writeString(&b, n.PublisherID)
	b.WriteString(`,"event_type":`)
	writeString(&b, n.EventType)
	b.WriteString(`,"priority":`)
	writeString(&b, n.Priority)
	b.WriteString(`,"payload":`)
	switch {
	case len(bytes.TrimSpace(n.Payload)) == 0:
		b.WriteString("null")
	case !json.Valid(n.Payload):
		return nil, errors.New("wire: notification payload is not valid JSON")
	default:
		b.Write(n.Payload)
	}
	b.WriteString(`,"timestamp":`)
	writeString(&b, n.Timestamp)
	b.WriteString(`,"_unique_id":`)
	writeString(&b, n.UniqueID)
	if err := writeContext(&b, n.Context); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	out := pythonStyle(b.Bytes())
	if envelope {
		return Envelope(out), nil
	}
	return out, nil
}

// DecodeNotification parses a notification body, enveloped (oslo's
// messagingv2 driver) or not (its messaging driver). Missing or null
// string fields are left empty and a null or missing payload is nil, as
// oslo's listener reads them with dict.get; a dictionary without any of
// them therefore decodes, and deciding what to do with an unknown
// priority is left to the caller. Context values keep their JSON types,
// numbers as json.Number. Errors wrap ErrInvalidMessage (not a JSON
// object, a field of the wrong type) or ErrUnsupportedEnvelope.
func DecodeNotification(body []byte) (*driver.Notification, error) {
	m, err := Unwrap(body)
	if err != nil {
		return nil, err
	}
	n := &driver.Notification{}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{keyMessageID, &n.MessageID}, {keyPublisherID, &n.PublisherID}, {keyEventType, &n.EventType},
		{keyPriority, &n.Priority}, {keyTimestamp, &n.Timestamp}, {keyUniqueID, &n.UniqueID},
	} {
		if err := optString(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m[keyPayload]; ok && !isNull(raw) {
		n.Payload = raw
	}
	ctx, err := decodeContext(m)
	if err != nil {
		return nil, err
	}
	n.Context = ctx
	return n, nil
}
