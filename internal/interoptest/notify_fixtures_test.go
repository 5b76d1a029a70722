package interoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

// notice is one notification as an endpoint received it, in Go or in
// Python.
type notice struct {
	Lang     string // "go" or "python"
	Listener string // the listener's name in the case
	Endpoint string
	// Priority is that of the handler (Go) or method (Python) called;
	// MsgPriority, in Go, that of the notification handed to it.
	Priority    string
	MsgPriority string
	PublisherID string
	EventType   string
	Payload     json.RawMessage
	Ctxt        map[string]any // numbers as json.Number
	MessageID   string
	Timestamp   string
	Requeued    bool // the endpoint asked for a requeue
	// CtxMismatch reports, in Go, that the handler's context did not
	// carry the notification's request context.
	CtxMismatch bool
	Batch       int // for batch endpoints: the batch's number, from 1
}

func (n notice) String() string {
	return fmt.Sprintf("%s %s/%s %s(%s) %s %s %s requeued=%v batch=%d ctxt=%v", n.Lang, n.Listener, n.Endpoint, n.Priority,
		n.MsgPriority, n.PublisherID, n.EventType, truncate(string(n.Payload), 120), n.Requeued, n.Batch, n.Ctxt)
}

// batchInfo is one batch handed to a batch endpoint.
type batchInfo struct {
	Lang, Listener, Endpoint, Priority string
	Size                               int
}

// nrecorder collects what the endpoints of a case receive, Go and
// Python.
type nrecorder struct {
	mu      sync.Mutex
	notices []notice
	batches []batchInfo
	changed chan struct{}
}

func newNRecorder() *nrecorder { return &nrecorder{changed: make(chan struct{})} }

func (r *nrecorder) add(ns ...notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notices = append(r.notices, ns...)
	r.signalLocked()
}

// addBatch records a batch and its notifications.
func (r *nrecorder) addBatch(b batchInfo, ns []notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	for i := range ns {
		ns[i].Batch = len(r.batches)
	}
	r.notices = append(r.notices, ns...)
	r.signalLocked()
}

func (r *nrecorder) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *nrecorder) snapshot() ([]notice, []batchInfo, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.notices), slices.Clone(r.batches), r.changed
}

func (r *nrecorder) all() []notice {
	ns, _, _ := r.snapshot()
	return ns
}

// wait returns the notices once cond holds for them and the batches, or
// fails t when ctx ends first.
func (r *nrecorder) wait(t *testing.T, ctx context.Context, what string, cond func([]notice, []batchInfo) bool) []notice {
	t.Helper()
	for {
		ns, bs, changed := r.snapshot()
		if cond(ns, bs) {
			return ns
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; received so far:\n%s", what, ctx.Err(), describeNotices(ns))
			return nil
		}
	}
}

// waitN waits until n notices match keep (nil keeps all), and returns
// those.
func (r *nrecorder) waitN(t *testing.T, ctx context.Context, n int, keep func(notice) bool) []notice {
	t.Helper()
	r.wait(t, ctx, fmt.Sprintf("%d notifications", n), func(ns []notice, _ []batchInfo) bool {
		return len(filterNotices(ns, keep)) >= n
	})
	return filterNotices(r.all(), keep)
}

// expectNoMore fails t if anything more arrives within d: the bounded
// window in which nothing more may arrive.
func (r *nrecorder) expectNoMore(t *testing.T, d time.Duration, what string) {
	t.Helper()
	before, _, changed := r.snapshot()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-changed:
		ns, _, _ := r.snapshot()
		t.Errorf("%s:\n%s", what, describeNotices(ns[len(before):]))
	case <-timer.C:
	}
}

func filterNotices(ns []notice, keep func(notice) bool) []notice {
	if keep == nil {
		return ns
	}
	var out []notice
	for _, n := range ns {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

func byListener(name string) func(notice) bool {
	return func(n notice) bool { return n.Listener == name }
}

func byEndpoint(listener, endpoint string) func(notice) bool {
	return func(n notice) bool { return n.Listener == listener && n.Endpoint == endpoint }
}

func describeNotices(ns []notice) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString("  " + n.String() + "\n")
	}
	return b.String()
}

// eventTypes returns the sorted event types of ns.
func eventTypes(ns []notice) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.EventType)
	}
	sort.Strings(out)
	return out
}

// quietWindow is how long a case waits to see that nothing more
// arrives: a requeued notification comes back within milliseconds.
const quietWindow = 1500 * time.Millisecond

