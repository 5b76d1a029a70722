package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBroker reports, for every topic, a queue whose depth falls by one
// at each look until it is empty, and logs "drained" to the fake's log
// when it first reports it empty.
type fakeBroker struct {
	depth int    // initial depth of each topic's queue; -1: never empties
	log   string // the fake's log file

	mu    sync.Mutex     // guards the fields below
	looks map[string]int // topic -> looks at its queues
}

func (b *fakeBroker) queues(_ context.Context, substr string, known []string) ([]queueStat, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.looks == nil {
		b.looks = map[string]int{}
	}
	n := b.looks[substr]
	b.looks[substr]++
	depth := b.depth - n
	if b.depth < 0 {
		depth = 7
	}
	if depth <= 0 {
		depth = 0
		if n == b.depth {
			f, err := os.OpenFile(b.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, "drained\t\t\t%s\t\n", substr)
				_ = f.Close()
			}
		}
	}
	return []queueStat{{name: known[0], messages: depth, consumers: 1}}, nil
}

func (b *fakeBroker) ready(context.Context, []string) (int, error) { return 0, nil }

func (b *fakeBroker) lookCount(topicPart string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, v := range b.looks {
		if strings.Contains(k, topicPart) {
			n += v
		}
	}
	return n
}

// fakeOptions returns Options that run this test binary as every
// program with the behaviours of spec, and the fake broker and log.
func fakeOptions(t *testing.T, spec string) (Options, *fakeBroker, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "events.log")
	b := &fakeBroker{depth: 3, log: log}
	return Options{
		URL:           "rabbit://guest:guest@127.0.0.1:5672/",
		Duration:      time.Second,
		PayloadSize:   512,
		Omsg:          exe,
		Python:        exe,
		ReadyTimeout:  20 * time.Second,
		ClientTimeout: 20 * time.Second,
		DrainTimeout:  20 * time.Second,
		StopTimeout:   20 * time.Second,
		broker:        b,
		// The race detector waits a second before a process exits, by
		// default: the fake servers must stop at once.
		env: []string{fakeEnv + "=" + spec, fakeLogEnv + "=" + log, "GORACE=atexit_sleep_ms=0"},
	}, b, log
}

// event is a line of the fake's log.
type event struct{ name, system, mode, topic, detail string }

func readEvents(t *testing.T, path string) []event {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event
	for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.SplitN(line, "\t", 5)
		if len(f) != 5 {
			t.Fatalf("bad event line %q", line)
		}
		evs = append(evs, event{f[0], f[1], f[2], f[3], f[4]})
	}
	return evs
}

