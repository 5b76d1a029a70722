package main

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/internal/brokertest"
	"github.com/go-oslo/messaging/internal/pyinterop"
)

func TestBenchRewriteArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"rpc-server", "rpc-server"},
		{"-tp t -s s rpc-server -w 1", "--topic t -s s rpc-server -w 1"},
		{"-tp=t rpc-server", "--topic=t rpc-server"},
		{"-tg a.b rpc-client -p 2", "--targets=a.b rpc-client -p 2"},
		{"-tg a.b c.d e rpc-client", "--targets=a.b,c.d,e rpc-client"},
		{"-tg a.b c.d -l 5 rpc-client", "--targets=a.b,c.d -l 5 rpc-client"},
		{"--targets a.b c.d raw rpc-client", "--targets=a.b,c.d raw rpc-client"},
		{"--targets=a.b,c.d rpc-client", "--targets=a.b,c.d rpc-client"},
		{"-tg=a.b rpc-client", "--targets=a.b rpc-client"},
		{"-tg rpc-client", "--targets= rpc-client"},
		{"raw -tp t -tg a.b notify-client", "raw --topic t --targets=a.b notify-client"},
		{"rpc-client -- -tp", "rpc-client -- -tp"},
		{"-d -tg a.b compare", "-d --targets=a.b compare"},
	}
	for _, tc := range tests {
		if got := strings.Join(rewriteBenchArgs(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("rewriteBenchArgs(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		in   string // substring of stdout+stderr
	}{
		{[]string{"bench"}, exitUsage, "Usage:\n  omsg bench [global flags] MODE [mode flags]"},
		{[]string{"bench", "--help"}, exitOK, "Examples:\n  omsg bench --url"},
		{[]string{"bench", "--help"}, exitOK, "-tp is\n--topic"},
		{[]string{"help", "bench"}, exitOK, "Available Commands:\n  batch-notify-server"},
		{[]string{"help"}, exitOK, "\n  bench       "},
		{[]string{"bench", "-tp", "x", "rpc-client", "--help"}, exitOK, "--exit-wait SECONDS"},
		{[]string{"bench", "raw", "--help"}, exitOK, "rpc-client"},
		{[]string{"bench", "raw"}, exitUsage, "Usage:\n  omsg bench raw MODE"},
		{[]string{"bench", "nosuch"}, exitUsage, `omsg bench: unknown mode "nosuch"`},
		{[]string{"bench", "raw", "nosuch"}, exitUsage, `omsg bench raw: unknown mode "nosuch"`},
		{[]string{"bench", "--bogus", "rpc-server"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"bench", "rpc-server", "-p", "2"}, exitUsage, "unknown shorthand flag: 'p'"},
		{[]string{"bench", "rpc-client", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{[]string{"bench", "rpc-client", "-p", "0"}, exitUsage, "-p 0: want at least one sender"},
		{[]string{"bench", "notify-client", "-m", "0"}, exitUsage, "-m 0: want at least one message"},
		{[]string{"bench", "rpc-client", "--sync", "maybe"}, exitUsage, `--sync "maybe": want call or fanout`},
		{[]string{"bench", "rpc-client", "--timeout", "0"}, exitUsage, "--timeout must be positive"},
		{[]string{"bench", "-tg", "rpc-client"}, exitUsage, "needs at least one TOPIC.SERVER"},
		{[]string{"bench", "-tg", ".server", "rpc-client"}, exitUsage, `target ".server" has no topic`},
		{[]string{"bench", "-l", "-1", "rpc-server"}, exitUsage, "-l must not be negative"},
		{[]string{"bench", "-l", "x", "rpc-server"}, exitUsage, `invalid argument "x"`},
		{[]string{"bench", "--payload-size", "-5", "notify-client"}, exitUsage, "--payload-size must not be negative"},
		{[]string{"bench", "-tp", "", "notify-server"}, exitUsage, "--topic (-tp) must not be empty"},
		{[]string{"bench", "-s", "", "rpc-server"}, exitUsage, "--server (-s) must not be empty"},
		{[]string{"bench", "--url", "nosuch://h/", "rpc-client"}, exitUsage, "unknown driver"},
		{[]string{"bench", "--config-file", "/nonexistent.conf", "rpc-client"}, exitUsage, "configuration:"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, output %q; want exit %d containing %q", tc.args, code, out+errOut, tc.code, tc.in)
		}
	}
}

// benchCmd is an `omsg bench` running in-process.
type benchCmd struct {
	stdout, stderr *lineBuffer
	cancel         context.CancelFunc
	exited         chan struct{}
	code           int // valid once exited is closed
}

// startBench runs `omsg bench args...` in a goroutine. It is stopped,
// as by a signal, when the test ends.
func startBench(t *testing.T, args ...string) *benchCmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	b := &benchCmd{stdout: newLineBuffer(), stderr: newLineBuffer(), cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(b.exited)
		b.code = run(ctx, append([]string{"bench"}, args...), b.stdout, b.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.exited:
		case <-time.After(waitTimeout):
			t.Errorf("omsg bench %q did not stop within %v", args, waitTimeout)
		}
	})
	return b
}

// startBenchServer starts a server mode and waits for its readiness.
func startBenchServer(t *testing.T, args ...string) *benchCmd {
	t.Helper()
	b := startBench(t, args...)
	b.stderr.wait(t, "the readiness line", b.exited, func(l string) bool { return l == "omsg bench: ready" })
	return b
}

// wait waits for the command to exit by itself and returns its code.
func (b *benchCmd) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-b.exited:
		return b.code
	case <-time.After(waitTimeout):
		t.Fatalf("omsg bench did not exit within %v\nstdout:\n%s\nstderr:\n%s", waitTimeout, b.stdout, b.stderr)
		return 0
	}
}

