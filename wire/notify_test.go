package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// testNotifyMessageID replaces the random message_id (str(uuid4())) of
// the notifications in the golden files.
const testNotifyMessageID = "01234567-89ab-4cde-8f01-23456789abcd"

// notificationCase is a notification that the real Python Notifier sends
// with the same publisher, event type, payload and context, at the
// case's timestamp, to topic.
type notificationCase struct {
	name  string
	topic string
	n     driver.Notification // without ids
}

// notification returns the case's notification with the fixed ids.
func (c *notificationCase) notification() *driver.Notification {
	n := c.n
	n.MessageID, n.UniqueID = testNotifyMessageID, testUniqueID
	return &n
}

const testTimestamp = "2026-11-21 04:49:35.023246"

// notify returns a notification of the test defaults with the given
// priority and payload.
func notify(priority, payload string) driver.Notification {
	return driver.Notification{PublisherID: "compute.host1", EventType: "compute.instance.create.end",
		Priority: priority, Payload: json.RawMessage(payload), Timestamp: testTimestamp,
		Context: map[string]any{"project_id": "p", "user_id": "u1"}}
}

// notificationCases: payloads are written in the form Python's
// json.dumps gives them, and contexts have sorted keys taken from the
// list that oslo's Notifier lets through (it drops the others).
var notificationCases = []notificationCase{
	{name: "info", topic: "notifications", n: notify("INFO", `{"id": 7, "name": "vm"}`)},
	{name: "audit", topic: "notifications", n: notify("AUDIT", `{"a": [1, 2]}`)},
	{name: "debug", topic: "notifications", n: notify("DEBUG", `"text"`)},
	{name: "warn", topic: "notifications", n: notify("WARN", `42`)},
	{name: "error", topic: "notifications", n: notify("ERROR", `2.5`)},
	{name: "critical", topic: "notifications", n: notify("CRITICAL", `true`)},
	{name: "sample", topic: "metering", n: notify("SAMPLE", `[{"counter_name": "cpu", "counter_volume": 1.0}]`)},
	{name: "payload_null", topic: "notifications", n: notify("INFO", `null`)},
	{name: "payload_false", topic: "notifications", n: notify("INFO", `false`)},
	{name: "payload_zero", topic: "notifications", n: notify("INFO", `0`)},
	{name: "payload_empty_list", topic: "notifications", n: notify("INFO", `[]`)},
	{name: "payload_empty_dict", topic: "notifications", n: notify("INFO", `{}`)},
	{name: "payload_numbers", topic: "notifications",
		n: notify("INFO", `{"big": 123456789012345678901234567890, "neg": -9007199254740993, "exp": 1e+100, "small": 1e-07, "negf": -2.25}`)},
	{name: "payload_nested", topic: "notifications",
		n: notify("INFO", `{"list": [1, [2, [3, {"k": [true, false, null]}]]], "obj": {"a": {"b": {"c": []}}}}`)},
	{name: "unicode", topic: "notifications", n: driver.Notification{PublisherID: "compute.h\u00f4te",
		EventType: "instance.cr\u00e9\u00e9", Priority: "INFO", Timestamp: testTimestamp,
		Payload: json.RawMessage(`{"e": "é", "check": "✓", "emoji": "😀", "mixed": "aé✓😀z", "ключ": "значение"}`),
		Context: map[string]any{"user_name": "Zo\u00eb \U0001F600"}}},
	{name: "special_characters", topic: "notifications", n: driver.Notification{PublisherID: "a<b>&\"c\"",
		EventType: "ctl\x00\x1f\x7f\u2028", Priority: "ERROR", Timestamp: testTimestamp,
		Payload: json.RawMessage(`{"html": "<script>alert('x') && \"y\"</script>", "ctl": "\u0000\b\f\n\r\t", "bs": "back\\slash /"}`),
		Context: map[string]any{"request_id": "<b>&amp;</b>"}}},
	{name: "context_types", topic: "notifications", n: driver.Notification{PublisherID: "p", EventType: "e",
		Priority: "INFO", Timestamp: testTimestamp, Payload: json.RawMessage(`{}`),
		Context: map[string]any{"domain": map[string]any{"k": "v"}, "is_admin": true, "project_id": 42,
			"request_id": "req-1", "roles": []any{"admin", "member"}, "system_scope": nil, "user_name": "\u00e9"}}},
	{name: "no_context", topic: "notifications", n: driver.Notification{PublisherID: "p", EventType: "e",
		Priority: "INFO", Timestamp: testTimestamp, Payload: json.RawMessage(`{"x": 1}`)}},
	{name: "whole_second", topic: "notifications", n: driver.Notification{PublisherID: "p", EventType: "e",
		Priority: "INFO", Timestamp: "2025-01-02 03:04:05", Payload: json.RawMessage(`{}`)}},
	{name: "empty_strings", topic: "notifications", n: driver.Notification{Priority: "INFO",
		Timestamp: testTimestamp, Payload: json.RawMessage(`""`)}},
}