// The formats of oslo's notification metadata: str(uuid4()) and
// str(utcnow()) (without the fraction when the microseconds are zero).
var (
	uuid4RE     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$`)
	hex32RE     = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// checkMetadata checks a notice's message_id and timestamp: oslo's
// formats, and a time between since and now (give or take a second for
// the clocks' rounding).
func checkMetadata(t *testing.T, n notice, since time.Time) {
	t.Helper()
	if !uuid4RE.MatchString(n.MessageID) {
		t.Errorf("%s: message_id %q is not a 36-character uuid4", n.EventType, n.MessageID)
	}
	if !timestampRE.MatchString(n.Timestamp) {
		t.Errorf("%s: timestamp %q is not in oslo's format", n.EventType, n.Timestamp)
		return
	}
	nn := notify.Notification{Timestamp: n.Timestamp}
	ts, err := nn.Time()
	if err != nil {
		t.Errorf("%s: timestamp %q: %v", n.EventType, n.Timestamp, err)
		return
	}
	if ts.Before(since.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("%s: timestamp %q (UTC) is not the time of sending (%v to %v)", n.EventType, n.Timestamp, since.UTC(), time.Now().UTC())
	}
}

// The request context of the cases: oslo's safe keys, and keys that a
// notifier must not send (auth_token first of all).
func fullContext() map[string]any {
	return map[string]any{
		"auth_token":        "secret-token",
		"global_request_id": "req-global-1",
		"is_admin":          true,
		"project_id":        "p1",
		"read_only":         false,
		"request_id":        "req-1",
		"roles":             []any{"admin", "member"},
		"service_catalog":   []any{map[string]any{"type": "compute"}},
		"show_deleted":      false,
		"tenant":            "t1",
		"user_id":           "u1",
		"user_identity":     "u1 p1 - - -",
	}
}

// safeContext is what remains of fullContext once sanitised.
func safeContext() map[string]any {
	return map[string]any{
		"global_request_id": "req-global-1",
		"is_admin":          true,
		"project_id":        "p1",
		"request_id":        "req-1",
		"roles":             []any{"admin", "member"},
		"user_id":           "u1",
	}
}

// safeKeys are the request context keys that oslo.messaging 14.0.3's
// notifier keeps (its _sanitize_context).
var safeKeys = []string{
	"user_id", "project_id", "domain_id", "user_domain_id", "project_domain_id", "is_admin", "request_id", "roles",
	"user_name", "project_name", "domain_name", "user_domain_name", "project_domain_name", "service_user_id",
	"service_user_domain_id", "service_user_domain_name", "service_project_id", "service_project_name",
	"service_project_domain_id", "service_project_domain_name", "service_roles", "global_request_id", "system_scope",
	"user", "domain", "user_domain", "project_domain",
}

// allSafeContext has a value for every safe key, of several JSON kinds.
func allSafeContext() map[string]any {
	ctx := map[string]any{}
	for _, k := range safeKeys {
		ctx[k] = "v-" + k
	}
	ctx["is_admin"] = false
	ctx["roles"] = []any{"admin", "reader"}
	ctx["service_roles"] = []any{"service"}
	ctx["domain_id"] = nil
	ctx["system_scope"] = "all"
	return ctx
}

// allKeysContext is allSafeContext and keys that a notifier must not
// send.
func allKeysContext() map[string]any {
	ctx := allSafeContext()
	for k, v := range fullContext() {
		if _, ok := ctx[k]; !ok && !slices.Contains(safeKeys, k) {
			ctx[k] = v
		}
	}
	ctx["auth_token_info"] = map[string]any{"token": "t"}
	ctx["client_timeout"] = 30
	return ctx
}

// checkNoteContext checks that a received context is want: exactly, except
// that a Python listener adds client_timeout None to every context.
func checkNoteContext(t *testing.T, n notice, want map[string]any) {
	t.Helper()
	got := maps.Clone(n.Ctxt)
	if n.Lang == "python" {
		if v, ok := got["client_timeout"]; ok && v == nil {
			delete(got, "client_timeout")
		}
	}
	if !jsonEqual(got, want) {
		t.Errorf("%s listener %s got context %v for %s, want %v", n.Lang, n.Listener, n.Ctxt, n.EventType, want)
	}
	if n.CtxMismatch {
		t.Errorf("%s: the handler's context does not carry the notification's context", n.EventType)
	}
}

// notePayload is a payload with every JSON kind, Unicode and the
// characters that HTML escaping would change.
func notePayload(method string, i int) map[string]any {
	return map[string]any{
		"f":      1.5,
		"i":      i,
		"list":   []any{1, nil, true, "x"},
		"method": method,
		"nested": map[string]any{"k": "v"},
		"u":      "é✓ <&>",
	}
}

// The notifier methods: oslo's, and Go's of the same names. warning is
// warn, and sends WARN.
var noteMethods = []string{"audit", "debug", "info", "warn", "warning", "error", "critical", "sample"}

// methodPriority is the priority a notifier method sends.
func methodPriority(method string) string {
	if method == "warning" {
		return "warn"
	}
	return method
}

// goNotify sends a notification with the Go notifier method of that
// name.
func goNotify(ctx context.Context, n *notify.Notifier, method, eventType string, payload any) error {
	f := map[string]func(context.Context, string, any) error{
		"audit": n.Audit, "debug": n.Debug, "info": n.Info, "warn": n.Warn, "warning": n.Warning,
		"error": n.Error, "critical": n.Critical, "sample": n.Sample,
	}[method]
	if f == nil {
		return fmt.Errorf("no notifier method %q", method)
	}
	return f(ctx, eventType, payload)
}

// notifySinks are the Go notifier's messaging sinks, by the name of
// oslo's driver that each matches.
var notifySinks = []struct {
	name, driver string
	sink         func() notify.Sink
}{
	{"v1", "messaging", notify.Messaging},
	{"v2", "messagingv2", notify.MessagingV2},
}

// goNotifier returns a Go notifier that publishes with sink to topics
// on exchange ex.
func (e *env) goNotifier(tr *messaging.Transport, sink notify.Sink, ex, publisherID string, topics ...string) *notify.Notifier {
	e.t.Helper()
	n, err := notify.NewNotifier(tr, publisherID, notify.WithSinks(sink), notify.WithExchange(ex), notify.WithTopics(topics...),
		notify.WithLogger(e.log))
	if err != nil {
		e.t.Fatalf("notify.NewNotifier: %v", err)
	}
	return n
}

// goNotifyEndpoint returns an endpoint named name with a handler for
// every priority. Each handler calls hook (when not nil), records what
// it received with hook's answer in rec, and returns that answer.
func goNotifyEndpoint(rec *nrecorder, listener, name string, filter notify.Filter, hook func(*notify.Notification) error) *notify.Endpoint {
	h := func(p notify.Priority) notify.HandlerFunc {
		return func(ctx context.Context, n *notify.Notification) error {
			var err error
			if hook != nil {
				err = hook(n)
			}
			md, _ := messaging.FromIncomingContext(ctx)
			nt := goNotice(listener, name, p, n)
			nt.Requeued = err != nil
			nt.CtxMismatch = !reflect.DeepEqual(md, n.Context)
			rec.add(nt)
			return err
		}
	}
	return &notify.Endpoint{
		Filter: filter,
		Audit:  h(notify.PriorityAudit), Debug: h(notify.PriorityDebug), Info: h(notify.PriorityInfo),
		Warn: h(notify.PriorityWarn), Error: h(notify.PriorityError), Critical: h(notify.PriorityCritical),
		Sample: h(notify.PrioritySample),
	}
}

// goBatchEndpoint returns a batch endpoint named name with a handler for
// every priority, which records each batch in rec.
func goBatchEndpoint(rec *nrecorder, listener, name string) *notify.BatchEndpoint {
	h := func(p notify.Priority) notify.BatchHandlerFunc {
		return func(_ context.Context, batch []*notify.Notification) error {
			ns := make([]notice, len(batch))
			for i, n := range batch {
				ns[i] = goNotice(listener, name, p, n)
			}
			rec.addBatch(batchInfo{Lang: "go", Listener: listener, Endpoint: name, Priority: string(p), Size: len(batch)}, ns)
			return nil
		}
	}
	return &notify.BatchEndpoint{
		Audit: h(notify.PriorityAudit), Debug: h(notify.PriorityDebug), Info: h(notify.PriorityInfo),
		Warn: h(notify.PriorityWarn), Error: h(notify.PriorityError), Critical: h(notify.PriorityCritical),
		Sample: h(notify.PrioritySample),
	}
}

func goNotice(listener, endpoint string, p notify.Priority, n *notify.Notification) notice {
	return notice{
		Lang: "go", Listener: listener, Endpoint: endpoint, Priority: string(p), MsgPriority: string(n.Priority),
		PublisherID: n.PublisherID, EventType: n.EventType, Payload: slices.Clone(n.Payload),
		Ctxt: maps.Clone(map[string]any(n.Context)), MessageID: n.MessageID, Timestamp: n.Timestamp,
	}
}

// goListener is a notify.Listener served by a case.
type goListener struct {
	l      *notify.Listener
	served chan error
	once   sync.Once
}

// startGoListener starts a Go listener and returns once it consumes:
// its queues exist and notifications sent from now on reach it. It is
// shut down when the case ends, unless stopped before.
func (e *env) startGoListener(tr *messaging.Transport, targets []messaging.Target, eps []*notify.Endpoint, opts ...notify.ListenerOption) *goListener {
	e.t.Helper()
	l, err := notify.NewListener(tr, targets, eps, append([]notify.ListenerOption{notify.WithLogger(e.log)}, opts...)...)
	if err != nil {
		e.t.Fatalf("notify.NewListener: %v", err)
	}
	return e.serveGoListener(l)
}

// startGoBatchListener is startGoListener for a batch listener.
func (e *env) startGoBatchListener(tr *messaging.Transport, targets []messaging.Target, eps []*notify.BatchEndpoint, size int, timeout time.Duration, opts ...notify.ListenerOption) *goListener {
	e.t.Helper()
	l, err := notify.NewBatchListener(tr, targets, eps, size, timeout, append([]notify.ListenerOption{notify.WithLogger(e.log)}, opts...)...)
	if err != nil {
		e.t.Fatalf("notify.NewBatchListener: %v", err)
	}
	return e.serveGoListener(l)
}

func (e *env) serveGoListener(l *notify.Listener) *goListener {
	e.t.Helper()
	if err := l.Listen(e.ctx(opTimeout)); err != nil {
		e.t.Fatalf("Listener.Listen: %v", err)
	}
	g := &goListener{l: l, served: make(chan error, 1)}
	go func() { g.served <- l.Serve(context.Background()) }()
	e.t.Cleanup(func() { e.stopGoListener(g) })
	return g
}

// stopGoListener shuts g down gracefully (closing it if that takes too
// long) and waits for Serve to return: then its handlers have returned
// and its connection is closed, so that the broker has requeued what it
// left unacknowledged. It is idempotent.
func (e *env) stopGoListener(g *goListener) {
	g.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := g.l.Shutdown(ctx); err != nil {
			e.t.Errorf("Listener.Shutdown: %v", err)
			_ = g.l.Close()
		}
		select {
		case err := <-g.served:
			if !errors.Is(err, notify.ErrListenerClosed) {
				e.t.Errorf("Listener.Serve returned %v, want ErrListenerClosed", err)
			}
		case <-time.After(opTimeout):
			e.t.Errorf("Listener.Serve did not return after Shutdown and Close")
		}
	})
}

// pyNote is one notification for the peer's notify op: method is the
// Notifier method (audit ... sample, warning); publisher_id, when set,
// overrides the notifier's (oslo's prepare).
type pyNote struct {
	Method      string `json:"method"`
	EventType   string `json:"event_type"`
	Payload     any    `json:"payload"`
	Ctxt        any    `json:"ctxt,omitempty"`
	PublisherID string `json:"publisher_id,omitempty"`
}

// pyFilter holds the arguments of oslo's NotificationFilter.
type pyFilter struct {
	Context     map[string]string `json:"context,omitempty"`
	PublisherID string            `json:"publisher_id,omitempty"`
	EventType   string            `json:"event_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Payload     map[string]string `json:"payload,omitempty"`
}

