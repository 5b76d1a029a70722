package interoptest

import (
	"encoding/json"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

// Fixed values that replace the random ones of a notification.
const (
	fixedNoteID    = "44444444-4444-4444-4444-444444444444"
	fixedTimestamp = "2001-02-03 04:05:06.000007"
)

// normalizeNotification returns the normalised form of a captured
// notification, enveloped or not: message_id, _unique_id and timestamp
// are replaced by fixed values, after checking their formats.
func normalizeNotification(t *testing.T, who string, d amqp.Delivery, names map[string]string) wireMessage {
	t.Helper()
	m := wireProperties(d, names)
	body := string(d.Body)
	inner := d.Body
	var outer struct {
		Message *string `json:"oslo.message"`
	}
	if err := json.Unmarshal(d.Body, &outer); err != nil {
		t.Fatalf("%s: body is not a JSON object: %v: %s", who, err, body)
	}
	if outer.Message != nil {
		inner = []byte(*outer.Message)
	}
	var f struct {
		MessageID string `json:"message_id"`
		UniqueID  string `json:"_unique_id"`
		Timestamp string `json:"timestamp"`
	}
	if err := json.Unmarshal(inner, &f); err != nil {
		t.Fatalf("%s: the notification is not a JSON object: %v: %s", who, err, inner)
	}
	for _, r := range []struct {
		name, value, fixed string
		ok                 bool
	}{
		{"message_id", f.MessageID, fixedNoteID, uuid4RE.MatchString(f.MessageID)},
		{"_unique_id", f.UniqueID, fixedUniqueID, hex32RE.MatchString(f.UniqueID)},
		{"timestamp", f.Timestamp, fixedTimestamp, timestampRE.MatchString(f.Timestamp)},
	} {
		if !r.ok {
			t.Errorf("%s: %s %q is not in oslo's format", who, r.name, r.value)
		}
		if n := strings.Count(body, r.value); r.value == "" || n != 1 {
			t.Fatalf("%s: %s %q appears %d times in the body, want once: %s", who, r.name, r.value, n, body)
		}
		body = strings.Replace(body, r.value, r.fixed, 1)
	}
	m.Body = body
	return m
}

// goldenNotePayload is the golden notification's payload, its keys in
// sorted order: the Go encoder writes a map sorted, and Python keeps the
// order of the JSON object it is given.
func goldenNotePayload() map[string]any {
	return map[string]any{"f": 1.5, "id": 7, "list": []any{1, nil, true, "x"}, "name": "vm", "nested": map[string]any{"k": "v"}, "u": "é✓ <&>"}
}

// TestInteropNotifyGolden captures what Python oslo.messaging's
// Notifier publishes (drivers messaging and messagingv2) and what the Go
// notifier publishes with the same input (sinks Messaging and
// MessagingV2), and compares both with testdata/golden byte for byte,
// AMQP properties and routing key included, once message_id,
// _unique_id and timestamp are normalised. The request context has
// every key of oslo's safe list and keys that must be removed: both
// sides must send the same _context_* keys. Its keys are given in
// sorted order, the order in which Go writes them; Python keeps the
// order of the dict.
func TestInteropNotifyGolden(t *testing.T) {
	setup(t)
	t.Parallel()

	for _, c := range []struct {
		name, driver, method string
		sink                 func() notify.Sink
		priority             string
	}{
		{"notify_v1", "messaging", "info", notify.Messaging, "info"},
		{"notify_v2", "messagingv2", "info", notify.MessagingV2, "info"},
		{"notify_v2_warning", "messagingv2", "warning", notify.MessagingV2, "warn"},
	} {
		runNotifyCase(t, c.name, func(t *testing.T) {
			e, p, _ := newNotifyCase(t)
			ex, topic := e.name("golden_nex"), e.name("golden_note")
			names := map[string]string{ex: "<exchange>", topic: "<topic>"}
			capt := e.newCapture(bindControl(ex, topic+"."+c.priority))
			e.pyNotify(p, pyReq{Exchange: ex, Driver: c.driver, Topics: []string{topic}, PublisherID: "compute.host1",
				Notifications: []pyNote{{Method: c.method, EventType: "compute.instance.create.end", Payload: goldenNotePayload(), Ctxt: allKeysContext()}}})
			py := normalizeNotification(t, "python", capt.next(t, e.ctx(opTimeout)), names)
			n := e.goNotifier(e.transport(), c.sink(), ex, "compute.host1", topic)
			ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), allKeysContext())
			if err := goNotify(ctx, n, c.method, "compute.instance.create.end", goldenNotePayload()); err != nil {
				t.Fatalf("Notifier %s: %v", c.method, err)
			}
			checkGolden(t, c.name, py, normalizeNotification(t, "go", capt.next(t, e.ctx(opTimeout)), names))
		})
	}
}