// TestGoldenNotifications checks EncodeNotification byte for byte, with
// and without the envelope, and DecodeNotification, against the bodies
// that the real Python Notifier sent with its messagingv2 and messaging
// drivers (see TestInteropNotificationBytes).
func TestGoldenNotifications(t *testing.T) {
	for _, c := range notificationCases {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range []struct {
				golden   string
				envelope bool
			}{{"notification_" + c.name, true}, {"legacy_notification_" + c.name, false}} {
				want := readGolden(t, f.golden)
				got, err := wire.EncodeNotification(c.notification(), f.envelope)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("EncodeNotification(envelope %v)\n got %s\nwant %s", f.envelope, got, want)
				}
				n, err := wire.DecodeNotification(want)
				if err != nil {
					t.Fatalf("DecodeNotification(%s): %v", f.golden, err)
				}
				checkNotification(t, f.golden, n, c.notification())
			}
		})
	}
}

// checkNotification compares a decoded notification with the expected
// one: strings exactly, the payload and the context as JSON values.
func checkNotification(t *testing.T, what string, got, want *driver.Notification) {
	t.Helper()
	if got.MessageID != want.MessageID || got.PublisherID != want.PublisherID || got.EventType != want.EventType ||
		got.Priority != want.Priority || got.Timestamp != want.Timestamp || got.UniqueID != want.UniqueID {
		t.Errorf("%s: decoded %+v, want %+v", what, *got, *want)
	}
	wantPayload := want.Payload
	if len(wantPayload) == 0 || string(wantPayload) == "null" {
		if got.Payload != nil {
			t.Errorf("%s: Payload = %s, want nil", what, got.Payload)
		}
	} else if !jsonEqual(got.Payload, wantPayload) {
		t.Errorf("%s: Payload = %s, want %s", what, got.Payload, wantPayload)
	}
	gotCtx, wantCtx := mustJSON(t, got.Context), mustJSON(t, want.Context)
	if len(got.Context) == 0 && len(want.Context) == 0 {
		gotCtx, wantCtx = nil, nil
	}
	if !jsonEqual(gotCtx, wantCtx) {
		t.Errorf("%s: Context = %s, want %s", what, gotCtx, wantCtx)
	}
}

