package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// fakeDelivery records how it was settled.
type fakeDelivery struct {
	n       *driver.Notification
	mu      sync.Mutex
	settled string // "", "ack" or "requeue"
}

func (d *fakeDelivery) Notification() *driver.Notification { return d.n }

func (d *fakeDelivery) settle(how string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.settled != "" {
		return errors.New("already " + d.settled)
	}
	d.settled = how
	return nil
}

func (d *fakeDelivery) Ack() error     { return d.settle("ack") }
func (d *fakeDelivery) Requeue() error { return d.settle("requeue") }

func (d *fakeDelivery) result() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.settled
}

// oslo's notification_msg of test_dispatcher.py.
func testDelivery(priority string) *fakeDelivery {
	return &fakeDelivery{n: &driver.Notification{
		MessageID:   "99863dda-97f0-443a-a0c1-6ed317b7fd45",
		PublisherID: "publisher_id",
		EventType:   "compute.start",
		Priority:    priority,
		Payload:     json.RawMessage(`{"info": "fuu"}`),
		Timestamp:   "2014-03-03 18:21:04.369234",
		Context:     map[string]any{},
		UniqueID:    wire.NewID(),
	}}
}

// unitListener returns a listener that is never served, for calling its
// dispatcher directly.
func unitListener(t *testing.T, eps []*Endpoint, opts ...ListenerOption) *Listener {
	t.Helper()
	l, err := NewListener(newTransport(t), []messaging.Target{{Topic: "t"}}, eps, opts...)
	if err != nil {
		t.Fatalf("NewListener: %v", err)
	}
	return l
}

// callLog records the handler calls of an endpoint.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (c *callLog) handler(name string, result error) HandlerFunc {
	return func(ctx context.Context, n *Notification) error {
		c.mu.Lock()
		c.calls = append(c.calls, name)
		c.mu.Unlock()
		return result
	}
}

func (c *callLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.calls, ",")
}

// setHandler sets the handler of priority p on ep.
func setHandler(ep *Endpoint, p Priority, h HandlerFunc) {
	switch p {
	case PriorityAudit:
		ep.Audit = h
	case PriorityDebug:
		ep.Debug = h
	case PriorityInfo:
		ep.Info = h
	case PriorityWarn:
		ep.Warn = h
	case PriorityError:
		ep.Error = h
	case PriorityCritical:
		ep.Critical = h
	case PrioritySample:
		ep.Sample = h
	}
}

var errBoom = errors.New("boom")

// The scenarios of oslo's TestDispatcher.
func TestDispatcher(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		endpoints [][]Priority
		priority  Priority
		result    error
		panics    bool
		wantCalls string
		requeue   bool
	}{
		{"one endpoint", [][]Priority{{"warn"}}, "warn", nil, false, "0.warn", false},
		{"two endpoints only one match", [][]Priority{{"warn"}, {"info"}}, "info", nil, false, "1.info", false},
		{"two endpoints both match", [][]Priority{{"debug", "info"}, {"info", "debug"}}, "debug", nil, false, "0.debug,1.debug", false},
		{"requeue", [][]Priority{{"debug", "warn"}}, "debug", ErrRequeue, false, "0.debug", true},
		{"wrapped requeue", [][]Priority{{"debug"}}, "debug", fmt.Errorf("later: %w", ErrRequeue), false, "0.debug", true},
		{"exception", [][]Priority{{"debug", "warn"}}, "debug", errBoom, false, "0.debug", true},
		{"panic", [][]Priority{{"debug"}}, "debug", nil, true, "0.debug", true},
		{"requeue stops later endpoints", [][]Priority{{"info"}, {"info"}}, "info", ErrRequeue, false, "0.info", true},
		{"no handler for the priority", [][]Priority{{"info"}}, "error", nil, false, "", false},
	} {
		for _, allow := range []bool{false, true} {
			log := &callLog{}
			var eps []*Endpoint
			for i, prios := range tc.endpoints {
				ep := &Endpoint{}
				for _, p := range prios {
					h := log.handler(fmt.Sprintf("%d.%s", i, p), tc.result)
					if tc.panics {
						h = func(ctx context.Context, n *Notification) error {
							_ = log.handler(fmt.Sprintf("%d.%s", i, p), nil)(ctx, n)
							panic("handler bug")
						}
					}
					setHandler(ep, p, h)
				}
				eps = append(eps, ep)
			}
			l := unitListener(t, eps, WithAllowRequeue(allow), WithLogger(slog.New(&logRecords{})))
			d := testDelivery(strings.ToUpper(string(tc.priority)))
			l.handle(t.Context(), d)
			if got := log.String(); got != tc.wantCalls {
				t.Errorf("%s: calls %q, want %q", tc.name, got, tc.wantCalls)
			}
			want := "ack"
			if tc.requeue && allow {
				want = "requeue"
			}
			if got := d.result(); got != want {
				t.Errorf("%s (allow_requeue=%v): %s, want %s", tc.name, allow, got, want)
			}
		}
	}
}

