package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/wire"
)

var timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)

// rabbitTransport opens a transport on a virtual host of the test's own
// on the broker of MESSAGING_RABBIT_URL, deleted at cleanup. It skips
// the test, saying so, when the variable is not set.
func rabbitTransport(t *testing.T) (tr *messaging.Transport, url string) {
	t.Helper()
	base := os.Getenv("MESSAGING_RABBIT_URL")
	if base == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this RabbitMQ integration test " +
			"(set e.g. MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/)")
	}
	vh := "omsg-notify-test-" + wire.NewID()[:12]
	ctl := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
		}
	}
	ctl("add_vhost", vh)
	t.Cleanup(func() { ctl("delete_vhost", vh) })
	ctl("set_permissions", "-p", vh, "guest", ".*", ".*", ".*")
	url = strings.TrimSuffix(base, "/") + "/" + vh
	tr, err := messaging.Open(url, messaging.WithControlExchange("nova"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr, url
}

// pyListener runs oslo.messaging notification listeners on a topic of
// the control exchange "nova": one without a pool and one in the pool
// given. Each prints every notification as a JSON line; the script
// exits after printing `want` of them.
const pyListener = `
import json, os, sys, threading
threading.Timer(90, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, topic, pool, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg.CONF([], project='omsg-notify-interop')
om.set_transport_defaults(control_exchange='nova')
transport = om.get_notification_transport(cfg.CONF, url=url)
lock = threading.Lock()
seen = [0]
class Endpoint(object):
    def __init__(self, name):
        self.name = name
    def _record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with lock:
            print(json.dumps({'listener': self.name, 'priority': priority, 'ctxt': ctxt,
                  'publisher_id': publisher_id, 'event_type': event_type, 'payload': payload,
                  'metadata': metadata}), flush=True)
            seen[0] += 1
            if seen[0] == want:
                os._exit(0)
for p in ('audit', 'debug', 'info', 'warn', 'error', 'critical', 'sample'):
    setattr(Endpoint, p, lambda self, c, pub, ev, pl, md, p=p: self._record(p, c, pub, ev, pl, md))
targets = [om.Target(topic=topic)]
listeners = [om.get_notification_listener(transport, targets, [Endpoint('plain')], executor='threading'),
             om.get_notification_listener(transport, targets, [Endpoint('pool')], executor='threading', pool=pool)]
for l in listeners:
    l.start()
print('READY', flush=True)
sys.stdin.read()
os._exit(4)
`

// pyNotifier sends notifications with oslo.messaging's Notifier on the
// control exchange "nova", with both messaging drivers.
const pyNotifier = `
import json, os, sys, threading
threading.Timer(60, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, topic = json.load(sys.stdin)
cfg.CONF([], project='omsg-notify-interop')
om.set_transport_defaults(control_exchange='nova')
transport = om.get_notification_transport(cfg.CONF, url=url)
ctxt = {'user_id': 'u1', 'project_id': 'p1', 'roles': ['admin'], 'is_admin': True,
        'request_id': 'req-1', 'auth_token': 'secret', 'read_only': False}
for driver in ('messaging', 'messagingv2'):
    n = om.Notifier(transport, publisher_id='compute.host1', driver=driver, topics=[topic])
    n.info(ctxt, 'compute.instance.create.end', {'driver': driver, 'id': 7, 'u': '\u00e9'})
    n.warn(ctxt, 'compute.instance.warn', {'driver': driver})
    n.prepare(publisher_id='meter.host2').sample({}, 'cpu.usage', {'driver': driver})
transport.cleanup()
print('DONE', flush=True)
os._exit(0)
`

// startPython runs script with args; lines yields its standard output,
// line by line, and is closed when the process ends. The process is
// killed at cleanup if still running.
func startPython(t *testing.T, py, script string, args ...string) (lines <-chan string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, py, append([]string{"-I", "-c", script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	out := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			out <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	})
	t.Cleanup(func() {
		_ = stdin.Close()
		cancel()
		wg.Wait()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("python stderr:\n%s", stderr.String())
		}
	})
	return out
}

