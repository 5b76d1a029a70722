package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

var (
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	hexRE  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func TestParsePriority(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Priority{
		"info": PriorityInfo, "INFO": PriorityInfo, "Warn": PriorityWarn, "warning": PriorityWarn,
		"WARNING": PriorityWarn, "audit": PriorityAudit, "sample": PrioritySample, "CRITICAL": PriorityCritical,
	} {
		if got, err := ParsePriority(in); err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "what???", "fatal", "infos"} {
		if _, err := ParsePriority(in); !errors.Is(err, ErrInvalidPriority) {
			t.Errorf("ParsePriority(%q) = %v, want ErrInvalidPriority", in, err)
		}
	}
	if got := fmt.Sprint(Priorities()); got != "[audit debug info warn error critical sample]" {
		t.Errorf("Priorities() = %s", got)
	}
	Priorities()[0] = "x" // a copy
	if Priorities()[0] != PriorityAudit {
		t.Error("Priorities returns shared memory")
	}
}

func TestFormatTimestamp(t *testing.T) {
	t.Parallel()
	// Python: str(datetime.datetime(...)).
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 21, 4, 49, 35, 23246000, time.UTC), "2026-11-21 04:49:35.023246"},
		{time.Date(2026, 11, 21, 4, 49, 35, 0, time.UTC), "2026-11-21 04:49:35"},
		{time.Date(2026, 11, 21, 4, 49, 35, 999, time.UTC), "2026-11-21 04:49:35"}, // below a microsecond
		{time.Date(2026, 1, 2, 3, 4, 5, 100000, time.UTC), "2026-01-02 03:04:05.000100"},
		{time.Date(2026, 11, 21, 5, 49, 35, 5000, time.FixedZone("CET", 3600)), "2026-11-21 04:49:35.000005"},
	} {
		got := formatTimestamp(tc.t)
		if got != tc.want {
			t.Errorf("formatTimestamp(%v) = %q, want %q", tc.t, got, tc.want)
		}
		n := &Notification{Timestamp: got}
		back, err := n.Time()
		if err != nil || !back.Equal(tc.t.Truncate(time.Microsecond)) {
			t.Errorf("Time() of %q = %v, %v", got, back, err)
		}
	}
	if _, err := (&Notification{Timestamp: "yesterday"}).Time(); err == nil {
		t.Error("Time() of a bad timestamp succeeded")
	}
}

// fakeTransport returns a transport on a fakeConn.
func fakeTransport(opts ...messaging.Option) (*messaging.Transport, *fakeConn) {
	c := &fakeConn{}
	return messaging.NewTransport(c, opts...), c
}