// stop stops the command, as a signal does, and returns its code.
func (b *benchCmd) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	return b.wait(t)
}

// benchJSON is the part of the -j file the tests read.
type benchJSON struct {
	Series  map[string][]map[string]float64 `json:"series"`
	Summary json.RawMessage                 `json:"summary"`
	Process struct {
		CPUSeconds  float64 `json:"cpu_seconds"`
		WallSeconds float64 `json:"wall_seconds"`
		Messages    int64   `json:"messages"`
		MaxRSS      int64   `json:"max_rss_bytes"`
	} `json:"process"`
}

// summaryJSON is a summary of the -j file.
type summaryJSON struct {
	Count   int64    `json:"count"`
	Size    int64    `json:"size"`
	Latency *float64 `json:"latency"`
	P99     *float64 `json:"p99_latency"`
	FirstTS *float64 `json:"first_ts"`
}

func readBenchJSON(t *testing.T, name string) benchJSON {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var j benchJSON
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, data)
	}
	return j
}

func (j benchJSON) server(t *testing.T) summaryJSON {
	t.Helper()
	var s summaryJSON
	if err := json.Unmarshal(j.Summary, &s); err != nil {
		t.Fatalf("server summary: %v", err)
	}
	return s
}

func (j benchJSON) client(t *testing.T) map[string]summaryJSON {
	t.Helper()
	var s map[string]summaryJSON
	if err := json.Unmarshal(j.Summary, &s); err != nil {
		t.Fatalf("client summaries: %v", err)
	}
	return s
}