// nextLine returns the next line of a Python process.
func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the Python process ended early")
		}
		return l
	case <-time.After(60 * time.Second):
		t.Fatal("no output from the Python process")
	}
	return ""
}

// TestInteropNotifierToPython sends notifications with a Notifier and
// its two messaging sinks to oslo.messaging listeners, with and without
// a pool, over RabbitMQ.
func TestInteropNotifierToPython(t *testing.T) {
	py := pyinterop.Python(t)
	tr, url := rabbitTransport(t)
	t.Parallel()
	topic := "notif_" + wire.NewID()[:8]
	lines := startPython(t, py, pyListener, url, topic, "py_pool", "8")
	if l := nextLine(t, lines); l != "READY" {
		t.Fatalf("python said %q", l)
	}
	ctx := messaging.NewOutgoingContext(testContext(t), messaging.Metadata{
		"user_id": "u1", "request_id": "req-1", "roles": []any{"admin"}, "auth_token": "secret", "other": "x",
	})
	for _, s := range []Sink{MessagingV2(), Messaging()} {
		n := newNotifier(t, tr, "compute.host1", WithSinks(s), WithTopics(topic))
		if err := n.Info(ctx, "compute.instance.create.end", map[string]any{"id": 7, "u": "é✓"}); err != nil {
			t.Fatal(err)
		}
		if err := n.Prepare(PublisherID("meter.host2")).Critical(ctx, "cpu.usage", 90.5); err != nil {
			t.Fatal(err)
		}
	}
	type key struct{ listener, priority string }
	got := map[key]int{}
	for range 8 {
		line := nextLine(t, lines)
		var r struct {
			Listener    string            `json:"listener"`
			Priority    string            `json:"priority"`
			PublisherID string            `json:"publisher_id"`
			EventType   string            `json:"event_type"`
			Ctxt        map[string]any    `json:"ctxt"`
			Payload     any               `json:"payload"`
			Metadata    map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("python printed %q: %v", line, err)
		}
		got[key{r.Listener, r.Priority}]++
		// The Python listener adds client_timeout, as to every message.
		wantCtx := map[string]any{"user_id": "u1", "request_id": "req-1", "roles": []any{"admin"}, "client_timeout": nil}
		if !reflect.DeepEqual(r.Ctxt, wantCtx) {
			t.Errorf("python got context %v, want %v", r.Ctxt, wantCtx)
		}
		if !uuidRE.MatchString(r.Metadata["message_id"]) || !timestampRE.MatchString(r.Metadata["timestamp"]) {
			t.Errorf("python got metadata %v", r.Metadata)
		}
		switch r.Priority {
		case "info":
			if r.PublisherID != "compute.host1" || r.EventType != "compute.instance.create.end" ||
				!reflect.DeepEqual(r.Payload, map[string]any{"id": 7.0, "u": "é✓"}) {
				t.Errorf("python got %s", line)
			}
		case "critical":
			if r.PublisherID != "meter.host2" || r.EventType != "cpu.usage" || r.Payload != 90.5 {
				t.Errorf("python got %s", line)
			}
		default:
			t.Errorf("python got priority %q", r.Priority)
		}
	}
	for _, k := range []key{{"plain", "info"}, {"plain", "critical"}, {"pool", "info"}, {"pool", "critical"}} {
		if got[k] != 2 {
			t.Errorf("python listener %s got %d %s notifications, want 2 (v1 and v2): %v", k.listener, got[k], k.priority, got)
		}
	}
}