func TestNotifierMessage(t *testing.T) {
	t.Parallel()
	tr, conn := fakeTransport()
	n := newNotifier(t, tr, "compute.host1", WithSinks(MessagingV2()), WithTopics("foo", "bar"))
	now := time.Date(2026, 11, 21, 4, 49, 35, 23246000, time.UTC)
	fixedClock(n, now)

	md := messaging.Metadata{
		"user_id": "u1", "project_id": "p", "request_id": "req-1", "roles": []any{"admin"},
		"is_admin": true, "global_request_id": "greq", "user_name": "bob",
		"auth_token": "SECRET", "secret_data": "redact_me", "client_timeout": nil, "service_token": "x",
	}
	ctx := messaging.NewOutgoingContext(t.Context(), md)
	payload := map[string]any{"id": 7, "name": "vm <&>"}
	if err := n.Info(ctx, "compute.instance.create.end", payload); err != nil {
		t.Fatal(err)
	}
	sends := conn.sends()
	if len(sends) != 2 {
		t.Fatalf("%d publishes, want one per topic", len(sends))
	}
	wantCtx := map[string]any{
		"user_id": "u1", "project_id": "p", "request_id": "req-1", "roles": []any{"admin"},
		"is_admin": true, "global_request_id": "greq", "user_name": "bob",
	}
	for i, s := range sends {
		if want := (driver.Address{Exchange: "openstack", Topic: []string{"foo", "bar"}[i]}); s.addr != want {
			t.Errorf("publish %d to %+v, want %+v", i, s.addr, want)
		}
		if want := (driver.NotifyOptions{Envelope: true, Retry: -1}); s.opts != want {
			t.Errorf("publish %d options %+v, want %+v", i, s.opts, want)
		}
		got := s.n
		if !uuidRE.MatchString(got.MessageID) {
			t.Errorf("message_id %q is not a UUID", got.MessageID)
		}
		if got.MessageID != sends[0].n.MessageID {
			t.Errorf("message ids differ between topics: %s, %s", got.MessageID, sends[0].n.MessageID)
		}
		if !hexRE.MatchString(got.UniqueID) {
			t.Errorf("_unique_id %q is not 32 hex digits", got.UniqueID)
		}
		if got.PublisherID != "compute.host1" || got.EventType != "compute.instance.create.end" ||
			got.Priority != "INFO" || got.Timestamp != "2026-11-21 04:49:35.023246" {
			t.Errorf("notification %+v", got)
		}
		if string(got.Payload) != `{"id":7,"name":"vm <&>"}` {
			t.Errorf("payload %s", got.Payload)
		}
		if !reflect.DeepEqual(got.Context, wantCtx) {
			t.Errorf("context %v, want the safe keys %v", got.Context, wantCtx)
		}
	}
	if sends[0].n.UniqueID == sends[1].n.UniqueID {
		t.Error("the same _unique_id was sent to two topics")
	}
	if md["auth_token"] != "SECRET" {
		t.Error("the caller's metadata was modified")
	}

	// What goes on the wire, as oslo writes it.
	body, err := wire.EncodeNotification(&sends[0].n, true)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal(body, &env); err != nil || env["oslo.version"] != "2.0" {
		t.Fatalf("envelope %s: %v", body, err)
	}
	inner := env["oslo.message"]
	keys := regexp.MustCompile(`"([a-z_.]+)": `).FindAllStringSubmatch(inner, -1)
	var order []string
	for _, k := range keys {
		if !strings.Contains(k[1], ".") && k[1] != "id" && k[1] != "name" {
			order = append(order, k[1])
		}
	}
	want := "message_id publisher_id event_type priority payload timestamp _unique_id"
	if got := strings.Join(order[:7], " "); got != want {
		t.Errorf("keys %s, want %s then _context_*", got, want)
	}
	if strings.Contains(inner, "auth_token") || strings.Contains(inner, "SECRET") || strings.Contains(inner, "secret_data") {
		t.Errorf("unsafe context on the wire: %s", inner)
	}
	if !strings.Contains(inner, `"_context_user_id": "u1"`) {
		t.Errorf("context missing on the wire: %s", inner)
	}
}