// TestInteropNotificationBytes sends every notification case with the
// real Notifier, drivers messagingv2 and messaging, and compares the
// bodies with EncodeNotification's, byte for byte once the ids are
// fixed, and their routing (the control exchange, <topic>.<priority>).
// It decodes oslo's bodies with DecodeNotification, and
// EncodeNotification's with oslo's deserialize_msg, which must give the
// dictionary oslo built. With -update it rewrites the golden files.
func TestInteropNotificationBytes(t *testing.T) {
	type goBodies struct{ env, bare []byte }
	bodies := map[string]goBodies{}
	var in []map[string]any
	for _, c := range notificationCases {
		n := c.notification()
		env, err := wire.EncodeNotification(n, true)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		bare, err := wire.EncodeNotification(n, false)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		bodies[c.name] = goBodies{env, bare}
		payload := string(n.Payload)
		if payload == "" {
			payload = "null"
		}
		in = append(in, map[string]any{
			"name": c.name, "topic": c.topic, "publisher_id": n.PublisherID, "event_type": n.EventType,
			"priority": n.Priority, "payload": payload, "timestamp": n.Timestamp,
			"context": contextText(t, n.Context), "go_body": string(env), "go_legacy": string(bare),
		})
	}
	var out map[string]struct {
		Body              string `json:"body"`
		BodyExchange      string `json:"body_exchange"`
		BodyRoutingKey    string `json:"body_routing_key"`
		BodyContentType   string `json:"body_content_type"`
		Legacy            string `json:"legacy"`
		LegacyExchange    string `json:"legacy_exchange"`
		LegacyRoutingKey  string `json:"legacy_routing_key"`
		LegacyContentType string `json:"legacy_content_type"`
		GoBodyEqual       bool   `json:"go_body_equal"`
		GoBodyDecoded     any    `json:"go_body_decoded"`
		GoLegacyEqual     bool   `json:"go_legacy_equal"`
		GoLegacyDecoded   any    `json:"go_legacy_decoded"`
	}
	runWire(t, "notifications", in, &out)

	for _, c := range notificationCases {
		t.Run(c.name, func(t *testing.T) {
			py, ok := out[c.name]
			if !ok {
				t.Fatal("no result from python")
			}
			if got := string(bodies[c.name].env); got != py.Body {
				t.Errorf("EncodeNotification(envelope) differs from oslo's messagingv2\n  go %s\noslo %s", got, py.Body)
			}
			if got := string(bodies[c.name].bare); got != py.Legacy {
				t.Errorf("EncodeNotification(no envelope) differs from oslo's messaging\n  go %s\noslo %s", got, py.Legacy)
			}
			key := c.topic + "." + strings.ToLower(c.n.Priority)
			for _, r := range []struct{ what, exchange, key, ct string }{
				{"messagingv2", py.BodyExchange, py.BodyRoutingKey, py.BodyContentType},
				{"messaging", py.LegacyExchange, py.LegacyRoutingKey, py.LegacyContentType},
			} {
				if r.exchange != "openstack" || r.key != key || r.ct != "application/json" {
					t.Errorf("oslo's %s driver published to %q/%q as %q, want openstack/%s as application/json",
						r.what, r.exchange, r.key, r.ct, key)
				}
			}
			if !py.GoBodyEqual {
				t.Errorf("oslo's deserialize_msg of the enveloped Go body gives %v, not the dict oslo built", py.GoBodyDecoded)
			}
			if !py.GoLegacyEqual {
				t.Errorf("oslo's deserialize_msg of the bare Go body gives %v, not the dict oslo built", py.GoLegacyDecoded)
			}
			for what, body := range map[string]string{"messagingv2": py.Body, "messaging": py.Legacy} {
				n, err := wire.DecodeNotification([]byte(body))
				if err != nil {
					t.Fatalf("DecodeNotification(oslo's %s body): %v", what, err)
				}
				checkNotification(t, "oslo's "+what+" body", n, c.notification())
			}
			writeGolden(t, "notification_"+c.name, []byte(py.Body))
			writeGolden(t, "legacy_notification_"+c.name, []byte(py.Legacy))
		})
	}
}

// TestNotificationEncodeErrors checks what EncodeNotification refuses.
func TestNotificationEncodeErrors(t *testing.T) {
	if _, err := wire.EncodeNotification(nil, true); err == nil {
		t.Error("EncodeNotification(nil) succeeded")
	}
	for _, payload := range []string{`{`, `nope`, `{"a": NaN}`, `1 2`} {
		n := &driver.Notification{Payload: json.RawMessage(payload)}
		if b, err := wire.EncodeNotification(n, true); err == nil {
			t.Errorf("EncodeNotification(payload %s) = %s, want an error", payload, b)
		}
	}
	n := &driver.Notification{Context: map[string]any{"f": func() {}}}
	if b, err := wire.EncodeNotification(n, false); err == nil {
		t.Errorf("EncodeNotification(context with a func) = %s, want an error", b)
	}
}