// pyEndpoint describes an endpoint of a Python listener; see
// notify_endpoint in testdata/peer.py.
type pyEndpoint struct {
	Name        string    `json:"name"`
	Filter      *pyFilter `json:"filter,omitempty"`
	RequeueOnce bool      `json:"requeue_once,omitempty"`
}

// pyNotify sends notifications with oslo's Notifier on the peer and
// returns once they are sent. An empty URL means the run's vhost.
func (e *env) pyNotify(p *peer, req pyReq) {
	e.t.Helper()
	req.Op = "notify"
	if req.URL == "" {
		req.URL = e.s.url()
	}
	out := pyDo(e.t, e.ctx(caseTimeout), p, req)
	if !out.OK {
		e.t.Fatalf("python notify %s to %v: %s", req.Driver, req.Topics, out.Error)
	}
}

// pyListener is a Python notification listener hosted by a peer.
type pyListener struct {
	p       *peer
	key     string
	stopped atomic.Bool
}

// startPyListener starts a Python notification listener named name on
// p, whose endpoints record in rec, and returns once oslo's start() has
// declared and bound its queues. It is stopped when the case ends. An
// empty URL means the run's vhost.
func (e *env) startPyListener(p *peer, rec *nrecorder, name string, req pyReq) *pyListener {
	e.t.Helper()
	req.Op = "start_listener"
	req.Key = e.name(name)
	if req.URL == "" {
		req.URL = e.s.url()
	}
	p.listen(req.Key, func(line []byte) { rec.addPython(name, line) })
	pl := &pyListener{p: p, key: req.Key}
	e.t.Cleanup(func() { e.stopPyListener(pl) })
	out := pyDo(e.t, e.ctx(opTimeout), p, req)
	if !out.OK {
		e.t.Fatalf("python start_listener %s on %v: %s", name, req.Topics, out.Error)
	}
	return pl
}

