package rabbit

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// pythonNotifier sends notifications with oslo.messaging's Notifier,
// with the messaging (v1) and messagingv2 drivers, on the control
// exchange given, then prints DONE.
const pythonNotifier = `
import json, os, sys, threading
threading.Timer(60, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic = sys.argv[1:4]
cfg.CONF([], project='omsg-interop')
om.set_transport_defaults(control_exchange=exchange)
transport = om.get_notification_transport(cfg.CONF, url=url)
ctxt = {'user_id': 'u1', 'project_id': 'p1', 'roles': ['admin', 'member'], 'is_admin': True,
        'request_id': 'req-\u00e9', 'auth_token': 'secret'}
for driver in ('messaging', 'messagingv2'):
    n = om.Notifier(transport, publisher_id='compute.host1', driver=driver, topics=[topic])
    n.info(ctxt, 'compute.instance.create.end', {'driver': driver, 'id': 7, 'u': '\u00e9\u2713\U0001F600', 'l': [1, None, 2.5]})
    n.error(ctxt, 'compute.instance.error', {'driver': driver, 'code': 500})
    n.prepare(publisher_id='meter.host2').sample({}, 'cpu.usage', driver)
transport.cleanup()
print('DONE', flush=True)
os._exit(0)
`

// pythonNotificationListener runs two oslo.messaging notification
// listeners on a topic, one without a pool and one with the pool given,
// whose endpoints print every notification they get.
const pythonNotificationListener = `
import json, os, sys, threading
threading.Timer(60, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic, pool = sys.argv[1:5]
cfg.CONF([], project='omsg-interop')
om.set_transport_defaults(control_exchange=exchange)
transport = om.get_notification_transport(cfg.CONF, url=url)
lock = threading.Lock()
class Endpoint(object):
    def __init__(self, name):
        self.name = name
    def _record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with lock:
            print('NOTIFICATION ' + json.dumps({'listener': self.name, 'priority': priority, 'ctxt': ctxt,
                  'publisher_id': publisher_id, 'event_type': event_type, 'payload': payload,
                  'metadata': metadata}), flush=True)
    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('info', ctxt, publisher_id, event_type, payload, metadata)
    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('error', ctxt, publisher_id, event_type, payload, metadata)
    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
        self._record('warn', ctxt, publisher_id, event_type, payload, metadata)
targets = [om.Target(topic=topic)]
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
print('STOPPED', flush=True)
os._exit(0)
`

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uniqueIDRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)
)

