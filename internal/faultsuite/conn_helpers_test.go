package faultsuite

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// Transport URL options of the connection scenarios: quick reconnection
// with a small back-off (1 s, then 2 s at most, with jitter), reply and
// fanout queues that expire 10 s after their owner is gone, and replies
// to a missing reply queue retried for 3 s.
const connQuery = "rabbit_retry_interval=1&rabbit_retry_backoff=1&rabbit_interval_max=2" +
	"&kombu_reconnect_delay=0.5&rabbit_transient_queues_ttl=10&kombu_missing_consumer_retry_timeout=3"

// connHeartbeat is the heartbeat of the scenarios that need one.
const connHeartbeat = 2 * time.Second

// connCallTimeout is the deadline of the load's calls and casts.
const connCallTimeout = 2 * time.Second

// connRecoveryBudget bounds the time a client or server may take to
// work again once a fault is over: the back-off (2 s at most between
// attempts), the reconnect delay and a call's own timeout, several times
// over.
const connRecoveryBudget = 15 * time.Second

// connURL returns base (a node's or proxy's URL) with the scenarios'
// options and extra ones, "&"-joined.
func connURL(base string, extra ...string) string {
	q := connQuery
	for _, e := range extra {
		q += "&" + e
	}
	return base + "?" + q
}

// connArgs are the arguments of the scenarios' method "work".
type connArgs struct {
	ID      string `json:"ledger_id"`
	SleepMS int    `json:"sleep_ms,omitempty"`
}

// connEvents records the driver events of one transport.
type connEvents struct {
	mu      sync.Mutex
	list    []driver.Event
	changed chan struct{}
}

func newConnEvents() *connEvents { return &connEvents{changed: make(chan struct{})} }

func (e *connEvents) handle(ev driver.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
}

// count returns the number of events of kind at or after since.
func (e *connEvents) count(kind driver.EventKind, since time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.list {
		if ev.Kind == kind && !ev.Time.Before(since) {
			n++
		}
	}
	return n
}

// wait returns the first event of kind at or after since that match
// accepts (nil accepts all), waiting until ctx ends for it.
func (e *connEvents) wait(ctx context.Context, kind driver.EventKind, since time.Time, match func(driver.Event) bool) (driver.Event, bool) {
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if ev.Kind == kind && !ev.Time.Before(since) && (match == nil || match(ev)) {
				e.mu.Unlock()
				return ev, true
			}
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return driver.Event{}, false
		case <-changed:
		}
	}
}

// since returns the events of kind at or after t.
func (e *connEvents) since(kind driver.EventKind, t time.Time) []driver.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []driver.Event
	for _, ev := range e.list {
		if ev.Kind == kind && !ev.Time.Before(t) {
			out = append(out, ev)
		}
	}
	return out
}

// summary counts the events by kind, e.g. "connected=3 disconnected=1".
func (e *connEvents) summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	counts := map[driver.EventKind]int{}
	for _, ev := range e.list {
		counts[ev.Kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, " ")
}

// connTestWriter writes log lines to a test's log until its cleanups
// run.
type connTestWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *connTestWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// connLogCounts counts log messages of every level by their text.
type connLogCounts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *connLogCounts) get(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[msg]
}

// connLogHandler counts every record and passes warnings and errors on
// to next.
type connLogHandler struct {
	next   slog.Handler
	counts *connLogCounts
}

func (h *connLogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *connLogHandler) Handle(ctx context.Context, rec slog.Record) error {
	h.counts.mu.Lock()
	h.counts.counts[rec.Message]++
	h.counts.mu.Unlock()
	if rec.Level < slog.LevelWarn {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h *connLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &connLogHandler{next: h.next.WithAttrs(attrs), counts: h.counts}
}

func (h *connLogHandler) WithGroup(name string) slog.Handler {
	return &connLogHandler{next: h.next.WithGroup(name), counts: h.counts}
}

// connLogger returns a logger of warnings and errors to t's log that
// also counts every message, debug ones included, in counts.
func connLogger(t *testing.T, counts *connLogCounts) *slog.Logger {
	w := &connTestWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(&connLogHandler{next: slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}), counts: counts})
}