// stopPyListener stops l and drops its further events. The peer stops
// it in the background (see op_stop_listener). It is idempotent.
func (e *env) stopPyListener(l *pyListener) {
	if l.stopped.Swap(true) {
		return
	}
	defer l.p.listen(l.key, nil)
	select {
	case <-l.p.exited:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := l.p.do(ctx, pyReq{Op: "stop_listener", Key: l.key})
	switch {
	case err != nil:
		e.t.Errorf("python stop_listener %s: %v", l.key, err)
	case !out.OK && !strings.Contains(out.Error.Message, l.key):
		// A listener that failed to start is not known to the peer.
		e.t.Errorf("python stop_listener %s: %s", l.key, out.Error)
	}
}

// pyNotice is an event of a Python listener.
type pyNotice struct {
	Event       string          `json:"event"`
	Endpoint    string          `json:"endpoint"`
	Priority    string          `json:"priority"`
	Ctxt        map[string]any  `json:"ctxt"`
	PublisherID string          `json:"publisher_id"`
	EventType   string          `json:"event_type"`
	Payload     json.RawMessage `json:"payload"`
	Metadata    struct {
		MessageID string `json:"message_id"`
		Timestamp string `json:"timestamp"`
	} `json:"metadata"`
	Requeued bool       `json:"requeued"`
	Messages []pyNotice `json:"messages"` // of a batch
}

func (pn *pyNotice) notice(listener, endpoint, priority string) notice {
	return notice{
		Lang: "python", Listener: listener, Endpoint: endpoint, Priority: priority, MsgPriority: priority,
		PublisherID: pn.PublisherID, EventType: pn.EventType, Payload: pn.Payload, Ctxt: pn.Ctxt,
		MessageID: pn.Metadata.MessageID, Timestamp: pn.Metadata.Timestamp, Requeued: pn.Requeued,
	}
}

// addPython records an event line of the Python listener named
// listener.
func (r *nrecorder) addPython(listener string, line []byte) {
	var ev pyNotice
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		r.add(notice{Lang: "python", Listener: listener, EventType: "<undecodable event: " + err.Error() + ">"})
		return
	}
	if ev.Event == "batch" {
		ns := make([]notice, len(ev.Messages))
		for i := range ev.Messages {
			ns[i] = ev.Messages[i].notice(listener, ev.Endpoint, ev.Priority)
		}
		r.addBatch(batchInfo{Lang: "python", Listener: listener, Endpoint: ev.Endpoint, Priority: ev.Priority, Size: len(ns)}, ns)
		return
	}
	r.add(ev.notice(listener, ev.Endpoint, ev.Priority))
}

