package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)
)

// listenCmd is an `omsg listen` running in-process.
type listenCmd struct {
	t      *testing.T
	stdout *lineBuffer
	stderr *lineBuffer
	cancel context.CancelFunc
	exited chan struct{}
	code   int // valid once exited is closed
}

// startListen runs `omsg listen args...` in a goroutine and returns
// once it printed its readiness line. It is stopped, as by a signal,
// when the test ends; it must then exit 0.
func startListen(t *testing.T, args ...string) *listenCmd {
	t.Helper()
	l := runListen(t, newLineBuffer(), args...)
	t.Cleanup(func() {
		if code := l.stop(); code != exitOK {
			t.Errorf("omsg listen %q exited %d, want 0; stderr:\n%s", args, code, l.stderr.String())
		}
	})
	l.waitReady(t)
	return l
}

// runListen runs `omsg listen args...` in a goroutine, writing its
// standard output to stdout, and returns at once. The caller stops it.
func runListen(t *testing.T, stdout io.Writer, args ...string) *listenCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listenCmd{t: t, stderr: newLineBuffer(), cancel: cancel, exited: make(chan struct{})}
	if lb, ok := stdout.(*lineBuffer); ok {
		l.stdout = lb
	}
	go func() {
		defer close(l.exited)
		l.code = run(ctx, append([]string{"listen"}, args...), stdout, l.stderr)
	}()
	return l
}

// waitReady waits for the readiness line and returns it.
func (l *listenCmd) waitReady(t *testing.T) string {
	t.Helper()
	return l.stderr.wait(t, "readiness line", l.exited, func(s string) bool {
		return strings.HasPrefix(s, "omsg listen: listening on ")
	})
}

// stop cancels the listener's context, as SIGINT does, and returns its
// exit code once it has exited.
func (l *listenCmd) stop() int {
	l.cancel()
	return l.wait()
}

// wait returns the exit code once the listener has exited.
func (l *listenCmd) wait() int {
	select {
	case <-l.exited:
		return l.code
	case <-time.After(time.Minute):
		l.t.Errorf("omsg listen did not exit within a minute")
		return -1
	}
}

// noteLine is a notification line of omsg listen, decoded.
type noteLine struct {
	Priority    string            `json:"priority"`
	PublisherID string            `json:"publisher_id"`
	EventType   string            `json:"event_type"`
	Payload     json.RawMessage   `json:"payload"`
	Metadata    map[string]string `json:"metadata"`
	Context     map[string]any    `json:"context"`
	raw         string
}

// decodeNoteLine decodes a line of omsg listen's stdout, checking that
// it has exactly the documented fields.
func decodeNoteLine(t *testing.T, line string) noteLine {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		t.Fatalf("listen printed %q, not a JSON object: %v", line, err)
	}
	keys := slices.Sorted(maps.Keys(fields))
	if want := []string{"context", "event_type", "metadata", "payload", "priority", "publisher_id"}; !slices.Equal(keys, want) {
		t.Errorf("notification line %s has fields %q, want %q", line, keys, want)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var n noteLine
	if err := dec.Decode(&n); err != nil {
		t.Fatalf("notification line %s: %v", line, err)
	}
	if mk := slices.Sorted(maps.Keys(n.Metadata)); !slices.Equal(mk, []string{"message_id", "timestamp"}) {
		t.Errorf("notification line %s has metadata keys %q, want message_id and timestamp", line, mk)
	}
	n.raw = line
	return n
}

// waitNote returns the first notification line that match accepts.
func (l *listenCmd) waitNote(t *testing.T, what string, match func(noteLine) bool) noteLine {
	t.Helper()
	line := l.stdout.wait(t, "notification line for "+what, l.exited, func(s string) bool {
		return match(decodeNoteLine(t, s))
	})
	return decodeNoteLine(t, line)
}