// connRig is one scenario's system under test: a node, RPC servers on a
// topic, clients, the ledger and the load.
type connRig struct {
	t     *testing.T
	ctx   context.Context
	id    string // scenario id, e.g. "S1"
	name  string // prefix of the transports' connection names
	node  *faulttest.Node
	l     *faulttest.Ledger
	w     *faulttest.Watchdog
	topic string
	log   *slog.Logger
	logs  *connLogCounts

	mu         sync.Mutex          // guards the fields below
	execs      map[string][]string // servers that executed each ledger id, in order
	transports []*messaging.Transport
	servers    []*connServer
	listeners  []*connListener
	errSamples map[faulttest.ErrorKind][]string
	proxies    []interface{ Close() }
	fanout     map[string]bool     // ledger ids of fanout casts
	sentBy     map[*rpc.Client]int // messages sent by each client
	failedBy   map[*rpc.Client]int // of which failed
	slow       int                 // executions of 1 s or more begun
	restarted  bool                // the node was restarted: see finish
	base       goleak.Option       // goroutines before the scenario
}

// connServer is an RPC server of the rig.
type connServer struct {
	name string
	tr   *messaging.Transport
	ev   *connEvents
	srv  *rpc.Server
	done chan error
}

// connListener is a notification listener of the rig.
type connListener struct {
	tr   *messaging.Transport
	lis  *notify.Listener
	done chan error
}

// newConnRig starts a node for scenario id and makes an empty ledger.
// The goroutine baseline is taken after the node started: call
// baseline once the proxies are made too.
func newConnRig(t *testing.T, id string) *connRig {
	t.Helper()
	node := faulttest.StartNode(t, faulttest.NodeOptions{Name: "conn" + strings.ToLower(id)})
	suffix := fmt.Sprintf("%x", time.Now().UnixNano()&0xffffff)
	logs := &connLogCounts{counts: map[string]int{}}
	r := &connRig{
		t:          t,
		ctx:        t.Context(),
		id:         id,
		name:       "conn-" + strings.ToLower(id) + "-",
		node:       node,
		l:          faulttest.NewLedger(faulttest.LedgerOptions{Name: id}),
		topic:      "conn" + strings.ToLower(id) + suffix,
		log:        connLogger(t, logs),
		logs:       logs,
		execs:      map[string][]string{},
		errSamples: map[faulttest.ErrorKind][]string{},
		fanout:     map[string]bool{},
		sentBy:     map[*rpc.Client]int{},
		failedBy:   map[*rpc.Client]int{},
	}
	return r
}

// start takes the goroutine baseline and starts the watchdog.
func (r *connRig) start() {
	r.base = goleak.IgnoreCurrent()
	r.l.GoroutineBaseline()
	r.w = r.l.StartWatchdog(r.t)
}

// report returns the ledger's report, for record.
func (r *connRig) report() *faulttest.Report {
	rep := r.l.Report()
	return &rep
}

// proxy returns a fault proxy to the node, closed before the goroutine
// check.
func (r *connRig) proxy() *faulttest.Proxy {
	p := faulttest.NewProxy(r.t, r.node.Addr())
	r.mu.Lock()
	r.proxies = append(r.proxies, p)
	r.mu.Unlock()
	return p
}

// proxyURL returns the node's URL through p.
func (r *connRig) proxyURL(p *faulttest.Proxy) string {
	u, err := p.URL(r.node.URL())
	if err != nil {
		r.t.Fatal(err)
	}
	return u
}

