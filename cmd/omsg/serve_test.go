package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/wire"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// memURL returns a memory:// URL with a virtual host of its own, so that
// tests do not see each other's messages.
func memURL(t *testing.T) string {
	t.Helper()
	return "memory:///omsg-" + wire.NewID()[:12]
}

// lineBuffer is an io.Writer, safe for concurrent use, whose lines can
// be awaited.
type lineBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

// newLineBuffer returns an empty lineBuffer.
func newLineBuffer() *lineBuffer { return &lineBuffer{changed: make(chan struct{})} }

// Write appends p and wakes the waiters.
func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines written so far, and a channel closed
// at the next write.
func (b *lineBuffer) lines() ([]string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n"), b.changed
	}
	return nil, b.changed
}

// wait returns the first complete line that match accepts. It fails t
// if none comes within waitTimeout or before stop is closed.
func (b *lineBuffer) wait(t *testing.T, what string, stop <-chan struct{}, match func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		lines, changed := b.lines()
		for _, l := range lines {
			if match(l) {
				return l
			}
		}
		select {
		case <-changed:
		case <-stop:
			// A last look: the line may have come with the exit.
			lines, _ := b.lines()
			for _, l := range lines {
				if match(l) {
					return l
				}
			}
			t.Fatalf("the command exited before printing %s; output so far:\n%s", what, b.String())
		case <-timer.C:
			t.Fatalf("no %s within %v; output so far:\n%s", what, waitTimeout, b.String())
		}
	}
}

// serveCmd is an `omsg serve` running in-process.
type serveCmd struct {
	t      *testing.T
	stdout *lineBuffer
	stderr *lineBuffer
	cancel context.CancelFunc
	exited chan struct{}
	code   int // valid once exited is closed
}

// startServe runs `omsg serve args...` in a goroutine and returns once
// it printed its readiness line. The server is stopped, as by a signal,
// when the test ends; it must then exit 0.
func startServe(t *testing.T, args ...string) *serveCmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveCmd{t: t, stdout: newLineBuffer(), stderr: newLineBuffer(), cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(s.exited)
		s.code = run(ctx, append([]string{"serve"}, args...), s.stdout, s.stderr)
	}()
	t.Cleanup(func() {
		if code := s.stop(); code != exitOK {
			t.Errorf("omsg serve exited %d, want 0; stderr:\n%s", code, s.stderr.String())
		}
	})
	s.stderr.wait(t, "readiness line", s.exited, func(l string) bool {
		return strings.HasPrefix(l, "omsg serve: listening on ")
	})
	return s
}

// stop cancels the server's context, as SIGINT does, and returns its
// exit code once it has exited.
func (s *serveCmd) stop() int {
	s.cancel()
	select {
	case <-s.exited:
		return s.code
	case <-time.After(time.Minute):
		s.t.Errorf("omsg serve did not exit within a minute of being stopped")
		return -1
	}
}

// reqLine is a request line of omsg serve, decoded.
type reqLine struct {
	Method    string         `json:"method"`
	Args      map[string]any `json:"args"`
	Context   map[string]any `json:"context"`
	Namespace *string        `json:"namespace"`
	Version   *string        `json:"version"`
	Kind      string         `json:"kind"`
	raw       string
}

// decodeRequestLine decodes a line of omsg serve's stdout, checking that
// it has exactly the documented fields.
func decodeRequestLine(t *testing.T, line string) reqLine {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(line), &fields); err != nil {
		t.Fatalf("serve printed %q, not a JSON object: %v", line, err)
	}
	keys := slices.Sorted(maps.Keys(fields))
	if want := []string{"args", "context", "kind", "method", "namespace", "version"}; !slices.Equal(keys, want) {
		t.Errorf("request line %s has fields %q, want %q", line, keys, want)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var r reqLine
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("request line %s: %v", line, err)
	}
	r.raw = line
	return r
}

// waitRequest returns the first request line that match accepts.
func (s *serveCmd) waitRequest(t *testing.T, what string, match func(reqLine) bool) reqLine {
	t.Helper()
	line := s.stdout.wait(t, "request line for "+what, s.exited, func(l string) bool {
		return match(decodeRequestLine(t, l))
	})
	return decodeRequestLine(t, line)
}

// requests returns every request line printed so far.
func (s *serveCmd) requests(t *testing.T) []reqLine {
	t.Helper()
	lines, _ := s.stdout.lines()
	out := make([]reqLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, decodeRequestLine(t, l))
	}
	return out
}

