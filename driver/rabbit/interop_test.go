package rabbit

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// pythonServer is an oslo.messaging RPC server: an echo endpoint that
// also prints the casts it gets, raises on "fail" and sleeps on "slow".
const pythonServer = `
import json, os, sys, threading, time
threading.Timer(60, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic, server = sys.argv[1:5]
cfg.CONF([], project='omsg-interop')
transport = om.get_rpc_transport(cfg.CONF, url=url)
class Endpoint(object):
    def echo(self, ctxt, **kw):
        return {'args': kw, 'user_id': ctxt.get('user_id'), 'client_timeout': ctxt.get('client_timeout')}
    def record(self, ctxt, **kw):
        print('CAST ' + json.dumps({'args': kw, 'user_id': ctxt.get('user_id')}), flush=True)
    def fail(self, ctxt, **kw):
        raise ValueError('bad value')
    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return 'slept'
target = om.Target(exchange=exchange, topic=topic, server=server)
srv = om.get_rpc_server(transport, target, [Endpoint()], executor='threading')
srv.start()
print('READY', flush=True)
sys.stdin.read()
srv.stop()
srv.wait()
transport.cleanup()
print('STOPPED', flush=True)
os._exit(0)
`

// pythonClient is an oslo.messaging RPC client that prints the outcome
// of its calls.
const pythonClient = `
import json, os, sys, threading
threading.Timer(60, lambda: os._exit(3)).start()
from oslo_config import cfg
import oslo_messaging as om
url, exchange, topic, server = sys.argv[1:5]
cfg.CONF([], project='omsg-interop')
transport = om.get_rpc_transport(cfg.CONF, url=url)
target = om.Target(exchange=exchange, topic=topic, server=server)
client = om.get_rpc_client(transport, target, timeout=15)
ctxt = {'user_id': 'u1', 'request_id': 'req-1'}
print('RESULT ' + json.dumps(client.call(ctxt, 'echo', a=1, b='two', c=[1, 2], d={'x': None}, e='\u00e9\u2713')), flush=True)
try:
    client.call(ctxt, 'fail')
    print('NO FAILURE', flush=True)
except ValueError as exc:
    print('FAILURE ValueError ' + str(exc).splitlines()[0], flush=True)
print('SLOW ' + json.dumps(client.prepare(call_monitor_timeout=1, timeout=15).call(ctxt, 'slow')), flush=True)
client.cast(ctxt, 'record', x=1)
client.prepare(fanout=True).cast(ctxt, 'record', x=2)
transport.cleanup()
print('DONE', flush=True)
os._exit(0)
`

// python starts script with /usr/bin/python3 (OMSG_PYTHON) and returns
// its stdin and a channel of its stdout lines; stderr goes to the test
// log. The process is killed and reaped when the test ends.
func python(t *testing.T, script string, args ...string) (io.WriteCloser, <-chan string) {
	t.Helper()
	py := pythonPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, py, append([]string{"-c", script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", py, err)
	}
	lines := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	})
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cancel()
			<-done
		}
		_ = cmd.Wait()
		cancel()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("python stderr:\n%s", stderr.String())
		}
	})
	return stdin, lines
}

// pythonPath returns the Python interpreter of the interoperability
// tests, or skips.
func pythonPath(t *testing.T) string {
	t.Helper()
	py := os.Getenv("OMSG_PYTHON")
	if py == "" {
		t.Skip("OMSG_PYTHON not set: SKIPPING this interoperability test with Python oslo.messaging (set OMSG_PYTHON=/usr/bin/python3)")
	}
	return py
}

// expectLine returns the next line starting with prefix, skipping
// others.
func expectLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("python exited before printing %q", prefix)
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return strings.TrimSpace(rest)
			}
			t.Logf("python: %s", l)
		case <-timeout:
			t.Fatalf("timed out waiting for python to print %q", prefix)
		}
	}
}