// TestInteropPythonToListener receives with Listeners, with and without
// a pool, what oslo.messaging's Notifier sends with both its drivers.
func TestInteropPythonToListener(t *testing.T) {
	pyinterop.Python(t)
	tr, url := rabbitTransport(t)
	t.Parallel()
	topic := "notif_" + wire.NewID()[:8]
	plain, pool := newSink(), newSink()
	info := newSink()
	eps := []*Endpoint{{Info: info.handle, Warn: plain.handle, Sample: plain.handle}, {Filter: Filter{PublisherID: "^compute"}, Info: plain.handle}}
	startListener(t, tr, []messaging.Target{{Topic: topic}}, eps)
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: pool.handle, Warn: pool.handle, Sample: pool.handle}}, WithPool("go_pool"))
	args, _ := json.Marshal([]string{url, topic})
	if out := strings.TrimSpace(string(pyinterop.Run(t, pyNotifier, args))); out != "DONE" {
		t.Fatalf("python printed %q", out)
	}
	info.wait(t, 2)
	plain.wait(t, 6)
	pool.wait(t, 6)
	prios := func(ns []*Notification) []string {
		var ps []string
		for _, n := range ns {
			ps = append(ps, string(n.Priority)+" "+n.PublisherID+" "+n.EventType)
		}
		slices.Sort(ps)
		return ps
	}
	want := []string{
		"info compute.host1 compute.instance.create.end", "info compute.host1 compute.instance.create.end",
		"sample meter.host2 cpu.usage", "sample meter.host2 cpu.usage",
		"warn compute.host1 compute.instance.warn", "warn compute.host1 compute.instance.warn",
	}
	if got := prios(plain.notifications()); !slices.Equal(got, want) {
		t.Errorf("plain listener got %v, want %v", got, want)
	}
	if got := prios(pool.notifications()); !slices.Equal(got, want) {
		t.Errorf("pool listener got %v, want %v", got, want)
	}
	for _, n := range info.notifications() {
		var p map[string]any
		if err := json.Unmarshal(n.Payload, &p); err != nil || p["u"] != "é" || p["id"] != 7.0 {
			t.Errorf("payload %s", n.Payload)
		}
		// Python sends the safe keys only.
		want := messaging.Metadata{"user_id": "u1", "project_id": "p1", "roles": []any{"admin"}, "is_admin": true, "request_id": "req-1"}
		if !reflect.DeepEqual(n.Context, want) {
			t.Errorf("context %v, want %v", n.Context, want)
		}
		if _, err := n.Time(); err != nil || !uuidRE.MatchString(n.MessageID) {
			t.Errorf("metadata %q %q: %v", n.MessageID, n.Timestamp, err)
		}
	}
}

// TestRabbitRequeueAndDuplicates checks requeueing and the duplicate
// filter on a real broker.
func TestRabbitRequeueAndDuplicates(t *testing.T) {
	tr, _ := rabbitTransport(t)
	t.Parallel()
	topic := "notif_" + wire.NewID()[:8]
	var calls atomic.Int32
	got := newSink()
	ep := &Endpoint{Info: func(ctx context.Context, n *Notification) error {
		if calls.Add(1) == 1 {
			return ErrRequeue
		}
		return got.handle(ctx, n)
	}}
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{ep}, WithAllowRequeue(true), WithMaxConcurrency(1))
	conn := tr.Conn().(driver.NotifyConn)
	dn := &driver.Notification{
		MessageID: wire.NewUUID(), PublisherID: "p", EventType: "e", Priority: "INFO",
		Payload: []byte(`"once"`), Timestamp: formatTimestamp(time.Now()), UniqueID: wire.NewID(),
	}
	addr := driver.Address{Exchange: "nova", Topic: topic}
	ctx := testContext(t)
	if err := conn.Notify(ctx, addr, dn, driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 1) // after a requeue
	if err := conn.Notify(ctx, addr, dn, driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
	if err := n.Info(ctx, "e", "after"); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 2)
	if p := payloads(t, got.notifications()); !slices.Equal(p, []string{"after", "once"}) || calls.Load() != 3 {
		t.Errorf("handled %v in %d calls; want the duplicate dropped", p, calls.Load())
	}
}
