package faultsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// lifeArgs are the arguments of the lifecycle scenarios' method "work":
// the ledger id, optional padding (large bodies) and an optional time
// for the handler to sleep.
type lifeArgs struct {
	ID      string `json:"ledger_id"`
	Pad     string `json:"pad,omitempty"`
	SleepMS int    `json:"sleep_ms,omitempty"`
}

// lifeNotice is the payload of the lifecycle scenarios' notifications.
type lifeNotice struct {
	ID string `json:"ledger_id"`
}

// lifeURL returns the node's transport URL with short timings: a
// heartbeat of hb seconds, reconnection waits of about a second and
// reply and fanout queues that expire ttl seconds after their last use.
func lifeURL(n *faulttest.Node, hb, ttl int) string {
	return n.URL() + "?heartbeat_timeout_threshold=" + strconv.Itoa(hb) +
		"&rabbit_retry_interval=1&rabbit_retry_backoff=1&rabbit_interval_max=3" +
		"&kombu_reconnect_delay=0.5&rabbit_transient_queues_ttl=" + strconv.Itoa(ttl)
}

// lifeConnPrefix is the start of the connection_name of every
// connection this test binary opens: "<program>:".
func lifeConnPrefix() string { return filepath.Base(os.Args[0]) + ":" }

// lifeEvents counts the driver events of a transport.
type lifeEvents struct {
	mu     sync.Mutex // guards the fields below
	counts map[driver.EventKind]int
	last   []string // the latest few, for the notes
}

func (e *lifeEvents) handle(ev driver.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = map[driver.EventKind]int{}
	}
	e.counts[ev.Kind]++
	if ev.Kind != driver.EventConnected && len(e.last) < 8 {
		e.last = append(e.last, fmt.Sprintf("%s %v", ev.Kind, ev.Err))
	}
}

func (e *lifeEvents) count(k driver.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[k]
}

func (e *lifeEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fmt.Sprintf("connected=%d disconnected=%d reconnected=%d reply_dropped=%d late_reply=%d",
		e.counts[driver.EventConnected], e.counts[driver.EventDisconnected], e.counts[driver.EventReconnected],
		e.counts[driver.EventReplyDropped], e.counts[driver.EventLateReply])
}