// open returns a transport to rawURL whose connections are named
// r.name + role, with its events recorded in ev (if not nil).
func (r *connRig) open(rawURL, role string, ev *connEvents) *messaging.Transport {
	r.t.Helper()
	u, err := driver.ParseURL(rawURL)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg, err := rabbit.ConfigFromURL(u)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.ConnectionName = r.name + role
	c, err := rabbit.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	opts := []messaging.Option{messaging.WithLogger(r.log.With("transport", role))}
	if ev != nil {
		opts = append(opts, messaging.WithEventHandler(ev.handle))
	}
	tr := messaging.NewTransport(c, opts...)
	r.mu.Lock()
	r.transports = append(r.transports, tr)
	r.mu.Unlock()
	r.t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// client returns an RPC client of the rig's topic on tr.
func (r *connRig) client(tr *messaging.Transport) *rpc.Client {
	r.t.Helper()
	c, err := rpc.NewClient(tr, messaging.Target{Topic: r.topic})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// executed records that server by executed ledger id.
func (r *connRig) executed(id, by string) {
	r.l.Executed(id, by)
	r.mu.Lock()
	r.execs[id] = append(r.execs[id], by)
	r.mu.Unlock()
}

// endpoint returns the scenarios' endpoint for server name: method
// "work" records the execution, sleeps sleep_ms (or until its context
// ends) and returns its ledger id.
func (r *connRig) endpoint(name string) *rpc.Endpoint {
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "work", func(ctx context.Context, a connArgs) (string, error) {
		r.executed(a.ID, name)
		if a.SleepMS >= 1000 {
			r.mu.Lock()
			r.slow++
			r.mu.Unlock()
		}
		if a.SleepMS > 0 {
			t := time.NewTimer(time.Duration(a.SleepMS) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return a.ID, nil
	})
	return ep
}

// server starts RPC server name of the rig's topic on a transport of its
// own to rawURL, and waits until it consumes (listen bounds the wait).
// It returns with the server serving, or fails t.
func (r *connRig) server(name, rawURL string, listen time.Duration) *connServer {
	r.t.Helper()
	s := r.newServer(name, rawURL)
	ctx, cancel := context.WithTimeout(r.ctx, listen)
	defer cancel()
	if err := s.srv.Listen(ctx); err != nil {
		r.t.Fatalf("server %s: %v", name, err)
	}
	go func() { s.done <- s.srv.Serve(r.ctx) }()
	return s
}

// newServer makes RPC server name without starting it.
func (r *connRig) newServer(name, rawURL string) *connServer {
	r.t.Helper()
	ev := newConnEvents()
	tr := r.open(rawURL, "srv-"+name, ev)
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: r.topic, Server: name}, []*rpc.Endpoint{r.endpoint(name)})
	if err != nil {
		r.t.Fatal(err)
	}
	s := &connServer{name: name, tr: tr, ev: ev, srv: srv, done: make(chan error, 1)}
	r.mu.Lock()
	r.servers = append(r.servers, s)
	r.mu.Unlock()
	return s
}

// notificationListener starts a notification listener of the rig's
// topic (priority info) on a transport of its own to rawURL, recording
// each notification's ledger id as executed by "lis". Serve runs on a
// goroutine, so the listener connects, or keeps trying to, in the
// background.
func (r *connRig) notificationListener(rawURL string) *connListener {
	r.t.Helper()
	tr := r.open(rawURL, "lis", nil)
	ep := &notify.Endpoint{Info: func(_ context.Context, n *notify.Notification) error {
		var p connArgs
		if err := json.Unmarshal(n.Payload, &p); err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		r.executed(p.ID, "lis")
		return nil
	}}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: r.topic}}, []*notify.Endpoint{ep})
	if err != nil {
		r.t.Fatal(err)
	}
	cl := &connListener{tr: tr, lis: lis, done: make(chan error, 1)}
	go func() { cl.done <- lis.Serve(r.ctx) }()
	r.mu.Lock()
	r.listeners = append(r.listeners, cl)
	r.mu.Unlock()
	return cl
}

// sample keeps up to three distinct messages of each kind of error, for
// the report.
func (r *connRig) sample(err error) {
	if err == nil {
		return
	}
	kind := faulttest.Classify(err)
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.errSamples[kind]
	if len(list) >= 3 {
		return
	}
	for _, m := range list {
		if m == msg {
			return
		}
	}
	r.errSamples[kind] = append(list, msg)
}

// samples lists the kept error messages.
func (r *connRig) samples() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	kinds := make([]string, 0, len(r.errSamples))
	for k := range r.errSamples {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		for _, m := range r.errSamples[faulttest.ErrorKind(k)] {
			fmt.Fprintf(&b, "\n  %s: %s", k, m)
		}
	}
	return b.String()
}

