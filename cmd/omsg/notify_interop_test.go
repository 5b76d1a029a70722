package main

import (
	"encoding/json"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/wire"
)

// pythonPriorities are the methods of oslo's Notifier, with the
// priority each sends, in lower case.
var pythonPriorities = []struct{ method, priority string }{
	{"audit", "audit"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"warning", "warn"},
	{"error", "error"}, {"critical", "critical"}, {"sample", "sample"},
}

// pythonNotifier sends, with oslo.messaging's Notifier and each of its
// messaging drivers, a notification with every method of the Notifier.
// It reads its parameters, a JSON object, on stdin, and prints "DONE".
const pythonNotifier = `
import json, os, sys
from oslo_config import cfg
cfg.CONF([], project='omsg-interop')
import oslo_messaging as om
p = json.load(sys.stdin)
om.set_transport_defaults(control_exchange=p['exchange'])
transport = om.get_notification_transport(cfg.CONF, url=p['url'])
ctxt = {'user_id': 'py-user', 'project_id': 'py-project', 'request_id': 'req-py', 'roles': ['admin', 'member'],
        'is_admin': True, 'auth_token': 'py-secret-token', 'custom': 'not sent'}
for driver in ('messaging', 'messagingv2'):
    n = om.Notifier(transport, publisher_id='py.host1', driver=driver, topics=[p['topic']])
    for method in p['methods']:
        payload = {'driver': driver, 'method': method, 'u': '\u00e9\u2713 <&>', 'n': 7, 'l': [1, 2.5, None, True],
                   'big': 12345678901234567890, 'o': {}}
        getattr(n, method)(ctxt, 'omsg.interop.%s.%s' % (driver, method), payload)
transport.cleanup()
print(json.dumps('DONE'), flush=True)
os._exit(0)  # at once: oslo's helper threads would delay a normal exit
`

// TestInteropListenPythonNotifier shows, with omsg listen with and
// without a pool, the notifications sent by Python oslo.messaging's
// Notifier with its messaging and messagingv2 drivers over RabbitMQ.
func TestInteropListenPythonNotifier(t *testing.T) {
	url, _ := interopBroker(t)
	t.Parallel()
	exchange, topic := interopNames()
	pool := "omsgpool_" + wire.NewID()[:12]
	base := []string{"--url", url, "--exchange", exchange, "--topic", topic}
	plain := startListen(t, base...)
	pooled := startListen(t, append(base, "--pool", pool)...)
	for _, l := range []*listenCmd{plain, pooled} {
		if got := l.stderr.String(); !strings.HasPrefix(got, "omsg listen: listening on "+topic+".{audit,debug,info,warn,error,critical,sample} (exchange "+exchange) ||
			!strings.Contains(got, " via rabbit://guest:***@") {
			t.Errorf("readiness line = %q", got)
		}
	}

	methods := make([]string, len(pythonPriorities))
	for i, p := range pythonPriorities {
		methods[i] = p.method
	}
	var done string
	pyinterop.RunJSON(t, pythonNotifier, map[string]any{"url": url, "exchange": exchange, "topic": topic, "methods": methods}, &done)
	if done != "DONE" {
		t.Fatalf("the Python notifier printed %q", done)
	}

	wantCtx := map[string]any{"user_id": "py-user", "project_id": "py-project", "request_id": "req-py",
		"roles": []any{"admin", "member"}, "is_admin": true}
	for _, l := range []*listenCmd{plain, pooled} {
		for _, driver := range []string{"messaging", "messagingv2"} {
			for _, p := range pythonPriorities {
				ev := fmt.Sprintf("omsg.interop.%s.%s", driver, p.method)
				n := l.waitNote(t, ev, byEvent(ev))
				if n.Priority != p.priority || n.PublisherID != "py.host1" || !uuidRE.MatchString(n.Metadata["message_id"]) ||
					!timestampRE.MatchString(n.Metadata["timestamp"]) {
					t.Errorf("the Python %s.%s notification printed as %s", driver, p.method, n.raw)
				}
				wantPayload := fmt.Sprintf(`{"driver":%q,"method":%q,"u":"é✓ <&>","n":7,"l":[1,2.5,null,true],"big":12345678901234567890,"o":{}}`,
					driver, p.method)
				if string(n.Payload) != wantPayload {
					t.Errorf("payload = %s\nwant      %s", n.Payload, wantPayload)
				}
				if !reflect.DeepEqual(n.Context, wantCtx) {
					t.Errorf("context = %v, want %v (oslo's notifier sanitises it)", n.Context, wantCtx)
				}
			}
		}
		if got, want := len(l.notes(t)), 2*len(pythonPriorities); got != want {
			t.Errorf("a listener printed %d lines, want %d:\n%s", got, want, l.stdout.String())
		}
		if all := l.stdout.String() + l.stderr.String(); strings.Contains(all, "py-secret-token") || strings.Contains(all, "guest:guest") {
			t.Errorf("omsg listen printed a secret:\n%s", all)
		}
	}
}