// lifeLogger returns a logger of warnings and errors to t's log, silent
// once t's cleanups run.
func lifeLogger(t *testing.T) *slog.Logger {
	w := &lifeLogWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type lifeLogWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *lifeLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// lifeOpen opens a transport on url whose events go to ev (if not nil)
// and closes it when t ends (Close is idempotent, so scenarios close
// it earlier to check for leaks).
func lifeOpen(t *testing.T, url string, ev *lifeEvents) *messaging.Transport {
	t.Helper()
	opts := []messaging.Option{messaging.WithLogger(lifeLogger(t))}
	if ev != nil {
		opts = append(opts, messaging.WithEventHandler(ev.handle))
	}
	tr, err := messaging.Open(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// lifeWorkEndpoint returns the endpoint of method "work": it records
// the execution of the message's ledger id by by, calls hook if not nil,
// sleeps for the message's SleepMS (cut short when ctx ends) and returns
// the ledger id.
func lifeWorkEndpoint(l *faulttest.Ledger, by string, hook func(context.Context, lifeArgs)) *rpc.Endpoint {
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "work", func(ctx context.Context, a lifeArgs) (string, error) {
		l.Executed(a.ID, by)
		if hook != nil {
			hook(ctx, a)
		}
		if a.SleepMS > 0 {
			timer := time.NewTimer(time.Duration(a.SleepMS) * time.Millisecond)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return a.ID, nil
	})
	return ep
}

// lifeServer is a running rpc.Server.
type lifeServer struct {
	srv  *rpc.Server
	done chan error // Serve's result
}

// lifeServe starts a server for target with ep: it listens (so that its
// queues exist when lifeServe returns) and serves on a goroutine that
// stop joins. The test's cleanup closes it if the scenario did not.
func lifeServe(ctx context.Context, t *testing.T, tr *messaging.Transport, target messaging.Target, ep *rpc.Endpoint, opts ...rpc.ServerOption) *lifeServer {
	t.Helper()
	srv, err := rpc.NewServer(tr, target, []*rpc.Endpoint{ep}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := srv.Listen(lctx); err != nil {
		t.Fatalf("listen %v: %v", target, err)
	}
	s := &lifeServer{srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx) }()
	t.Cleanup(func() { s.close() })
	return s
}

// stop shuts the server down gracefully, within 10 s, and waits for
// Serve; it returns Shutdown's error, or Serve's if it is not
// ErrServerClosed.
func (s *lifeServer) stop(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		_ = s.srv.Close()
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case serr := <-s.done:
		s.done <- serr // for close
		if err == nil && serr != nil && !errors.Is(serr, rpc.ErrServerClosed) && !errors.Is(serr, context.Canceled) {
			err = fmt.Errorf("serve: %w", serr)
		}
	case <-timer.C:
		err = errors.Join(err, errors.New("serve did not return within 15 s of shutdown"))
	}
	return err
}

// close closes the server and waits, up to 15 s, for Serve.
func (s *lifeServer) close() {
	_ = s.srv.Close()
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case err := <-s.done:
		s.done <- err
	case <-timer.C:
	}
}

// lifeSend sends one message of kind op (a call, a cast or a fanout
// cast) to method "work" with a ctx of timeout, recording it in l, and
// returns its error. A call's reply must be its ledger id.
func lifeSend(ctx context.Context, l *faulttest.Ledger, c *rpc.Client, op faulttest.Op, timeout time.Duration, a lifeArgs, opts ...rpc.CallOption) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	a.ID = l.Sent(cctx, op)
	var err error
	switch op {
	case faulttest.OpCall:
		var reply string
		err = c.Call(cctx, "work", a, &reply, opts...)
		if err == nil && reply != a.ID {
			err = fmt.Errorf("reply %q to %s", reply, a.ID)
		}
	case faulttest.OpFanout:
		err = c.Cast(cctx, "work", a, append(opts, rpc.Fanout(true))...)
	default:
		err = c.Cast(cctx, "work", a, opts...)
	}
	l.Returned(a.ID, err)
	return err
}

// lifeLoad runs workers that repeat an operation until stopped, each at
// most a given number of times.
type lifeLoad struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func newLifeLoad() *lifeLoad { return &lifeLoad{stop: make(chan struct{})} }

// run starts a worker that calls op at most max times, pausing pause
// after each, until Stop.
func (ld *lifeLoad) run(max int, pause time.Duration, op func()) {
	ld.wg.Go(func() {
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for range max {
			select {
			case <-ld.stop:
				return
			default:
			}
			op()
			timer.Reset(pause)
			select {
			case <-ld.stop:
				return
			case <-timer.C:
			}
		}
	})
}

// Wait waits until every worker has done its operations or was
// stopped.
func (ld *lifeLoad) Wait() { ld.wg.Wait() }

// Stop stops the workers and waits for them; each returns once its
// current operation has (which its context bounds).
func (ld *lifeLoad) Stop() {
	ld.once.Do(func() { close(ld.stop) })
	ld.wg.Wait()
}