// scenarioBenchRPC runs rpc-server and rpc-client, spelled as for the
// simulator: the server stops by itself after the client's --sync.
func scenarioBenchRPC(t *testing.T, url string) {
	dir := t.TempDir()
	sj, cj := filepath.Join(dir, "server.json"), filepath.Join(dir, "client.json")
	srv := startBenchServer(t, "--url", url, "-tp", "bench_topic", "-s", "host1", "-j", sj, "rpc-server", "-e", "eventlet")
	cli := startBench(t, "--url", url, "-tg", "bench_topic.host1", "bench_topic", "-j", cj, "--payload-size", "100",
		"rpc-client", "-p", "2", "-m", "5", "--sync", "call")
	if code := cli.wait(t); code != exitOK {
		t.Fatalf("client: exit %d\nstdout:\n%s\nstderr:\n%s", code, cli.stdout, cli.stderr)
	}
	if code := srv.wait(t); code != exitOK {
		t.Fatalf("server: exit %d\nstdout:\n%s\nstderr:\n%s", code, srv.stdout, srv.stderr)
	}
	for _, want := range []string{"client: duration: ", " count: 10 (", "error: duration: 0.00 count: 0 ", "round-trip: duration: ", " p99: ", "process: cpu: "} {
		if !strings.Contains(cli.stdout.String(), want) {
			t.Errorf("client summary lacks %q:\n%s", want, cli.stdout)
		}
	}
	if !strings.Contains(srv.stdout.String(), "server: duration: ") || !strings.Contains(srv.stdout.String(), " count: 10 (") {
		t.Errorf("server summary:\n%s", srv.stdout)
	}
	c := readBenchJSON(t, cj)
	sums := c.client(t)
	if sums["client"].Count != 10 || sums["round_trip"].Count != 10 || sums["error"].Count != 0 ||
		sums["client"].Size != 1000 || sums["round_trip"].Latency == nil || sums["round_trip"].P99 == nil {
		t.Errorf("client summaries = %+v", sums)
	}
	if got := slices.Sorted(maps.Keys(c.Series)); !slices.Equal(got, []string{"client_0", "client_1", "error_0", "error_1", "round_trip_0", "round_trip_1"}) {
		t.Errorf("client series = %v", got)
	}
	if c.Process.Messages != 10 || c.Process.WallSeconds <= 0 || c.Process.MaxRSS <= 0 {
		t.Errorf("client process = %+v", c.Process)
	}
	s := readBenchJSON(t, sj)
	if sum := s.server(t); sum.Count != 10 || sum.Size != 1000 || sum.Latency == nil || sum.FirstTS == nil {
		t.Errorf("server summary = %+v", sum)
	}
	if s.Process.Messages != 10 {
		t.Errorf("server process = %+v", s.Process)
	}
}

// scenarioBenchFanout runs two rpc-servers and a client casting to
// their fanout; --sync fanout stops both.
func scenarioBenchFanout(t *testing.T, url string) {
	dir := t.TempDir()
	var servers []*benchCmd
	for _, name := range []string{"s1", "s2"} {
		servers = append(servers, startBenchServer(t, "--url", url, "--topic", "fan", "--server", name,
			"--json", filepath.Join(dir, name+".json"), "rpc-server"))
	}
	cli := startBench(t, "--url", url, "--targets", "fan.s1", "rpc-client", "--threads", "2", "--messages", "4",
		"--is-cast", "--is-fanout", "--sync", "fanout")
	if code := cli.wait(t); code != exitOK {
		t.Fatalf("client: exit %d\nstdout:\n%s\nstderr:\n%s", code, cli.stdout, cli.stderr)
	}
	if strings.Contains(cli.stdout.String(), "round-trip") {
		t.Errorf("casts have a round-trip summary:\n%s", cli.stdout)
	}
	for i, srv := range servers {
		if code := srv.wait(t); code != exitOK {
			t.Fatalf("server %d: exit %d\nstderr:\n%s", i+1, code, srv.stderr)
		}
		if sum := readBenchJSON(t, filepath.Join(dir, []string{"s1", "s2"}[i]+".json")).server(t); sum.Count != 8 {
			t.Errorf("server %d received %d, want 8", i+1, sum.Count)
		}
	}
}

// scenarioBenchNotify sends notifications first, then a listener that
// runs for a few seconds takes them from their queue.
func scenarioBenchNotify(t *testing.T, url string) {
	dir := t.TempDir()
	sj := filepath.Join(dir, "server.json")
	// The notifier declares the queue, so that nothing is lost before
	// the listener starts.
	code, out, errOut := runCmd(t, "bench", "--url", url, "-tp", "bench_events", "notify-client", "-p", "2", "-m", "3")
	if code != exitOK || !strings.Contains(out, " count: 6 (") {
		t.Fatalf("notify-client: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	srv := startBenchServer(t, "--url", url, "-tp", "bench_events", "-l", "3", "-j", sj, "notify-server")
	if code := srv.wait(t); code != exitOK {
		t.Fatalf("notify-server: exit %d\nstderr:\n%s", code, srv.stderr)
	}
	if sum := readBenchJSON(t, sj).server(t); sum.Count != 6 || sum.Latency == nil {
		t.Errorf("server summary = %+v, want 6 notifications with latencies", sum)
	}
}

func TestBenchRPC(t *testing.T)    { scenarioBenchRPC(t, memURL(t)) }
func TestBenchFanout(t *testing.T) { scenarioBenchFanout(t, memURL(t)) }
func TestBenchNotify(t *testing.T) { scenarioBenchNotify(t, memURL(t)) }

func TestRabbitBenchRPC(t *testing.T)    { scenarioBenchRPC(t, rabbitVhost(t)) }
func TestRabbitBenchFanout(t *testing.T) { scenarioBenchFanout(t, rabbitVhost(t)) }
func TestRabbitBenchNotify(t *testing.T) { scenarioBenchNotify(t, rabbitVhost(t)) }

func TestBenchServerStopsOnSignal(t *testing.T) {
	url := memURL(t)
	srv := startBenchServer(t, "--url", url, "batch-notify-server")
	if code := srv.stop(t); code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, srv.stderr)
	}
	if !strings.Contains(srv.stdout.String(), "server: duration: 0.00 count: 0 ") {
		t.Errorf("summary:\n%s", srv.stdout)
	}
}

