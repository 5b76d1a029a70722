package faultsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// The cluster and broker-side scenarios run with short timings, given
// to the driver as URL options (whole seconds, except the reconnect
// delay).
const (
	cluHeartbeat      = 2 * time.Second
	cluRetryInterval  = 1 * time.Second
	cluRetryBackoff   = 1 * time.Second
	cluIntervalMax    = 2 * time.Second
	cluReconnectDelay = 500 * time.Millisecond
	cluCallTimeout    = 2 * time.Second
	// cluRecoveryBudget bounds the time from a fault (or its healing) to
	// the first success: a loss found by heartbeats (3 × heartbeat), the
	// reconnect delay, the first two back-off waits and one call timeout,
	// rounded up.
	cluRecoveryBudget = 3*cluHeartbeat + cluReconnectDelay + cluRetryInterval + cluIntervalMax + cluCallTimeout + 500*time.Millisecond
)

// cluQuery sets the timings above.
const cluQuery = "heartbeat_timeout_threshold=2&rabbit_retry_interval=1&rabbit_retry_backoff=1" +
	"&rabbit_interval_max=2&kombu_reconnect_delay=0.5&rabbit_transient_queues_ttl=10"

// cluURL appends cluQuery and extra options (key=value) to a transport
// URL without a query.
func cluURL(base string, extra ...string) string {
	return base + "?" + strings.Join(append([]string{cluQuery}, extra...), "&")
}

// cluRandom returns 8 random hex digits, to name a scenario's topics.
func cluRandom() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cluProgram is the start of the connection_name of every connection of
// this test binary.
func cluProgram() string { return filepath.Base(os.Args[0]) + ":" }

// cluBackoffWait is the shortest wait the driver's documented back-off
// allows before connection attempt n+1: RetryInterval +
// RetryBackoff*(2^(n-1)-1), at most IntervalMax, times the smallest
// jitter factor, 0.5.
func cluBackoffWait(n int) time.Duration {
	d := cluRetryInterval
	step := cluRetryBackoff
	for i := 1; i < n && d < cluIntervalMax; i++ {
		d += step
		step *= 2
	}
	return min(d, cluIntervalMax) / 2
}

// cluMaxAttempts is the largest number of connection attempts that the
// documented back-off lets one consumer make within window, counting
// one more for an attempt under way when the window opened.
func cluMaxAttempts(window time.Duration) int {
	n, at := 1, time.Duration(0)
	for n < 10000 {
		at += cluBackoffWait(n)
		if at > window {
			break
		}
		n++
	}
	return n + 1
}

// cluArgs are the arguments of the scenarios' method "work" and the
// payload of their notifications.
type cluArgs struct {
	ID string `json:"ledger_id"`
}

// cluLog is a logger for the driver that writes to the test's log (at
// its level and above, until the test ends) and counts every record
// by message, and the records whose error mentions NOT_FOUND.
type cluLog struct {
	level slog.Level

	mu       sync.Mutex // guards the fields below
	t        *testing.T
	done     bool
	messages map[string]int
	notFound int
}

func newCluLog(t *testing.T, level slog.Level) *cluLog {
	g := &cluLog{t: t, level: level, messages: map[string]int{}}
	t.Cleanup(func() {
		g.mu.Lock()
		g.done = true
		g.mu.Unlock()
	})
	return g
}

func (g *cluLog) logger() *slog.Logger { return slog.New(&cluLogHandler{g: g}) }

// count returns how many records had msg as their message.
func (g *cluLog) count(msg string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.messages[msg]
}

// notFoundCount returns how many records carried an error mentioning
// the broker's NOT_FOUND.
func (g *cluLog) notFoundCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.notFound
}

type cluLogHandler struct {
	g     *cluLog
	attrs []slog.Attr
}

