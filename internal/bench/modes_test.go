package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/internal/brokertest"
	"github.com/go-oslo/messaging/rpc"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 30 * time.Second

// memURL returns a memory:// URL of a bus of the test's own.
func memURL() string {
	return "memory:///bench-" + strconv.FormatUint(rand.Uint64(), 36)
}

// running is a server mode running in a goroutine.
type running struct {
	stats  *Stats
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid once done is closed
}

// startServer runs mode with cfg and returns once it is ready. The
// server is stopped, as by a signal, when the test ends.
func startServer(t *testing.T, mode func(context.Context, *Config, func(), Recorder) error, cfg *Config) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r := &running{stats: NewServerStats(), cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(r.done)
		r.err = mode(ctx, cfg, func() { close(ready) }, r.stats)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Errorf("the server did not stop within %v", waitTimeout)
		}
	})
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("the server ended before it was ready: %v", r.err)
	case <-time.After(waitTimeout):
		t.Fatalf("the server was not ready within %v", waitTimeout)
	}
	return r
}

// wait waits for the server to stop by itself and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(waitTimeout):
		t.Fatalf("the server did not stop by itself within %v", waitTimeout)
		return nil
	}
}

// stop stops the server, as a signal does, and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// waitCount waits until st counted at least n samples of kind k.
func waitCount(t *testing.T, st *Stats, k Kind, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for st.Count(k) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples of kind %d after %v, want %d", st.Count(k), k, waitTimeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runClient runs mode with cfg and a new Stats, and fails t if it
// returns an error.
func runClient(t *testing.T, mode func(context.Context, *Config, Recorder) error, cfg *Config, roundTrips bool) *Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := NewClientStats(cfg.Threads, roundTrips)
	if err := mode(ctx, cfg, st); err != nil {
		t.Fatalf("client: %v", err)
	}
	return st
}

func clientConfig(url string) *Config {
	return &Config{
		URL: url, Topic: "profiler_topic", Targets: []string{"profiler_topic.profiler_server"},
		Threads: 2, Messages: 5, Timeout: 10 * time.Second,
		Payloads: Payloads(5, 0, rand.New(rand.NewPCG(1, 1))),
	}
}

func serverConfig(url, server string) *Config {
	return &Config{URL: url, Topic: "profiler_topic", Server: server}
}