func TestBenchClientFailures(t *testing.T) {
	// Nobody serves the target: every call times out, so nothing could
	// be sent.
	code, out, errOut := runCmd(t, "bench", "--url", memURL(t), "-tg", "nobody.here", "rpc-client", "-m", "2", "--timeout", "0.05")
	if code != exitFailure || !strings.Contains(errOut, "nothing could be sent: 2 of 2 messages failed") ||
		!strings.Contains(out, "error: duration: ") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// The broker cannot be reached.
	code, _, errOut = runCmd(t, "bench", "--url", "rabbit://guest:guest@127.0.0.1:1/", "notify-client")
	if code != exitUnavailable || !strings.Contains(errOut, "broker unreachable") {
		t.Errorf("unreachable broker: exit %d, stderr:\n%s", code, errOut)
	}
	// The -j file cannot be written.
	code, _, errOut = runCmd(t, "bench", "--url", memURL(t), "-tp", "t", "-j", filepath.Join(t.TempDir(), "no", "such.json"), "notify-client")
	if code != exitFailure || !strings.Contains(errOut, "such.json") {
		t.Errorf("unwritable -j: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestBenchURLPrecedence(t *testing.T) {
	const refused = "rabbit://guest:guest@127.0.0.1:1/"
	conf := writeConf(t, "bench.conf", "[DEFAULT]\ntransport_url = "+refused+"\n")
	t.Setenv(urlEnv, refused)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--config-file", conf}, exitUnavailable},            // the file
		{[]string{"--config-file", conf, "--url", memURL(t)}, exitOK}, // --url over the file
		{nil, exitUnavailable},                 // the environment
		{[]string{"--url", memURL(t)}, exitOK}, // --url over the environment
		{[]string{"--config-file", writeConf(t, "empty.conf", "")}, exitUnavailable}, // no transport_url: the environment
	} {
		args := append(append([]string{"bench"}, tc.args...), "-tp", "prec", "notify-client")
		code, out, errOut := runCmd(t, args...)
		if code != tc.code {
			t.Errorf("omsg %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, tc.code, out, errOut)
		}
		if code == exitUnavailable && !strings.Contains(errOut, "127.0.0.1:1") {
			t.Errorf("omsg %q: stderr does not name the URL used:\n%s", args, errOut)
		}
	}
	t.Setenv(urlEnv, memURL(t))
	if code, _, errOut := runCmd(t, "bench", "-tp", "prec", "notify-client"); code != exitOK {
		t.Errorf("$%s: exit %d\n%s", urlEnv, code, errOut)
	}
}

// pyBenchClient calls info on profiler_topic.profiler_server as
// simulator.py's RPCClient does, with the Message namedtuple, then
// reports to the server's control endpoint as with --sync call.
const pyBenchClient = `
import collections, json, os, sys, time
from oslo_config import cfg
cfg.CONF([], project='omsg-bench-interop')
import oslo_messaging as om
p = json.load(sys.stdin)
Message = collections.namedtuple('Message', ['seq', 'cargo', 'client_ts', 'server_ts', 'return_ts'])
transport = om.get_rpc_transport(cfg.CONF, url=p['url'])
client = om.get_rpc_client(transport, om.Target(topic='profiler_topic', server='profiler_server'))
client = client.prepare(timeout=15)
out = []
client.call({}, 'sync_start', message={'id': 'py-0 1@test'})
for seq in range(4):
    msg = Message(seq, 'abcdefghij' * (seq + 1), time.time(), 0, 0)
    res = client.call({}, 'info', message=msg)
    out.append({'sent': list(msg), 'reply': res, 'returned': time.time()})
client.call({}, 'sync_done', message={'id': 'py-0 1@test'})
transport.cleanup()
json.dump(out, sys.stdout)
sys.stdout.flush()
# oslo's threads would hold the interpreter for seconds.
os._exit(0)
`

func TestInteropBenchPythonClient(t *testing.T) {
	pyinterop.Python(t)
	url, _ := brokertest.Vhost(t, "omsg-bench-py")
	sj := filepath.Join(t.TempDir(), "server.json")
	srv := startBenchServer(t, "--url", url, "-j", sj, "rpc-server")
	var out []struct {
		Sent     []any   `json:"sent"`
		Reply    []any   `json:"reply"`
		Returned float64 `json:"returned"`
	}
	pyinterop.RunJSON(t, pyBenchClient, map[string]string{"url": url}, &out)
	if len(out) != 4 {
		t.Fatalf("python made %d calls, want 4", len(out))
	}
	num := func(v any) float64 {
		n, _ := v.(json.Number).Float64()
		return n
	}
	for i, c := range out {
		if len(c.Reply) != 5 || len(c.Sent) != 5 {
			t.Fatalf("call %d: sent %v, reply %v: want the 5 fields of Message", i, c.Sent, c.Reply)
		}
		clientTS, serverTS := num(c.Sent[2]), num(c.Reply[3])
		if num(c.Reply[0]) != float64(i) || c.Reply[1] != c.Sent[1] || num(c.Reply[2]) != clientTS || num(c.Reply[4]) != 0 {
			t.Errorf("call %d: reply %v to %v: want the message with server_ts set", i, c.Reply, c.Sent)
		}
		// Same host, same clock: received after sent, before returned.
		if serverTS < clientTS || serverTS > c.Returned {
			t.Errorf("call %d: server_ts %v outside [client_ts %v, return %v]", i, serverTS, clientTS, c.Returned)
		}
	}
	// sync_done: the server stops by itself.
	if code := srv.wait(t); code != exitOK {
		t.Fatalf("server: exit %d\nstderr:\n%s", code, srv.stderr)
	}
	if sum := readBenchJSON(t, sj).server(t); sum.Count != 4 || sum.Size != 10+20+30+40 || sum.Latency == nil {
		t.Errorf("server summary = %+v, want 4 messages of 100 characters with latencies", sum)
	}
}

// pyBenchServer serves info as simulator.py's RpcEndpoint does, on
// profiler_topic.profiler_server, until its stdin is closed.
const pyBenchServer = `
import collections, os, sys, time
from oslo_config import cfg
cfg.CONF([], project='omsg-bench-interop')
import oslo_messaging as om
Message = collections.namedtuple('Message', ['seq', 'cargo', 'client_ts', 'server_ts', 'return_ts'])
class RpcEndpoint:
    def info(self, ctxt, message):
        return Message(*message)._replace(server_ts=time.time())
transport = om.get_rpc_transport(cfg.CONF, url=sys.argv[1])
target = om.Target(topic='profiler_topic', server='profiler_server')
server = om.get_rpc_server(transport, target, [RpcEndpoint()], executor='threading')
server.start()
print('ready', flush=True)
sys.stdin.read()
server.stop()
server.wait()
transport.cleanup()
sys.stdout.flush()
os._exit(0)
`

func TestInteropBenchPythonServer(t *testing.T) {
	py := pyinterop.Python(t)
	url, _ := brokertest.Vhost(t, "omsg-bench-py")
	p := startPython(t, py, pyBenchServer, url)
	p.stdout.wait(t, "the Python server's readiness", p.exited, func(l string) bool { return l == "ready" })
	cj := filepath.Join(t.TempDir(), "client.json")
	code, out, errOut := runCmd(t, "bench", "--url", url, "-j", cj, "rpc-client", "-p", "2", "-m", "5")
	if code != exitOK {
		t.Fatalf("rpc-client: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	j := readBenchJSON(t, cj)
	sums := j.client(t)
	if sums["round_trip"].Count != 10 || sums["error"].Count != 0 || sums["client"].Count != 10 || sums["round_trip"].Latency == nil {
		t.Errorf("summaries = %+v, want 10 round trips with latencies and no error", sums)
	}
	for _, s := range []string{"round_trip_0", "round_trip_1"} {
		var n float64
		for _, p := range j.Series[s] {
			n += p["count"]
		}
		if n != 5 {
			t.Errorf("%s counts %v round trips, want 5", s, n)
		}
	}
}
