package interoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/wire"
)

// wireMessage is a published message once normalised: the AMQP
// properties a receiver sees, and the body with its random parts
// replaced by fixed ones.
type wireMessage struct {
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routing_key"`
	ContentType     string         `json:"content_type"`
	ContentEncoding string         `json:"content_encoding"`
	DeliveryMode    uint8          `json:"delivery_mode"`
	Priority        uint8          `json:"priority"`
	Expiration      bool           `json:"expiration"` // present; its value is the remaining time
	Headers         map[string]any `json:"headers"`
	// Other lists the properties that oslo never sets, if set.
	Other []string `json:"other_properties"`
	Body  string   `json:"body"`
}

// Fixed values that replace the random ones of a body.
const (
	fixedMsgID    = "11111111111111111111111111111111"
	fixedUniqueID = "22222222222222222222222222222222"
	fixedReplyQ   = "reply_33333333333333333333333333333333"
	fixedTB       = "<traceback>"
)

// tbPattern matches the traceback list of a failure inside a reply's
// message dict, where the failure is a JSON string: its quotes appear as
// \". Elements cannot contain `], \"args\": `, in which a quote inside an
// element would be escaped twice.
var tbPattern = regexp.MustCompile(`\\"tb\\": \[.*?\], \\"args\\": `)

// normalize returns the normalised form of d. names maps the case's
// random names (exchange, topic, capture queue) to placeholders.
func normalize(t *testing.T, who string, d amqp.Delivery, names map[string]string) wireMessage {
	t.Helper()
	m := wireProperties(d, names)
	body := string(d.Body)
	var outer struct {
		Message string `json:"oslo.message"`
	}
	if err := json.Unmarshal(d.Body, &outer); err != nil {
		t.Fatalf("%s: body is not an envelope: %v: %s", who, err, body)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal([]byte(outer.Message), &inner); err != nil {
		t.Fatalf("%s: oslo.message is not a JSON object: %v", who, err)
	}
	for key, fixed := range map[string]string{"_msg_id": fixedMsgID, "_unique_id": fixedUniqueID, "_reply_q": fixedReplyQ} {
		var id string
		if raw, ok := inner[key]; ok && json.Unmarshal(raw, &id) == nil && id != "" {
			body = strings.ReplaceAll(body, id, fixed)
		}
	}
	if raw, ok := inner["failure"]; ok && string(raw) != "null" {
		body = normalizeTraceback(t, who, body)
	}
	m.Body = body
	return m
}

// wireProperties returns the normalised AMQP properties of d, without
// the body. names maps the case's random names to placeholders.
func wireProperties(d amqp.Delivery, names map[string]string) wireMessage {
	m := wireMessage{
		Exchange:        rename(d.Exchange, names),
		RoutingKey:      rename(d.RoutingKey, names),
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		Expiration:      d.Expiration != "",
		// oslo sends an empty header table, which amqp091-go omits (see
		// the rabbit driver's documentation); receivers see no
		// difference, so both count as {}.
		Headers: map[string]any{},
		Other:   []string{},
	}
	for k, v := range d.Headers {
		m.Headers[k] = v
	}
	for name, v := range map[string]string{"correlation_id": d.CorrelationId, "reply_to": d.ReplyTo, "message_id": d.MessageId,
		"type": d.Type, "user_id": d.UserId, "app_id": d.AppId} {
		if v != "" {
			m.Other = append(m.Other, name+"="+v)
		}
	}
	if !d.Timestamp.IsZero() {
		m.Other = append(m.Other, "timestamp")
	}
	sort.Strings(m.Other)
	return m
}

// normalizeTraceback replaces the traceback of a failure reply by
// fixedTB, after checking that it is a list of lines ending with the
// exception. The envelope is re-encoded with wire.Envelope only after
// checking that it reproduces the original body exactly.
func normalizeTraceback(t *testing.T, who, body string) string {
	t.Helper()
	var outer struct {
		Message string `json:"oslo.message"`
	}
	if err := json.Unmarshal([]byte(body), &outer); err != nil {
		t.Fatal(err)
	}
	if got := string(wire.Envelope([]byte(outer.Message))); got != body {
		t.Fatalf("%s: cannot normalise the traceback: re-enveloping changes the body\n got %s\nwant %s", who, got, body)
	}
	var inner struct {
		Failure string `json:"failure"`
	}
	if err := json.Unmarshal([]byte(outer.Message), &inner); err != nil {
		t.Fatalf("%s: reply failure is not a JSON string: %v", who, err)
	}
	var f struct {
		Class string   `json:"class"`
		TB    []string `json:"tb"`
	}
	if err := json.Unmarshal([]byte(inner.Failure), &f); err != nil {
		t.Fatalf("%s: failure is not JSON: %v", who, err)
	}
	if len(f.TB) == 0 || !strings.HasPrefix(f.TB[len(f.TB)-1], f.Class+": ") {
		t.Errorf("%s: failure traceback %q does not end with the %s", who, f.TB, f.Class)
	}
	loc := tbPattern.FindStringIndex(outer.Message)
	if loc == nil {
		t.Fatalf("%s: no traceback list in %s", who, outer.Message)
	}
	msg := outer.Message[:loc[0]] + `\"tb\": [\"` + fixedTB + `\"], \"args\": ` + outer.Message[loc[1]:]
	return string(wire.Envelope([]byte(msg)))
}

func rename(s string, names map[string]string) string {
	if v, ok := names[s]; ok {
		return v
	}
	// Longest names first, so that a topic inside another name is
	// replaced as part of it.
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, names[k])
	}
	return s
}

