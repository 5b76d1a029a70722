package wire

import (
	"bytes"
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
	return encodeWith(func(b []byte) ([]byte, error) { return AppendNotification(b, n, envelope) })
}

// AppendNotification appends the body that [EncodeNotification] returns
// for its arguments to dst and returns the extended buffer, so that a
// caller can reuse its buffers. On error it returns dst with its
// original length, and the error that EncodeNotification returns.
func AppendNotification(dst []byte, n *driver.Notification, envelope bool) ([]byte, error) {
	if n == nil {
		return dst, errors.New("wire: nil notification")
	}
	start, esc := len(dst), 0
	if envelope {
		dst = append(dst, envelopeHead...)
		dst = append(dst, '"')
		esc = 1
	}
	dst = appendLit(dst, `{"message_id": `, esc)
	dst = appendPyString(dst, n.MessageID, esc)
	dst = appendLit(dst, `, "publisher_id": `, esc)
	dst = appendPyString(dst, n.PublisherID, esc)
	dst = appendLit(dst, `, "event_type": `, esc)
	dst = appendPyString(dst, n.EventType, esc)
	dst = appendLit(dst, `, "priority": `, esc)
	dst = appendPyString(dst, n.Priority, esc)
	dst = appendLit(dst, `, "payload": `, esc)
	if len(bytes.TrimSpace(n.Payload)) == 0 {
		dst = append(dst, "null"...)
	} else {
		var err error
		if dst, err = appendPyJSON(dst, n.Payload, esc); err != nil {
			return dst[:start], errors.New("wire: notification payload is not valid JSON")
		}
	}
	dst = appendLit(dst, `, "timestamp": `, esc)
	dst = appendPyString(dst, n.Timestamp, esc)
	dst = appendLit(dst, `, "_unique_id": `, esc)
	dst = appendPyString(dst, n.UniqueID, esc)
	dst, err := appendContext(dst, n.Context, esc)
	if err != nil {
		return dst[:start], err
	}
	dst = append(dst, '}')
	if envelope {
		dst = append(dst, '"', '}')
	}
	return dst, nil
}

// DecodeNotification parses a notification body, enveloped (oslo's
// messagingv2 driver) or not (its messaging driver). Missing or null
// string fields are left empty and a null or missing payload is nil, as
// oslo's listener reads them with dict.get; a dictionary without any of
// them therefore decodes, and deciding what to do with an unknown
// priority is left to the caller. Context values keep their JSON types,
// numbers as json.Number. Errors wrap ErrInvalidMessage (not a JSON
// object, a field of the wrong type) or ErrUnsupportedEnvelope. The
// notification does not share memory with body.
func DecodeNotification(body []byte) (*driver.Notification, error) {
	p := getBuffer()
	defer putBuffer(p)
	var buf [64]member
	msg, ms, err := openMessage(body, p, buf[:0])
	if err != nil {
		return nil, err
	}
	d := doc{b: msg, big: true}
	var messageID, publisherID, eventType, priority, payload, timestamp, uniqueID *member
	nctx := 0
	var tmp [64]byte
	for i := range ms {
		m := &ms[i]
		k := keyBytes(msg, m, &tmp)
		switch string(k) {
		case keyMessageID:
			messageID = m
		case keyPublisherID:
			publisherID = m
		case keyEventType:
			eventType = m
		case keyPriority:
			priority = m
		case keyPayload:
			payload = m
		case keyTimestamp:
			timestamp = m
		case keyUniqueID:
			uniqueID = m
		default:
			if hasContextPrefix(k) {
				nctx++
			}
		}
	}
	n := &driver.Notification{}
	for _, err := range [...]error{
		d.setString(messageID, keyMessageID, &n.MessageID),
		d.setString(publisherID, keyPublisherID, &n.PublisherID),
		d.setString(eventType, keyEventType, &n.EventType),
		d.setString(priority, keyPriority, &n.Priority),
		d.setString(timestamp, keyTimestamp, &n.Timestamp),
		d.setString(uniqueID, keyUniqueID, &n.UniqueID),
	} {
		if err != nil {
			return nil, err
		}
	}
	if payload != nil && !d.isNull(payload) {
		n.Payload = d.raw(payload)
	}
	n.Context = d.context(ms, nctx)
	return n, nil
}