// scenarioCallSync: calls from two senders, which the server counts
// and answers, then stops by itself after their sync_done.
func scenarioCallSync(t *testing.T, url string) {
	srv := startServer(t, RPCServer, serverConfig(url, "profiler_server"))
	cfg := clientConfig(url)
	cfg.Sync = "call"
	st := runClient(t, RPCClient, cfg, true)
	if err := srv.wait(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if s, rt, f := st.Count(Sent), st.Count(RoundTrip), st.Count(Failed); s != 10 || rt != 10 || f != 0 {
		t.Fatalf("client: sent %d, round trips %d, failures %d (%v); want 10, 10, 0", s, rt, f, st.FirstError())
	}
	if n := srv.stats.Count(Received); n != 10 {
		t.Errorf("server received %d, want 10", n)
	}
	r := st.Report()
	rt := r.Summaries["round_trip"]
	if rt.Count != 10 || rt.Latency == nil || *rt.MinLatency <= 0 || *rt.P99 > *rt.MaxLatency || rt.Size != r.Summaries["client"].Size {
		t.Errorf("round trip summary = %+v", rt)
	}
	for i := range 2 {
		var n int64
		for _, p := range r.Series["round_trip_"+strconv.Itoa(i)] {
			n += p.Count
		}
		if n != 5 {
			t.Errorf("round_trip_%d counts %d, want 5", i, n)
		}
	}
	sr := srv.stats.Report().Summaries["server"]
	if sr.Count != 10 || sr.Latency == nil || sr.Size != rt.Size {
		t.Errorf("server summary = %+v, want 10 messages of %d bytes with latencies", sr, rt.Size)
	}
}

// scenarioFanoutSync: fanout casts reach both servers of the topic,
// which stop after the senders' sync_done, cast to the fanout too.
func scenarioFanoutSync(t *testing.T, url string) {
	s1 := startServer(t, RPCServer, serverConfig(url, "s1"))
	s2 := startServer(t, RPCServer, serverConfig(url, "s2"))
	cfg := clientConfig(url)
	cfg.Cast, cfg.Fanout, cfg.Sync = true, true, "fanout"
	st := runClient(t, RPCClient, cfg, false)
	if s, f := st.Count(Sent), st.Count(Failed); s != 10 || f != 0 {
		t.Fatalf("client: sent %d, failures %d (%v); want 10, 0", s, f, st.FirstError())
	}
	for i, srv := range []*running{s1, s2} {
		if err := srv.wait(t); err != nil {
			t.Errorf("server s%d: %v", i+1, err)
		}
		if n := srv.stats.Count(Received); n != 10 {
			t.Errorf("server s%d received %d, want 10", i+1, n)
		}
	}
	if _, ok := st.Report().Summaries["round_trip"]; ok {
		t.Error("casts have a round_trip summary")
	}
}

// scenarioNotify: notifications reach the listener; with --requeue,
// each seq is requeued the first time it is seen.
func scenarioNotify(t *testing.T, url string, requeue bool) {
	scfg := serverConfig(url, "")
	scfg.Requeue = requeue
	srv := startServer(t, NotifyServer, scfg)
	st := runClient(t, NotifyClient, clientConfig(url), false)
	if s, f := st.Count(Sent), st.Count(Failed); s != 10 || f != 0 {
		t.Fatalf("client: sent %d, failures %d (%v); want 10, 0", s, f, st.FirstError())
	}
	// Two publishers send seqs 0 to 4: with requeues, the first copy of
	// each seq comes twice.
	want := int64(10)
	if requeue {
		want = 15
	}
	waitCount(t, srv.stats, Received, want)
	if err := srv.stop(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if n := srv.stats.Count(Received); n != want {
		t.Errorf("server received %d, want %d", n, want)
	}
	if sr := srv.stats.Report().Summaries["server"]; sr.Latency == nil || sr.Count != want {
		t.Errorf("server summary = %+v", sr)
	}
}

// scenarioBatch: a batch listener gets the notifications at once when
// the batch times out.
func scenarioBatch(t *testing.T, url string) {
	srv := startServer(t, BatchNotifyServer, serverConfig(url, ""))
	st := runClient(t, NotifyClient, clientConfig(url), false)
	if s, f := st.Count(Sent), st.Count(Failed); s != 10 || f != 0 {
		t.Fatalf("client: sent %d, failures %d (%v); want 10, 0", s, f, st.FirstError())
	}
	waitCount(t, srv.stats, Received, 10)
	if err := srv.stop(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if n := srv.stats.Count(Received); n != 10 {
		t.Errorf("server received %d, want 10", n)
	}
}

func TestCallSync(t *testing.T)      { scenarioCallSync(t, memURL()) }
func TestFanoutSync(t *testing.T)    { scenarioFanoutSync(t, memURL()) }
func TestNotify(t *testing.T)        { scenarioNotify(t, memURL(), false) }
func TestNotifyRequeue(t *testing.T) { scenarioNotify(t, memURL(), true) }
func TestBatchNotify(t *testing.T)   { scenarioBatch(t, memURL()) }

func rabbitURL(t *testing.T) string {
	url, _ := brokertest.Vhost(t, "bench")
	return url
}

func TestRabbitBenchCallSync(t *testing.T)      { scenarioCallSync(t, rabbitURL(t)) }
func TestRabbitBenchFanoutSync(t *testing.T)    { scenarioFanoutSync(t, rabbitURL(t)) }
func TestRabbitBenchNotifyRequeue(t *testing.T) { scenarioNotify(t, rabbitURL(t), true) }
func TestRabbitBenchBatchNotify(t *testing.T)   { scenarioBatch(t, rabbitURL(t)) }

func TestCast(t *testing.T) {
	url := memURL()
	srv := startServer(t, RPCServer, serverConfig(url, "profiler_server"))
	cfg := clientConfig(url)
	cfg.Cast = true
	cfg.Targets = []string{"profiler_topic.profiler_server", "profiler_topic"}
	st := runClient(t, RPCClient, cfg, false)
	if s, f := st.Count(Sent), st.Count(Failed); s != 10 || f != 0 {
		t.Fatalf("client: sent %d, failures %d (%v); want 10, 0", s, f, st.FirstError())
	}
	waitCount(t, srv.stats, Received, 10)
	if err := srv.stop(t); err != nil {
		t.Fatalf("server: %v", err)
	}
	if n := srv.stats.Count(Received); n != 10 {
		t.Errorf("server received %d, want 10", n)
	}
}

func TestClientFailuresAreRecorded(t *testing.T) {
	cfg := clientConfig(memURL())
	cfg.Targets = []string{"nobody.nowhere"}
	cfg.Timeout = 50 * time.Millisecond
	cfg.Threads, cfg.Messages = 1, 2
	st := runClient(t, RPCClient, cfg, true)
	if s, f, rt := st.Count(Sent), st.Count(Failed), st.Count(RoundTrip); s != 2 || f != 2 || rt != 0 {
		t.Fatalf("sent %d, failures %d, round trips %d; want 2, 2, 0", s, f, rt)
	}
	if err := st.FirstError(); err == nil {
		t.Error("no first error")
	}

	// A call with fanout cannot be made: every message fails.
	cfg = clientConfig(memURL())
	cfg.Fanout = true
	st = runClient(t, RPCClient, cfg, true)
	if f := st.Count(Failed); f != 10 || !errors.Is(st.FirstError(), messaging.ErrInvalidTarget) {
		t.Errorf("fanout calls: %d failures, first %v; want 10 matching ErrInvalidTarget", f, st.FirstError())
	}
}

func TestDurationBoundsTheRun(t *testing.T) {
	url := memURL()
	scfg := serverConfig(url, "profiler_server")
	scfg.Duration = 2 * time.Second
	srv := startServer(t, RPCServer, scfg)
	cfg := clientConfig(url)
	cfg.Duration, cfg.Messages = 500*time.Millisecond, 0
	cfg.WaitAfter = 10 * time.Millisecond
	st := runClient(t, RPCClient, cfg, true)
	if s, rt, f := st.Count(Sent), st.Count(RoundTrip), st.Count(Failed); s == 0 || s != rt+f {
		t.Errorf("sent %d, round trips %d, failures %d: want some, all accounted for", s, rt, f)
	}
	if err := srv.wait(t); err != nil { // -l stops the server
		t.Errorf("server: %v", err)
	}
}

// finishRecorder records when the run was finished.
type finishRecorder struct {
	mu       sync.Mutex
	samples  []Sample
	finished time.Time
}

func (r *finishRecorder) Record(x Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, x)
}

func (r *finishRecorder) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished.IsZero() {
		r.finished = time.Now()
	}
}

func TestExitWaitComesAfterTheRun(t *testing.T) {
	url := memURL()
	startServer(t, RPCServer, serverConfig(url, "profiler_server"))
	cfg := clientConfig(url)
	cfg.Threads, cfg.Messages, cfg.ExitWait = 1, 3, 300*time.Millisecond
	rec := &finishRecorder{}
	if err := RPCClient(t.Context(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.finished.IsZero() || returned.Sub(rec.finished) < cfg.ExitWait {
		t.Errorf("finished at %v, returned at %v: want the exit wait (%v) after the finish", rec.finished, returned, cfg.ExitWait)
	}
	// Sent, RoundTrip for each message, in order per sender.
	var seqs []int64
	for _, x := range rec.samples {
		if x.Kind == RoundTrip {
			seqs = append(seqs, x.Seq)
			if x.ServerTS < x.ClientTS || x.ReturnTS < x.ServerTS || x.Size <= 0 {
				t.Errorf("round trip %+v: timestamps out of order", x)
			}
		}
	}
	if len(seqs) != 3 || seqs[0] != 0 || seqs[2] != 2 {
		t.Errorf("round trip seqs %v, want [0 1 2]", seqs)
	}
}

func TestInfoRejectsBadArguments(t *testing.T) {
	url := memURL()
	startServer(t, RPCServer, serverConfig(url, "profiler_server"))
	tr, err := messaging.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c, err := rpc.NewClient(tr, messaging.Target{Topic: "profiler_topic", Server: "profiler_server"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for args, class := range map[string]string{
		`{}`:                         "TypeError",
		`{"message": "x"}`:           "ValueError",
		`{"message": [1, 2, 3]}`:     "ValueError",
		`{"msg": [0, "a", 1, 0, 0]}`: "TypeError",
	} {
		err := c.Call(ctx, "info", json.RawMessage(args), nil)
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Class != class {
			t.Errorf("info(%s) = %v, want a remote %s", args, err, class)
		}
	}
	var reply json.RawMessage
	if err := c.Call(ctx, "info", json.RawMessage(`{"message": [9, "abc", 12.5, 0, 0]}`), &reply); err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(reply)
	if err != nil || m.seq != 9 || m.size != 3 || m.clientTS != 12.5 || m.serverTS < 1e9 {
		t.Errorf("info reply %s = %+v, %v", reply, m, err)
	}
}

func TestInvalidConfig(t *testing.T) {
	st := NewClientStats(1, true)
	ctx := t.Context()
	good := func() *Config { return clientConfig(memURL()) }
	for name, tc := range map[string]struct {
		cfg    *Config
		rec    Recorder
		client bool
	}{
		"nil config":      {nil, st, true},
		"nil recorder":    {good(), nil, true},
		"no threads":      {func() *Config { c := good(); c.Threads = 0; return c }(), st, true},
		"no messages":     {func() *Config { c := good(); c.Messages = 0; return c }(), st, true},
		"negative -l":     {func() *Config { c := good(); c.Duration = -time.Second; return c }(), st, true},
		"no targets":      {func() *Config { c := good(); c.Targets = nil; return c }(), st, true},
		"target no topic": {func() *Config { c := good(); c.Targets = []string{".server"}; return c }(), st, true},
		"bad sync":        {func() *Config { c := good(); c.Sync = "maybe"; return c }(), st, true},
		"bad URL":         {func() *Config { c := good(); c.URL = "nosuch://x/"; return c }(), st, true},
		"server no topic": {&Config{URL: memURL(), Server: "s"}, st, false},
		"server no name":  {&Config{URL: memURL(), Topic: "t"}, st, false},
		"server bad URL":  {&Config{URL: "nosuch://", Topic: "t", Server: "s"}, st, false},
	} {
		var err error
		if tc.client {
			err = RPCClient(ctx, tc.cfg, tc.rec)
		} else {
			err = RPCServer(ctx, tc.cfg, nil, tc.rec)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: RPCClient/RPCServer = %v, want ErrInvalidConfig", name, err)
		}
	}
	for name, err := range map[string]error{
		"notify client no topic": NotifyClient(ctx, &Config{URL: memURL(), Threads: 1, Messages: 1}, st),
		"notify client nil":      NotifyClient(ctx, nil, st),
		"notify server no topic": NotifyServer(ctx, &Config{URL: memURL()}, nil, st),
		"batch server nil rec":   BatchNotifyServer(ctx, &Config{URL: memURL(), Topic: "t"}, nil, nil),
	} {
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	// Nothing listens on port 1: the connection is refused at once.
	const url = "rabbit://guest:guest@127.0.0.1:1/"
	ctx := t.Context()
	cfg := clientConfig(url)
	cfg.Timeout = 2 * time.Second
	if err := RPCClient(ctx, cfg, NewClientStats(2, true)); !errors.Is(err, ErrUnreachable) {
		t.Errorf("RPCClient = %v, want ErrUnreachable", err)
	}
	if err := NotifyClient(ctx, cfg, NewClientStats(2, false)); !errors.Is(err, ErrUnreachable) {
		t.Errorf("NotifyClient = %v, want ErrUnreachable", err)
	}
	ready := false
	if err := RPCServer(ctx, serverConfig(url, "s"), func() { ready = true }, NewServerStats()); !errors.Is(err, ErrUnreachable) || ready {
		t.Errorf("RPCServer = %v (ready %v), want ErrUnreachable before ready", err, ready)
	}
}

func TestServerStopsOnContext(t *testing.T) {
	url := memURL()
	for name, mode := range map[string]func(context.Context, *Config, func(), Recorder) error{
		"rpc": RPCServer, "notify": NotifyServer, "batch": BatchNotifyServer,
	} {
		srv := startServer(t, mode, serverConfig(url, "s-"+name))
		if err := srv.stop(t); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if r := srv.stats.Report(); r.Process.WallSeconds <= 0 {
			t.Errorf("%s: the run was not finished: %+v", name, r.Process)
		}
	}
	// A context already done: no error, nothing served.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := RPCServer(ctx, serverConfig(url, "late"), func() { t.Error("ready after the end") }, NewServerStats()); err != nil {
		t.Errorf("RPCServer on a done context = %v", err)
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string][2]string{
		"a.b": {"a", "b"}, "a.b.c": {"a", "b.c"}, "a": {"a", ""}, "a.": {"a", ""},
	} {
		tp, srv, err := ParseTarget(in)
		if err != nil || tp != want[0] || srv != want[1] {
			t.Errorf("ParseTarget(%q) = %q, %q, %v; want %q, %q", in, tp, srv, err, want[0], want[1])
		}
	}
	for _, in := range []string{"", ".b"} {
		if _, _, err := ParseTarget(in); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseTarget(%q) = %v, want ErrInvalidConfig", in, err)
		}
	}
}