// checkGolden compares the live Python message and the Go message with
// testdata/golden/<name>.json (rewritten from Python's with -update).
func checkGolden(t *testing.T, name string, py, goMsg wireMessage) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *updateGolden {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(py); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to capture it from Python)", err)
	}
	var want wireMessage
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if diff := diffMessages(py, want); diff != "" {
		t.Errorf("live Python oslo.messaging no longer publishes %s as recorded in %s:\n%s", name, path, diff)
	}
	if diff := diffMessages(goMsg, want); diff != "" {
		t.Errorf("Go publishes %s differently from Python oslo.messaging (%s):\n%s", name, path, diff)
	}
}

// diffMessages describes how got differs from want, or returns "".
func diffMessages(got, want wireMessage) string {
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if bytes.Equal(gj, wj) {
		return ""
	}
	var b strings.Builder
	if got.Body != want.Body {
		i := 0
		for i < len(got.Body) && i < len(want.Body) && got.Body[i] == want.Body[i] {
			i++
		}
		b.WriteString("body differs at byte " + strconv.Itoa(i) + ":\n   got " + got.Body + "\n  want " + want.Body + "\n")
	}
	got.Body, want.Body = "", ""
	gj, _ = json.Marshal(got)
	wj, _ = json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		b.WriteString("properties:\n   got " + string(gj) + "\n  want " + string(wj) + "\n")
	}
	return b.String()
}

// The golden request's context, keys already in sorted order: the Go
// encoder sorts context keys, where oslo keeps the dict's order, so a
// context in sorted order gives both the same bytes.
func goldenContext() map[string]any {
	return map[string]any{"project_id": "p1", "request_id": "req-123", "user_id": "u1"}
}

// goldenArgs, in sorted order too (the Go client encodes a map sorted;
// Python keeps the order of the JSON object it is given, also sorted).
func goldenArgs() map[string]any {
	return map[string]any{"a": 1, "b": "two", "c": []any{1, 2}, "d": map[string]any{"x": nil}, "e": "é✓"}
}