// send sends one message of kind op through c, with a ledger id and a
// deadline of timeout, and records its outcome.
func (r *connRig) send(c *rpc.Client, op faulttest.Op, timeout time.Duration, sleepMS int, opts ...rpc.CallOption) error {
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	id := r.l.Sent(ctx, op)
	args := connArgs{ID: id, SleepMS: sleepMS}
	var err error
	switch op {
	case faulttest.OpCall:
		var reply string
		err = c.Call(ctx, "work", args, &reply, opts...)
		if err == nil && reply != id {
			err = fmt.Errorf("reply %q to %s", reply, id)
		}
	case faulttest.OpCast:
		err = c.Cast(ctx, "work", args, opts...)
	case faulttest.OpFanout:
		err = c.Cast(ctx, "work", args, append(opts, rpc.Fanout(true))...)
	default:
		err = fmt.Errorf("op %v not sent by send", op)
	}
	r.l.Returned(id, err)
	r.sample(err)
	r.mu.Lock()
	r.sentBy[c]++
	if err != nil {
		r.failedBy[c]++
	}
	if op == faulttest.OpFanout {
		r.fanout[id] = true
	}
	r.mu.Unlock()
	return err
}

// sentFailed returns the number of messages that c sent and of those
// that failed.
func (r *connRig) sentFailed(c *rpc.Client) (sent, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sentBy[c], r.failedBy[c]
}

// notifyOne sends one notification with a ledger id through n.
func (r *connRig) notifyOne(n *notify.Notifier, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	id := r.l.Sent(ctx, faulttest.OpNotify)
	err := n.Info(ctx, "conn.test", connArgs{ID: id})
	r.l.Returned(id, err)
	r.sample(err)
	return err
}

// connWorker is one sender of the load.
type connWorker struct {
	op      faulttest.Op
	client  *rpc.Client
	opts    []rpc.CallOption
	sleepMS int
}