// The matrix of oslo's TestMessagingNotifier and
// TestMessagingNotifierContextFiltering: drivers × publisher ids ×
// topics × priorities × retries.
func TestNotifierMatrix(t *testing.T) {
	t.Parallel()
	type driverCase struct {
		name  string
		sinks []Sink
		env   []bool
	}
	drivers := []driverCase{
		{"none", nil, nil},
		{"v1", []Sink{Messaging()}, []bool{false}},
		{"v2", []Sink{MessagingV2()}, []bool{true}},
		{"v1+v2", []Sink{Messaging(), MessagingV2()}, []bool{false, true}},
	}
	pubs := []struct{ name, ctor, prep, want string }{
		{"ctor", "test", "", "test"},
		{"prep", "", "test.localhost", "test.localhost"},
		{"override", "test", "test.localhost", "test.localhost"},
	}
	topicCases := [][]string{{}, {"notifications"}, {"foo", "bar"}}
	retries := []struct {
		name string
		opt  []PrepareOption
		want int
		set  bool
	}{
		{"unconfigured", nil, -1, false},
		{"0", []PrepareOption{Retry(0)}, 0, true},
		{"5", []PrepareOption{Retry(5)}, 5, true},
	}
	for _, d := range drivers {
		for _, pub := range pubs {
			for _, topics := range topicCases {
				for _, p := range Priorities() {
					for _, r := range retries {
						name := fmt.Sprintf("%s/%s/%v/%s/%s", d.name, pub.name, topics, p, r.name)
						tr, conn := fakeTransport()
						n := newNotifier(t, tr, pub.ctor, WithSinks(d.sinks...), WithTopics(topics...))
						opts := append([]PrepareOption{}, r.opt...)
						if pub.prep != "" {
							opts = append(opts, PublisherID(pub.prep))
						}
						if len(opts) > 0 {
							n = n.Prepare(opts...)
						}
						ctx := messaging.NewOutgoingContext(t.Context(), messaging.Metadata{"user_name": "bob", "secret_data": "redact_me"})
						if err := n.Notify(ctx, p, "test.notify", map[string]string{"foo": "bar"}); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						sends := conn.sends()
						if len(sends) != len(d.env)*len(topics) {
							t.Fatalf("%s: %d publishes, want %d", name, len(sends), len(d.env)*len(topics))
						}
						i := 0
						for _, env := range d.env {
							for _, topic := range topics {
								s := sends[i]
								i++
								if s.addr.Topic != topic || s.opts.Envelope != env || s.opts.Retry != r.want || s.opts.ResendUnconfirmed != r.set {
									t.Errorf("%s: publish %+v %+v", name, s.addr, s.opts)
								}
								if s.n.PublisherID != pub.want || s.n.Priority != strings.ToUpper(string(p)) ||
									s.n.EventType != "test.notify" || string(s.n.Payload) != `{"foo":"bar"}` ||
									!reflect.DeepEqual(s.n.Context, map[string]any{"user_name": "bob"}) || s.n.MessageID != sends[0].n.MessageID {
									t.Errorf("%s: notification %+v", name, s.n)
								}
							}
						}
						if !n.Enabled() {
							t.Errorf("%s: Enabled() = false", name)
						}
					}
				}
			}
		}
	}
}