func (h *cluLogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *cluLogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	notFound := false
	add := func(a slog.Attr) bool {
		v := a.Value.String()
		fmt.Fprintf(&b, " %s=%q", a.Key, v)
		notFound = notFound || (a.Key == "err" && strings.Contains(v, "NOT_FOUND"))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	g := h.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.messages[r.Message]++
	if notFound {
		g.notFound++
	}
	if r.Level >= g.level && !g.done {
		g.t.Log(b.String())
	}
	return nil
}

func (h *cluLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &cluLogHandler{g: h.g, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h *cluLogHandler) WithGroup(string) slog.Handler { return h }

// cluEvents records a transport's driver events.
type cluEvents struct {
	mu      sync.Mutex // guards the fields below
	all     []driver.Event
	changed chan struct{}
}

func newCluEvents() *cluEvents { return &cluEvents{changed: make(chan struct{})} }

func (e *cluEvents) handle(ev driver.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
	close(e.changed)
	e.changed = make(chan struct{})
}

// cluRole names the connection an event is about: "publish", "reply"
// or "listen" (an RPC or notification listener).
func cluRole(ev driver.Event) string {
	switch {
	case ev.Queue == "":
		return "publish"
	case strings.HasPrefix(ev.Queue, "reply_"):
		return "reply"
	}
	return "listen"
}

// up returns, for each role, the last connected or reconnected event
// after since whose address is not avoid.
func (e *cluEvents) up(since time.Time, avoid string) map[string]driver.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	got := map[string]driver.Event{}
	for _, ev := range e.all {
		if (ev.Kind == driver.EventConnected || ev.Kind == driver.EventReconnected) &&
			!ev.Time.Before(since) && ev.Addr != avoid {
			got[cluRole(ev)] = ev
		}
	}
	return got
}

// waitUp waits, up to ctx, until every role of roles has a connected or
// reconnected event after since on an address other than avoid, and
// returns what up returns.
func (e *cluEvents) waitUp(ctx context.Context, roles []string, since time.Time, avoid string) (map[string]driver.Event, bool) {
	for {
		e.mu.Lock()
		changed := e.changed
		e.mu.Unlock()
		got := e.up(since, avoid)
		all := true
		for _, r := range roles {
			if _, ok := got[r]; !ok {
				all = false
			}
		}
		if all {
			return got, true
		}
		select {
		case <-ctx.Done():
			return got, false
		case <-changed:
		}
	}
}

// count returns the events of kind after since.
func (e *cluEvents) count(kind driver.EventKind, since time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Kind == kind && !ev.Time.Before(since) {
			n++
		}
	}
	return n
}

// cluOpen opens a transport with the scenario's logger and, when ev is
// not nil, an event recorder; the test's cleanup closes it (Close is
// idempotent).
func cluOpen(t *testing.T, rawURL string, log *cluLog, ev *cluEvents, opts ...messaging.Option) *messaging.Transport {
	t.Helper()
	opts = append([]messaging.Option{messaging.WithLogger(log.logger())}, opts...)
	if ev != nil {
		opts = append(opts, messaging.WithEventHandler(ev.handle))
	}
	tr, err := messaging.Open(rawURL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// cluServer is an RPC server whose method "work" records its executions
// in the ledger as name, and the goroutine that runs its Serve.
type cluServer struct {
	name string
	srv  *rpc.Server
	done chan error
	once sync.Once
	err  error
}

// cluStartServer makes a server for target, listens (bounded by
// listen) and serves on a goroutine of its own until stop. It returns
// Listen's error, after closing the server.
func cluStartServer(ctx context.Context, t *testing.T, tr *messaging.Transport, target messaging.Target,
	l *faulttest.Ledger, listen time.Duration,
) (*cluServer, error) {
	t.Helper()
	ep := &rpc.Endpoint{}
	name := target.Server
	rpc.Handle(ep, "work", func(_ context.Context, a cluArgs) (string, error) {
		l.Executed(a.ID, name)
		return a.ID, nil
	})
	srv, err := rpc.NewServer(tr, target, []*rpc.Endpoint{ep})
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, listen)
	defer cancel()
	if err := srv.Listen(lctx); err != nil {
		_ = srv.Close()
		return nil, err
	}
	s := &cluServer{name: name, srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { _ = s.stop() })
	return s, nil
}

// stop shuts the server down (Close if Shutdown does not end within
// 10 s) and waits, up to 10 s more, for Serve to return. It returns an
// error if either wait ran out; it is idempotent.
func (s *cluServer) stop() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.err = fmt.Errorf("server %s: Shutdown: %w", s.name, err)
			_ = s.srv.Close()
		}
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case err := <-s.done:
			if !errors.Is(err, rpc.ErrServerClosed) && !errors.Is(err, context.Canceled) {
				s.err = errors.Join(s.err, fmt.Errorf("server %s: Serve returned %w", s.name, err))
			}
		case <-timer.C:
			s.err = errors.Join(s.err, fmt.Errorf("server %s: Serve did not return within 10s of Shutdown", s.name))
		}
	})
	return s.err
}