// pythonListener runs two oslo.messaging notification listeners on the
// topic and exchange given, one without a pool and one in the pool
// given, with an endpoint for every priority. Each prints every
// notification as a JSON line. It stops when its stdin closes, and
// exits on its own after two minutes.
const pythonListener = `
import json, os, sys, threading
threading.Timer(120, lambda: os._exit(3)).start()
from oslo_config import cfg
cfg.CONF([], project='omsg-interop')
import oslo_messaging as om
url, exchange, topic, pool = sys.argv[1:5]
transport = om.get_notification_transport(cfg.CONF, url=url)
lock = threading.Lock()
class Endpoint(object):
    def __init__(self, name):
        self.name = name
    def _record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with lock:
            print(json.dumps({'listener': self.name, 'priority': priority, 'ctxt': ctxt,
                              'publisher_id': publisher_id, 'event_type': event_type,
                              'payload': payload, 'metadata': metadata}), flush=True)
for p in ('audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample'):
    setattr(Endpoint, p, lambda self, c, pub, ev, pl, md, p=p: self._record(p, c, pub, ev, pl, md))
targets = [om.Target(exchange=exchange, topic=topic)]
listeners = [om.get_notification_listener(transport, targets, [Endpoint('plain')], executor='threading'),
             om.get_notification_listener(transport, targets, [Endpoint('pool')], executor='threading', pool=pool)]
for l in listeners:
    l.start()
print('READY', flush=True)
sys.stdin.read()
for l in listeners:
    l.stop()
for l in listeners:
    l.wait()
transport.cleanup()
os._exit(0)
`

// pyNote is a notification printed by pythonListener.
type pyNote struct {
	Listener    string            `json:"listener"`
	Priority    string            `json:"priority"`
	Ctxt        map[string]any    `json:"ctxt"`
	PublisherID string            `json:"publisher_id"`
	EventType   string            `json:"event_type"`
	Payload     map[string]any    `json:"payload"`
	Metadata    map[string]string `json:"metadata"`
}

// TestInteropNotifyPythonListener sends notifications of every priority
// with omsg notify, in both formats, to Python oslo.messaging listeners
// with and without a pool, over RabbitMQ.
func TestInteropNotifyPythonListener(t *testing.T) {
	url, py := interopBroker(t)
	t.Parallel()
	exchange, topic := interopNames()
	pool := "omsgpool_" + wire.NewID()[:12]
	p := startPython(t, py, pythonListener, url, exchange, topic, pool)
	p.stdout.wait(t, "the Python listeners' READY", p.exited, func(l string) bool { return l == "READY" })

	type sent struct{ format, method, priority string }
	byID := map[string]sent{}
	ctxJSON := `{"user_id": "go-user", "request_id": "req-go", "roles": ["reader"], "auth_token": "go-secret-token", "custom": "x"}`
	for _, format := range []string{"v2", "v1"} {
		for _, pr := range pythonPriorities {
			payload := fmt.Sprintf(`{"format": %q, "priority": %q, "u": "é✓ <&>", "n": 7, "l": [1, 2.5, null], "big": 12345678901234567890}`, format, pr.method)
			id := sendNote(t, payload, "--url", url, "--exchange", exchange, "--topic", topic, "--format", format,
				"--priority", pr.method, "--context", ctxJSON, "--publisher-id", "go.host1", "--event-type", "omsg.interop."+format+"."+pr.method,
				"--timeout", "15s")
			byID[id] = sent{format, pr.method, pr.priority}
		}
	}

	want := 2 * len(byID) // one copy per listener
	p.stdout.wait(t, fmt.Sprintf("%d notifications from the Python listeners", want), p.exited, func(string) bool {
		lines, _ := p.stdout.lines()
		return len(lines) >= want+1 // and READY
	})
	lines, _ := p.stdout.lines()
	got := map[string]int{}
	wantCtx := map[string]any{"user_id": "go-user", "request_id": "req-go", "roles": []any{"reader"}, "client_timeout": nil}
	for _, line := range lines[1:] {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var n pyNote
		if err := dec.Decode(&n); err != nil {
			t.Fatalf("python printed %q: %v", line, err)
		}
		id := n.Metadata["message_id"]
		s, ok := byID[id]
		if !ok {
			t.Errorf("python got a notification that omsg notify did not send: %s", line)
			continue
		}
		got[n.Listener+" "+id]++
		wantPayload := map[string]any{"format": s.format, "priority": s.method, "u": "é✓ <&>", "n": json.Number("7"),
			"l": []any{json.Number("1"), json.Number("2.5"), nil}, "big": json.Number("12345678901234567890")}
		// The Python listener adds client_timeout to every context.
		if n.Priority != s.priority || n.PublisherID != "go.host1" || n.EventType != "omsg.interop."+s.format+"."+s.method ||
			!reflect.DeepEqual(n.Payload, wantPayload) || !reflect.DeepEqual(n.Ctxt, wantCtx) ||
			!timestampRE.MatchString(n.Metadata["timestamp"]) {
			t.Errorf("python got %s\nfor omsg notify --format %s --priority %s", line, s.format, s.method)
		}
	}
	for id, s := range byID {
		for _, l := range []string{"plain", "pool"} {
			if got[l+" "+id] != 1 {
				t.Errorf("the Python %s listener got the --format %s --priority %s notification %d times, want once", l, s.format, s.method, got[l+" "+id])
			}
		}
	}
}