// lifeSleep waits for d or until ctx ends.
func lifeSleep(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// lifeBroker is what a node holds: its queue names (of every virtual
// host) and the number of its client connections.
type lifeBroker struct {
	Queues []string
	Conns  int
}

var lifeBinaryRE = regexp.MustCompile(`<<"([^"]*)">>`)

// lifeBrokerState reads the node's queues and connections with one
// rabbitmqctl command, which is several times quicker than listing them
// apart.
func lifeBrokerState(ctx context.Context, n *faulttest.Node) (lifeBroker, error) {
	out, err := n.Ctl(ctx, "eval",
		`[element(4, amqqueue:get_name(Q)) || Q <- rabbit_amqqueue:list()] ++ `+
			`[list_to_binary("conns=" ++ integer_to_list(length(rabbit_networking:connections())))].`)
	if err != nil {
		return lifeBroker{}, err
	}
	var st lifeBroker
	found := false
	for _, m := range lifeBinaryRE.FindAllStringSubmatch(out, -1) {
		if c, ok := strings.CutPrefix(m[1], "conns="); ok {
			st.Conns, err = strconv.Atoi(c)
			if err != nil {
				return lifeBroker{}, fmt.Errorf("rabbitmqctl eval: %q: %w", out, err)
			}
			found = true
			continue
		}
		st.Queues = append(st.Queues, m[1])
	}
	if !found {
		return lifeBroker{}, fmt.Errorf("rabbitmqctl eval: unexpected output %q", out)
	}
	slices.Sort(st.Queues)
	return st, nil
}

// lifeQueue returns the queue named name, if the node has it.
func lifeQueue(ctx context.Context, n *faulttest.Node, name string) (faulttest.QueueInfo, bool, error) {
	qs, err := n.ListQueues(ctx)
	if err != nil {
		return faulttest.QueueInfo{}, false, err
	}
	for _, q := range qs {
		if q.Name == name {
			return q, true, nil
		}
	}
	return faulttest.QueueInfo{}, false, nil
}

// lifeFinish checks, once the scenario has closed its clients, servers
// and watchdog, that no queue of prefixes, no connection of this
// program and no goroutine started since the baseline remains, and
// records the findings in l. Then it asserts the ledger's common rules.
func lifeFinish(ctx context.Context, t *testing.T, l *faulttest.Ledger, n *faulttest.Node, queuePrefixes ...string) {
	t.Helper()
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := l.CheckLeaks(lctx, n, faulttest.LeakFilter{QueuePrefixes: queuePrefixes, ConnectionPrefixes: []string{lifeConnPrefix()}}); err != nil {
		t.Error(err)
	}
	gctx, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	if err := l.CheckGoroutines(gctx); err != nil {
		t.Error(err)
	}
	l.AssertNoLeaks(t)
}

// Child processes. A scenario that needs a process to crash runs its
// own test function again in a child process with lifeChildEnv set to a
// role; the function then plays that role instead of the scenario and
// reports on its standard output with lines "LIFE <word> <args>".
const (
	lifeChildEnv   = "OMSG_FAULTSUITE_LIFE_CHILD"
	lifeChildURL   = "OMSG_FAULTSUITE_LIFE_URL"
	lifeChildTopic = "OMSG_FAULTSUITE_LIFE_TOPIC"
	lifeChildID    = "OMSG_FAULTSUITE_LIFE_ID"
	// lifeChildLife bounds a child that is never killed.
	lifeChildLife = 60 * time.Second
)

// lifeChildSay writes one report line of a child.
func lifeChildSay(words ...string) {
	fmt.Fprintln(os.Stdout, "LIFE "+strings.Join(words, " "))
}

// lifeChildWait keeps a child alive until it is killed or lifeChildLife
// passes, when it fails: the parent was to kill it.
func lifeChildWait(t *testing.T) {
	lifeSleep(t.Context(), lifeChildLife)
	t.Fatal("child not killed")
}

// lifeChild is a child process running one test function in a role.
type lifeChild struct {
	cmd   *exec.Cmd
	lines chan []string // report lines, without "LIFE"; closed at EOF
	read  sync.WaitGroup
	pid   int
	done  atomic.Bool
}

// startLifeChild runs the test function named test of this binary in a
// child process with env (lifeChildEnv included) and returns it; it is
// killed, and its output reader joined, when t ends at the latest.
func startLifeChild(t *testing.T, test string, env ...string) *lifeChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=120s")
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, EnvOut+"=") || strings.HasPrefix(kv, "OMSG_FAULTSUITE_LIFE_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child process: %v", err)
	}
	c := &lifeChild{cmd: cmd, lines: make(chan []string, 1024), pid: cmd.Process.Pid}
	c.read.Go(func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), "LIFE ")
			if words := strings.Fields(rest); ok && len(words) > 0 {
				select {
				case c.lines <- words:
				default: // nobody reads that many: drop it rather than block
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	})
	t.Cleanup(func() { _ = c.kill() })
	return c
}