// notes returns every notification line printed so far.
func (l *listenCmd) notes(t *testing.T) []noteLine {
	t.Helper()
	lines, _ := l.stdout.lines()
	out := make([]noteLine, 0, len(lines))
	for _, s := range lines {
		out = append(out, decodeNoteLine(t, s))
	}
	return out
}

// byEvent matches the line of a notification of the event type ev.
func byEvent(ev string) func(noteLine) bool {
	return func(n noteLine) bool { return n.EventType == ev }
}

// sendNote runs omsg notify with args and the payload, checks that it
// succeeded, and returns the message_id that its confirmation names.
func sendNote(t *testing.T, payload string, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(t, append(append([]string{"notify"}, args...), "--", payload)...)
	if code != exitOK || out != "" {
		t.Fatalf("omsg notify %q %s = exit %d, stdout %q, stderr %q", args, payload, code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^omsg notify: sent .* \(message_id (\S+)\)$`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("omsg notify %q: no confirmation in stderr %q", args, errOut)
	}
	return m[1]
}

// compactJSON returns the JSON text s compacted, its keys in order.
func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestNotifyListenRoundTrip sends a notification of every priority in
// both formats and checks every field of the lines omsg listen prints.
func TestNotifyListenRoundTrip(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	l := startListen(t, "--url", url)
	if want := "omsg listen: listening on notifications.{audit,debug,info,warn,error,critical,sample} (exchange openstack) via " + url + "\n"; l.stderr.String() != want {
		t.Errorf("readiness line = %q, want %q", l.stderr.String(), want)
	}
	prios := []struct{ flag, want string }{
		{"audit", "audit"}, {"debug", "debug"}, {"INFO", "info"}, {"warn", "warn"}, {"warning", "warn"},
		{"error", "error"}, {"critical", "critical"}, {"Sample", "sample"},
	}
	for _, format := range []string{"v2", "v1"} {
		for _, p := range prios {
			ev := fmt.Sprintf("omsg.test.%s.%s", format, p.flag)
			payload := fmt.Sprintf(`{"format": %q, "u": "é✓ <&>", "n": [1, 2.5, null, true], "big": 12345678901234567890, "o": {"k": {}}}`, format)
			id := sendNote(t, payload, "--url", url, "--format", format, "--priority", p.flag,
				"--publisher-id", "pub."+format, "--event-type", ev)
			if !uuidRE.MatchString(id) {
				t.Errorf("message_id %q is not a UUID", id)
			}
			n := l.waitNote(t, ev, byEvent(ev))
			if n.Priority != p.want || n.PublisherID != "pub."+format || n.Metadata["message_id"] != id ||
				!timestampRE.MatchString(n.Metadata["timestamp"]) || len(n.Context) != 0 {
				t.Errorf("--priority %s --format %s: got %s", p.flag, format, n.raw)
			}
			if got, want := string(n.Payload), compactJSON(t, payload); got != want {
				t.Errorf("--format %s payload = %s, want %s", format, got, want)
			}
			if !strings.Contains(n.raw, `"u":"é✓ <&>"`) {
				t.Errorf("line %s does not show the text as it is", n.raw)
			}
		}
	}
	// Payloads other than objects.
	for _, payload := range []string{`"text"`, `42`, `null`, `[1, "a"]`, `-0.5e3`} {
		ev := "omsg.scalar." + payload
		sendNote(t, payload, "--url", url, "--publisher-id", "p", "--event-type", ev)
		if n := l.waitNote(t, ev, byEvent(ev)); string(n.Payload) != compactJSON(t, payload) {
			t.Errorf("payload %s printed as %s", payload, n.Payload)
		}
	}
	if got := len(l.notes(t)); got != 2*len(prios)+5 {
		t.Errorf("listen printed %d lines, want %d", got, 2*len(prios)+5)
	}
	if code := l.stop(); code != exitOK {
		t.Errorf("listen exited %d after being stopped, want 0", code)
	}
	if got := l.stderr.String(); !strings.HasSuffix(got, "\nomsg listen: stopped\n") || strings.Count(got, "\n") != 2 {
		t.Errorf("listen stderr after stop = %q", got)
	}
}

// TestListenPriorities checks that --priority consumes only the queues
// of its priorities: the others keep their notifications.
func TestListenPriorities(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	l := startListen(t, "--url", url, "--topic", "prio", "--priority", "info,ERROR", "--priority", "warning")
	if got := l.stderr.String(); !strings.HasPrefix(got, "omsg listen: listening on prio.{info,warn,error} (exchange openstack) via ") {
		t.Errorf("readiness line = %q", got)
	}
	for _, p := range []string{"debug", "info", "warn", "error", "critical"} {
		sendNote(t, `{}`, "--url", url, "--topic", "prio", "--priority", p, "--publisher-id", "p", "--event-type", "ev."+p)
	}
	for _, p := range []string{"info", "warn", "error"} {
		l.waitNote(t, p, byEvent("ev."+p))
	}
	// The debug and critical notifications wait in their queues, for the
	// next listener of those priorities.
	other := startListen(t, "--url", url, "--topic", "prio", "--priority", "critical", "--priority", "debug")
	for _, p := range []string{"debug", "critical"} {
		if n := other.waitNote(t, p, byEvent("ev."+p)); n.Priority != p {
			t.Errorf("got %s", n.raw)
		}
	}
	if n := len(l.notes(t)); n != 3 {
		t.Errorf("the info,warn,error listener printed %d lines, want 3:\n%s", n, l.stdout.String())
	}
	if n := len(other.notes(t)); n != 2 {
		t.Errorf("the critical,debug listener printed %d lines, want 2:\n%s", n, other.stdout.String())
	}
}

// TestListenEventTypeGlob checks --event-type: only matching
// notifications are printed, and the others are consumed all the same.
func TestListenEventTypeGlob(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	l := startListen(t, "--url", url, "--topic", "glob", "--event-type", "compute.instance.*.[ef]nd")
	if got := l.stderr.String(); !strings.Contains(got, `(exchange openstack, event type "compute.instance.*.[ef]nd")`) {
		t.Errorf("readiness line = %q", got)
	}
	events := map[string]bool{
		"compute.instance.create.end":   true,
		"compute.instance.delete.fnd":   true,
		"compute.instance.create.start": false,
		"compute.instance.end":          false,
		"compute.instance.a/b.end":      false, // * does not match "/"
		"network.instance.create.end":   false,
		"":                              false,
	}
	for _, ev := range slices.Sorted(maps.Keys(events)) {
		args := []string{"--url", url, "--topic", "glob", "--publisher-id", "p", "--event-type", ev}
		if ev == "" {
			// omsg notify requires an event type: send one without
			// through the library.
			sendRaw(t, url, "glob", &driver.Notification{MessageID: "m", PublisherID: "p", Priority: "INFO", Payload: json.RawMessage(`{}`)})
			continue
		}
		sendNote(t, `{}`, args...)
	}
	sendNote(t, `{"last": true}`, "--url", url, "--topic", "glob", "--publisher-id", "p", "--event-type", "compute.instance.last.end")
	l.waitNote(t, "the last one", byEvent("compute.instance.last.end"))
	var got []string
	for _, n := range l.notes(t) {
		got = append(got, n.EventType)
	}
	if want := []string{"compute.instance.create.end", "compute.instance.delete.fnd", "compute.instance.last.end"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("listen --event-type printed %q, want %q", got, want)
	}
	// Nothing is left in the queues: the notifications that did not
	// match were acknowledged.
	if code := l.stop(); code != exitOK {
		t.Fatalf("listen exited %d", code)
	}
	after := startListen(t, "--url", url, "--topic", "glob")
	sendNote(t, `{}`, "--url", url, "--topic", "glob", "--publisher-id", "p", "--event-type", "sentinel")
	after.waitNote(t, "the sentinel", byEvent("sentinel"))
	if lines := after.notes(t); len(lines) != 1 {
		t.Errorf("a later listener got %d notifications, want only the sentinel:\n%s", len(lines), after.stdout.String())
	}
}

// sendRaw publishes n to topic.info on the control exchange through the
// driver, as a sender other than oslo's notifier could.
func sendRaw(t *testing.T, url, topic string, n *driver.Notification) {
	t.Helper()
	tr, err := messaging.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	nc, ok := tr.Conn().(driver.NotifyConn)
	if !ok {
		t.Fatalf("the %T driver does not support notifications", tr.Conn())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	addr := driver.Address{Exchange: tr.ControlExchange(), Topic: topic}
	if err := nc.Notify(ctx, addr, n, driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatal(err)
	}
}

// TestListenPools checks that each pool gets a copy of every
// notification, shared by the listeners of the pool, and that
// listeners without a pool share the topic's queues.
func TestListenPools(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	base := []string{"--url", url, "--topic", "pools"}
	a1 := startListen(t, append(base, "--pool", "a")...)
	a2 := startListen(t, append(base, "--pool", "a")...)
	b := startListen(t, append(base, "--pool", "b", "--priority", "info")...)
	plain := startListen(t, base...)
	if got := b.stderr.String(); !strings.HasPrefix(got, "omsg listen: listening on pools.info (exchange openstack, pool b) via ") {
		t.Errorf("readiness line = %q", got)
	}
	const count = 6
	ids := map[string]bool{}
	for i := range count {
		ids[sendNote(t, fmt.Sprintf(`{"i": %d}`, i), append(base, "--publisher-id", "p", "--event-type", fmt.Sprint("ev.", i))...)] = true
	}
	for i := range count {
		ev := fmt.Sprint("ev.", i)
		b.waitNote(t, ev, byEvent(ev))
		plain.waitNote(t, ev, byEvent(ev))
	}
	// The listeners of pool a share its copies.
	seen := func() []string {
		var out []string
		for _, l := range []*listenCmd{a1, a2} {
			for _, n := range l.notes(t) {
				out = append(out, n.Metadata["message_id"])
			}
		}
		return out
	}
	deadline := time.Now().Add(waitTimeout)
	for len(seen()) < count && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // time for an unwanted extra copy
	got := seen()
	slices.Sort(got)
	if want := slices.Sorted(maps.Keys(ids)); !slices.Equal(got, want) {
		t.Errorf("pool a printed message ids %q, want each of %q once", got, want)
	}
	if len(a1.notes(t)) == 0 || len(a2.notes(t)) == 0 {
		t.Errorf("pool a's listeners printed %d and %d lines, want both to get some", len(a1.notes(t)), len(a2.notes(t)))
	}
	for _, l := range []*listenCmd{b, plain} {
		if n := len(l.notes(t)); n != count {
			t.Errorf("a listener printed %d lines, want %d:\n%s", n, count, l.stdout.String())
		}
	}
}

// TestNotifyContext checks that only oslo's safe context keys travel,
// that omsg notify names the others, and that omsg listen redacts
// secrets that a sender other than oslo's notifier sent.
func TestNotifyContext(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	l := startListen(t, "--url", url)
	ctxJSON := `{"request_id": "req-1", "user_id": "u1", "roles": ["admin", "member"], "is_admin": true,
		"project_id": null, "global_request_id": "greq-1", "auth_token": "SECRET-TOKEN", "password": "SECRET-PW", "custom": 12345678901234567890}`
	code, out, errOut := runCmd(t, "notify", "--url", url, "--context", ctxJSON, "--publisher-id", "p", "--event-type", "ctx", `{}`)
	if code != exitOK || out != "" {
		t.Fatalf("notify = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	wantErr := "omsg notify: context keys not sent, as oslo's notifier sends only its safe keys: auth_token, custom, password\n"
	if !strings.HasPrefix(errOut, wantErr) || !strings.Contains(errOut, "\nomsg notify: sent info ctx to notifications.info on exchange openstack (message_id ") {
		t.Errorf("notify stderr = %q, want it to start with %q", errOut, wantErr)
	}
	n := l.waitNote(t, "ctx", byEvent("ctx"))
	want := map[string]any{"request_id": "req-1", "user_id": "u1", "roles": []any{"admin", "member"}, "is_admin": true,
		"project_id": nil, "global_request_id": "greq-1"}
	if !mapsEqual(n.Context, want) {
		t.Errorf("context = %v, want %v", n.Context, want)
	}

	// A notification with secrets in its context, from another sender.
	sendRaw(t, url, "notifications", &driver.Notification{MessageID: "m-raw", PublisherID: "other", EventType: "raw", Priority: "INFO",
		Context: map[string]any{"auth_token": "SECRET-RAW", "user_id": "u2", "nested": map[string]any{"password": "SECRET-NESTED", "n": json.Number("1")}}})
	n = l.waitNote(t, "raw", byEvent("raw"))
	for _, s := range []string{`"auth_token":"***"`, `"user_id":"u2"`, `"nested":{"n":1,"password":"***"}`, `"payload":null`} {
		if !strings.Contains(n.raw, s) {
			t.Errorf("line %s lacks %s", n.raw, s)
		}
	}
	if all := l.stdout.String() + l.stderr.String(); strings.Contains(all, "SECRET") {
		t.Errorf("listen printed a secret:\n%s", all)
	}
}

// mapsEqual compares decoded JSON objects.
func mapsEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestListenWriteFailure checks that a listener whose stdout fails exits
// 1 and returns the notification to its queue.
func TestListenWriteFailure(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	bad := runListen(t, failingWriter{}, "--url", url, "--topic", "wf")
	t.Cleanup(func() { bad.stop() })
	bad.waitReady(t)
	sendNote(t, `{"keep": "me"}`, "--url", url, "--topic", "wf", "--publisher-id", "p", "--event-type", "kept")
	if code := bad.wait(); code != exitFailure {
		t.Errorf("listen with a failing stdout exited %d, want 1", code)
	}
	if got := bad.stderr.String(); !strings.Contains(got, "omsg listen: writing a notification: disk full\n") ||
		!strings.HasSuffix(got, "omsg listen: stopped\n") {
		t.Errorf("stderr = %q", got)
	}
	good := startListen(t, "--url", url, "--topic", "wf")
	if n := good.waitNote(t, "the requeued notification", byEvent("kept")); string(n.Payload) != `{"keep":"me"}` {
		t.Errorf("got %s", n.raw)
	}
}

// TestListenUnreachable interrupts a listener that cannot reach its
// broker.
func TestListenUnreachable(t *testing.T) {
	t.Parallel()
	l := runListen(t, newLineBuffer(), "--url", "rabbit://guest:SECRETPW@127.0.0.1:1/", "--priority", "info")
	time.Sleep(300 * time.Millisecond)
	if code := l.stop(); code != exitUnavailable {
		t.Errorf("interrupted listen exited %d, want 2", code)
	}
	want := "omsg listen: interrupted before listening on notifications.info via rabbit://guest:***@127.0.0.1:1/\n"
	if got := l.stderr.String(); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

// TestListenShutdownKeepsQueued checks that notifications sent after a
// listener stopped wait for the next one.
func TestListenShutdownKeepsQueued(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	first := startListen(t, "--url", url, "--topic", "sd")
	if code := first.stop(); code != exitOK {
		t.Fatalf("listen exited %d", code)
	}
	for i := range 3 {
		sendNote(t, `{}`, "--url", url, "--topic", "sd", "--publisher-id", "p", "--event-type", fmt.Sprint("later.", i))
	}
	next := startListen(t, "--url", url, "--topic", "sd")
	next.waitNote(t, "later.2", byEvent("later.2"))
	var got []string
	for _, n := range next.notes(t) {
		got = append(got, n.EventType)
	}
	if want := []string{"later.0", "later.1", "later.2"}; !slices.Equal(got, want) {
		t.Errorf("the next listener printed %q, want %q, in that order", got, want)
	}
}