// TestRabbitNotifyFormats checks what omsg notify puts on the wire with
// --format v2 and v1, reading the messages from the queue with an AMQP
// client of its own.
func TestRabbitNotifyFormats(t *testing.T) {
	raw := os.Getenv("MESSAGING_RABBIT_URL")
	if raw == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this test of omsg notify's wire formats on RabbitMQ " +
			"(set MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/)")
	}
	t.Parallel()
	u, err := driver.ParseURL(raw)
	if err != nil {
		t.Fatalf("MESSAGING_RABBIT_URL: %v", err)
	}
	if len(u.Hosts) != 1 {
		t.Fatalf("MESSAGING_RABBIT_URL names %d hosts, want 1", len(u.Hosts))
	}
	h := u.Hosts[0]
	if h.Port == 0 {
		h.Port = 5672
	}
	amqpURL := &neturl.URL{Scheme: "amqp", User: neturl.UserPassword(h.Username, h.Password),
		Host: net.JoinHostPort(h.Hostname, strconv.Itoa(h.Port)), Path: "/" + u.VirtualHost}
	conn, err := amqp.Dial(amqpURL.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // after the deletions below
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	exchange, topic := interopNames()
	queue := topic + ".info"
	// omsg notify declares the exchange and the queue, which keep the
	// messages: nothing consumes them. They are deleted at the end.
	t.Cleanup(func() {
		if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
			t.Errorf("deleting the queue %s: %v", queue, err)
		}
		if err := ch.ExchangeDelete(exchange, false, false); err != nil {
			t.Errorf("deleting the exchange %s: %v", exchange, err)
		}
	})
	for _, format := range []string{"v2", "v1"} {
		sendNote(t, `{"format": "`+format+`"}`, "--url", raw, "--exchange", exchange, "--topic", topic, "--format", format,
			"--context", `{"user_id": "u1", "auth_token": "tok"}`, "--publisher-id", "p", "--event-type", "wire."+format, "--timeout", "15s")
	}
	for _, format := range []string{"v2", "v1"} {
		d, ok, err := ch.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("getting the %s message from %s: ok %v, %v", format, queue, ok, err)
		}
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatalf("the %s message %q is not a JSON object: %v", format, d.Body, err)
		}
		msg := body
		if format == "v2" {
			if body["oslo.version"] != "2.0" || len(body) != 2 {
				t.Fatalf("--format v2 sent %s, want oslo's 2.0 envelope", d.Body)
			}
			s, _ := body["oslo.message"].(string)
			if err := json.Unmarshal([]byte(s), &msg); err != nil {
				t.Fatalf("the envelope's oslo.message %q: %v", s, err)
			}
		} else if _, ok := body["oslo.version"]; ok {
			t.Fatalf("--format v1 sent %s, want the bare message", d.Body)
		}
		if msg["priority"] != "INFO" || msg["event_type"] != "wire."+format || msg["_context_user_id"] != "u1" ||
			msg["_context_auth_token"] != nil || !reflect.DeepEqual(msg["payload"], map[string]any{"format": format}) {
			t.Errorf("--format %s sent the message %v", format, msg)
		}
		if d.ContentType != "application/json" {
			t.Errorf("--format %s: content type %q", format, d.ContentType)
		}
	}
}
