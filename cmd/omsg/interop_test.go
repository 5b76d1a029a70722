package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/wire"
)

// interopBroker returns the RabbitMQ URL of the interop tests, from
// MESSAGING_RABBIT_URL, and skips the test when it, or OMSG_PYTHON, is
// not set. The URL makes the queues and exchanges the tests declare
// (Python's and Go's alike) delete themselves once unused
// (amqp_auto_delete), and the reply and fanout queues that a killed
// process leaves expire after a minute (rabbit_transient_queues_ttl).
func interopBroker(t *testing.T) (url, python string) {
	t.Helper()
	raw := os.Getenv("MESSAGING_RABBIT_URL")
	if raw == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this interop test of omsg against RabbitMQ and Python oslo.messaging " +
			"(set MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/ and OMSG_PYTHON=/usr/bin/python3)")
	}
	python = pyinterop.Python(t) // skips, naming OMSG_PYTHON, when unset
	u, err := driver.ParseURL(raw)
	if err != nil {
		t.Fatalf("MESSAGING_RABBIT_URL: %v", err)
	}
	if u.Query == nil {
		u.Query = map[string]string{}
	}
	u.Query["amqp_auto_delete"] = "true"
	u.Query["rabbit_transient_queues_ttl"] = "60"
	return u.Unredacted(), python
}

// interopNames returns an exchange and a topic of the test's own, so
// that tests sharing the broker do not see each other's messages.
func interopNames() (exchange, topic string) {
	id := wire.NewID()[:12]
	return "omsgtest_" + id, "omsg_" + id
}

// pyProcess is a Python script running as a subprocess.
type pyProcess struct {
	stdout *lineBuffer
	stderr *lineBuffer
	exited chan struct{} // closed once the process is reaped
}