// connLoad is a running load: workers that send until stopped, each at
// most max messages.
type connLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// load starts the workers: each sends a message, pauses, and so on,
// until Stop or max messages. Callers that fail pause a little longer,
// so that a fault does not turn them into a tight loop.
func (r *connRig) load(pause time.Duration, max int, workers ...connWorker) *connLoad {
	ld := &connLoad{stop: make(chan struct{})}
	for _, w := range workers {
		ld.wg.Go(func() {
			for range max {
				select {
				case <-ld.stop:
					return
				default:
				}
				wait := pause
				if r.send(w.client, w.op, connCallTimeout, w.sleepMS, w.opts...) != nil {
					wait += 100 * time.Millisecond
				}
				t := time.NewTimer(wait)
				select {
				case <-ld.stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		})
	}
	r.t.Cleanup(ld.Stop)
	return ld
}

// Stop stops the workers and waits for them.
func (ld *connLoad) Stop() {
	ld.once.Do(func() { close(ld.stop) })
	ld.wg.Wait()
}

// probe calls through c until a call succeeds or budget passes, and
// returns how long it took. Every call is in the ledger.
func (r *connRig) probe(c *rpc.Client, budget time.Duration, opts ...rpc.CallOption) (time.Duration, bool) {
	start := time.Now()
	for i := 0; i < 100 && time.Since(start) < budget; i++ {
		timeout := min(connCallTimeout, budget-time.Since(start))
		if timeout <= 0 {
			break
		}
		if r.send(c, faulttest.OpCall, timeout, 0, opts...) == nil {
			return time.Since(start), true
		}
		if !r.pause(100 * time.Millisecond) {
			break
		}
	}
	return time.Since(start), false
}

// pause waits for d or the end of the test; it reports whether it
// waited the whole time.
func (r *connRig) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// sameServerDuplicates returns the ledger ids that one server executed
// more than once, and the number of ids executed by more than one
// server (fanout casts excepted: every server executes those).
func (r *connRig) sameServerDuplicates() (same []string, cross int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, by := range r.execs {
		seen := map[string]int{}
		for _, s := range by {
			seen[s]++
		}
		for s, n := range seen {
			if n > 1 {
				same = append(same, fmt.Sprintf("%s by %s ×%d", id, s, n))
			}
		}
		if len(seen) > 1 && !r.fanout[id] {
			cross++
		}
	}
	sort.Strings(same)
	return same, cross
}

// finish waits for the messages in flight (settle), closes every
// client, server, listener and proxy, and records the leaks: queues
// named reply_* and <topic>_fanout_*, connections named after the rig,
// goroutines started since the baseline.
func (r *connRig) finish(settle time.Duration) {
	r.t.Helper()
	sctx, cancel := context.WithTimeout(r.ctx, settle)
	_ = r.l.WaitDelivered(sctx)
	cancel()

	r.mu.Lock()
	servers := append([]*connServer(nil), r.servers...)
	listeners := append([]*connListener(nil), r.listeners...)
	transports := append([]*messaging.Transport(nil), r.transports...)
	proxies := append([]interface{ Close() }(nil), r.proxies...)
	r.mu.Unlock()

	for _, s := range servers {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		if err := s.srv.Shutdown(ctx); err != nil {
			r.t.Errorf("server %s: Shutdown: %v", s.name, err)
			_ = s.srv.Close()
		}
		cancel()
		select {
		case err := <-s.done:
			if err != nil && !errors.Is(err, rpc.ErrServerClosed) {
				r.t.Errorf("server %s: Serve: %v", s.name, err)
			}
		case <-time.After(15 * time.Second):
			r.t.Errorf("server %s: Serve did not return within 15 s of Shutdown", s.name)
		}
	}
	for _, cl := range listeners {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		if err := cl.lis.Shutdown(ctx); err != nil {
			r.t.Errorf("listener: Shutdown: %v", err)
			_ = cl.lis.Close()
		}
		cancel()
		select {
		case err := <-cl.done:
			if err != nil && !errors.Is(err, notify.ErrListenerClosed) {
				r.t.Errorf("listener: Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			r.t.Error("listener: Serve did not return within 15 s of Shutdown")
		}
	}
	for _, tr := range transports {
		done := make(chan struct{})
		go func() { _ = tr.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			r.t.Errorf("transport %s: Close did not return within 20 s", tr.URL())
			<-done
		}
	}
	for _, p := range proxies {
		p.Close()
	}
	r.w.Stop()

	lctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
	defer cancel()
	f := faulttest.LeakFilter{QueuePrefixes: []string{"reply_", r.topic + "_fanout_"}, ConnectionPrefixes: []string{r.name}}
	if err := r.l.CheckLeaks(lctx, r.node, f); err != nil {
		r.t.Errorf("listing leaks: %v", err)
	}
	if r.restarted {
		// The node's new process has a goroutine of the harness that
		// ends when the test does: the ledger's check would count it.
		r.checkGoroutines(10 * time.Second)
	} else {
		gctx, cancel2 := context.WithTimeout(r.ctx, 10*time.Second)
		defer cancel2()
		if err := r.l.CheckGoroutines(gctx); err != nil {
			r.t.Errorf("checking goroutines: %v", err)
		}
	}
	r.t.Logf("report: %s", r.l.Report())
	if s := r.samples(); s != "" {
		r.t.Logf("error samples:%s", s)
	}
}

// checkGoroutines fails the test if goroutines started since start,
// other than the node's, are still running after wait.
func (r *connRig) checkGoroutines(wait time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := goleak.Find(r.base, goleak.IgnoreAnyFunction("github.com/go-oslo/messaging/internal/faulttest.(*Node).startLocked.func1"))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Errorf("%s: goroutines leaked: %v", r.id, err)
			return
		}
		r.pause(100 * time.Millisecond)
	}
}

// slowStarted returns the number of executions of 1 s or more begun.
func (r *connRig) slowStarted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.slow
}

// assertCore checks the rules every connection scenario keeps: no
// caller hung or is still blocked, no call succeeded without running,
// nothing leaked.
func (r *connRig) assertCore() {
	r.t.Helper()
	r.l.AssertNoHungCallers(r.t)
	r.l.AssertAllReturned(r.t)
	r.l.AssertNoSuccessWithoutExecution(r.t)
	r.l.AssertNoLeaks(r.t)
}

// connHoldProxy is a TCP proxy that can black-hole a connection at one
// precise moment: right after the AMQP handshake, once the broker's
// connection.open-ok has been passed to the client and before anything
// else, so that the client has read no frame since its handshake ended.
// faulttest.Proxy's Blackhole cannot aim at that moment. A held
// connection forwards nothing either way and closes nothing (a
// half-open link) until Release or Close.
type connHoldProxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	arm     int        // connections still to hold after their handshake
	held    int        // connections held so far
	release chan struct{}
	conns   map[net.Conn]struct{}
	closed  bool
}