// next returns the child's next report line, or an error when ctx ends
// or the child's output ends first.
func (c *lifeChild) next(ctx context.Context) ([]string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return nil, errors.New("the child process ended its output")
		}
		return line, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the child process: %w", ctx.Err())
	}
}

// kill sends SIGKILL to the child and waits for it and its output
// reader. It is idempotent.
func (c *lifeChild) kill() error {
	if c.done.Swap(true) {
		return nil
	}
	err := c.cmd.Process.Kill()
	c.read.Wait() // the output ends when the process dies
	_ = c.cmd.Wait()
	return err
}

// lifeOverruns keeps, per kind of send, the longest a sender stayed
// blocked past its deadline, and how many did for more than the
// ledger's default slack.
type lifeOverruns struct {
	mu     sync.Mutex // guards the fields below
	worst  map[string]time.Duration
	over   map[string]int
	stacks string // of the senders, when one was first late
}

// dump keeps, the first time, the stacks of the goroutines in lifeSend.
func (o *lifeOverruns) dump() {
	buf := make([]byte, 4<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	var senders []string
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "faultsuite.lifeSend") {
			senders = append(senders, g)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stacks == "" {
		o.stacks = strings.Join(senders, "\n\n")
	}
}

func (o *lifeOverruns) add(kind string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.worst == nil {
		o.worst, o.over = map[string]time.Duration{}, map[string]int{}
	}
	o.worst[kind] = max(o.worst[kind], d)
	if d > faulttest.DefaultSlack {
		o.over[kind]++
	}
}

func (o *lifeOverruns) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for k, d := range o.worst {
		parts = append(parts, fmt.Sprintf("%s %v (%d over %v)", k, max(d, 0).Round(time.Millisecond), o.over[k], faulttest.DefaultSlack))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// lifeOurs returns the connections this program opened.
func lifeOurs(conns []faulttest.ConnectionInfo) []faulttest.ConnectionInfo {
	var ours []faulttest.ConnectionInfo
	for _, c := range conns {
		if strings.HasPrefix(c.Name, lifeConnPrefix()) {
			ours = append(ours, c)
		}
	}
	return ours
}

// lifeTally records who received each notification.
type lifeTally struct {
	mu sync.Mutex // guards by
	by map[string][]string
}

func (lt *lifeTally) add(id, by string) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.by[id] = append(lt.by[id], by)
}

func (lt *lifeTally) get(id string) []string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Clone(lt.by[id])
}

func (lt *lifeTally) snapshot() map[string][]string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	m := make(map[string][]string, len(lt.by))
	for id, by := range lt.by {
		m[id] = slices.Clone(by)
	}
	return m
}

// lifeListen starts a notification listener of topic's info
// notifications, named by, that records what it receives, and returns
// its graceful stop, which waits for Serve.
func lifeListen(ctx context.Context, t *testing.T, tr *messaging.Transport, topic, by string, l *faulttest.Ledger, tally *lifeTally) func(context.Context) error {
	t.Helper()
	ep := &notify.Endpoint{Info: func(_ context.Context, nt *notify.Notification) error {
		var p lifeNotice
		if err := json.Unmarshal(nt.Payload, &p); err != nil {
			return err
		}
		l.Executed(p.ID, by)
		tally.add(p.ID, by)
		return nil
	}}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: topic}}, []*notify.Endpoint{ep}, notify.WithMaxConcurrency(8))
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := lis.Listen(lctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lis.Serve(ctx) }()
	stopped := false
	stop := func(ctx context.Context) error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err := lis.Shutdown(sctx)
		if err != nil {
			_ = lis.Close()
		}
		timer := time.NewTimer(15 * time.Second)
		defer timer.Stop()
		select {
		case serr := <-done:
			if err == nil && serr != nil && !errors.Is(serr, notify.ErrListenerClosed) && !errors.Is(serr, context.Canceled) {
				err = fmt.Errorf("serve: %w", serr)
			}
		case <-timer.C:
			err = errors.Join(err, errors.New("serve did not return within 15 s of shutdown"))
		}
		return err
	}
	t.Cleanup(func() { _ = stop(context.Background()) })
	return stop
}
