package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/go-oslo/messaging"
)

// The cases of oslo's functional NotifyTestCase and of its listener unit
// tests, over the memory driver.

func TestSimple(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("simple")
	got := newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Debug: got.handle}})
	n := newNotifier(t, tr, "compute.host1", WithSinks(Messaging()), WithTopics(topic))
	ctx := messaging.NewOutgoingContext(testContext(t), messaging.Metadata{"user_name": "bob", "auth_token": "secret"})
	if err := n.Debug(ctx, "test", "test"); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 1)
	r := got.notifications()[0]
	if r.PublisherID != "compute.host1" || r.EventType != "test" || string(r.Payload) != `"test"` || r.Priority != PriorityDebug {
		t.Errorf("received %+v", r)
	}
	if !uuidRE.MatchString(r.MessageID) {
		t.Errorf("message_id %q", r.MessageID)
	}
	if _, err := r.Time(); err != nil {
		t.Errorf("timestamp: %v", err)
	}
	want := messaging.Metadata{"user_name": "bob"}
	if !reflect.DeepEqual(r.Context, want) || !reflect.DeepEqual(got.ctxs[0], want) {
		t.Errorf("context %v (incoming %v), want %v", r.Context, got.ctxs[0], want)
	}
}

func TestMultipleTopics(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	a, b := unique("a"), unique("b")
	got := newSink()
	startListener(t, tr, []messaging.Target{{Topic: a}, {Topic: b}}, []*Endpoint{{Info: got.handle}})
	ctx := testContext(t)
	var want []string
	for _, topic := range []string{a, b} {
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
		for i := range 3 {
			p := fmt.Sprintf("%s-%d", topic, i)
			want = append(want, p)
			if err := n.Info(ctx, "test", p); err != nil {
				t.Fatal(err)
			}
		}
	}
	got.wait(t, 6)
	slices.Sort(want)
	if p := payloads(t, got.notifications()); !slices.Equal(p, want) {
		t.Errorf("received %v, want %v", p, want)
	}
}

