package faultsuite

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/rabbit" // registers rabbit://
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/wire"
)

// The protocol and security scenarios (S18, S20-S25) share the helpers
// of this file, all named sec*.

// secArgs are the arguments of the scenarios' methods.
type secArgs struct {
	ID string `json:"ledger_id"`
}

// secLogs keeps every record the library logs, for the scenarios that
// look for a reason or for a secret in them, and copies warnings and
// errors to the test's log until the test ends.
type secLogs struct {
	mu   sync.Mutex // guards the fields below
	t    *testing.T
	buf  bytes.Buffer
	done bool
}

func (w *secLogs) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	line := string(p)
	if !w.done && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
		if len(line) > 400 {
			line = line[:400] + "..."
		}
		w.t.Log(strings.TrimSpace(line))
	}
	return len(p), nil
}

// String returns everything logged so far.
func (w *secLogs) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// count returns the number of log lines holding every one of subs.
func (w *secLogs) count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(w.String(), "\n") {
		all := line != ""
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// secLogger returns a logger at debug level that writes into a secLogs.
func secLogger(t *testing.T) (*slog.Logger, *secLogs) {
	w := &secLogs{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), w
}

// secRig is one scenario's node, ledger, topic and the things to close
// at its end.
type secRig struct {
	t     *testing.T
	ctx   context.Context //nolint:containedctx // the scenario's bound, for the rig's helpers
	node  *faulttest.Node
	l     *faulttest.Ledger
	w     *faulttest.Watchdog
	topic string
	log   *slog.Logger
	logs  *secLogs

	mu      sync.Mutex // guards closers
	closers []func()
}

// newSecRig starts a node with opts and a ledger named id, and bounds
// the scenario to budget.
func newSecRig(t *testing.T, id string, budget time.Duration, opts faulttest.NodeOptions) *secRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	t.Cleanup(cancel)
	if opts.Name == "" {
		opts.Name = "sec" + strings.ToLower(id)
	}
	r := &secRig{t: t, ctx: ctx, topic: "sec" + strings.ToLower(id) + secHex()}
	r.node = faulttest.StartNode(t, opts)
	r.l = faulttest.NewLedger(faulttest.LedgerOptions{Name: id, Slack: 2 * time.Second})
	r.l.GoroutineBaseline()
	r.w = r.l.StartWatchdog(t)
	r.log, r.logs = secLogger(t)
	t.Cleanup(r.closeAll)
	return r
}

// secHex returns 8 random hex digits.
func secHex() string { return wire.NewUUID()[:8] }

// report returns the ledger's report, for record.
func (r *secRig) report() *faulttest.Report {
	rep := r.l.Report()
	return &rep
}

// onClose registers f to run when the rig closes, before what was
// registered earlier.
func (r *secRig) onClose(f func()) {
	var once sync.Once
	r.mu.Lock()
	r.closers = append(r.closers, func() { once.Do(f) })
	r.mu.Unlock()
}

