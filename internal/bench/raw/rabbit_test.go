package raw

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/internal/bench"
	"github.com/go-oslo/messaging/internal/brokertest"
)

// testTimeout bounds every wait of the integration tests; none expects
// anything near it.
const testTimeout = 30 * time.Second

// recorder keeps every sample; the tests send few.
type recorder struct {
	mu      sync.Mutex
	samples []bench.Sample
}

func (r *recorder) Record(s bench.Sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

func (r *recorder) of(k bench.Kind) []bench.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bench.Sample
	for _, s := range r.samples {
		if s.Kind == k {
			out = append(out, s)
		}
	}
	return out
}

func (r *recorder) count(k bench.Kind) int { return len(r.of(k)) }

// waitCount waits, at most testTimeout, until r holds n samples of kind
// k, and fails t if it does not.
func (r *recorder) waitCount(t *testing.T, k bench.Kind, n int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for r.count(k) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples of kind %d after %v, want %d", r.count(k), k, testTimeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var testPayloads = []string{"a", "bcdefgh", strings.Repeat("x", 700), "ijklmnopqrstu", strings.Repeat("y", 1600)}

func testConfig(url string) *bench.Config {
	return &bench.Config{
		URL:      url,
		Topic:    "t",
		Server:   "s1",
		Threads:  1,
		Messages: 1,
		Timeout:  10 * time.Second,
		Payloads: testPayloads,
	}
}

// running is a server started by startServer.
type running struct {
	rec  *recorder
	stop context.CancelFunc
	done chan struct{} // closed when the server returned err
	err  error
}

// wait waits, at most testTimeout, for the server to return.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(testTimeout):
		t.Fatalf("the server did not return within %v", testTimeout)
		return nil
	}
}

// shutdown stops the server and checks that it returns nil.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	if err := r.wait(t); err != nil {
		t.Errorf("server: %v", err)
	}
}

type serveFunc func(context.Context, *bench.Config, func(), bench.Recorder) error

// startServer runs serve with cfg and waits until it is ready. The
// server is stopped when the test ends.
func startServer(t *testing.T, serve serveFunc, cfg *bench.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rec: &recorder{}, stop: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(r.done)
		r.err = serve(ctx, cfg, func() { once.Do(func() { close(ready) }) }, r.rec)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("server failed to start: %v", r.err)
	case <-time.After(testTimeout):
		t.Fatalf("server not ready within %v", testTimeout)
	}
	return r
}

// runClient runs send with cfg, at most testTimeout.
func runClient(t *testing.T, send func(context.Context, *bench.Config, bench.Recorder) error, cfg *bench.Config) (*recorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rec := &recorder{}
	err := send(ctx, cfg, rec)
	if ctx.Err() != nil {
		t.Fatalf("the client ran out of the test's %v", testTimeout)
	}
	return rec, err
}