func TestNotifierOptionsAndPrepare(t *testing.T) {
	t.Parallel()
	tr, conn := fakeTransport(messaging.WithControlExchange("nova"))
	base := newNotifier(t, tr, "compute", WithSinks(MessagingV2()), WithRetry(3))
	prepared := base.Prepare(PublisherID("compute.host2"), Retry(0))
	if base.PublisherID() != "compute" || prepared.PublisherID() != "compute.host2" {
		t.Errorf("publisher ids %q, %q", base.PublisherID(), prepared.PublisherID())
	}
	for _, n := range []*Notifier{base, prepared, prepared.Prepare()} {
		if err := n.Audit(t.Context(), "e", nil); err != nil {
			t.Fatal(err)
		}
	}
	sends := conn.sends()
	for i, want := range []struct {
		pub   string
		retry int
	}{{"compute", 3}, {"compute.host2", 0}, {"compute.host2", 0}} {
		s := sends[i]
		if s.n.PublisherID != want.pub || s.opts.Retry != want.retry || !s.opts.ResendUnconfirmed ||
			s.addr.Exchange != "nova" || s.addr.Topic != "notifications" || s.n.Priority != "AUDIT" || string(s.n.Payload) != "null" {
			t.Errorf("publish %d: %+v %+v %+v", i, s.addr, s.opts, s.n)
		}
	}

	ex := newNotifier(t, tr, "p", WithSinks(Messaging()), WithExchange("glance"))
	if err := ex.Warning(t.Context(), "e", 1); err != nil {
		t.Fatal(err)
	}
	if s := conn.sends()[3]; s.addr.Exchange != "glance" || s.n.Priority != "WARN" || s.opts.Envelope {
		t.Errorf("publish with WithExchange: %+v %+v", s.addr, s.n)
	}

	// Every shorthand sends its priority.
	rec := NewRecorder()
	n := newNotifier(t, nil, "p", WithSinks(rec))
	ctx := t.Context()
	for _, f := range []func(context.Context, string, any) error{n.Audit, n.Debug, n.Info, n.Warn, n.Warning, n.Error, n.Critical, n.Sample} {
		if err := f(ctx, "e", nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, m := range rec.Messages() {
		got = append(got, m.Priority.wire())
	}
	if s := strings.Join(got, " "); s != "AUDIT DEBUG INFO WARN WARN ERROR CRITICAL SAMPLE" {
		t.Errorf("priorities sent: %s", s)
	}
	if err := n.Notify(ctx, "CRITICAL", "e", nil); err != nil {
		t.Errorf("Notify with an upper-case priority: %v", err)
	}
}

func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	tr := messaging.NewTransport(rpcOnlyConn{})
	for _, tc := range []struct {
		name string
		tr   *messaging.Transport
		opts []NotifierOption
		want string
	}{
		{"no notify support", tr, []NotifierOption{WithSinks(MessagingV2())}, "does not support notifications"},
		{"no notify support, wrapped", tr, []NotifierOption{WithSinks(LogErrors(Messaging()))}, "does not support notifications"},
		{"nil transport", nil, []NotifierOption{WithSinks(MessagingV2())}, "nil transport"},
		{"nil sink", nil, []NotifierOption{WithSinks(nil)}, "sink 0 is nil"},
		{"empty topic", nil, []NotifierOption{WithTopics("a", "")}, "empty topic"},
		{"nil serializer", nil, []NotifierOption{WithSerializer(nil)}, "nil serializer"},
	} {
		if _, err := NewNotifier(tc.tr, "p", tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewNotifier = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Sinks that do not publish need no notification support.
	if _, err := NewNotifier(tr, "p", WithSinks(Log(nil), NewRecorder(), Noop())); err != nil {
		t.Errorf("NewNotifier with local sinks on an RPC-only transport: %v", err)
	}

	calls := 0
	counting := SinkFunc(func(context.Context, *Message) error { calls++; return nil })
	n := newNotifier(t, nil, "p", WithSinks(counting))
	if err := n.Notify(t.Context(), "fatal", "e", nil); !errors.Is(err, ErrInvalidPriority) {
		t.Errorf("Notify with a bad priority = %v", err)
	}
	if err := n.Info(t.Context(), "e", make(chan int)); err == nil || !strings.Contains(err.Error(), "encoding payload") {
		t.Errorf("Info with an unencodable payload = %v", err)
	}
	if calls != 0 {
		t.Error("a sink was called for a notification that could not be built")
	}

	// Driver errors come back, one per topic.
	tr2, conn := fakeTransport()
	conn.fail = messaging.ErrDeliveryFailure
	n = newNotifier(t, tr2, "p", WithSinks(MessagingV2()), WithTopics("a", "b"))
	err := n.Error(t.Context(), "compute.fail", nil)
	if !errors.Is(err, messaging.ErrDeliveryFailure) || !strings.Contains(err.Error(), "a.error") || !strings.Contains(err.Error(), "b.error") {
		t.Errorf("Error = %v, want a delivery failure for both topics", err)
	}
	if conn.calls != 2 {
		t.Errorf("%d publishes attempted, want 2", conn.calls)
	}
}

// serializerSpy is oslo's TestSerializer: it replaces the payload and
// the context, and records what it was given.
type serializerSpy struct {
	messaging.NoOpSerializer
	entity any
	md     messaging.Metadata
}

func (s *serializerSpy) SerializeEntity(_ context.Context, v any) (any, error) {
	s.entity = v
	return "sbar", nil
}

func (s *serializerSpy) SerializeContext(_ context.Context, md messaging.Metadata) (messaging.Metadata, error) {
	s.md = md
	return messaging.Metadata{"user_name": "alice"}, nil
}

func TestNotifierSerializer(t *testing.T) {
	t.Parallel()
	spy := &serializerSpy{}
	rec := NewRecorder()
	n := newNotifier(t, nil, "test.localhost", WithSinks(rec), WithSerializer(spy))
	ctx := messaging.NewOutgoingContext(t.Context(), messaging.Metadata{"user_name": "bob", "auth_token": "t"})
	if err := n.Info(ctx, "test.notify", "bar"); err != nil {
		t.Fatal(err)
	}
	m := rec.Messages()[0]
	if string(m.Payload) != `"sbar"` || !reflect.DeepEqual(m.Context, messaging.Metadata{"user_name": "alice"}) {
		t.Errorf("sent payload %s, context %v", m.Payload, m.Context)
	}
	if spy.entity != "bar" || !reflect.DeepEqual(spy.md, messaging.Metadata{"user_name": "bob"}) {
		t.Errorf("serializer saw %v and %v, want the payload and the sanitised context", spy.entity, spy.md)
	}
	failing := &failingSerializer{}
	n = newNotifier(t, nil, "p", WithSinks(rec), WithSerializer(failing))
	if err := n.Info(ctx, "e", 1); err == nil || !strings.Contains(err.Error(), "serializing payload") {
		t.Errorf("Info with a failing serializer = %v", err)
	}
}

type failingSerializer struct{ messaging.NoOpSerializer }

func (failingSerializer) SerializeEntity(context.Context, any) (any, error) {
	return nil, errors.New("no")
}

// Over the memory driver the notifications reach a raw driver listener
// as oslo's messages, enveloped or not.
func TestNotifierOverMemory(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	conn := tr.Conn().(driver.NotifyConn)
	ctx := testContext(t)
	lis, err := conn.ListenNotifications(ctx, []driver.NotifyTarget{
		{Exchange: "openstack", Topic: "t1", Priorities: []string{"info"}},
		{Exchange: "openstack", Topic: "t2", Priorities: []string{"info"}},
	}, "", driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	for _, s := range []Sink{MessagingV2(), Messaging()} {
		n := newNotifier(t, tr, "pub", WithSinks(s), WithTopics("t1", "t2"))
		ctx := messaging.NewOutgoingContext(ctx, messaging.Metadata{"project_id": "p", "auth_token": "t"})
		if err := n.Info(ctx, "ev", map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		var got []*driver.Notification
		for range 2 {
			d, err := lis.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, d.Notification())
			if err := d.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if got[0].MessageID != got[1].MessageID || got[0].UniqueID == got[1].UniqueID {
			t.Errorf("message ids %s %s, unique ids %s %s", got[0].MessageID, got[1].MessageID, got[0].UniqueID, got[1].UniqueID)
		}
		for _, g := range got {
			if g.Priority != "INFO" || g.PublisherID != "pub" || string(g.Payload) != `{"n": 1}` ||
				!reflect.DeepEqual(g.Context, map[string]any{"project_id": "p"}) {
				t.Errorf("received %+v", g)
			}
		}
	}
}

// tokenAdder is a serializer that puts a token back into the context.
type tokenAdder struct{ messaging.NoOpSerializer }

func (tokenAdder) SerializeContext(_ context.Context, md messaging.Metadata) (messaging.Metadata, error) {
	out := md.Copy()
	if out == nil {
		out = messaging.Metadata{}
	}
	out["auth_token"] = "added-by-serializer"
	out["request_id"] = "req-from-serializer"
	return out, nil
}

// Whatever a serializer adds, only oslo's safe keys are sent.
func TestNotifierSanitisesSerializerOutput(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	n := newNotifier(t, nil, "test.localhost", WithSinks(rec), WithSerializer(tokenAdder{}))
	if err := n.Info(t.Context(), "test.notify", "bar"); err != nil {
		t.Fatal(err)
	}
	m := rec.Messages()[0]
	if _, leaked := m.Context["auth_token"]; leaked || m.Context["request_id"] != "req-from-serializer" {
		t.Errorf("sent context %v, want request_id only", m.Context)
	}
}