func TestDispatcherArguments(t *testing.T) {
	t.Parallel()
	var got *Notification
	var md messaging.Metadata
	l := unitListener(t, []*Endpoint{{Warn: func(ctx context.Context, n *Notification) error {
		got = n
		md, _ = messaging.FromIncomingContext(ctx)
		return nil
	}}})
	d := testDelivery("WARN")
	d.n.Context = map[string]any{"user_name": "bob", "n": json.Number("3")}
	l.handle(t.Context(), d)
	want := &Notification{
		MessageID: "99863dda-97f0-443a-a0c1-6ed317b7fd45", PublisherID: "publisher_id", EventType: "compute.start",
		Priority: PriorityWarn, Payload: json.RawMessage(`{"info": "fuu"}`), Timestamp: "2014-03-03 18:21:04.369234",
		Context: messaging.Metadata{"user_name": "bob", "n": json.Number("3")},
	}
	if got == nil || fmt.Sprintf("%#v", *got) != fmt.Sprintf("%#v", *want) {
		t.Errorf("handler got %#v\nwant %#v", got, want)
	}
	if md["user_name"] != "bob" {
		t.Errorf("incoming metadata %v", md)
	}
}

func TestDispatcherUnknownPriority(t *testing.T) {
	t.Parallel()
	h := &logRecords{}
	called := false
	l := unitListener(t, []*Endpoint{{Info: func(context.Context, *Notification) error { called = true; return nil }}},
		WithLogger(slog.New(h)), WithAllowRequeue(true))
	d := testDelivery("what???")
	l.handle(t.Context(), d)
	if called || d.result() != "ack" {
		t.Errorf("unknown priority: called %v, settled %q; want dropped and acknowledged", called, d.result())
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Level != slog.LevelWarn {
		t.Fatalf("records %v, want one warning", recs)
	}
	if v, _ := attr(recs[0], "priority"); v.String() != "what???" {
		t.Errorf("warning names priority %v", v)
	}
}

func TestDispatcherDuplicates(t *testing.T) {
	t.Parallel()
	log := &callLog{}
	first := true
	l := unitListener(t, []*Endpoint{{Info: func(ctx context.Context, n *Notification) error {
		_ = log.handler("info", nil)(ctx, n)
		if first {
			first = false
			return ErrRequeue
		}
		return nil
	}}}, WithAllowRequeue(true))
	d1 := testDelivery("INFO")
	l.handle(t.Context(), d1) // requeued: not remembered
	again := &fakeDelivery{n: d1.n}
	l.handle(t.Context(), again) // handled and acknowledged: remembered
	dup := &fakeDelivery{n: d1.n}
	l.handle(t.Context(), dup) // a duplicate: acknowledged, not handled
	if d1.result() != "requeue" || again.result() != "ack" || dup.result() != "ack" {
		t.Errorf("settled %q %q %q, want requeue ack ack", d1.result(), again.result(), dup.result())
	}
	if got := log.String(); got != "info,info" {
		t.Errorf("calls %q, want two (the duplicate is dropped)", got)
	}
	// Messages without _unique_id are never duplicates.
	noID := testDelivery("INFO")
	noID.n.UniqueID = ""
	l.handle(t.Context(), noID)
	noID2 := &fakeDelivery{n: noID.n}
	l.handle(t.Context(), noID2)
	if got := log.String(); got != "info,info,info,info" {
		t.Errorf("calls %q, want messages without _unique_id handled every time", got)
	}
}

type failingDeserializer struct{ messaging.NoOpSerializer }

func (failingDeserializer) DeserializeContext(context.Context, messaging.Metadata) (context.Context, error) {
	return nil, errors.New("bad context")
}

type upperSerializer struct{ messaging.NoOpSerializer }

type ctxKey struct{}

func (upperSerializer) DeserializeContext(ctx context.Context, md messaging.Metadata) (context.Context, error) {
	return context.WithValue(ctx, ctxKey{}, md["user_name"]), nil
}

func (upperSerializer) DeserializeEntity(_ context.Context, data json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(strings.ToUpper(string(data))), nil
}

func TestDispatcherSerializer(t *testing.T) {
	t.Parallel()
	var payload string
	var user any
	l := unitListener(t, []*Endpoint{{Info: func(ctx context.Context, n *Notification) error {
		payload, user = string(n.Payload), ctx.Value(ctxKey{})
		return nil
	}}}, WithSerializer(upperSerializer{}))
	d := testDelivery("INFO")
	d.n.Context["user_name"] = "bob"
	l.handle(t.Context(), d)
	if payload != `{"INFO": "FUU"}` || user != "bob" {
		t.Errorf("handler saw payload %s and %v", payload, user)
	}

	called := false
	l = unitListener(t, []*Endpoint{{Info: func(context.Context, *Notification) error { called = true; return nil }}},
		WithSerializer(failingDeserializer{}), WithAllowRequeue(true), WithLogger(slog.New(&logRecords{})))
	d = testDelivery("INFO")
	l.handle(t.Context(), d)
	if called || d.result() != "requeue" {
		t.Errorf("a context that cannot be deserialized: called %v, %s; want requeued, as an exception", called, d.result())
	}
}

// The scenarios of oslo's TestDispatcherFilter.
func TestDispatcherFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		filter      Filter
		publisherID string
		eventType   string
		context     map[string]any
		match       bool
	}{
		{"publisher_id_match", Filter{PublisherID: "^compute.*"}, "compute01.manager", "instance.create.start", nil, true},
		{"publisher_id_nomatch", Filter{PublisherID: "^compute.*"}, "network01.manager", "instance.create.start", nil, false},
		{"event_type_match", Filter{EventType: `^instance\.create`}, "compute01.manager", "instance.create.start", nil, true},
		{"event_type_nomatch", Filter{EventType: `^instance\.delete`}, "compute01.manager", "instance.create.start", nil, false},
		{"context_match", Filter{Context: map[string]string{"user": "^adm"}}, "compute01.manager", "instance.create.start", map[string]any{"user": "admin"}, true},
		{"context_key_missing", Filter{Context: map[string]string{"user": "^adm"}}, "compute01.manager", "instance.create.start", map[string]any{"project": "admin"}, false},
		{"context_not_string", Filter{Context: map[string]string{"user": "^1"}}, "compute01.manager", "instance.create.start", map[string]any{"user": json.Number("1")}, false},
		{"metadata_match", Filter{Metadata: map[string]string{"message_id": "^99"}}, "compute01.manager", "instance.create.start", nil, true},
		{"metadata_timestamp", Filter{Metadata: map[string]string{"timestamp": "2014-03"}}, "compute01.manager", "instance.create.start", nil, true},
		{"metadata_key_missing", Filter{Metadata: map[string]string{"user": "^adm"}}, "compute01.manager", "instance.create.start", nil, false},
		{"payload_match", Filter{Payload: map[string]string{"state": "^active$"}}, "compute01.manager", "instance.create.start", nil, true},
		{"payload_no_match", Filter{Payload: map[string]string{"state": "^deleted$"}}, "compute01.manager", "instance.create.start", nil, false},
		{"payload_key_missing", Filter{Payload: map[string]string{"user": "^adm"}}, "compute01.manager", "instance.create.start", nil, false},
		{"payload_value_none", Filter{Payload: map[string]string{"virtual_size": "2048"}}, "compute01.manager", "instance.create.start", nil, false},
		{"payload_value_none_empty_pattern", Filter{Payload: map[string]string{"virtual_size": ""}}, "compute01.manager", "instance.create.start", nil, false},
		{"mix_match", Filter{EventType: `^instance\.create`, PublisherID: "^compute", Context: map[string]string{"user": "^adm"}},
			"compute01.manager", "instance.create.start", map[string]any{"user": "admin"}, true},
		{"match is anchored at the start", Filter{PublisherID: "manager"}, "compute01.manager", "x", nil, false},
		{"alternation anchored", Filter{PublisherID: "network|compute"}, "compute01.manager", "x", nil, true},
	} {
		called := 0
		l := unitListener(t, []*Endpoint{{Filter: tc.filter, Info: func(context.Context, *Notification) error { called++; return nil }}})
		d := &fakeDelivery{n: &driver.Notification{
			Payload:     json.RawMessage(`{"state": "active", "virtual_size": null}`),
			Priority:    "info",
			PublisherID: tc.publisherID,
			EventType:   tc.eventType,
			Timestamp:   "2014-03-03 18:21:04.369234",
			MessageID:   "99863dda-97f0-443a-a0c1-6ed317b7fd45",
			Context:     tc.context,
		}}
		l.handle(t.Context(), d)
		if (called == 1) != tc.match {
			t.Errorf("%s: handler called %d times, want match=%v", tc.name, called, tc.match)
		}
		if d.result() != "ack" {
			t.Errorf("%s: settled %q, want ack", tc.name, d.result())
		}
	}

	// A payload that is not an object matches no payload condition.
	called := false
	l := unitListener(t, []*Endpoint{{Filter: Filter{Payload: map[string]string{"a": ""}}, Info: func(context.Context, *Notification) error { called = true; return nil }}})
	for _, p := range []string{`"a"`, `["a"]`, `null`, `3`} {
		d := testDelivery("INFO")
		d.n.Payload = json.RawMessage(p)
		l.handle(t.Context(), d)
	}
	if called {
		t.Error("a payload condition matched a payload that is not an object")
	}
}