// TestInteropGolden captures what Python oslo.messaging publishes over
// the broker for a cast, a call to a server with a namespace and a
// version, a fanout cast, a reply and a failure reply, and what the Go
// client and server publish for the same messages, and compares both
// with testdata/golden byte for byte, once ids, names and tracebacks are
// normalised.
func TestInteropGolden(t *testing.T) {
	setup(t)
	t.Parallel()

	runCase(t, "cast", func(t *testing.T) {
		e, p, _ := newCase(t)
		ex, topic := e.name("golden_ex"), e.name("golden_cast")
		names := map[string]string{ex: "<exchange>", topic: "<topic>"}
		capt := e.newCapture(bindControl(ex, topic))
		e.pyOK(p, pyReq{Op: "cast", Exchange: ex, Topic: topic, Method: "do_cast", Args: goldenArgs(), Ctxt: goldenContext()})
		py := normalize(t, "python", capt.next(t, e.ctx(opTimeout)), names)
		c := e.client(e.transport(), messaging.Target{Exchange: ex, Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), goldenContext())
		if err := c.Cast(ctx, "do_cast", goldenArgs()); err != nil {
			t.Fatalf("Cast: %v", err)
		}
		checkGolden(t, "cast", py, normalize(t, "go", capt.next(t, e.ctx(opTimeout)), names))
	})

	runCase(t, "call_server_namespace_version", func(t *testing.T) {
		e, p, _ := newCase(t)
		ex, topic := e.name("golden_ex"), e.name("golden_call")
		names := map[string]string{ex: "<exchange>", topic: "<topic>"}
		capt := e.newCapture(bindControl(ex, topic+".srv"))
		tr := e.transport()
		e.startGoServer(tr, messaging.Target{Exchange: ex, Topic: topic, Server: "srv"}, nil, goldenEndpoint())
		out := e.pyOK(p, pyReq{Op: "call", Exchange: ex, Topic: topic, Server: "srv", Namespace: "ns1", Version: "1.3",
			Method: "do_call", Args: map[string]any{"a": 1}, Ctxt: goldenContext(), Timeout: 30, Monitor: 10})
		if string(out.Result) != `"ok"` {
			t.Errorf("python call returned %s", out.Result)
		}
		py := normalize(t, "python", capt.next(t, e.ctx(opTimeout)), names)
		c := e.client(tr, messaging.Target{Exchange: ex, Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), goldenContext())
		var res string
		if err := c.Call(ctx, "do_call", map[string]any{"a": 1}, &res, rpc.ToServer("srv"), rpc.Namespace("ns1"), rpc.Version("1.3"),
			rpc.CallMonitorTimeout(10*time.Second)); err != nil || res != "ok" {
			t.Fatalf("Call = %q, %v", res, err)
		}
		checkGolden(t, "call_server_namespace_version", py, normalize(t, "go", capt.next(t, e.ctx(opTimeout)), names))
	})

	runCase(t, "fanout_cast", func(t *testing.T) {
		e, p, _ := newCase(t)
		ex, topic := e.name("golden_ex"), e.name("golden_fanout")
		names := map[string]string{ex: "<exchange>", topic: "<topic>"}
		capt := e.newCapture(bindFanout(topic))
		e.pyOK(p, pyReq{Op: "cast", Exchange: ex, Topic: topic, Fanout: true, Method: "do_fanout", Args: map[string]any{"z": true}, Ctxt: goldenContext()})
		py := normalize(t, "python", capt.next(t, e.ctx(opTimeout)), names)
		c := e.client(e.transport(), messaging.Target{Exchange: ex, Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), goldenContext())
		if err := c.Prepare(rpc.Fanout(true)).Cast(ctx, "do_fanout", map[string]any{"z": true}); err != nil {
			t.Fatalf("fanout Cast: %v", err)
		}
		checkGolden(t, "fanout_cast", py, normalize(t, "go", capt.next(t, e.ctx(opTimeout)), names))
	})

	// Replies: we publish the same request to a Python and a Go server,
	// with our capture queue as the reply queue.
	for _, rc := range []struct {
		name, method string
		args         map[string]any
	}{
		{"reply", "golden", nil},
		{"failure_reply", "fail", map[string]any{"exc": "ValueError", "message": "bad value"}},
	} {
		runCase(t, rc.name, func(t *testing.T) {
			e, p, _ := newCase(t)
			ex, topic := e.name("golden_ex"), e.name("golden_reply")
			capt := e.newCapture()
			names := map[string]string{ex: "<exchange>", topic: "<topic>", capt.queue: "<reply_q>"}
			e.startPyServer(p, e.s.url(), ex, topic, "py", nil)
			e.startGoServer(e.transport(), messaging.Target{Exchange: ex, Topic: topic, Server: "go"}, nil)
			got := map[string]wireMessage{}
			for _, server := range []string{"py", "go"} {
				req := &driver.Request{Method: rc.method, MsgID: wire.NewID(), ReplyTo: capt.queue, UniqueID: wire.NewID(),
					Context: map[string]any{"user_id": "u1"}}
				if rc.args != nil {
					req.Args = mustJSON(t, rc.args)
				}
				capt.publishRequest(t, e.ctx(opTimeout), ex, topic+"."+server, req)
				got[server] = normalize(t, server, capt.next(t, e.ctx(opTimeout)), names)
			}
			checkGolden(t, rc.name, got["py"], got["go"])
		})
	}
}

// goldenEndpoint serves the golden call: namespace ns1, version 1.3.
func goldenEndpoint() *rpc.Endpoint {
	ep := &rpc.Endpoint{Namespace: "ns1", Version: "1.3"}
	rpc.Handle(ep, "do_call", func(_ context.Context, _ struct{}) (string, error) { return "ok", nil })
	return ep
}
