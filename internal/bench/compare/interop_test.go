package compare

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/internal/brokertest"
	"github.com/go-oslo/messaging/internal/pyinterop"
)

// pyBench writes pybench.py to a temporary directory and returns the
// command line that runs it.
func pyBench(t *testing.T) []string {
	t.Helper()
	py := pyinterop.Python(t)
	path := filepath.Join(t.TempDir(), "pybench.py")
	if err := os.WriteFile(path, PyBench, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{py, path}
}

// runPy runs pybench.py with args to its end, bounded by a minute, and
// returns the child.
func runPy(ctx context.Context, t *testing.T, argv []string) *child {
	t.Helper()
	c, err := startChild(ctx, "pybench "+argv[len(argv)-1], argv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.wait(ctx, time.Minute); err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, c.stdout.String())
	}
	return c
}

// startPyServer starts a pybench.py server and waits until it is ready.
func startPyServer(ctx context.Context, t *testing.T, argv []string) *child {
	t.Helper()
	c, err := startChild(ctx, "pybench server", argv, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.kill()
		}
	})
	if err := c.waitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

// keysOf returns the sorted keys of the JSON object m.
func keysOf(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

var (
	statKeys    = []string{"count", "size", "duration", "count_p_s", "size_p_s"}
	timedKeys   = append(slices.Clone(statKeys), "start", "end", "first_ts", "last_ts")
	latencyKeys = append(slices.Clone(timedKeys), "latency", "min_latency", "max_latency", "p50_latency", "p90_latency", "p99_latency")
	processKeys = sorted("cpu_seconds", "wall_seconds", "messages", "cpu_s_per_msg", "max_rss_bytes")
	pointKeys   = sorted("seq", "timestamp", "count", "size")
	latPoint    = sorted("seq", "timestamp", "count", "size", "latency", "min_latency", "max_latency")
)

// checkJSON checks the document at path: its keys at the top, in
// summary (by stream when streams is set), in process and in the
// series' points, and returns it decoded.
func checkJSON(t *testing.T, path string, series []string, summaries map[string][]string) map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := keysOf(doc), sorted("series", "summary", "process"); !slices.Equal(got, want) {
		t.Errorf("%s: keys %v, want %v", path, got, want)
	}
	var ser map[string][]map[string]json.RawMessage
	if err := json.Unmarshal(doc["series"], &ser); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k, points := range ser {
		names = append(names, k)
		if len(points) == 0 {
			t.Errorf("%s: series %s is empty", path, k)
		}
		for _, p := range points {
			if got := keysOf(p); !slices.Equal(got, pointKeys) && !slices.Equal(got, latPoint) {
				t.Errorf("%s: series %s point keys %v", path, k, got)
			}
		}
	}
	if got, want := sorted(names...), sorted(series...); !slices.Equal(got, want) {
		t.Errorf("%s: series %v, want %v", path, got, want)
	}
	var sums map[string]json.RawMessage
	if err := json.Unmarshal(doc["summary"], &sums); err != nil {
		t.Fatal(err)
	}
	if want, ok := summaries[""]; ok {
		if got := keysOf(sums); !slices.Equal(got, sorted(want...)) {
			t.Errorf("%s: summary keys %v, want %v", path, got, sorted(want...))
		}
	} else {
		if got, want := keysOf(sums), sorted(keysOfMap(summaries)...); !slices.Equal(got, want) {
			t.Errorf("%s: summary streams %v, want %v", path, got, want)
		}
		for stream, want := range summaries {
			var s map[string]json.RawMessage
			if err := json.Unmarshal(sums[stream], &s); err != nil {
				t.Fatal(err)
			}
			if got := keysOf(s); !slices.Equal(got, sorted(want...)) {
				t.Errorf("%s: summary.%s keys %v, want %v", path, stream, got, sorted(want...))
			}
		}
	}
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(doc["process"], &proc); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(proc); !slices.Equal(got, processKeys) {
		t.Errorf("%s: process keys %v, want %v", path, got, processKeys)
	}
	return doc
}