// TestInteropPythonNotifier receives, with ListenNotifications, what
// oslo.messaging's Notifier sends with both its drivers: on the queues
// the notifier declared, and in a pool of ours.
func TestInteropPythonNotifier(t *testing.T) {
	pythonPath(t)
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("pynex"), e.name("pynotif")
	c := e.open()
	plain := listenNotes(t, c, "", driver.ListenOptions{},
		driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info", "error", "sample"}})
	pool := listenNotes(t, c, e.name("gopool"), driver.ListenOptions{},
		driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info"}})

	_, lines := python(t, pythonNotifier, e.url(), ex, tp)
	expectLine(t, lines, "DONE")

	type key struct{ driver, priority string }
	got := map[key]*driver.Notification{}
	for range 6 {
		d := nextNote(t, plain)
		n := d.Notification()
		// The payload names the driver: the sample's is its name.
		var drv string
		if n.Priority == "SAMPLE" {
			_ = json.Unmarshal(n.Payload, &drv)
		} else {
			var v struct {
				Driver string `json:"driver"`
			}
			_ = json.Unmarshal(n.Payload, &v)
			drv = v.Driver
		}
		k := key{drv, n.Priority}
		if got[k] != nil {
			t.Errorf("received %v twice", k)
		}
		got[k] = n
		if err := d.Ack(); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	noNote(t, plain, "after the six notifications")
	for _, drv := range []string{"messaging", "messagingv2"} {
		for _, prio := range []string{"INFO", "ERROR", "SAMPLE"} {
			n := got[key{drv, prio}]
			if n == nil {
				t.Errorf("no %s notification from the %s driver", prio, drv)
				continue
			}
			if !uuidRE.MatchString(n.MessageID) || !uniqueIDRE.MatchString(n.UniqueID) || !timestampRE.MatchString(n.Timestamp) {
				t.Errorf("%s %s: message_id %q, _unique_id %q, timestamp %q: not oslo's formats", drv, prio, n.MessageID, n.UniqueID, n.Timestamp)
			}
			wantPub, wantEvent, wantCtx := "compute.host1", "compute.instance.create.end",
				`{"user_id": "u1", "project_id": "p1", "roles": ["admin", "member"], "is_admin": true, "request_id": "req-é"}`
			wantPayload := `{"driver": "` + drv + `", "id": 7, "u": "é✓😀", "l": [1, null, 2.5]}`
			switch prio {
			case "ERROR":
				wantEvent, wantPayload = "compute.instance.error", `{"driver": "`+drv+`", "code": 500}`
			case "SAMPLE":
				wantPub, wantEvent, wantPayload, wantCtx = "meter.host2", "cpu.usage", `"`+drv+`"`, `{}`
			}
			if n.PublisherID != wantPub || n.EventType != wantEvent {
				t.Errorf("%s %s: publisher %q event %q, want %q %q", drv, prio, n.PublisherID, n.EventType, wantPub, wantEvent)
			}
			if !jsonEq(n.Payload, wantPayload) {
				t.Errorf("%s %s: payload %s, want %s", drv, prio, n.Payload, wantPayload)
			}
			ctxJSON, _ := json.Marshal(n.Context)
			if len(n.Context) == 0 {
				ctxJSON = []byte(`{}`)
			}
			if !jsonEq(ctxJSON, wantCtx) {
				t.Errorf("%s %s: context %s, want %s (auth_token removed by the notifier)", drv, prio, ctxJSON, wantCtx)
			}
		}
	}
	// The pool queue got its own copy of the info notifications.
	for range 2 {
		d := nextNote(t, pool)
		if n := d.Notification(); n.Priority != "INFO" || n.EventType != "compute.instance.create.end" {
			t.Errorf("pool got %+v", *n)
		}
		if err := d.Ack(); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	noNote(t, pool, "after the two info notifications")
}

// TestInteropPythonNotificationListener sends notifications with Notify,
// in both formats, to oslo.messaging notification listeners, one without
// a pool and one in a pool: each endpoint gets every notification, with
// the fields, context and metadata sent.
func TestInteropPythonNotificationListener(t *testing.T) {
	pythonPath(t)
	t.Parallel()
	e := newEnv(t)
	ex, tp, pool := e.name("gonex"), e.name("gonotif"), e.name("pypool")
	stdin, lines := python(t, pythonNotificationListener, e.url(), ex, tp, pool)
	expectLine(t, lines, "READY")
	c := e.open("kombu_compression", "gzip") // compressed, which oslo accepts
	ctx := testCtx(t)

	sent := map[string]*driver.Notification{}
	for i, tc := range []struct {
		priority, payload string
		envelope          bool
	}{
		{"INFO", `{"id": 7, "name": "vm", "u": "é✓😀", "l": [1, null, 2.5, true]}`, true},
		{"ERROR", `"just a string"`, false},
		{"WARN", `[{"k": {}}, []]`, true},
	} {
		n := newNote(tc.priority, tc.payload)
		n.EventType = "go.event." + strings.ToLower(tc.priority)
		n.Context = map[string]any{"user_id": "u1", "roles": []any{"admin"}, "is_admin": false, "n": 3}
		if i == 1 {
			n.Timestamp = time.Now().UTC().Format("2006-01-02 15:04:05.000000")
		}
		sent[n.EventType] = n
		if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, n, driver.NotifyOptions{Envelope: tc.envelope}); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}

	type record struct {
		Listener    string          `json:"listener"`
		Priority    string          `json:"priority"`
		Ctxt        map[string]any  `json:"ctxt"`
		PublisherID string          `json:"publisher_id"`
		EventType   string          `json:"event_type"`
		Payload     json.RawMessage `json:"payload"`
		Metadata    struct {
			MessageID string `json:"message_id"`
			Timestamp string `json:"timestamp"`
		} `json:"metadata"`
	}
	seen := map[string]bool{}
	for range 2 * len(sent) {
		var r record
		line := expectLine(t, lines, "NOTIFICATION ")
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("python printed %s: %v", line, err)
		}
		n := sent[r.EventType]
		if n == nil {
			t.Errorf("python got an unknown notification: %s", line)
			continue
		}
		k := r.Listener + " " + r.EventType
		if seen[k] {
			t.Errorf("python listener %s got %s twice", r.Listener, r.EventType)
		}
		seen[k] = true
		if r.Priority != strings.ToLower(n.Priority) || r.PublisherID != n.PublisherID ||
			r.Metadata.MessageID != n.MessageID || r.Metadata.Timestamp != n.Timestamp {
			t.Errorf("python got %s, want %+v", line, *n)
		}
		if !jsonEq(r.Payload, string(n.Payload)) {
			t.Errorf("python payload %s, want %s", r.Payload, n.Payload)
		}
		for k, v := range n.Context {
			if got, _ := json.Marshal(r.Ctxt[k]); !jsonEq(got, string(mustMarshal(t, v))) {
				t.Errorf("python context[%q] = %s, want %v", k, got, v)
			}
		}
	}
	for _, who := range []string{"plain", "pool"} {
		for ev := range sent {
			if !seen[who+" "+ev] {
				t.Errorf("python listener %s did not get %s", who, ev)
			}
		}
	}
	_ = stdin.Close()
	expectLine(t, lines, "STOPPED")
	// The Python listeners acknowledged everything they were given.
	for _, q := range []string{tp + ".info", tp + ".error", tp + ".warn", pool} {
		if _, n := e.inspect(q); n != 0 {
			t.Errorf("queue %s holds %d messages after the python listeners stopped, want 0", q, n)
		}
	}
}

// jsonEq reports whether a holds the JSON value of b.
func jsonEq(a []byte, b string) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	x, _ := json.Marshal(va)
	y, _ := json.Marshal(vb)
	return string(x) == string(y)
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