// cluListener is a notification listener whose Info handler records the
// notifications in the ledger as name.
type cluListener struct {
	name string
	lis  *notify.Listener
	done chan error
	once sync.Once
	err  error
}

// cluStartListener makes a notification listener for topic, listens
// (bounded by listen) and serves on a goroutine of its own until stop.
// It returns Listen's error, after closing the listener.
func cluStartListener(ctx context.Context, t *testing.T, tr *messaging.Transport, topic, name string,
	l *faulttest.Ledger, listen time.Duration,
) (*cluListener, error) {
	t.Helper()
	ep := &notify.Endpoint{Info: func(_ context.Context, n *notify.Notification) error {
		// A payload without a ledger id counts as an unknown execution.
		var a cluArgs
		_ = json.Unmarshal(n.Payload, &a)
		l.Executed(a.ID, name)
		return nil
	}}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: topic}}, []*notify.Endpoint{ep})
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, listen)
	defer cancel()
	if err := lis.Listen(lctx); err != nil {
		_ = lis.Close()
		return nil, err
	}
	c := &cluListener{name: name, lis: lis, done: make(chan error, 1)}
	go func() { c.done <- lis.Serve(ctx) }()
	t.Cleanup(func() { _ = c.stop() })
	return c, nil
}

// stop is cluServer.stop for the listener.
func (c *cluListener) stop() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.lis.Shutdown(ctx); err != nil {
			c.err = fmt.Errorf("listener %s: Shutdown: %w", c.name, err)
			_ = c.lis.Close()
		}
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case err := <-c.done:
			if !errors.Is(err, notify.ErrListenerClosed) && !errors.Is(err, context.Canceled) {
				c.err = errors.Join(c.err, fmt.Errorf("listener %s: Serve returned %w", c.name, err))
			}
		case <-timer.C:
			c.err = errors.Join(c.err, fmt.Errorf("listener %s: Serve did not return within 10s of Shutdown", c.name))
		}
	})
	return c.err
}

// cluSendFunc sends one message carrying ledger id id.
type cluSendFunc func(ctx context.Context, id string) error

// cluCall calls "work" and checks that the reply is the id.
func cluCall(c *rpc.Client, opts ...rpc.CallOption) cluSendFunc {
	return func(ctx context.Context, id string) error {
		var reply string
		err := c.Call(ctx, "work", cluArgs{ID: id}, &reply, opts...)
		if err == nil && reply != id {
			return fmt.Errorf("reply %q to %s", reply, id)
		}
		return err
	}
}

// cluCast casts "work".
func cluCast(c *rpc.Client, opts ...rpc.CallOption) cluSendFunc {
	return func(ctx context.Context, id string) error {
		return c.Cast(ctx, "work", cluArgs{ID: id}, opts...)
	}
}

// cluNotify sends an info notification.
func cluNotify(n *notify.Notifier) cluSendFunc {
	return func(ctx context.Context, id string) error {
		return n.Info(ctx, "clu.work", cluArgs{ID: id})
	}
}

// cluSend sends one message of kind op, bounded by timeout, and records
// it in the ledger.
func cluSend(ctx context.Context, l *faulttest.Ledger, op faulttest.Op, timeout time.Duration, send cluSendFunc) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := l.Sent(cctx, op)
	err := send(cctx, id)
	l.Returned(id, err)
	return err
}

// cluProbe sends until one send succeeds, at most 60 times and within
// budget, and returns how long that took.
func cluProbe(ctx context.Context, l *faulttest.Ledger, op faulttest.Op, budget time.Duration, send cluSendFunc) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	var err error
	for range 60 {
		if err = cluSend(ctx, l, op, cluCallTimeout, send); err == nil {
			return time.Since(start), nil
		}
		if !cluSleep(ctx, 200*time.Millisecond) {
			break
		}
	}
	return time.Since(start), fmt.Errorf("no success within %v: last error: %w", budget, err)
}