// Listeners without a pool share the notifications of their topic.
func TestMultipleListeners(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("shared")
	s1, s2 := newSink(), newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: s1.handle}})
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: s2.handle}})
	n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
	ctx := testContext(t)
	for i := range 20 {
		if err := n.Info(ctx, "test", fmt.Sprintf("n%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitTotal(t, 20, s1, s2)
	if s1.len() == 0 || s2.len() == 0 {
		t.Errorf("load not shared: %d and %d", s1.len(), s2.len())
	}
	all := append(s1.notifications(), s2.notifications()...)
	if p := payloads(t, all); !slices.Equal(p, numbered("n", 20)) {
		t.Errorf("received %v", p)
	}
}

// waitTotal waits until the sinks hold n notifications together.
func waitTotal(t *testing.T, n int, sinks ...*sink) {
	t.Helper()
	ctx := testContext(t)
	for {
		total := 0
		for _, s := range sinks {
			total += s.len()
		}
		if total >= n {
			return
		}
		cases := make([]<-chan struct{}, 0, len(sinks))
		for _, s := range sinks {
			cases = append(cases, s.cond)
		}
		if !waitAny(ctx, cases) {
			t.Fatalf("received %d notifications, want %d", total, n)
		}
	}
}

// waitAny waits for one of chans, or returns false when ctx ends.
func waitAny(ctx context.Context, chans []<-chan struct{}) bool {
	merged := make(chan struct{}, 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range chans {
		wg.Go(func() {
			select {
			case <-c:
				select {
				case merged <- struct{}{}:
				default:
				}
			case <-stop:
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	select {
	case <-merged:
		return true
	case <-ctx.Done():
		return false
	}
}

func TestIndependentTopics(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	t1, t2 := unique("t1"), unique("t2")
	s1, s2 := newSink(), newSink()
	startListener(t, tr, []messaging.Target{{Topic: t1}}, []*Endpoint{{Info: s1.handle}})
	startListener(t, tr, []messaging.Target{{Topic: t2}}, []*Endpoint{{Info: s2.handle}})
	ctx := testContext(t)
	n1 := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(t1))
	n2 := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(t2))
	for i := range 5 {
		if err := n1.Info(ctx, "e", fmt.Sprintf("a%03d", i)); err != nil {
			t.Fatal(err)
		}
		if err := n2.Info(ctx, "e", fmt.Sprintf("b%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s1.wait(t, 5)
	s2.wait(t, 5)
	if p := payloads(t, s1.notifications()); !slices.Equal(p, numbered("a", 5)) {
		t.Errorf("listener 1 received %v", p)
	}
	if p := payloads(t, s2.notifications()); !slices.Equal(p, numbered("b", 5)) {
		t.Errorf("listener 2 received %v", p)
	}
}

func TestAllPriorities(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("all")
	sinks := map[Priority]*sink{}
	ep := &Endpoint{}
	for _, p := range Priorities() {
		sinks[p] = newSink()
		setHandler(ep, p, sinks[p].handle)
	}
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{ep})
	n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
	ctx := testContext(t)
	for _, p := range Priorities() {
		if err := n.Notify(ctx, p, "test", string(p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range Priorities() {
		s := sinks[p]
		s.wait(t, 1)
		r := s.notifications()[0]
		if r.Priority != p || string(r.Payload) != `"`+string(p)+`"` {
			t.Errorf("%s handler received %s %s", p, r.Priority, r.Payload)
		}
	}
}

func TestTwoEndpoints(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("eps")
	s1, s2 := newSink(), newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: s1.handle}, {Info: s2.handle}})
	n := newNotifier(t, tr, "testpublisher", WithSinks(MessagingV2()), WithTopics(topic))
	if err := n.Info(testContext(t), "an_event.start", "test"); err != nil {
		t.Fatal(err)
	}
	s1.wait(t, 1)
	s2.wait(t, 1)
}

func TestTwoExchanges(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("topic")
	got := newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic, Exchange: "exchange1"}, {Topic: topic, Exchange: "exchange2"}},
		[]*Endpoint{{Info: got.handle}})
	ctx := testContext(t)
	for _, ex := range []string{"", "exchange1", "exchange2"} {
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic), WithExchange(ex))
		if err := n.Info(ctx, "e", "message "+ex); err != nil {
			t.Fatal(err)
		}
	}
	got.wait(t, 2)
	if p := payloads(t, got.notifications()); !slices.Equal(p, []string{"message exchange1", "message exchange2"}) {
		t.Errorf("received %v; the default exchange is not listened to", p)
	}
}

func TestTwoPools(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("topic")
	p1, p2 := newSink(), newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: p1.handle}}, WithPool(unique("pool1")))
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: p2.handle}}, WithPool(unique("pool2")))
	n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
	ctx := testContext(t)
	for i := range 2 {
		if err := n.Info(ctx, "an_event.start", fmt.Sprintf("m%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	p1.wait(t, 2)
	p2.wait(t, 2)
	for _, s := range []*sink{p1, p2} {
		if p := payloads(t, s.notifications()); !slices.Equal(p, numbered("m", 2)) {
			t.Errorf("pool received %v", p)
		}
	}
}

// oslo's test_two_pools_three_listener: one listener in pool1, two in
// pool2, which are stopped and restarted in turn while notifications
// flow. (A Listener serves once, so a restart is a new Listener.)
func TestTwoPoolsThreeListeners(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("topic")
	pool1, pool2 := unique("pool1"), unique("pool2")
	targets := []messaging.Target{{Topic: topic}}
	s1, s2, s3 := newSink(), newSink(), newSink()
	startListener(t, tr, targets, []*Endpoint{{Info: s1.handle}}, WithPool(pool1))
	l2 := startListener(t, tr, targets, []*Endpoint{{Info: s2.handle}}, WithPool(pool2))
	l3 := startListener(t, tr, targets, []*Endpoint{{Info: s3.handle}}, WithPool(pool2))
	n := newNotifier(t, tr, "testpublisher", WithSinks(MessagingV2()), WithTopics(topic))
	ctx := testContext(t)
	sent := 0
	send25 := func() {
		for range 25 {
			if err := n.Info(ctx, "an_event.start", fmt.Sprintf("m%03d", sent)); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	send25()
	waitTotal(t, 25, s2, s3)
	l2.stop()
	send25()
	waitTotal(t, 50, s2, s3)
	l2 = startListener(t, tr, targets, []*Endpoint{{Info: s2.handle}}, WithPool(pool2))
	l3.stop()
	send25()
	waitTotal(t, 75, s2, s3)
	startListener(t, tr, targets, []*Endpoint{{Info: s3.handle}}, WithPool(pool2))
	send25()
	s1.wait(t, 100)
	waitTotal(t, 100, s2, s3)
	l2.stop()

	if p := payloads(t, s1.notifications()); !slices.Equal(p, numbered("m", 100)) {
		t.Errorf("pool1 received %d notifications: %v", len(p), p)
	}
	if s2.len() < 25 || s3.len() < 25 {
		t.Errorf("pool2 listeners received %d and %d, want at least 25 each", s2.len(), s3.len())
	}
	if p := payloads(t, append(s2.notifications(), s3.notifications()...)); !slices.Equal(p, numbered("m", 100)) {
		t.Errorf("pool2 received %d notifications: %v", len(p), p)
	}
}

// The notifier and the listener agree on JSON: numbers keep their text.
func TestPayloadRoundTrip(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	topic := unique("json")
	got := newSink()
	startListener(t, tr, []messaging.Target{{Topic: topic}}, []*Endpoint{{Info: got.handle}})
	n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics(topic))
	in := map[string]any{"big": json.Number("12345678901234567890"), "f": 1.5, "s": "é\"<>", "l": []int{1, 2}, "nil": nil}
	if err := n.Info(testContext(t), "e", in); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 1)
	var out map[string]any
	dec := json.NewDecoder(bytesReader(got.notifications()[0].Payload))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"big": json.Number("12345678901234567890"), "f": json.Number("1.5"), "s": "é\"<>", "l": []any{json.Number("1"), json.Number("2")}, "nil": nil}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("payload %v, want %v", out, want)
	}
}