// startPython runs script with the interpreter py and args. The process
// lives at most two minutes; when the test ends its stdin is closed,
// which asks the script to stop, and it is killed if it has not exited
// 15 seconds later. It is always reaped before the test ends.
func startPython(t *testing.T, py, script string, args ...string) *pyProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, py, append([]string{"-I", "-c", script}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &pyProcess{stdout: newLineBuffer(), stderr: newLineBuffer(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", py, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			cancel() // kills it
			<-p.exited
		}
		cancel()
		if t.Failed() {
			t.Logf("python stdout:\n%s\npython stderr:\n%s", p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// pythonClient calls and casts to an omsg serve through a Python
// oslo.messaging RPC client and prints the outcomes as a JSON object. It
// reads its parameters, a JSON object, on stdin.
const pythonClient = `
import json, os, sys
from oslo_config import cfg
cfg.CONF([], project='omsg-interop')
import oslo_messaging as om
p = json.load(sys.stdin)
transport = om.get_rpc_transport(cfg.CONF, url=p['url'])
target = om.Target(exchange=p['exchange'], topic=p['topic'], namespace='omsg', version='1.1')
client = om.get_rpc_client(transport, target, timeout=15)
ctxt = {'user_id': 'py-user', 'auth_token': 'py-secret-token'}
out = {}
out['ping'] = client.call(ctxt, 'ping')
out['echo'] = client.call(ctxt, 'echo', n=5, s='hello', l=[1, 2], d={'k': None}, u='\u00e9\u2713')
out['sleep'] = client.call(ctxt, 'sleep', seconds=0.1)
out['to_server'] = client.prepare(server=p['server']).call(ctxt, 'ping')
out['oslo_ping'] = client.prepare(namespace=None, version=None).call(ctxt, 'oslo_rpc_server_ping')
try:
    client.call(ctxt, 'fail', message='bad from go')
    out['fail'] = 'no exception'
except ValueError as exc:
    out['fail'] = 'ValueError: ' + str(exc).splitlines()[0]
try:
    client.call(ctxt, 'nosuch')
    out['nosuch'] = 'no exception'
except om.RemoteError as exc:
    out['nosuch'] = exc.exc_type
client.cast(ctxt, 'echo', x=1)
client.prepare(fanout=True).cast(ctxt, 'echo', x=2)
transport.cleanup()
print(json.dumps(out), flush=True)
os._exit(0)  # at once: oslo's helper threads would delay a normal exit
`

// TestInteropServePythonClient serves a Python oslo.messaging client
// with omsg serve over RabbitMQ.
func TestInteropServePythonClient(t *testing.T) {
	url, _ := interopBroker(t)
	t.Parallel()
	exchange, topic := interopNames()
	s := startServe(t, "--url", url, "--exchange", exchange, "--topic", topic, "--server", "go1", "--namespace", "omsg", "--version", "1.3")

	// omsg call, over RabbitMQ too.
	code, out, errOut := runCmd(t, "call", "--url", url, "--exchange", exchange, "--topic", topic, "--namespace", "omsg", "--timeout", "15s", "ping")
	if code != exitOK || out != `"pong"`+"\n" || errOut != "" {
		t.Errorf("omsg call ping over RabbitMQ = exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	var got map[string]any
	pyinterop.RunJSON(t, pythonClient, map[string]string{"url": url, "exchange": exchange, "topic": topic, "server": "go1"}, &got)
	want := map[string]any{
		"ping":      "pong",
		"echo":      map[string]any{"n": json.Number("5"), "s": "hello", "l": []any{json.Number("1"), json.Number("2")}, "d": map[string]any{"k": nil}, "u": "é✓"},
		"sleep":     json.Number("0.1"),
		"to_server": "pong",
		"oslo_ping": "pong",
		"fail":      "ValueError: bad from go",
		"nosuch":    "NoSuchMethod",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the Python client got %v\nwant %v", got, want)
	}

	r := s.waitRequest(t, "the Python echo call", func(r reqLine) bool { return r.Method == "echo" && r.Kind == "call" })
	if !eqp(r.Namespace, strp("omsg")) || !eqp(r.Version, strp("1.1")) || r.Context["user_id"] != "py-user" ||
		r.Context["auth_token"] != "***" || r.Args["u"] != "é✓" {
		t.Errorf("echo request line = %s", r.raw)
	}
	if v, ok := r.Context["client_timeout"]; !ok || v != nil {
		t.Errorf("echo request line has client_timeout %v (present %v), want null", v, ok)
	}
	for _, x := range []json.Number{"1", "2"} {
		r := s.waitRequest(t, "the Python cast x="+string(x), func(r reqLine) bool { return r.Kind == "cast" && r.Args["x"] == x })
		if r.Method != "echo" || r.Context["user_id"] != "py-user" {
			t.Errorf("cast request line = %s", r.raw)
		}
	}
	r = s.waitRequest(t, "the Python oslo ping", func(r reqLine) bool { return r.Method == "oslo_rpc_server_ping" })
	if r.Namespace != nil || r.Version != nil {
		t.Errorf("oslo ping request line = %s, want null namespace and version", r.raw)
	}
	if all := s.stdout.String() + s.stderr.String(); strings.Contains(all, "py-secret-token") || strings.Contains(all, "guest:guest") {
		t.Errorf("omsg serve printed a secret:\n%s", all)
	}
}

// pythonServer is a Python oslo.messaging RPC server whose endpoint, at
// version 2.3, adds, raises, returns parts of its context and prints
// the casts it gets. It stops when its stdin closes, and exits on its
// own after two minutes.
const pythonServer = `
import json, os, sys, threading
threading.Timer(120, lambda: os._exit(3)).start()
from oslo_config import cfg
cfg.CONF([], project='omsg-interop')
import oslo_messaging as om
url, exchange, topic, server = sys.argv[1:5]
transport = om.get_rpc_transport(cfg.CONF, url=url)
class Endpoint(object):
    target = om.Target(version='2.3')
    def add(self, ctxt, a, b):
        return a + b
    def boom(self, ctxt):
        raise ValueError('boom from python')
    def whoami(self, ctxt):
        return {'user_id': ctxt.get('user_id'), 'request_id': ctxt.get('request_id'), 'text': '\u00e9\u2713'}
    def record(self, ctxt, **kwargs):
        print('CAST ' + json.dumps(kwargs, sort_keys=True), flush=True)
target = om.Target(exchange=exchange, topic=topic, server=server)
srv = om.get_rpc_server(transport, target, [Endpoint()], executor='threading')
srv.start()
print('READY', flush=True)
sys.stdin.read()
srv.stop()
srv.wait()
transport.cleanup()
os._exit(0)
`

// TestInteropCallPythonServer calls and casts to a Python oslo.messaging
// server with omsg call and omsg cast over RabbitMQ.
func TestInteropCallPythonServer(t *testing.T) {
	url, py := interopBroker(t)
	t.Parallel()
	exchange, topic := interopNames()
	p := startPython(t, py, pythonServer, url, exchange, topic, "py1")
	p.stdout.wait(t, "the Python server's READY", p.exited, func(l string) bool { return l == "READY" })

	base := []string{"--url", url, "--exchange", exchange, "--topic", topic, "--timeout", "15s"}
	call := func(args ...string) []string { return append(append([]string{"call"}, base...), args...) }
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string // prefix
	}{
		{call("--version", "2.0", "add", "a=2", "b=3"), exitOK, "5\n", ""},
		{call("--server", "py1", "--version", "2.3", "add", `a="x"`, "b=y"), exitOK, `"xy"` + "\n", ""},
		{call("--version", "2.1", "add", "a=[1]", "b=[2,{\"k\":null}]"), exitOK, `[1,2,{"k":null}]` + "\n", ""},
		{call("--version", "2.0", "--context", `{"user_id": "u-go", "request_id": "req-go", "auth_token": "tok"}`, "whoami"),
			exitOK, `{"user_id":"u-go","request_id":"req-go","text":"é✓"}` + "\n", ""},
		{call("--version", "2.0", "boom"), exitFailure, "", "remote error: builtins.ValueError: boom from python\n"},
		{call("--version", "2.0", "add", "a=1"), exitFailure, "", "remote error: builtins.TypeError: "},
		{call("--version", "2.0", "nosuch"), exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method nosuch\n"},
		{call("--version", "3.0", "add", "a=1", "b=2"), exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 3.0. Attempted method: add\n"},
		{call("add", "a=1", "b=2"), exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 1.0. Attempted method: add\n"},
		{[]string{"call", "--url", url, "--exchange", exchange, "--topic", topic + "_nobody", "--timeout", "1s", "add"}, exitUnavailable, "",
			"omsg call: timed out after 1s (--timeout) waiting for a reply to add from <Target exchange=" + exchange + ", topic=" + topic + "_nobody>\n"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || out != tc.stdout || !strings.HasPrefix(errOut, tc.stderr) || tc.stderr == "" && errOut != "" {
			t.Errorf("omsg %q = exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q...",
				tc.args[len(base)+1:], code, out, errOut, tc.code, tc.stdout, tc.stderr)
		}
	}

	cast := func(args ...string) {
		t.Helper()
		code, out, errOut := runCmd(t, append(append([]string{"cast"}, base...), args...)...)
		if code != exitOK || out != "" || !strings.HasPrefix(errOut, "omsg cast: sent record to <Target exchange="+exchange) {
			t.Errorf("omsg cast %q = exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	cast("--version", "2.0", "record", "x=1", "s=hello")
	p.stdout.wait(t, "the Python server's record of the cast", p.exited, func(l string) bool {
		return l == `CAST {"s": "hello", "x": 1}`
	})
	cast("--fanout", "--version", "2.0", "record", "x=2")
	p.stdout.wait(t, "the Python server's record of the fanout cast", p.exited, func(l string) bool {
		return l == `CAST {"x": 2}`
	})
}