// queues returns the queues of vhost with their message counts.
func queues(t *testing.T, vhost string) map[string]string {
	t.Helper()
	out := brokertest.Ctl(t, "list_queues", "--quiet", "--no-table-headers", "-p", vhost, "name", "messages")
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// withPrefix returns the names in qs that start with prefix.
func withPrefix(qs map[string]string, prefix string) []string {
	var out []string
	for name := range qs {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// checkSeqs checks that samples hold seqs 0..n-1 once for each sender
// 0..senders-1.
func checkSeqs(t *testing.T, what string, samples []bench.Sample, senders, n int) {
	t.Helper()
	got := map[int][]int64{}
	for _, s := range samples {
		got[s.Sender] = append(got[s.Sender], s.Seq)
	}
	for i := range senders {
		seqs := got[i]
		slices.Sort(seqs)
		want := make([]int64, n)
		for j := range want {
			want[j] = int64(j)
		}
		if !slices.Equal(seqs, want) {
			t.Errorf("%s of sender %d: seqs %v, want 0..%d once each", what, i, seqs, n-1)
		}
	}
	if len(got) != senders {
		t.Errorf("%s: senders %d, want %d", what, len(got), senders)
	}
}

func isPayloadSize(n int) bool {
	for _, p := range testPayloads {
		if len(p) == n {
			return true
		}
	}
	return false
}

func TestRabbitRawCall(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-call")
	srv := startServer(t, RPCServer, testConfig(url))

	qs := queues(t, vhost)
	for _, name := range []string{"omsg_raw.t", "omsg_raw.t.s1"} {
		if _, ok := qs[name]; !ok {
			t.Errorf("queue %s not declared; queues: %v", name, qs)
		}
	}
	if f := withPrefix(qs, "omsg_raw.t_fanout_"); len(f) != 1 {
		t.Errorf("fanout queues %v, want one", f)
	}

	cfg := testConfig(url)
	cfg.Targets = []string{"t.s1"}
	cfg.Threads, cfg.Messages = 2, 20
	rec, err := runClient(t, RPCClient, cfg)
	if err != nil {
		t.Fatalf("RPCClient: %v", err)
	}
	if n := rec.count(bench.Failed); n != 0 {
		t.Fatalf("%d failures: %v", n, rec.of(bench.Failed)[0].Err)
	}
	sent, trips := rec.of(bench.Sent), rec.of(bench.RoundTrip)
	if len(sent) != 40 || len(trips) != 40 {
		t.Fatalf("%d sent and %d round trips, want 40 and 40", len(sent), len(trips))
	}
	checkSeqs(t, "sent", sent, 2, 20)
	checkSeqs(t, "round trips", trips, 2, 20)
	for _, s := range trips {
		if s.ClientTS <= 0 || s.ServerTS <= 0 || s.ReturnTS <= 0 {
			t.Fatalf("round trip without its timestamps: %+v", s)
		}
		if !isPayloadSize(s.Size) {
			t.Fatalf("round trip of size %d, not one of the payloads", s.Size)
		}
	}
	for _, s := range sent {
		if s.ServerTS != 0 || s.ReturnTS != 0 || !isPayloadSize(s.Size) {
			t.Fatalf("bad sent sample %+v", s)
		}
	}
	if got := withPrefix(queues(t, vhost), "omsg_raw.reply_"); len(got) != 0 {
		t.Errorf("reply queues left after the client: %v", got)
	}

	srv.rec.waitCount(t, bench.Received, 40)
	srv.shutdown(t)
	if n := srv.rec.count(bench.Received); n != 40 {
		t.Errorf("the server received %d, want 40", n)
	}
	perSeq := map[int64]int{}
	for _, s := range srv.rec.of(bench.Received) {
		perSeq[s.Seq]++
		if s.ServerTS <= 0 || s.Sender != 0 {
			t.Fatalf("bad received sample %+v", s)
		}
	}
	for seq := range int64(20) {
		if perSeq[seq] != 2 {
			t.Errorf("the server received seq %d %d times, want 2 (one per sender)", seq, perSeq[seq])
		}
	}
	qs = queues(t, vhost)
	if f := withPrefix(qs, "omsg_raw.t_fanout_"); len(f) != 0 {
		t.Errorf("fanout queue left after the server: %v", f)
	}
	if n := qs["omsg_raw.t.s1"]; n != "0" {
		t.Errorf("omsg_raw.t.s1 holds %s messages after the run, want 0", n)
	}
}

func TestRabbitRawCast(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-cast")
	srv := startServer(t, RPCServer, testConfig(url))

	cfg := testConfig(url)
	cfg.Targets = []string{"t"} // the topic queue, shared by the servers
	cfg.Cast = true
	cfg.Threads, cfg.Messages = 2, 10
	rec, err := runClient(t, RPCClient, cfg)
	if err != nil {
		t.Fatalf("RPCClient: %v", err)
	}
	if rec.count(bench.Sent) != 20 || rec.count(bench.Failed) != 0 || rec.count(bench.RoundTrip) != 0 {
		t.Fatalf("sent %d, failed %d, round trips %d; want 20, 0, 0",
			rec.count(bench.Sent), rec.count(bench.Failed), rec.count(bench.RoundTrip))
	}
	srv.rec.waitCount(t, bench.Received, 20)
	srv.shutdown(t)
	if n := srv.rec.count(bench.Received); n != 20 {
		t.Errorf("the server received %d casts, want 20", n)
	}
	if got := withPrefix(queues(t, vhost), "omsg_raw.reply_"); len(got) != 0 {
		t.Errorf("a cast client left reply queues: %v", got)
	}
}

func TestRabbitRawFanout(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-fanout")
	c1, c2 := testConfig(url), testConfig(url)
	c2.Server = "s2"
	s1 := startServer(t, RPCServer, c1)
	s2 := startServer(t, RPCServer, c2)

	cfg := testConfig(url)
	cfg.Targets = []string{"t.s1"}
	cfg.Cast, cfg.Fanout = true, true
	cfg.Messages = 10
	rec, err := runClient(t, RPCClient, cfg)
	if err != nil {
		t.Fatalf("RPCClient: %v", err)
	}
	if rec.count(bench.Sent) != 10 || rec.count(bench.Failed) != 0 {
		t.Fatalf("sent %d, failed %d; want 10, 0", rec.count(bench.Sent), rec.count(bench.Failed))
	}
	for i, s := range []*running{s1, s2} {
		s.rec.waitCount(t, bench.Received, 10)
		s.shutdown(t)
		if n := s.rec.count(bench.Received); n != 10 {
			t.Errorf("server %d received %d, want 10", i+1, n)
		}
	}
	if f := withPrefix(queues(t, vhost), "omsg_raw.t_fanout_"); len(f) != 0 {
		t.Errorf("fanout queues left: %v", f)
	}
}

// TestRabbitRawNotify sends before the server exists: the notifier
// declares the queue, so nothing is lost.
func TestRabbitRawNotify(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-notify")
	cfg := testConfig(url)
	cfg.Threads, cfg.Messages = 2, 10
	rec, err := runClient(t, NotifyClient, cfg)
	if err != nil {
		t.Fatalf("NotifyClient: %v", err)
	}
	if rec.count(bench.Sent) != 20 || rec.count(bench.Failed) != 0 || rec.count(bench.RoundTrip) != 0 {
		t.Fatalf("sent %d, failed %d, round trips %d; want 20, 0, 0",
			rec.count(bench.Sent), rec.count(bench.Failed), rec.count(bench.RoundTrip))
	}
	if n := queues(t, vhost)["omsg_raw_notify.t.info"]; n != "20" {
		t.Fatalf("omsg_raw_notify.t.info holds %q messages, want 20", n)
	}
	srv := startServer(t, NotifyServer, testConfig(url))
	srv.rec.waitCount(t, bench.Received, 20)
	srv.shutdown(t)
	got := srv.rec.of(bench.Received)
	if len(got) != 20 {
		t.Fatalf("the server received %d, want 20", len(got))
	}
	for _, s := range got {
		if s.ServerTS <= 0 || s.ClientTS <= 0 || !isPayloadSize(s.Size) {
			t.Fatalf("bad received sample %+v", s)
		}
	}
	if n := queues(t, vhost)["omsg_raw_notify.t.info"]; n != "0" {
		t.Errorf("omsg_raw_notify.t.info holds %q messages after the server, want 0 (acknowledged)", n)
	}
}

// TestRabbitRawNotifyRequeue: two senders send seqs 0..9 each; the first
// of each seq is requeued once, so the server sees each seq three times.
func TestRabbitRawNotifyRequeue(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-requeue")
	scfg := testConfig(url)
	scfg.Requeue = true
	scfg.WaitBefore = 10 * time.Millisecond
	srv := startServer(t, NotifyServer, scfg)

	cfg := testConfig(url)
	cfg.Threads, cfg.Messages = 2, 10
	if _, err := runClient(t, NotifyClient, cfg); err != nil {
		t.Fatalf("NotifyClient: %v", err)
	}
	srv.rec.waitCount(t, bench.Received, 30)
	srv.shutdown(t)
	counts := map[int64]int{}
	for _, s := range srv.rec.of(bench.Received) {
		counts[s.Seq]++
	}
	for seq := range int64(10) {
		if counts[seq] != 3 {
			t.Errorf("seq %d received %d times, want 3", seq, counts[seq])
		}
	}
	if len(counts) != 10 {
		t.Errorf("seqs received: %v", counts)
	}
	if n := queues(t, vhost)["omsg_raw_notify.t.info"]; n != "0" {
		t.Errorf("omsg_raw_notify.t.info holds %q messages after the server, want 0", n)
	}
}

// TestRabbitRawCallTimeout calls a topic nobody serves: each call fails
// by its timeout.
func TestRabbitRawCallTimeout(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-timeout")
	cfg := testConfig(url)
	cfg.Targets = []string{"nobody.here"}
	cfg.Timeout = 300 * time.Millisecond
	cfg.Messages = 2
	rec, err := runClient(t, RPCClient, cfg)
	if err != nil {
		t.Fatalf("RPCClient: %v", err)
	}
	failed := rec.of(bench.Failed)
	if rec.count(bench.Sent) != 2 || len(failed) != 2 || rec.count(bench.RoundTrip) != 0 {
		t.Fatalf("sent %d, failed %d, round trips %d; want 2, 2, 0",
			rec.count(bench.Sent), len(failed), rec.count(bench.RoundTrip))
	}
	for _, s := range failed {
		if !errors.Is(s.Err, context.DeadlineExceeded) {
			t.Errorf("failure of seq %d: %v, want a deadline error", s.Seq, s.Err)
		}
	}
	checkSeqs(t, "failed", failed, 1, 2)
	if got := withPrefix(queues(t, vhost), "omsg_raw.reply_"); len(got) != 0 {
		t.Errorf("reply queues left after the client: %v", got)
	}
}

// TestRabbitRawCancel ends a client running for an hour, then its
// server, by cancelling their contexts.
func TestRabbitRawCancel(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-cancel")
	srv := startServer(t, RPCServer, testConfig(url))

	cfg := testConfig(url)
	cfg.Threads = 2
	cfg.Duration = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	errc := make(chan error, 1)
	go func() { errc <- RPCClient(ctx, cfg, rec) }()
	rec.waitCount(t, bench.RoundTrip, 10)

	channels := brokertest.Ctl(t, "list_channels", "--quiet", "--no-table-headers", "-p", vhost, "connection", "confirm")
	if !strings.Contains(channels, "true") {
		t.Errorf("no channel in confirm mode while the client runs:\n%s", channels)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("RPCClient after cancel: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("RPCClient did not return within %v of its cancel", testTimeout)
	}
	if n := rec.count(bench.Failed); n != 0 {
		t.Errorf("%d failures recorded for a cancel: %v", n, rec.of(bench.Failed)[0].Err)
	}
	if got := withPrefix(queues(t, vhost), "omsg_raw.reply_"); len(got) != 0 {
		t.Errorf("reply queues left after the client: %v", got)
	}
	srv.shutdown(t)
	if f := withPrefix(queues(t, vhost), "omsg_raw.t_fanout_"); len(f) != 0 {
		t.Errorf("fanout queue left after the server: %v", f)
	}
}

// TestRabbitRawSync: with --sync the server stops by itself once the
// last client is done.
func TestRabbitRawSync(t *testing.T) {
	for _, mode := range []string{"call", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			url, _ := brokertest.Vhost(t, "raw-sync")
			srv := startServer(t, RPCServer, testConfig(url))
			cfg := testConfig(url)
			cfg.Targets = []string{"t.s1"}
			cfg.Threads, cfg.Messages = 2, 5
			cfg.Sync = mode
			cfg.Cast = mode == "fanout"
			rec, err := runClient(t, RPCClient, cfg)
			if err != nil {
				t.Fatalf("RPCClient: %v", err)
			}
			if rec.count(bench.Sent) != 10 || rec.count(bench.Failed) != 0 {
				t.Fatalf("sent %d, failed %d; want 10, 0", rec.count(bench.Sent), rec.count(bench.Failed))
			}
			if err := srv.wait(t); err != nil {
				t.Fatalf("server: %v", err)
			}
			if n := srv.rec.count(bench.Received); n != 10 {
				t.Errorf("the server received %d, want 10 (control messages are not samples)", n)
			}
		})
	}
}

// BenchmarkRabbitRawCall times sequential calls, one at a time, to a
// server on the same broker.
func BenchmarkRabbitRawCall(b *testing.B) {
	url, _ := brokertest.Vhost(b, "raw-bench")
	cfg := testConfig(url)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- RPCServer(ctx, cfg, func() { close(ready) }, nopRecorder{}) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Errorf("server: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
		b.Fatalf("server: %v", err)
	}
	eps, err := endpoints(url)
	if err != nil {
		b.Fatal(err)
	}
	c, err := newClient(ctx, eps, "omsg bench raw benchmark", true, declareRPCExchange)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close(ctx)
	payload := strings.Repeat("x", 1000)
	b.SetBytes(int64(len(payload)))
	var seq int64
	for b.Loop() {
		m := message{Seq: seq, Cargo: payload, ClientTS: now()}
		seq++
		body, err := m.encode()
		if err != nil {
			b.Fatal(err)
		}
		cctx, ccancel := context.WithTimeout(ctx, testTimeout)
		reply, err := c.call(cctx, "t.s1", "", body)
		ccancel()
		if err != nil {
			b.Fatal(err)
		}
		if got, err := decodeMessage(reply); err != nil || got.Seq != m.Seq {
			b.Fatalf("reply %s: %v", reply, err)
		}
	}
}

// TestRabbitRawServerStop stops servers whose handlers wait, by their
// context, and servers by their duration.
func TestRabbitRawServerStop(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "raw-stop")
	scfg := testConfig(url)
	scfg.WaitBefore = time.Hour
	srv := startServer(t, RPCServer, scfg)
	cfg := testConfig(url)
	cfg.Targets = []string{"t.s1"}
	cfg.Timeout = 300 * time.Millisecond
	rec, err := runClient(t, RPCClient, cfg)
	if err != nil {
		t.Fatalf("RPCClient: %v", err)
	}
	if rec.count(bench.Failed) != 1 || rec.count(bench.RoundTrip) != 0 {
		t.Fatalf("failed %d, round trips %d; want 1, 0", rec.count(bench.Failed), rec.count(bench.RoundTrip))
	}
	srv.rec.waitCount(t, bench.Received, 1)
	srv.shutdown(t) // the handler waits for an hour: cancelled after the grace period
	if f := withPrefix(queues(t, vhost), "omsg_raw.t_fanout_"); len(f) != 0 {
		t.Errorf("fanout queue left after the server: %v", f)
	}

	// A request being handled when its server stops still gets its reply.
	gcfg := testConfig(url)
	gcfg.Topic = "g"
	gcfg.WaitBefore = time.Second
	gsrv := startServer(t, RPCServer, gcfg)
	ccfg := testConfig(url)
	ccfg.Targets = []string{"g.s1"}
	crec := &recorder{}
	cerr := make(chan error, 1)
	go func() { cerr <- RPCClient(context.Background(), ccfg, crec) }()
	gsrv.rec.waitCount(t, bench.Received, 1)
	gsrv.shutdown(t)
	select {
	case err := <-cerr:
		if err != nil {
			t.Fatalf("RPCClient: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatalf("RPCClient did not return within %v", testTimeout)
	}
	if crec.count(bench.RoundTrip) != 1 || crec.count(bench.Failed) != 0 {
		t.Errorf("round trips %d, failed %d; want 1, 0: the stopping server did not reply", crec.count(bench.RoundTrip), crec.count(bench.Failed))
	}

	ncfg := testConfig(url)
	ncfg.Duration = 500 * time.Millisecond
	nsrv := startServer(t, NotifyServer, ncfg)
	if err := nsrv.wait(t); err != nil {
		t.Errorf("NotifyServer with a duration: %v", err)
	}
	rcfg := testConfig(url)
	rcfg.Duration = 500 * time.Millisecond
	rsrv := startServer(t, RPCServer, rcfg)
	if err := rsrv.wait(t); err != nil {
		t.Errorf("RPCServer with a duration: %v", err)
	}
}