func TestListenerConstructorErrors(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	info := func(context.Context, *Notification) error { return nil }
	ok := []*Endpoint{{Info: info}}
	targets := []messaging.Target{{Topic: "t"}}
	for _, tc := range []struct {
		name    string
		tr      *messaging.Transport
		targets []messaging.Target
		eps     []*Endpoint
		opts    []ListenerOption
		want    error
		text    string
	}{
		{"no topic", tr, []messaging.Target{{}}, ok, nil, messaging.ErrInvalidTarget, "must have topic"},
		{"no targets", tr, nil, ok, nil, messaging.ErrInvalidTarget, "at least one target"},
		{"nil endpoint", tr, targets, []*Endpoint{nil}, nil, messaging.ErrInvalidOption, "endpoint 0 is nil"},
		{"no priority", tr, targets, []*Endpoint{{}}, nil, messaging.ErrInvalidOption, "no endpoint handles"},
		{"bad filter", tr, targets, []*Endpoint{{Filter: Filter{EventType: "("}, Info: info}}, nil, messaging.ErrInvalidOption, "EventType"},
		{"bad context filter", tr, targets, []*Endpoint{{Filter: Filter{Context: map[string]string{"k": "[z-a]"}}, Info: info}}, nil, messaging.ErrInvalidOption, `Context["k"]`},
		{"bad concurrency", tr, targets, ok, []ListenerOption{WithMaxConcurrency(0)}, messaging.ErrInvalidOption, "below 1"},
		{"nil serializer", tr, targets, ok, []ListenerOption{WithSerializer(nil)}, messaging.ErrInvalidOption, "nil serializer"},
	} {
		_, err := NewListener(tc.tr, tc.targets, tc.eps, tc.opts...)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: NewListener = %v, want %v containing %q", tc.name, err, tc.want, tc.text)
		}
	}
	if _, err := NewListener(nil, targets, ok); err == nil {
		t.Error("NewListener with a nil transport succeeded")
	}
	if _, err := NewListener(messaging.NewTransport(rpcOnlyConn{}), targets, ok); err == nil || !strings.Contains(err.Error(), "does not support notifications") {
		t.Errorf("NewListener on an RPC-only transport = %v", err)
	}
	batch := []*BatchEndpoint{{Info: func(context.Context, []*Notification) error { return nil }}}
	if _, err := NewBatchListener(tr, targets, batch, 0, 0); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("NewBatchListener with batch size 0 = %v", err)
	}
	if _, err := NewBatchListener(tr, targets, batch, 1, -1); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("NewBatchListener with a negative timeout = %v", err)
	}
	if _, err := NewBatchListener(tr, targets, []*BatchEndpoint{nil}, 1, 0); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("NewBatchListener with a nil endpoint = %v", err)
	}
	l, err := NewListener(tr, []messaging.Target{{Topic: "a", Exchange: "x"}, {Topic: "b"}}, []*Endpoint{{Sample: info}, {Audit: info, Error: info}})
	if err != nil {
		t.Fatal(err)
	}
	want := []driver.NotifyTarget{
		{Exchange: "x", Topic: "a", Priorities: []string{"audit", "error", "sample"}},
		{Exchange: "openstack", Topic: "b", Priorities: []string{"audit", "error", "sample"}},
	}
	if fmt.Sprint(l.subs) != fmt.Sprint(want) {
		t.Errorf("subscriptions %v, want %v", l.subs, want)
	}
	if got := l.Targets(); len(got) != 2 || got[0].Topic != "a" {
		t.Errorf("Targets() = %v", got)
	}
}