// strp returns &s.
func strp(s string) *string { return &s }

// eqp reports whether a and b are both nil or point to equal strings.
func eqp(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// TestServeReadinessAndShutdown checks the readiness line and a
// graceful stop of an idle server.
func TestServeReadinessAndShutdown(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	s := startServe(t, "--url", url, "--topic", "diag", "--server", "s1", "--namespace", "omsg", "--version", "1.3")
	want := "omsg serve: listening on <Target exchange=openstack, topic=diag, namespace=omsg, version=1.3, server=s1> via " + url + "\n"
	if got := s.stderr.String(); got != want {
		t.Errorf("serve stderr = %q, want %q", got, want)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exited %d after being stopped, want 0", code)
	}
	if got := s.stderr.String(); !strings.Contains(got, "shutting down") || !strings.HasSuffix(got, "omsg serve: stopped\n") {
		t.Errorf("serve stderr after stop = %q", got)
	}
	if out := s.stdout.String(); out != "" {
		t.Errorf("serve printed %q with no request", out)
	}
}

// TestServeDrainsOnShutdown stops the server while a call runs: the call
// still gets its result, and the server exits 0 after it.
func TestServeDrainsOnShutdown(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	s := startServe(t, "--url", url, "--topic", "drain", "--server", "s1")
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := runCmd(t, "call", "--url", url, "--topic", "drain", "sleep", "seconds=0.3")
		done <- result{code, out, errOut}
	}()
	s.waitRequest(t, "sleep", func(r reqLine) bool { return r.Method == "sleep" })
	if code := s.stop(); code != exitOK {
		t.Errorf("serve exited %d, want 0", code)
	}
	select {
	case r := <-done:
		if r.code != exitOK || r.out != "0.3\n" || r.errOut != "" {
			t.Errorf("call sleep during shutdown = exit %d, stdout %q, stderr %q; want 0, \"0.3\\n\", \"\"", r.code, r.out, r.errOut)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the call did not return")
	}
}

// TestServeRequestLines checks the fields of the request lines, with
// the context's secrets redacted and its numbers kept as sent.
func TestServeRequestLines(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	s := startServe(t, "--url", url, "--topic", "lines", "--server", "s1", "--namespace", "omsg", "--version", "1.3")
	base := []string{"--url", url, "--topic", "lines", "--namespace", "omsg", "--version", "1.1"}

	ctxJSON := `{"user_id": "u1", "auth_token": "SECRET-TOKEN", "nested": {"password": "SECRET-PW", "ok": 1}, "big": 12345678901234567890}`
	code, out, errOut := runCmd(t, append(append([]string{"call"}, base...), "--context", ctxJSON, "echo", "n=5", "s=hello")...)
	if code != exitOK || out != `{"n":5,"s":"hello"}`+"\n" {
		t.Fatalf("call echo = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r := s.waitRequest(t, "echo call", func(r reqLine) bool { return r.Method == "echo" && r.Kind == "call" })
	if !eqp(r.Namespace, strp("omsg")) || !eqp(r.Version, strp("1.1")) {
		t.Errorf("namespace, version = %v, %v; want omsg, 1.1 (%s)", r.Namespace, r.Version, r.raw)
	}
	if r.Args["n"] != json.Number("5") || r.Args["s"] != "hello" || len(r.Args) != 2 {
		t.Errorf("args = %v, want n=5 s=hello", r.Args)
	}
	for _, want := range []string{`"user_id":"u1"`, `"auth_token":"***"`, `"nested":{"ok":1,"password":"***"}`,
		`"big":12345678901234567890`, `"client_timeout":null`} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("request line %s lacks %s", r.raw, want)
		}
	}

	// A cast in the default namespace with no version: both null.
	code, out, errOut = runCmd(t, "cast", "--url", url, "--topic", "lines", "--server", "s1", "oslo_rpc_server_ping")
	if code != exitOK || out != "" {
		t.Fatalf("cast = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r = s.waitRequest(t, "ping cast", func(r reqLine) bool { return r.Kind == "cast" })
	if r.Method != "oslo_rpc_server_ping" || r.Namespace != nil || r.Version != nil || len(r.Args) != 0 {
		t.Errorf("cast line = %s, want oslo_rpc_server_ping with null namespace and version and no args", r.raw)
	}
	if all := s.stdout.String() + s.stderr.String(); strings.Contains(all, "SECRET") {
		t.Errorf("serve printed a secret:\n%s", all)
	}
}