// cluSleep waits d or until ctx ends, and reports whether it waited d.
func cluSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cluWorker is one sender of a load.
type cluWorker struct {
	op      faulttest.Op
	timeout time.Duration
	send    cluSendFunc
}

// cluLoad runs workers, each sending at most max messages with pause
// between them, until stopped.
type cluLoad struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func cluStartLoad(ctx context.Context, l *faulttest.Ledger, pause time.Duration, max int, workers ...cluWorker) *cluLoad {
	ld := &cluLoad{stop: make(chan struct{})}
	for _, w := range workers {
		ld.wg.Go(func() {
			for range max {
				select {
				case <-ld.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				_ = cluSend(ctx, l, w.op, w.timeout, w.send)
				timer := time.NewTimer(pause)
				select {
				case <-ld.stop:
					timer.Stop()
					return
				case <-ctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		})
	}
	return ld
}

// Stop stops the workers and waits for them, up to bound (senders that
// hang are the watchdog's to report). It reports whether they all
// returned.
func (ld *cluLoad) Stop(bound time.Duration) bool {
	ld.once.Do(func() { close(ld.stop) })
	return ld.wait(bound)
}

// wait waits, up to bound, for the workers to end on their own.
func (ld *cluLoad) wait(bound time.Duration) bool {
	done := make(chan struct{})
	go func() {
		ld.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// cluNodeAt returns the member of c whose AMQP address is addr.
func cluNodeAt(c *faulttest.Cluster, addr string) *faulttest.Node {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// cluLive returns a running member of c other than skip.
func cluLive(c *faulttest.Cluster, skip *faulttest.Node) *faulttest.Node {
	for _, n := range c.Nodes {
		if n != skip && n.Running() {
			return n
		}
	}
	return nil
}

// cluHeal starts the members of c that are down and waits, up to 60 s,
// until every member sees all of them running. It reports whether the
// cluster is whole again.
func cluHeal(t *testing.T, c *faulttest.Cluster) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		if !n.Running() {
			wg.Go(func() { errs[i] = n.Start(ctx) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("restarting the cluster's members: %v", err)
		return false
	}
	if err := cluWaitRunning(ctx, c, len(c.Nodes)); err != nil {
		t.Error(err)
		return false
	}
	t.Logf("cluster whole again in %v", time.Since(start).Round(time.Millisecond))
	return true
}

// cluWaitRunning waits, up to ctx, until every running member of c sees
// want members running.
func cluWaitRunning(ctx context.Context, c *faulttest.Cluster, want int) error {
	var last []string
	for range 600 { // at most 600 polls, bounded by ctx
		ok := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			running, err := n.RunningNodes(ctx)
			if err != nil || len(running) != want {
				ok, last = false, running
				break
			}
		}
		if ok {
			return nil
		}
		if !cluSleep(ctx, 250*time.Millisecond) {
			break
		}
	}
	return fmt.Errorf("cluster: running members %v, want %d", last, want)
}

// cluQueueLeader returns the leader node of the quorum queue name in
// the virtual host "/", as node sees it.
func cluQueueLeader(ctx context.Context, node *faulttest.Node, name string) (string, error) {
	out, err := node.Ctl(ctx, "list_queues", "-p", "/", "name", "leader", "--formatter", "json", "--quiet")
	if err != nil {
		return "", err
	}
	var rows []struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return "", fmt.Errorf("list_queues: %w: %s", err, out)
	}
	for _, r := range rows {
		if r.Name == name {
			return r.Leader, nil
		}
	}
	return "", fmt.Errorf("no queue %q in %s", name, out)
}

// cluQueueCount counts node's queues in "/" whose names begin with
// prefix.
func cluQueueCount(ctx context.Context, node *faulttest.Node, prefix string) (int, error) {
	qs, err := node.ListQueues(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		if strings.HasPrefix(q.Name, prefix) {
			n++
		}
	}
	return n, nil
}

// cluChurn is the management plugin's churn counters of a node.
type cluChurn struct {
	ConnectionCreated int `json:"connection_created"`
	ChannelCreated    int `json:"channel_created"`
	QueueDeclared     int `json:"queue_declared"`
	QueueCreated      int `json:"queue_created"`
	QueueDeleted      int `json:"queue_deleted"`
}

// cluReadChurn reads the churn counters from the management API.
func cluReadChurn(ctx context.Context, port int) (cluChurn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/api/overview", nil)
	if err != nil {
		return cluChurn{}, err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cluChurn{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cluChurn{}, fmt.Errorf("management API: %s", resp.Status)
	}
	var ov struct {
		Churn *cluChurn `json:"churn_rates"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ov); err != nil {
		return cluChurn{}, fmt.Errorf("management API: %w", err)
	}
	if ov.Churn == nil {
		return cluChurn{}, errors.New("management API: no churn_rates in the overview")
	}
	return *ov.Churn, nil
}

// cluStableChurn reads the churn counters until they satisfy ready
// (nil: always) and two readings 1 s apart agree, at most 20 readings
// or until ctx ends: the node's statistics lag behind its work.
func cluStableChurn(ctx context.Context, port int, ready func(cluChurn) bool) (cluChurn, error) {
	prev, err := cluReadChurn(ctx, port)
	if err != nil {
		return prev, err
	}
	for range 20 {
		if !cluSleep(ctx, time.Second) {
			break
		}
		cur, err := cluReadChurn(ctx, port)
		if err != nil {
			return cur, err
		}
		if cur == prev && (ready == nil || ready(cur)) {
			return cur, nil
		}
		prev = cur
	}
	return prev, fmt.Errorf("management API: churn counters not settled: %+v", prev)
}

// cluGoroutines waits, up to ctx, until no goroutine is left that base
// does not ignore, besides those of the harness's node processes (a
// node restarted during the scenario has a new one), and returns the
// count and dump of the others.
func cluGoroutines(ctx context.Context, base goleak.Option) (int, string) {
	opts := []goleak.Option{base,
		goleak.IgnoreAnyFunction("github.com/go-oslo/messaging/internal/faulttest.(*Node).startLocked.func1")}
	for {
		err := goleak.Find(opts...)
		if err == nil {
			return 0, ""
		}
		if !cluSleep(ctx, 100*time.Millisecond) {
			dump := err.Error()
			return strings.Count(dump, "Goroutine "), dump
		}
	}
}

// cluSpread sums up reconnection times: their spread (last - first),
// their standard deviation, and the most of them within any window of
// width w.
func cluSpread(times []time.Time, w time.Duration) (spread, stdev time.Duration, most int) {
	if len(times) == 0 {
		return 0, 0, 0
	}
	ts := slices.Clone(times)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	spread = ts[len(ts)-1].Sub(ts[0])
	var sum float64
	for _, x := range ts {
		sum += float64(x.Sub(ts[0]))
	}
	mean := sum / float64(len(ts))
	var sq float64
	for _, x := range ts {
		d := float64(x.Sub(ts[0])) - mean
		sq += d * d
	}
	stdev = time.Duration(math.Sqrt(sq / float64(len(ts))))
	j := 0
	for i := range ts {
		for ts[i].Sub(ts[j]) > w {
			j++
		}
		most = max(most, i-j+1)
	}
	return spread, stdev, most
}

// cluNotes collects a scenario's figures for record.
type cluNotes struct {
	mu    sync.Mutex
	parts []string
}

func (n *cluNotes) add(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.parts = append(n.parts, fmt.Sprintf(format, args...))
}

func (n *cluNotes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.parts, "; ")
}

// cluReport returns a function that gives the ledger's report, for
// record.
func cluReport(l *faulttest.Ledger) func() *faulttest.Report {
	return func() *faulttest.Report {
		r := l.Report()
		return &r
	}
}

// cluRawQuorum publishes with confirms, with amqp091-go alone, to a
// quorum queue whose leader is a node that the scenario kills, on one
// channel and then on a new channel of the same connection: it shows
// what the broker does, apart from the driver.
type cluRawQuorum struct {
	conn  *amqp.Connection
	ch    *amqp.Channel
	queue string
}

// cluRawDeclareQuorum declares queue, a quorum queue, as the driver
// declares its queues with rabbit_quorum_queue, through node, which
// becomes its leader.
func cluRawDeclareQuorum(node *faulttest.Node, queue string) error {
	d, err := amqp.DialConfig(node.AMQPURL(), cluRawConfig)
	if err != nil {
		return err
	}
	defer func() { _ = d.CloseDeadline(time.Now().Add(5 * time.Second)) }()
	ch, err := d.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	return nil
}

var cluRawConfig = amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Properties: amqp.Table{"connection_name": "clu-raw"}}

// cluRawQuorumOpen opens a confirm channel to node for publishing to
// queue; with warm, it publishes one message first, which must be
// acknowledged.
func cluRawQuorumOpen(node *faulttest.Node, queue string, warm bool) (*cluRawQuorum, error) {
	r := &cluRawQuorum{queue: queue}
	var err error
	if r.conn, err = amqp.DialConfig(node.AMQPURL(), cluRawConfig); err != nil {
		return nil, err
	}
	if r.ch, err = r.conn.Channel(); err == nil {
		err = r.ch.Confirm(false)
	}
	if err == nil && warm {
		var acked bool
		if acked, err = r.publish(context.Background(), r.ch); err == nil && !acked {
			err = errors.New("nacked")
		}
	}
	if err != nil {
		r.close()
		return nil, fmt.Errorf("raw publish to %s: %w", queue, err)
	}
	return r, nil
}

// publish publishes one message on ch and waits, up to 2 s, for its
// confirm.
func (r *cluRawQuorum) publish(ctx context.Context, ch *amqp.Channel) (bool, error) {
	dc, err := ch.PublishWithDeferredConfirm("", r.queue, false, false, amqp.Publishing{Body: []byte("clu")})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return dc.WaitContext(ctx)
}

// run publishes on its channel every 250 ms for
// d (at most 100 times), then once on a new channel of the same
// connection and once more on the old one, and sums up the confirms.
func (r *cluRawQuorum) run(ctx context.Context, d time.Duration) string {
	start := time.Now()
	acks, nacks, fails := 0, 0, 0
	var firstAck time.Duration
	for i := 0; i < 100 && time.Since(start) < d; i++ {
		acked, err := r.publish(ctx, r.ch)
		switch {
		case err != nil:
			fails++
		case acked:
			if acks == 0 {
				firstAck = time.Since(start)
			}
			acks++
		default:
			nacks++
		}
		if r.ch.IsClosed() || !cluSleep(ctx, 250*time.Millisecond) {
			break
		}
	}
	var fresh string
	if ch, err := r.conn.Channel(); err != nil {
		fresh = err.Error()
	} else if err := ch.Confirm(false); err != nil {
		fresh = err.Error()
	} else {
		acked, err := r.publish(ctx, ch)
		fresh = fmt.Sprintf("acked %v, err %v", acked, err)
	}
	acked, err := r.publish(ctx, r.ch)
	first := "none"
	if acks > 0 {
		first = firstAck.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%d acks (first after %s), %d nacks, %d without confirm over %v; "+
		"then a new channel on the same connection: %s; the first channel again: acked %v, err %v",
		acks, first, nacks, fails, d, fresh, acked, err)
}

func (r *cluRawQuorum) close() {
	if r.conn != nil {
		_ = r.conn.CloseDeadline(time.Now().Add(5 * time.Second))
	}
}

// cluFirstOK records when sends of each kind succeeded, to find the
// first success of a kind after a fault.
type cluFirstOK struct {
	mu sync.Mutex                      // guards ok
	ok map[faulttest.Op][][2]time.Time // start and return, in the order of return
}

func newCluFirstOK() *cluFirstOK { return &cluFirstOK{ok: map[faulttest.Op][][2]time.Time{}} }

// wrap returns send, recording the return time of its successes as op.
func (f *cluFirstOK) wrap(op faulttest.Op, send cluSendFunc) cluSendFunc {
	return func(ctx context.Context, id string) error {
		start := time.Now()
		err := send(ctx, id)
		if err == nil {
			f.mu.Lock()
			f.ok[op] = append(f.ok[op], [2]time.Time{start, time.Now()})
			f.mu.Unlock()
		}
		return err
	}
}

// after returns how long after t the first successful send of op that
// started after t returned, and whether there was one.
func (f *cluFirstOK) after(op faulttest.Op, t time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.ok[op] {
		if !s[0].Before(t) {
			return s[1].Sub(t), true
		}
	}
	return 0, false
}