// TestNotificationEncodeNullPayload checks that a nil, empty or blank
// payload is written as null and decodes as nil.
func TestNotificationEncodeNullPayload(t *testing.T) {
	for _, p := range []json.RawMessage{nil, {}, json.RawMessage(" \n"), json.RawMessage("null")} {
		b, err := wire.EncodeNotification(&driver.Notification{Payload: p}, false)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"message_id": "", "publisher_id": "", "event_type": "", "priority": "", "payload": null, "timestamp": "", "_unique_id": ""}`
		if string(b) != want {
			t.Errorf("payload %q encodes as %s, want %s", p, b, want)
		}
		n, err := wire.DecodeNotification(b)
		if err != nil || n.Payload != nil {
			t.Errorf("DecodeNotification(%s) = %+v, %v; want a nil payload", b, n, err)
		}
	}
}

// TestNotificationDecode checks DecodeNotification on bodies that no
// golden file holds: missing and null fields, wrong types, envelopes.
func TestNotificationDecode(t *testing.T) {
	for _, c := range []struct {
		name string
		body string
		want *driver.Notification // nil: an error
		env  bool                 // the error wraps ErrUnsupportedEnvelope
	}{
		{name: "empty object", body: `{}`, want: &driver.Notification{}},
		{name: "nulls", body: `{"message_id": null, "publisher_id": null, "event_type": null, "priority": null, "payload": null, "timestamp": null, "_unique_id": null}`,
			want: &driver.Notification{}},
		{name: "context number", body: `{"priority": "INFO", "_context_n": 12345678901234567890, "_context_f": 1.50}`,
			want: &driver.Notification{Priority: "INFO", Context: map[string]any{"n": json.Number("12345678901234567890"), "f": json.Number("1.50")}}},
		{name: "payload string", body: `{"payload": "x"}`, want: &driver.Notification{Payload: json.RawMessage(`"x"`)}},
		{name: "enveloped", body: envelope("2.0", `{"priority": "WARN", "event_type": "e"}`),
			want: &driver.Notification{Priority: "WARN", EventType: "e"}},
		{name: "envelope 2.1", body: envelope("2.1", `{}`), env: true},
		{name: "envelope 1.0", body: envelope("1.0", `{}`), env: true},
		{name: "priority number", body: `{"priority": 1}`},
		{name: "event_type list", body: `{"event_type": []}`},
		{name: "message_id object", body: `{"message_id": {}}`},
		{name: "publisher_id bool", body: `{"publisher_id": true}`},
		{name: "timestamp number", body: `{"timestamp": 1.5}`},
		{name: "unique id number", body: `{"_unique_id": 1}`},
		{name: "array", body: `[1]`},
		{name: "string", body: `"x"`},
		{name: "null", body: `null`},
		{name: "not json", body: `not json`},
		{name: "empty", body: ``},
		{name: "inner not an object", body: envelope("2.0", `[]`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := wire.DecodeNotification([]byte(c.body))
			if c.want == nil {
				switch {
				case err == nil:
					t.Fatalf("DecodeNotification(%s) = %+v, want an error", c.body, n)
				case c.env && !errors.Is(err, wire.ErrUnsupportedEnvelope):
					t.Errorf("error %v does not wrap ErrUnsupportedEnvelope", err)
				case !c.env && !errors.Is(err, wire.ErrInvalidMessage):
					t.Errorf("error %v does not wrap ErrInvalidMessage", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeNotification(%s): %v", c.body, err)
			}
			checkNotification(t, c.name, n, c.want)
			for k, v := range c.want.Context {
				if n.Context[k] != v {
					t.Errorf("Context[%q] = %#v, want %#v", k, n.Context[k], v)
				}
			}
		})
	}
}

// FuzzDecodeNotification checks that DecodeNotification never panics and
// that what it decodes encodes, with and without the envelope, to valid
// JSON that decodes to the same notification.
func FuzzDecodeNotification(f *testing.F) {
	addGoldenSeeds(f, "notification_", "legacy_notification_")
	f.Add([]byte(`{"priority": "INFO", "_context_a": [1, {"b": null}], "payload": "\ud800"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := wire.DecodeNotification(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		for _, env := range []bool{true, false} {
			enc, err := wire.EncodeNotification(n, env)
			if err != nil {
				t.Fatalf("EncodeNotification(DecodeNotification(%q), %v): %v", body, env, err)
			}
			if !json.Valid(enc) {
				t.Fatalf("EncodeNotification gave invalid JSON %q", enc)
			}
			again, err := wire.DecodeNotification(enc)
			if err != nil {
				t.Fatalf("DecodeNotification(EncodeNotification(DecodeNotification(%q))) = %v (body %q)", body, err, enc)
			}
			checkNotification(t, "re-decoded", again, n)
		}
	})
}