// closeAll runs the registered closers, last first. It is idempotent.
func (r *secRig) closeAll() {
	r.mu.Lock()
	cs := slices.Clone(r.closers)
	r.closers = nil
	r.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// secURL adds query options ("key=value") to a transport URL.
func secURL(base string, opts ...string) string {
	if len(opts) == 0 {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + strings.Join(opts, "&")
}

// secFast are the URL options that keep the scenarios short: transient
// queues expire after 10 s, replies to a missing queue are retried for
// 2 s, reconnections start after 0.2 s and wait at most 2 s.
var secFast = []string{
	"rabbit_transient_queues_ttl=10", "kombu_missing_consumer_retry_timeout=2",
	"rabbit_retry_interval=1", "rabbit_retry_backoff=1", "rabbit_interval_max=2", "kombu_reconnect_delay=0.2",
}

// open opens a transport that logs into the rig's logs and closes with
// the rig.
func (r *secRig) open(rawURL string, opts ...messaging.Option) *messaging.Transport {
	r.t.Helper()
	tr, err := messaging.Open(rawURL, append([]messaging.Option{messaging.WithLogger(r.log)}, opts...)...)
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	r.onClose(func() { _ = tr.Close() })
	return tr
}

// workEndpoint returns an endpoint at version 1.3 whose method "work"
// records its execution by by and returns its ledger id.
func (r *secRig) workEndpoint(by string) *rpc.Endpoint {
	ep := &rpc.Endpoint{Version: "1.3"}
	rpc.Handle(ep, "work", func(_ context.Context, a secArgs) (string, error) {
		r.l.Executed(a.ID, by)
		return a.ID, nil
	})
	return ep
}

// serve starts a server of eps on target and makes the rig shut it
// down (gracefully, within 10 s) when it closes.
func (r *secRig) serve(tr *messaging.Transport, target messaging.Target, eps []*rpc.Endpoint, opts ...rpc.ServerOption) *rpc.Server {
	r.t.Helper()
	srv, err := rpc.NewServer(tr, target, eps, opts...)
	if err != nil {
		r.t.Fatalf("NewServer: %v", err)
	}
	lctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	if err := srv.Listen(lctx); err != nil {
		r.t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	sctx := r.ctx
	go func() { done <- srv.Serve(sctx) }()
	r.onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			r.t.Errorf("server shutdown: %v", err)
			_ = srv.Close()
		}
		if err := <-done; err != nil && !errors.Is(err, rpc.ErrServerClosed) && !errors.Is(err, context.Canceled) {
			r.t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

// client returns a client of target on tr.
func (r *secRig) client(tr *messaging.Transport, target messaging.Target, opts ...rpc.ClientOption) *rpc.Client {
	r.t.Helper()
	c, err := rpc.NewClient(tr, target, opts...)
	if err != nil {
		r.t.Fatalf("NewClient: %v", err)
	}
	return c
}

// send calls or casts "work" with a new ledger id, bounded by timeout,
// and records the outcome.
func (r *secRig) send(c *rpc.Client, op faulttest.Op, timeout time.Duration, opts ...rpc.CallOption) error {
	return r.sendCtx(r.ctx, c, op, timeout, opts...)
}

// sendCtx is send within ctx (which may carry request metadata).
func (r *secRig) sendCtx(ctx context.Context, c *rpc.Client, op faulttest.Op, timeout time.Duration, opts ...rpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := r.l.Sent(ctx, op)
	var err error
	switch op {
	case faulttest.OpCall:
		var reply string
		if err = c.Call(ctx, "work", secArgs{ID: id}, &reply, opts...); err == nil && reply != id {
			err = fmt.Errorf("reply %q to %s", reply, id)
		}
	case faulttest.OpFanout:
		err = c.Cast(ctx, "work", secArgs{ID: id}, append(opts, rpc.Fanout(true))...)
	default:
		err = c.Cast(ctx, "work", secArgs{ID: id}, opts...)
	}
	r.l.Returned(id, err)
	return err
}

// load runs callers and casters on c in the background: each sends up
// to max messages, pausing between them, until stop is called.
func (r *secRig) load(c *rpc.Client, callers, casters, maxEach int, pause time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	run := func(op faulttest.Op) {
		for range maxEach {
			select {
			case <-quit:
				return
			case <-r.ctx.Done():
				return
			case <-time.After(pause):
			}
			_ = r.send(c, op, 2*time.Second)
		}
	}
	for range callers {
		wg.Go(func() { run(faulttest.OpCall) })
	}
	for range casters {
		wg.Go(func() { run(faulttest.OpCast) })
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
	r.onClose(stop)
	return stop
}

// settle closes everything, waits up to settle for the confirmed
// messages to be executed, checks for leaked queues (reply and fanout
// queues of the rig's topic, and extra prefixes) and connections, and
// for leaked goroutines.
func (r *secRig) settle(settle time.Duration, queuePrefixes ...string) {
	r.t.Helper()
	sctx, cancel := context.WithTimeout(r.ctx, settle)
	defer cancel()
	_ = r.l.WaitDelivered(sctx)
	r.closeAll()
	r.w.Stop()
	lctx, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	prog := filepath.Base(os.Args[0]) + ":"
	filter := faulttest.LeakFilter{
		QueuePrefixes:      append([]string{"reply_", r.topic + "_fanout_"}, queuePrefixes...),
		ConnectionPrefixes: []string{prog, "sec-raw"},
	}
	if err := r.l.CheckLeaks(lctx, r.node, filter); err != nil {
		r.t.Errorf("CheckLeaks: %v", err)
	}
	gctx, cancel3 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel3()
	if err := r.l.CheckGoroutines(gctx); err != nil {
		r.t.Errorf("CheckGoroutines: %v", err)
	}
}

// assertCore checks the rules every scenario keeps: no hung caller,
// every caller returned, no success without execution, no duplicate,
// no confirmed message lost, no leak.
func (r *secRig) assertCore() {
	r.t.Helper()
	r.l.AssertNoHungCallers(r.t)
	r.l.AssertAllReturned(r.t)
	r.l.AssertNoSuccessWithoutExecution(r.t)
	r.l.AssertNoDuplicates(r.t)
	r.l.AssertNoLost(r.t)
	r.l.AssertNoLeaks(r.t)
}

// rawConn dials amqpURL with amqp091-go as a process outside the
// library would, and returns a channel in confirm mode. Both close with
// the rig.
func (r *secRig) rawConn(amqpURL string) (*amqp.Connection, *amqp.Channel) {
	r.t.Helper()
	c, err := amqp.DialConfig(amqpURL, amqp.Config{
		Dial:       amqp.DefaultDial(5 * time.Second),
		Properties: amqp.Table{"connection_name": "sec-raw"},
	})
	if err != nil {
		r.t.Fatalf("raw dial: %v", err)
	}
	r.onClose(func() { _ = c.Close() })
	ch, err := c.Channel()
	if err != nil {
		r.t.Fatalf("raw channel: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		r.t.Fatalf("raw confirm mode: %v", err)
	}
	return c, ch
}

// secPublish publishes p and waits for the broker's confirmation, up to
// 10 s. A nack is an error.
func secPublish(ctx context.Context, ch *amqp.Channel, exchange, key string, p amqp.Publishing) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("publish nacked")
	}
	return nil
}

// secRequest returns an oslo request body, enveloped: the inner message
// is fields encoded as JSON.
func secRequest(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	inner, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Envelope(inner)
}

// secOslo returns a publishing with oslo's properties for body.
func secOslo(body []byte) amqp.Publishing {
	return amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp.Persistent, Body: body}
}

// secNested returns a JSON object nested depth deep: {"a": {"a": ... 1}}.
func secNested(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a": `, depth) + "1" + strings.Repeat("}", depth))
}

// secBomb returns a zlib stream, a few hundred KiB long, of mib MiB of
// zero bytes. Compressing that much takes long under the race detector,
// so the stream repeats the compressed form of one MiB: deflate blocks
// that copy zeros from a window of zeros decode the same wherever they
// are repeated.
func secBomb(t *testing.T, mib int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	if _, err := w.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil { // byte-aligned: the next block starts afresh
		t.Fatal(err)
	}
	first := slices.Clone(b.Bytes())
	b.Reset()
	if _, err := w.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	again := slices.Clone(b.Bytes())
	b.Reset()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	final := b.Bytes()
	out := []byte{0x78, 0x01} // zlib header: deflate, 32 KiB window, fastest
	out = append(out, first...)
	for range mib - 1 {
		out = append(out, again...)
	}
	out = append(out, final...)
	// Adler-32 of n zero bytes: a stays 1, b adds 1 per byte.
	n := uint64(mib) << 20
	return binary.BigEndian.AppendUint32(out, uint32(n%65521)<<16|1)
}

// secUser creates user with password and the given permissions on the
// node's virtual host "/".
func (r *secRig) secUser(user, password, configure, write, read string) {
	r.t.Helper()
	for _, args := range [][]string{
		{"add_user", user, password},
		{"set_permissions", "-p", "/", user, configure, write, read},
	} {
		if _, err := r.node.Ctl(r.ctx, args...); err != nil {
			r.t.Fatal(err)
		}
	}
}

// userURL returns the node's transport URL as user.
func (r *secRig) userURL(user, password string) string {
	return "rabbit://" + url.UserPassword(user, password).String() + "@" + r.node.Addr() + "/"
}

// serveNotifications starts a listener of endpoint on the topic
// "notifications" (and pool, if not "") that closes with the rig.
func (r *secRig) serveNotifications(tr *messaging.Transport, topic string, ep *notify.Endpoint, opts ...notify.ListenerOption) *notify.Listener {
	r.t.Helper()
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: topic}}, []*notify.Endpoint{ep}, opts...)
	if err != nil {
		r.t.Fatalf("NewListener: %v", err)
	}
	lctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	if err := lis.Listen(lctx); err != nil {
		r.t.Fatalf("notification Listen: %v", err)
	}
	done := make(chan error, 1)
	sctx := r.ctx
	go func() { done <- lis.Serve(sctx) }()
	r.onClose(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := lis.Shutdown(sctx); err != nil {
			r.t.Errorf("listener shutdown: %v", err)
			_ = lis.Close()
		}
		if err := <-done; err != nil && !errors.Is(err, notify.ErrListenerClosed) && !errors.Is(err, context.Canceled) {
			r.t.Errorf("listener Serve: %v", err)
		}
	})
	return lis
}