func newConnHoldProxy(t *testing.T, upstream string) *connHoldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connHoldProxy{ln: ln, upstream: upstream, release: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(p.Close)
	return p
}

// URL returns the node URL u through the proxy.
func (p *connHoldProxy) URL(nodeURL, nodeAddr string) string {
	return strings.Replace(nodeURL, nodeAddr, p.ln.Addr().String(), 1)
}

// Arm makes the proxy hold the next n connections that complete their
// handshake.
func (p *connHoldProxy) Arm(n int) {
	p.mu.Lock()
	p.arm = n
	p.mu.Unlock()
}

// Held returns the number of connections held so far.
func (p *connHoldProxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Reset prepares the proxy for another round of Arm and Release: no
// connection held so far.
func (p *connHoldProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		select {
		case <-p.release:
		default:
			close(p.release) // no link may wait for it for ever
		}
		p.release = make(chan struct{})
	}
	p.held = 0
}

// Release ends the half-open state of the held connections by closing
// them (as a TCP keepalive or an operator eventually would).
func (p *connHoldProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// Close closes the listener and every connection, and waits for the
// proxy's goroutines. It is idempotent.
func (p *connHoldProxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		_ = p.ln.Close()
		for c := range p.conns {
			_ = c.Close()
		}
		select {
		case <-p.release:
		default:
			close(p.release)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *connHoldProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *connHoldProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c) || !p.track(s) {
			_ = c.Close()
			_ = s.Close()
			continue
		}
		p.wg.Go(func() { p.link(c, s) })
	}
}

// link forwards one connection: the client's bytes as they come, the
// broker's frame by frame, watching for connection.open-ok.
func (p *connHoldProxy) link(c, s net.Conn) {
	var hold sync.WaitGroup // both directions
	held := make(chan struct{})
	var release chan struct{} // set before held is closed
	closeBoth := func() { _ = c.Close(); _ = s.Close() }
	hold.Go(func() { // client to broker
		buf := make([]byte, 16<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				select {
				case <-held:
					<-release
					closeBoth()
					return
				default:
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					closeBoth()
					return
				}
			}
			if err != nil {
				closeBoth()
				return
			}
		}
	})
	hold.Go(func() { // broker to client, by frames
		hdr := make([]byte, 7)
		for {
			if _, err := io.ReadFull(s, hdr); err != nil {
				closeBoth()
				return
			}
			size := binary.BigEndian.Uint32(hdr[3:7])
			if size > 1<<20 {
				closeBoth()
				return
			}
			body := make([]byte, int(size)+1)
			if _, err := io.ReadFull(s, body); err != nil {
				closeBoth()
				return
			}
			// A method frame (type 1) on channel 0 whose class and
			// method are connection (10) and open-ok (41).
			openOK := hdr[0] == 1 && binary.BigEndian.Uint16(hdr[1:3]) == 0 && size >= 4 &&
				binary.BigEndian.Uint16(body[0:2]) == 10 && binary.BigEndian.Uint16(body[2:4]) == 41
			if openOK && release == nil {
				// Held before the client can see open-ok, so nothing it
				// sends afterwards gets through.
				if release = p.take(); release != nil {
					close(held)
				}
			}
			if _, err := c.Write(append(hdr, body...)); err != nil {
				closeBoth()
				return
			}
			if release != nil {
				<-release
				closeBoth()
				return
			}
		}
	})
	hold.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// take uses up one armed hold and returns the channel that releases
// it, or nil when none is armed.
func (p *connHoldProxy) take() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.arm <= 0 {
		return nil
	}
	p.arm--
	p.held++
	return p.release
}