// oslo's BatchNotificationDispatcher: notifications grouped by
// priority; a failing endpoint requeues its whole group, also what its
// filter kept from it, and stops the later endpoints of that group.
func TestBatchDispatcher(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	record := func(name string, result error, panics bool) BatchHandlerFunc {
		return func(ctx context.Context, batch []*Notification) error {
			var ids []string
			for _, n := range batch {
				ids = append(ids, n.EventType)
			}
			mu.Lock()
			calls = append(calls, name+":"+strings.Join(ids, "+"))
			mu.Unlock()
			if panics {
				panic("batch bug")
			}
			return result
		}
	}
	eps := []*BatchEndpoint{
		{Filter: Filter{EventType: "keep"}, Info: record("0.info", nil, true), Error: record("0.error", nil, false)},
		{Info: record("1.info", nil, false), Error: record("1.error", ErrRequeue, false), Warn: record("1.warn", nil, false)},
		{Error: record("2.error", nil, false)},
	}
	l, err := NewBatchListener(newTransport(t), []messaging.Target{{Topic: "t"}}, eps, 10, 0,
		WithAllowRequeue(true), WithLogger(slog.New(&logRecords{})))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(p, event string) *fakeDelivery {
		d := testDelivery(p)
		d.n.EventType = event
		return d
	}
	ds := []*fakeDelivery{
		mk("INFO", "keep"), mk("INFO", "drop"), mk("ERROR", "keep"), mk("ERROR", "drop"),
		mk("WARN", "w"), mk("bogus", "b"),
	}
	dup := &fakeDelivery{n: ds[4].n}
	batch := []driver.NotifyDelivery{}
	for _, d := range ds {
		batch = append(batch, d)
	}
	l.handleBatch(t.Context(), batch)
	l.handleBatch(t.Context(), []driver.NotifyDelivery{dup})
	want := "0.info:keep 1.warn:w 0.error:keep 1.error:keep+drop" // in oslo's priority order
	if got := strings.Join(calls, " "); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	var settled []string
	for _, d := range append(ds, dup) {
		settled = append(settled, d.result())
	}
	// info: a panic in endpoint 0 requeues both, also the one its filter
	// dropped; error: endpoint 1 requeues, endpoint 2 is not called;
	// warn handled; unknown priority and the duplicate acknowledged.
	if got, want := strings.Join(settled, " "), "requeue requeue requeue requeue ack ack ack"; got != want {
		t.Errorf("settled %q, want %q", got, want)
	}
}