// notifyOne sends one info notification carrying a new ledger id,
// bounded by timeout, and records the outcome.
func (r *secRig) notifyOne(ctx context.Context, n *notify.Notifier, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := r.l.Sent(ctx, faulttest.OpNotify)
	err := n.Info(ctx, "sec.event", secArgs{ID: id})
	r.l.Returned(id, err)
	return err
}

// secLedgerID returns the ledger id in a notification's payload.
func secLedgerID(n *notify.Notification) string {
	var a secArgs
	_ = json.Unmarshal(n.Payload, &a)
	return a.ID
}

// secTLSURL returns the TLS URL of files reached as host, with the
// query options of files.URL replaced or added by opts ("key=value", or
// "key=" to remove one).
func secTLSURL(t *testing.T, files *faulttest.TLSFiles, host string, opts ...string) string {
	t.Helper()
	u, err := url.Parse(files.URL(host))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// secTLSOutcome is how one connection attempt of S22 ended.
type secTLSOutcome struct {
	name string
	err  error
	took time.Duration
}

// secRefusal is one broker refusal S18 and S24 expect.
type secRefusal struct {
	name string
	err  error
	took time.Duration
}

// secCheckRefusal fails t unless the refusal carries the broker's code
// (as an *amqp.Error in the chain, and in the text) and came before any
// retry loop could run to the deadline.
func secCheckRefusal(t *testing.T, rf secRefusal, code int) string {
	t.Helper()
	var ae *amqp.Error
	got := "no broker code"
	if errors.As(rf.err, &ae) {
		got = fmt.Sprintf("code %d", ae.Code)
	}
	switch {
	case rf.err == nil:
		t.Errorf("%s: no error; want the broker's %d", rf.name, code)
		return rf.name + ": no error"
	case !errors.As(rf.err, &ae) || ae.Code != code:
		t.Errorf("%s: %v; want an *amqp.Error with code %d in the chain", rf.name, rf.err, code)
	case !strings.Contains(rf.err.Error(), fmt.Sprint(code)):
		t.Errorf("%s: %v; want the code %d in the message", rf.name, rf.err, code)
	}
	if errors.Is(rf.err, context.DeadlineExceeded) || rf.took > 5*time.Second {
		t.Errorf("%s: refused after %v (%v): want the refusal at once, not retries until the deadline", rf.name, rf.took, rf.err)
	}
	t.Logf("%s: %v (after %v)", rf.name, rf.err, rf.took.Round(time.Millisecond))
	return fmt.Sprintf("%s: %s (want %d) after %v", rf.name, got, code, rf.took.Round(time.Millisecond))
}

// secPermissions returns the permission patterns (configure, write,
// read) and topic permission pattern that a service needs for RPC on
// topic and for notifications on notifyTopic, on the control exchange
// "openstack":
//
//	configure  the control exchange; the topic's queues <topic>,
//	           <topic>.<server>, its fanout exchange <topic>_fanout and
//	           fanout queues <topic>_fanout_<hex>; reply queues
//	           reply_<hex>; notification queues <notifyTopic>.<priority>
//	write      the same, and amq.default (replies go through the
//	           default exchange)
//	read       the same as configure (consuming, and binding queues to
//	           the exchanges)
//	topic      routing keys on the control exchange: <topic>,
//	           <topic>.<server>, <notifyTopic>.<priority>
func secPermissions(topic, notifyTopic string) (configure, write, read, routing string) {
	names := `openstack|` + topic + `|` + topic + `\..+|` + topic + `_fanout|` + topic + `_fanout_[0-9a-f]+|reply_[0-9a-f]+|` + notifyTopic + `\.[a-z]+`
	routing = `^(` + topic + `|` + topic + `\..+|` + notifyTopic + `\.[a-z]+)$`
	return `^(` + names + `)$`, `^(amq\.default|` + names + `)$`, `^(` + names + `)$`, routing
}