// TestInteropPythonServer calls and casts to a Python oslo.messaging
// server through the driver SPI.
func TestInteropPythonServer(t *testing.T) {
	pythonPath(t)
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("pysrv")
	_, lines := python(t, pythonServer, e.url(), ex, tp, "py1")
	expectLine(t, lines, "READY")
	ctx := testCtx(t)
	c := e.open()
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "py1"}

	req := &driver.Request{Method: "echo", Args: json.RawMessage(`{"a": 1, "b": "two", "u": "\u00e9"}`), MsgID: wire.NewID(),
		Context: map[string]any{"user_id": "u1"}}
	rep, err := c.Call(ctx, addr, req, driver.SendOptions{})
	if err != nil {
		t.Fatalf("Call echo: %v", err)
	}
	var got struct {
		Args          map[string]any `json:"args"`
		UserID        string         `json:"user_id"`
		ClientTimeout *float64       `json:"client_timeout"`
	}
	if err := json.Unmarshal(rep.Result, &got); err != nil || rep.Failure != nil {
		t.Fatalf("echo reply %s, %+v: %v", rep.Result, rep.Failure, err)
	}
	if got.Args["a"] != float64(1) || got.Args["b"] != "two" || got.Args["u"] != "é" || got.UserID != "u1" || got.ClientTimeout != nil {
		t.Errorf("echo reply = %s", rep.Result)
	}

	// To the topic (any server), with a call monitor that the server's
	// heartbeats keep alive past the monitor timeout.
	slow := &driver.Request{Method: "slow", Args: json.RawMessage(`{"seconds": 2.5}`), MsgID: wire.NewID()}
	rep, err = c.Call(ctx, driver.Address{Exchange: ex, Topic: tp}, slow, driver.SendOptions{MonitorTimeout: 2 * time.Second})
	if err != nil || string(rep.Result) != `"slept"` {
		t.Errorf("Call slow with monitor = %v, %v; want \"slept\"", rep, err)
	}

	rep, err = c.Call(ctx, addr, &driver.Request{Method: "fail", MsgID: wire.NewID()}, driver.SendOptions{})
	if err != nil {
		t.Fatalf("Call fail: %v", err)
	}
	if f := rep.Failure; f == nil || f.Class != "ValueError" || f.Module != "builtins" || f.Message != "bad value" || len(f.Traceback) == 0 {
		t.Errorf("failure = %+v, want builtins.ValueError 'bad value' with a traceback", f)
	}

	cast := &driver.Request{Method: "record", Args: json.RawMessage(`{"n": 7}`), Context: map[string]any{"user_id": "u2"}}
	if err := c.Cast(ctx, addr, cast, driver.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := expectLine(t, lines, "CAST "); l != `{"args": {"n": 7}, "user_id": "u2"}` {
		t.Errorf("python cast = %s", l)
	}
	fan := driver.Address{Exchange: ex, Topic: tp, Fanout: true}
	if err := c.Cast(ctx, fan, &driver.Request{Method: "record", Args: json.RawMessage(`{"n": 8}`)}, driver.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if l := expectLine(t, lines, "CAST "); l != `{"args": {"n": 8}, "user_id": null}` {
		t.Errorf("python fanout cast = %s", l)
	}
}

// TestInteropPythonClient serves a Python oslo.messaging client from a
// Listener, both sides compressing their messages.
func TestInteropPythonClient(t *testing.T) {
	pythonPath(t)
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("gosrv")
	ctx := testCtx(t)
	c := e.open("kombu_compression", "gzip")
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "go1"}
	l, err := c.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	casts := make(chan *driver.Request, 4)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	serve(t, l, func(d driver.Delivery) {
		req := d.Request()
		switch req.Method {
		case "echo":
			res, _ := json.Marshal(map[string]any{"args": req.Args, "user_id": req.Context["user_id"], "timeout": req.MonitorTimeout})
			_ = d.Reply(ctx, &driver.Reply{Result: res})
		case "fail":
			_ = d.Reply(ctx, &driver.Reply{Failure: &driver.Failure{Class: "ValueError", Module: "builtins", Message: "go says no",
				Traceback: []string{"Traceback (most recent call last):\n", "ValueError: go says no\n"}, Args: json.RawMessage(`["go says no"]`)}})
		case "slow":
			wg.Go(func() {
				if req.MonitorTimeout == nil || *req.MonitorTimeout != 1 {
					t.Errorf("slow request _timeout = %v, want 1", req.MonitorTimeout)
				}
				for range 5 {
					time.Sleep(300 * time.Millisecond) // the method's work
					if err := d.Heartbeat(ctx); err != nil {
						t.Errorf("Heartbeat: %v", err)
					}
				}
				_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"done"`)})
			})
		default:
			casts <- req
		}
	})

	_, lines := python(t, pythonClient, e.url("kombu_compression", "gzip"), ex, tp, "go1")
	res := expectLine(t, lines, "RESULT ")
	var got struct {
		Args    map[string]any `json:"args"`
		UserID  string         `json:"user_id"`
		Timeout *float64       `json:"timeout"`
	}
	if err := json.Unmarshal([]byte(res), &got); err != nil {
		t.Fatalf("python result %s: %v", res, err)
	}
	if got.Args["a"] != float64(1) || got.Args["b"] != "two" || got.Args["e"] != "é✓" || got.UserID != "u1" || got.Timeout != nil {
		t.Errorf("python got %s", res)
	}
	if f := expectLine(t, lines, "FAILURE "); f != "ValueError go says no" {
		t.Errorf("python failure = %q, want ValueError go says no", f)
	}
	if s := expectLine(t, lines, "SLOW "); s != `"done"` {
		t.Errorf("python slow call = %s", s)
	}
	// The cast and the fanout cast come through different queues, in
	// either order.
	seen := map[string]bool{}
	for range 2 {
		r := recv(t, casts, "python cast")
		seen[string(r.Args)] = true
		if r.Method != "record" || r.Context["user_id"] != "u1" || r.UniqueID == "" {
			t.Errorf("python cast = %+v (args %s), want record from u1", r, r.Args)
		}
	}
	if !seen[`{"x": 1}`] || !seen[`{"x": 2}`] {
		t.Errorf("python casts = %v, want {\"x\": 1} and {\"x\": 2}", seen)
	}
	expectLine(t, lines, "DONE")
}