func keysOfMap(m map[string][]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestInteropPyBenchRPC(t *testing.T) {
	py := pyBench(t)
	url, _ := brokertest.Vhost(t, "pybench")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srvJSON, cliJSON := filepath.Join(dir, "server.json"), filepath.Join(dir, "client.json")

	srv := startPyServer(ctx, t, append(slices.Clone(py), "--url", url, "-tp", "bench", "-s", "s1", "-j", srvJSON, "rpc-server"))
	cli := runPy(ctx, t, append(slices.Clone(py), "--url", url, "-tp", "bench", "-tg", "bench.s1", "-j", cliJSON,
		"--payload-size", "100", "rpc-client", "-p", "2", "-m", "5"))
	if err := srv.stop(time.Minute); err != nil {
		t.Fatalf("server after SIGINT: %v", err)
	}

	for _, want := range []string{"client: duration:", "round-trip: duration:", " count: 10 ", " p99: ", "process: cpu:"} {
		if !strings.Contains(cli.stdout.String(), want) {
			t.Errorf("client summary lacks %q:\n%s", want, cli.stdout.String())
		}
	}
	if !strings.Contains(srv.stdout.String(), "server: duration:") {
		t.Errorf("server summary:\n%s", srv.stdout.String())
	}
	checkJSON(t, cliJSON, []string{"client_0", "client_1", "error_0", "error_1", "round_trip_0", "round_trip_1"},
		map[string][]string{"client": timedKeys, "error": statKeys, "round_trip": latencyKeys})
	checkJSON(t, srvJSON, []string{"server"}, map[string][]string{"": latencyKeys})

	c, err := readClient(cliJSON)
	if err != nil {
		t.Fatal(err)
	}
	rt := c.Summary.RoundTrip
	if c.Summary.Client.Count != 10 || c.Summary.Error.Count != 0 || rt == nil || rt.Count != 10 || rt.Size != 1000 {
		t.Errorf("client summary: sent %d, errors %d, round trips %+v; want 10, 0, 10 of 1000 bytes",
			c.Summary.Client.Count, c.Summary.Error.Count, rt)
	}
	if rt != nil && (rt.P50 == nil || rt.P99 == nil || *rt.P50 <= 0 || *rt.P99 < *rt.P50) {
		t.Errorf("round-trip percentiles p50 %v p99 %v", rt.P50, rt.P99)
	}
	if c.Process.Messages != 10 || c.Process.CPUPerMsg == nil || *c.Process.CPUPerMsg <= 0 {
		t.Errorf("client process %+v", c.Process)
	}
	s, err := readServer(srvJSON)
	if err != nil {
		t.Fatal(err)
	}
	if s.Summary.Count != 10 || s.Summary.Size != 1000 || s.Process.Messages != 10 {
		t.Errorf("server: %d messages of %d bytes (process %d), want 10 of 1000", s.Summary.Count, s.Summary.Size, s.Process.Messages)
	}
}

func TestInteropPyBenchNotify(t *testing.T) {
	py := pyBench(t)
	url, _ := brokertest.Vhost(t, "pybench")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srvJSON, cliJSON := filepath.Join(dir, "server.json"), filepath.Join(dir, "client.json")

	srv := startPyServer(ctx, t, append(slices.Clone(py), "--url", url, "-tp", "events", "-j", srvJSON, "notify-server"))
	runPy(ctx, t, append(slices.Clone(py), "--url", url, "-tp", "events", "-j", cliJSON, "notify-client", "-p", "2", "-m", "5"))

	// Notifications are one-way: wait, bounded, until the listener has
	// them all, which its SIGINT summary then reports.
	checkJSON(t, cliJSON, []string{"client_0", "client_1", "error_0", "error_1"},
		map[string][]string{"client": timedKeys, "error": statKeys})
	c, err := readClient(cliJSON)
	if err != nil {
		t.Fatal(err)
	}
	if c.Summary.Client.Count != 10 || c.Summary.RoundTrip != nil {
		t.Errorf("notify-client: %d sent, round trips %v; want 10 and none", c.Summary.Client.Count, c.Summary.RoundTrip)
	}
	if err := waitQueueEmpty(ctx, t, url, "events.info"); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(time.Minute); err != nil {
		t.Fatalf("server after SIGINT: %v", err)
	}
	checkJSON(t, srvJSON, []string{"server"}, map[string][]string{"": latencyKeys})
	s, err := readServer(srvJSON)
	if err != nil {
		t.Fatal(err)
	}
	if s.Summary.Count != 10 {
		t.Errorf("notify-server received %d, want 10", s.Summary.Count)
	}
	// The simulator's cargos: lengths from its distribution.
	if avg := s.Summary.Size / 10; avg < 501 || avg > 11500 {
		t.Errorf("average cargo %d characters, outside the simulator's distribution", avg)
	}
}

// waitQueueEmpty waits, for at most a minute, until queue of the virtual
// host of url has no message ready or unacknowledged.
func waitQueueEmpty(ctx context.Context, t *testing.T, url, queue string) error {
	t.Helper()
	vhost := url[strings.LastIndex(url, "/")+1:]
	b := &rabbitBroker{ctl: &rabbitctl{path: "rabbitmqctl"}, vhost: vhost}
	deadline := time.Now().Add(time.Minute)
	for {
		qs, err := b.queues(ctx, queue, nil)
		if err != nil {
			return err
		}
		if len(qs) == 1 && qs[0].name == queue && qs[0].messages == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s not empty after a minute: %+v", queue, qs)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func TestInteropPyBenchSync(t *testing.T) {
	py := pyBench(t)
	url, _ := brokertest.Vhost(t, "pybench")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	srvJSON := filepath.Join(t.TempDir(), "server.json")

	srv := startPyServer(ctx, t, append(slices.Clone(py), "--url", url, "-j", srvJSON, "rpc-server"))
	runPy(ctx, t, append(slices.Clone(py), "--url", url, "rpc-client", "-m", "3", "--sync", "call"))
	// The server stops by itself a second after the last sync_done.
	if err := srv.wait(ctx, time.Minute); err != nil {
		t.Fatalf("server with --sync: %v", err)
	}
	s, err := readServer(srvJSON)
	if err != nil {
		t.Fatal(err)
	}
	if s.Summary.Count != 3 {
		t.Errorf("server received %d info calls, want 3 (sync calls are not counted)", s.Summary.Count)
	}
}

func TestInteropPyBenchExitCodes(t *testing.T) {
	py := pyBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"rpc-client", "-p", "0"}, 64, "must be at least 1"},
		{[]string{"--payload-size", "x", "rpc-client"}, 64, "invalid number"},
		{[]string{"-tg", "a.b", "c.d"}, 64, "no mode given"},
		{[]string{"rpc-client", "--nosuch"}, 64, "unrecognized arguments: --nosuch"},
		{[]string{"--url", "rabbit://guest:guest@127.0.0.1:1/", "rpc-server"}, 2, "broker unreachable"},
	}
	for _, tc := range tests {
		c, err := startChild(ctx, "pybench", append(slices.Clone(py), tc.args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.wait(ctx, time.Minute)
		if got := c.cmd.ProcessState.ExitCode(); got != tc.code || !strings.Contains(c.stderr.String(), tc.stderr) {
			t.Errorf("pybench.py %q: exit %d, stderr %q; want %d containing %q", tc.args, got, c.stderr.String(), tc.code, tc.stderr)
		}
	}
}