func runFake(t *testing.T, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestRunFakePrograms(t *testing.T) {
	o, b, log := fakeOptions(t, "")
	o.Scenarios = []string{"call", "fanout"}
	var progress bytes.Buffer
	o.Progress = &progress
	rep := runFake(t, o)

	if rep.Failed() {
		t.Fatalf("cells failed: %+v", rep.Cells)
	}
	if len(rep.Cells) != 6 {
		t.Fatalf("%d cells, want 6 (2 scenarios × 3 systems)", len(rep.Cells))
	}
	if !rep.Python.Ran || rep.Machine.OsloMessaging != "14.0.3" {
		t.Errorf("Python = %+v, oslo %q; want run, 14.0.3", rep.Python, rep.Machine.OsloMessaging)
	}
	want := map[string]func(float64) float64{
		"calls/s": fakeCallRate, "p50 latency": fakeP50, "p99 latency": fakeP99,
		"client CPU/msg": fakeClientCPU, "server CPU/msg": fakeServerCPU,
		"publishes/s":  fakeSendRate,
		"deliveries/s": func(f float64) float64 { return 3 * fakeServerRate(f) },
	}
	if len(rep.Rows) != 7 {
		t.Fatalf("%d rows, want 7: %+v", len(rep.Rows), rep.Rows)
	}
	for _, row := range rep.Rows {
		fn := want[row.Metric]
		for _, sys := range systems {
			if got, w := row.Values[sys], fn(fakeFactor[sys]); !near(got, w) {
				t.Errorf("%s %s %s = %v, want %v", row.Scenario, row.Metric, sys, got, w)
			}
		}
		wr := fn(fakeFactor[Ours]) / fn(fakeFactor[Raw])
		wp := fn(fakeFactor[Ours]) / fn(fakeFactor[Python])
		if row.OursToRaw == nil || !near(*row.OursToRaw, wr) || row.OursToPython == nil || !near(*row.OursToPython, wp) {
			t.Errorf("%s %s ratios = %v, %v; want %v, %v", row.Scenario, row.Metric, row.OursToRaw, row.OursToPython, wr, wp)
		}
	}

	// Every server was started, was interrupted after its queues had
	// drained, and the client got the contract's flags.
	evs := readEvents(t, log)
	drained := map[string]int{}
	starts := map[string]int{}
	for i, e := range evs {
		switch e.name {
		case "drained":
			drained[e.topic] = i
		case "start":
			starts[e.system+" "+e.mode]++
			if strings.HasSuffix(e.mode, "client") {
				for _, w := range []string{"-l 1 ", "--payload-size 512 ", "-tg " + e.topic + ".s1 "} {
					if !strings.Contains(e.detail, w) {
						t.Errorf("client command line %q lacks %q", e.detail, w)
					}
				}
				if strings.Contains(e.topic, "fanout") && !strings.HasSuffix(e.detail, "rpc-client -p 1 --is-cast --is-fanout") {
					t.Errorf("fanout client command line %q", e.detail)
				}
			}
		case "sigint":
			d, ok := drained[e.topic]
			if !ok || d > i {
				t.Errorf("server %s %s interrupted before its queues drained", e.system, e.topic)
			}
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	for _, sys := range systems {
		if n := starts[string(sys)+" rpc-server"]; n != 4 {
			t.Errorf("%s: %d servers started, want 4 (1 + 3)", sys, n)
		}
		if n := starts[string(sys)+" rpc-client"]; n != 2 {
			t.Errorf("%s: %d clients started, want 2", sys, n)
		}
	}
	if n := b.lookCount("_call_"); n < 3*4 {
		t.Errorf("call queues looked at %d times, want at least 12 (4 per cell)", n)
	}
	if !strings.Contains(progress.String(), "omsg bench compare: fanout: python: done in") {
		t.Errorf("progress lacks the end of the last cell:\n%s", progress.String())
	}
}

func TestRunFakeFailures(t *testing.T) {
	tests := []struct {
		name   string
		spec   string
		system System
		status Status
		errHas string
		tweak  func(*Options)
	}{
		{"never ready", "ours:never-ready", Ours, StatusFailed, "server s1 not ready within 1s", func(o *Options) { o.ReadyTimeout = time.Second }},
		{"ignores SIGINT", "raw:ignore-int", Raw, StatusFailed, "server s1 did not stop within 3s of SIGINT: killed", func(o *Options) { o.StopTimeout = 3 * time.Second }},
		{"no JSON", "python:no-json", Python, StatusFailed, "server s1: no JSON statistics written", nil},
		{"client hangs", "ours:client-hang", Ours, StatusFailed, "client still running after 3s: killed", func(o *Options) { o.ClientTimeout = time.Second }},
		{"client fails", "raw:client-fail", Raw, StatusFailed, "client exit status 1: fake: no message could be sent", nil},
		{"no oslo", "python:no-oslo", Python, StatusNotRun, "Python not run: ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, _, _ := fakeOptions(t, tc.spec)
			o.Scenarios = []string{"call"}
			if tc.tweak != nil {
				tc.tweak(&o)
			}
			rep := runFake(t, o)
			for _, c := range rep.Cells {
				if c.System != tc.system {
					if c.Status != StatusOK {
						t.Errorf("%s: %s (%s), want ok", c.System, c.Status, c.Error)
					}
					continue
				}
				if c.Status != tc.status || !strings.Contains(c.Error, tc.errHas) {
					t.Errorf("%s: %s (%q), want %s containing %q", c.System, c.Status, c.Error, tc.status, tc.errHas)
				}
			}
			if got, want := rep.Failed(), tc.status == StatusFailed; got != want {
				t.Errorf("Failed() = %v, want %v", got, want)
			}
			var md bytes.Buffer
			if err := rep.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			want := []string{"failed [1]", "1. call/" + string(tc.system) + " failed: " + tc.errHas}
			if tc.status == StatusNotRun {
				want = []string{"| not run |", "python = not run: " + o.Python + " cannot import oslo_messaging"}
			}
			for _, w := range want {
				if !strings.Contains(md.String(), w) {
					t.Errorf("table lacks %q:\n%s", w, md.String())
				}
			}
		})
	}
}

func TestRunFakeDrainTimeout(t *testing.T) {
	o, b, _ := fakeOptions(t, "")
	o.Scenarios = []string{"cast"}
	o.DrainTimeout = 500 * time.Millisecond
	b.depth = -1
	rep := runFake(t, o)
	for _, c := range rep.Cells {
		if c.Status != StatusOK {
			t.Errorf("%s: %s (%s), want ok: a slow drain is a note", c.System, c.Status, c.Error)
		}
		if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "7 messages still queued 500ms after the client ended") {
			t.Errorf("%s: notes %q, want the queued messages", c.System, c.Notes)
		}
	}
}

func TestRunFakeSimulator(t *testing.T) {
	o, _, log := fakeOptions(t, "")
	o.Scenarios = []string{"call", "notify"}
	o.Simulator = filepath.Join(t.TempDir(), "simulator.py")
	if err := os.WriteFile(o.Simulator, []byte("# not run: the fake stands in\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := runFake(t, o)
	if rep.Failed() {
		t.Fatalf("cells failed: %+v", rep.Cells)
	}
	c := rep.cell("call", Python)
	if !c.Approximate {
		t.Error("simulator's call cell not marked approximate")
	}
	if got, want := c.Values["calls/s"], fakeCallRate(1); !near(got, want) {
		t.Errorf("simulator calls/s = %v, want %v (count over -l)", got, want)
	}
	for _, m := range []string{"p50 latency", "client CPU/msg"} {
		if _, ok := c.Values[m]; ok {
			t.Errorf("simulator has %s", m)
		}
	}
	if got, want := rep.cell("notify", Python).Values["notifications/s delivered"], fakeSimServerRate(1); !near(got, want) {
		t.Errorf("simulator notifications/s = %v, want %v (count_p_s)", got, want)
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"| ≈100 | 2.00× |", "| — | — |", "≈: simulator.py reports no exact timestamps"} {
		if !strings.Contains(md.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, md.String())
		}
	}
	for _, e := range readEvents(t, log) {
		if e.system == string(Python) && e.name == "start" && strings.Contains(e.detail, "--payload-size") {
			t.Errorf("simulator.py given --payload-size: %q", e.detail)
		}
	}
}

func TestRunCancelled(t *testing.T) {
	o, _, _ := fakeOptions(t, "ours:client-hang")
	o.Scenarios = []string{"call", "cast"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var progress syncBuffer
	progress.onWrite = func(s string) {
		if strings.Contains(s, "call: ours...") {
			// Cancel while the client of ours hangs.
			time.AfterFunc(500*time.Millisecond, cancel)
		}
	}
	o.Progress = &progress
	start := time.Now()
	rep, err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Minute {
		t.Errorf("Run took %v after cancellation", time.Since(start))
	}
	if rep == nil || len(rep.Cells) != 6 {
		t.Fatalf("report %+v, want 6 cells", rep)
	}
	if c := rep.cell("cast", Raw); c.Status != StatusNotRun || c.Error != "interrupted" {
		t.Errorf("cast/raw = %s %q, want not run, interrupted", c.Status, c.Error)
	}
	if c := rep.cell("call", Ours); c.Status != StatusFailed {
		t.Errorf("call/ours = %s %q, want failed", c.Status, c.Error)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use that calls
// onWrite with every write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onWrite != nil {
		s.onWrite(string(p))
	}
	return s.b.Write(p)
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*Options)
		want  string
	}{
		{"no URL", func(o *Options) { o.URL = "" }, "no broker URL"},
		{"bad URL", func(o *Options) { o.URL = "rabbit://h:bad/" }, "invalid transport URL"},
		{"not RabbitMQ", func(o *Options) { o.URL = "memory://" }, "memory:// is not RabbitMQ"},
		{"negative duration", func(o *Options) { o.Duration = -time.Second }, "negative duration"},
		{"payload", func(o *Options) { o.PayloadSize = MaxPayloadSize + 1 }, "payload size"},
		{"scenario", func(o *Options) { o.Scenarios = []string{"call", "nosuch"} }, `unknown scenario "nosuch"`},
		{"no scenario", func(o *Options) { o.Scenarios = []string{" "} }, "no scenario given"},
		{"simulator", func(o *Options) { o.Simulator = "/nonexistent/simulator.py" }, "is not a file"},
		{"timeout", func(o *Options) { o.StopTimeout = -1 }, "negative timeout"},
	}
	for _, tc := range tests {
		o, _, _ := fakeOptions(t, "")
		tc.tweak(&o)
		_, err := Run(t.Context(), o)
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Run = %v, want ErrInvalidOptions containing %q", tc.name, err, tc.want)
		}
	}
}

// TestRunInsideChild checks that a program of a comparison cannot start
// another: a test binary run as omsg would otherwise start itself
// without end.
func TestRunInsideChild(t *testing.T) {
	t.Setenv(childEnv, "1")
	o, _, _ := fakeOptions(t, "")
	_, err := Run(t.Context(), o)
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "cannot run inside a program of a comparison") {
		t.Fatalf("Run = %v, want ErrInvalidOptions", err)
	}
}

func TestRunUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := Run(ctx, Options{URL: "rabbit://guest:SECRET@127.0.0.1:1/", NoPython: true})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Run = %v, want ErrUnreachable", err)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error shows the password: %v", err)
	}
}