// queueState returns the number of ready messages of a queue and its
// consumers (a passive declare, on a connection of its own).
func (e *env) queueState(name string) (messages, consumers int) {
	e.t.Helper()
	conn, err := amqp.DialConfig(e.s.amqpURL(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		e.t.Fatalf("queue state: dial: %v", err)
	}
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	if err != nil {
		e.t.Fatalf("queue state: channel: %v", err)
	}
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		e.t.Fatalf("queue state of %s: %v", name, err)
	}
	return q.Messages, q.Consumers
}

// checkBatches checks that the batches of rec are sizes, in any order
// (batches are handled concurrently), that they hold every event type
// of want once, and that every notification is in a batch of its own
// priority.
func checkBatches(t *testing.T, rec *nrecorder, sizes []int, want []string) {
	t.Helper()
	ns, bs, _ := rec.snapshot()
	got := make([]int, len(bs))
	for i, b := range bs {
		got[i] = b.Size
	}
	sort.Sort(sort.Reverse(sort.IntSlice(got)))
	if !slices.Equal(got, sizes) {
		t.Errorf("batch sizes %v, want %v", got, sizes)
	}
	if types := eventTypes(ns); !slices.Equal(types, want) {
		t.Errorf("the batches hold %d notifications (%v), want the %d sent once each", len(types), truncate(fmt.Sprint(types), 300), len(want))
	}
	for _, n := range ns {
		if n.Priority != "info" || n.MsgPriority != "info" {
			t.Errorf("%s arrived in a %s batch", n.EventType, n.Priority)
		}
	}
}
