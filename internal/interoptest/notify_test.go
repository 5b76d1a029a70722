package interoptest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

// newNotifyCase returns what a notification case uses: its env, the
// shared Python peer and a recorder.
func newNotifyCase(t *testing.T) (*env, *peer, *nrecorder) {
	t.Helper()
	e := newEnv(t)
	return e, e.sharedPeer(), newNRecorder()
}

// checkPriorities checks the notifications that noteMethods sent with
// notePayload and fullContext (see TestInteropNotifyPythonToGo and
// TestInteropNotifyGoToPython): each arrived once, at the handler or
// method of its priority, with its publisher id, event type, payload,
// metadata and the sanitised context.
func checkPriorities(t *testing.T, got []notice, publisherID string, since time.Time) {
	t.Helper()
	if len(got) != len(noteMethods) {
		t.Errorf("received %d notifications, want %d:\n%s", len(got), len(noteMethods), describeNotices(got))
	}
	ids := map[string]string{}
	for i, m := range noteMethods {
		evs := filterNotices(got, func(n notice) bool { return n.EventType == "interop."+m })
		if len(evs) != 1 {
			t.Errorf("%s: received %d times, want once", m, len(evs))
			continue
		}
		n := evs[0]
		if want := methodPriority(m); n.Priority != want || n.MsgPriority != want {
			t.Errorf("%s: handled at priority %s (notification's %s), want %s", m, n.Priority, n.MsgPriority, want)
		}
		if n.PublisherID != publisherID {
			t.Errorf("%s: publisher_id %q, want %q", m, n.PublisherID, publisherID)
		}
		if !jsonEqual(n.Payload, notePayload(m, i)) {
			t.Errorf("%s: payload %s, want %s", m, n.Payload, mustJSON(t, notePayload(m, i)))
		}
		checkMetadata(t, n, since)
		if prev, dup := ids[n.MessageID]; dup {
			t.Errorf("%s and %s have the same message_id %s", prev, m, n.MessageID)
		}
		ids[n.MessageID] = m
		if _, ok := n.Ctxt["auth_token"]; ok {
			t.Errorf("%s: the auth_token reached the %s listener", m, n.Lang)
		}
		checkNoteContext(t, n, safeContext())
	}
}

// filterCase is a notification of the filter cases, and the endpoints
// whose filter accepts it.
type filterCase struct {
	eventType, publisherID, project string
	want                            []string
}

// filterCases are the notifications of the filter cases: endpoint
// by_event takes event types under interop.compute., by_publisher
// publisher id compute.host1 exactly, by_context project p-filter,
// by_secret any auth_token (which is never sent); all takes every
// notification.
var filterCases = []filterCase{
	{"interop.compute.start", "compute.host1", "p-filter", []string{"by_event", "by_publisher", "by_context"}},
	{"interop.network.up", "compute.host1", "p-other", []string{"by_publisher"}},
	{"interop.compute.stop", "network.host2", "p-other", []string{"by_event"}},
	{"interop.image.add", "network.host2", "p-filter", []string{"by_context"}},
	{"interop.image.del", "compute.host10", "", nil},
}

const (
	filterEvent     = `^interop\.compute\.`
	filterPublisher = `^compute\.host1$`
	filterProject   = `^p-filter$`
)

// filterContext is the request context of a filter case's notification.
func (fc filterCase) context() map[string]any {
	ctx := map[string]any{"auth_token": "secret", "request_id": "req-" + fc.eventType}
	if fc.project != "" {
		ctx["project_id"] = fc.project
	}
	return ctx
}

// checkFilters checks what the endpoints of a filter case received,
// once endpoint all (the last) has received every notification: the
// listener calls the endpoints in order, so the others are done.
func checkFilters(t *testing.T, rec *nrecorder, listener string) {
	t.Helper()
	for _, ep := range []string{"by_event", "by_publisher", "by_context", "by_secret", "all"} {
		var want []string
		for _, fc := range filterCases {
			if ep == "all" || slices.Contains(fc.want, ep) {
				want = append(want, fc.eventType)
			}
		}
		slices.Sort(want)
		if got := eventTypes(filterNotices(rec.all(), byEndpoint(listener, ep))); !slices.Equal(got, want) {
			t.Errorf("endpoint %s received %v, want %v", ep, got, want)
		}
	}
}

// checkRequeuedOnce checks that each of the n notifications was received
// twice: first asking for a requeue, then handled.
func checkRequeuedOnce(t *testing.T, got []notice, n int) {
	t.Helper()
	byID := map[string][]notice{}
	for _, nt := range got {
		byID[nt.MessageID] = append(byID[nt.MessageID], nt)
	}
	if len(byID) != n {
		t.Errorf("received %d distinct notifications, want %d:\n%s", len(byID), n, describeNotices(got))
	}
	for id, ns := range byID {
		if len(ns) != 2 || !ns[0].Requeued || ns[1].Requeued {
			t.Errorf("notification %s: received %d times, want a requeue then once handled:\n%s", id, len(ns), describeNotices(ns))
		}
	}
}

// TestInteropNotifyPythonToGo sends notifications with Python
// oslo.messaging's Notifier (drivers messaging and messagingv2) to Go
// notify listeners: every priority, several topics, pools, filters,
// requeues, batches (oslo's functional test_simple_batch) and
// compression.
func TestInteropNotifyPythonToGo(t *testing.T) {
	setup(t)
	t.Parallel()

	for _, s := range notifySinks {
		runNotifyCase(t, "priorities/"+s.name, func(t *testing.T) {
			e, p, rec := newNotifyCase(t)
			ex, topic := e.name("nex"), e.name("nprio")
			e.startGoListener(e.transport(), []messaging.Target{{Exchange: ex, Topic: topic}},
				[]*notify.Endpoint{goNotifyEndpoint(rec, "go", "all", notify.Filter{}, nil)})
			notes := make([]pyNote, len(noteMethods))
			for i, m := range noteMethods {
				notes[i] = pyNote{Method: m, EventType: "interop." + m, Payload: notePayload(m, i), Ctxt: fullContext()}
			}
			since := time.Now()
			e.pyNotify(p, pyReq{Exchange: ex, Driver: s.driver, Topics: []string{topic}, PublisherID: "compute.host1", Notifications: notes})
			checkPriorities(t, rec.waitN(t, e.ctx(opTimeout), len(notes), nil), "compute.host1", since)
		})

		// oslo's test_multiple_topics: Notifier(topics=[a, b]) publishes
		// to both; a listener on each receives it.
		runNotifyCase(t, "multiple_topics/"+s.name, func(t *testing.T) {
			e, p, rec := newNotifyCase(t)
			ex, a, b := e.name("nex"), e.name("ntopic_a"), e.name("ntopic_b")
			tr := e.transport()
			e.startGoListener(tr, []messaging.Target{{Exchange: ex, Topic: a}}, []*notify.Endpoint{goNotifyEndpoint(rec, "a", "all", notify.Filter{}, nil)})
			e.startGoListener(tr, []messaging.Target{{Exchange: ex, Topic: b}}, []*notify.Endpoint{goNotifyEndpoint(rec, "b", "all", notify.Filter{}, nil)})
			e.pyNotify(p, pyReq{Exchange: ex, Driver: s.driver, Topics: []string{a, b}, PublisherID: "compute.host1",
				Notifications: []pyNote{{Method: "info", EventType: "interop.topics", Payload: "both", Ctxt: fullContext()}}})
			got := rec.wait(t, e.ctx(opTimeout), "one notification on each topic", func(ns []notice, _ []batchInfo) bool {
				return len(filterNotices(ns, byListener("a"))) >= 1 && len(filterNotices(ns, byListener("b"))) >= 1
			})
			if len(got) != 2 || got[0].MessageID != got[1].MessageID || got[0].EventType != "interop.topics" || string(got[0].Payload) != `"both"` {
				t.Errorf("want the same notification once on each topic, got:\n%s", describeNotices(got))
			}
		})
	}

	// A pool gets a copy of each notification, and the listeners without
	// a pool another.
	runNotifyCase(t, "pool_and_unpooled", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("npool")
		tr := e.transport()
		targets := []messaging.Target{{Exchange: ex, Topic: topic}}
		e.startGoListener(tr, targets, []*notify.Endpoint{goNotifyEndpoint(rec, "plain", "all", notify.Filter{}, nil)})
		e.startGoListener(tr, targets, []*notify.Endpoint{goNotifyEndpoint(rec, "pool", "all", notify.Filter{}, nil)}, notify.WithPool(e.name("go_pool")))
		var notes []pyNote
		var want []string
		for i := range 3 {
			notes = append(notes, pyNote{Method: "info", EventType: fmt.Sprintf("interop.pool.%d", i), Payload: i})
			want = append(want, notes[i].EventType)
		}
		e.pyNotify(p, pyReq{Exchange: ex, Driver: "messagingv2", Topics: []string{topic}, PublisherID: "compute.host1", Notifications: notes})
		rec.wait(t, e.ctx(opTimeout), "3 notifications on each listener", func(ns []notice, _ []batchInfo) bool {
			return len(filterNotices(ns, byListener("plain"))) >= 3 && len(filterNotices(ns, byListener("pool"))) >= 3
		})
		for _, l := range []string{"plain", "pool"} {
			if got := eventTypes(filterNotices(rec.all(), byListener(l))); !slices.Equal(got, want) {
				t.Errorf("listener %s received %v, want %v", l, got, want)
			}
		}
	})

	// oslo's test_multiple_servers: the listeners of a pool share its
	// queue; each notification goes to one of them.
	runNotifyCase(t, "pool_shares_load", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nshare")
		tr := e.transport()
		targets := []messaging.Target{{Exchange: ex, Topic: topic}}
		pool := notify.WithPool(e.name("go_pool"))
		l1 := e.startGoListener(tr, targets, []*notify.Endpoint{goNotifyEndpoint(rec, "m1", "all", notify.Filter{}, nil)}, pool)
		l2 := e.startGoListener(tr, targets, []*notify.Endpoint{goNotifyEndpoint(rec, "m2", "all", notify.Filter{}, nil)}, pool)
		const n = 10
		var notes []pyNote
		var want []string
		for i := range n {
			notes = append(notes, pyNote{Method: "info", EventType: fmt.Sprintf("interop.share.%02d", i), Payload: i})
			want = append(want, notes[i].EventType)
		}
		e.pyNotify(p, pyReq{Exchange: ex, Driver: "messagingv2", Topics: []string{topic}, PublisherID: "compute.host1", Notifications: notes})
		rec.waitN(t, e.ctx(opTimeout), n, nil)
		// Once stopped, the listeners receive nothing more.
		e.stopGoListener(l1)
		e.stopGoListener(l2)
		got := rec.all()
		if types := eventTypes(got); !slices.Equal(types, want) {
			t.Errorf("the pool received %v, want each of %v once", types, want)
		}
		m1, m2 := len(filterNotices(got, byListener("m1"))), len(filterNotices(got, byListener("m2")))
		if m1 == 0 || m2 == 0 {
			t.Errorf("the load is not shared: m1 received %d, m2 %d", m1, m2)
		}
		t.Logf("distribution: m1 %d, m2 %d", m1, m2)
	})

	runNotifyCase(t, "filter", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nfilter")
		ep := func(name string, f notify.Filter) *notify.Endpoint { return goNotifyEndpoint(rec, "go", name, f, nil) }
		e.startGoListener(e.transport(), []messaging.Target{{Exchange: ex, Topic: topic}}, []*notify.Endpoint{
			ep("by_event", notify.Filter{EventType: filterEvent}),
			ep("by_publisher", notify.Filter{PublisherID: filterPublisher}),
			ep("by_context", notify.Filter{Context: map[string]string{"project_id": filterProject}}),
			ep("by_secret", notify.Filter{Context: map[string]string{"auth_token": ".*"}}),
			ep("all", notify.Filter{}),
		})
		var notes []pyNote
		for _, fc := range filterCases {
			notes = append(notes, pyNote{Method: "info", EventType: fc.eventType, PublisherID: fc.publisherID, Payload: "x", Ctxt: fc.context()})
		}
		e.pyNotify(p, pyReq{Exchange: ex, Driver: "messagingv2", Topics: []string{topic}, PublisherID: "unused", Notifications: notes})
		rec.waitN(t, e.ctx(opTimeout), len(filterCases), func(n notice) bool { return n.Endpoint == "all" })
		checkFilters(t, rec, "go")
	})

	// A handler asks for a requeue the first time it sees each
	// notification: with requeues allowed the notification comes back
	// and is handled; without, it is acknowledged and never comes back.
	for _, allow := range []bool{true, false} {
		name := "requeue_allowed"
		if !allow {
			name = "requeue_not_allowed"
		}
		runNotifyCase(t, name, func(t *testing.T) {
			e, p, rec := newNotifyCase(t)
			ex, topic := e.name("nex"), e.name("nrequeue")
			var mu sync.Mutex
			seen := map[string]bool{}
			first := func(n *notify.Notification) error {
				mu.Lock()
				defer mu.Unlock()
				if seen[n.MessageID] {
					return nil
				}
				seen[n.MessageID] = true
				return fmt.Errorf("first delivery of %s: %w", n.EventType, notify.ErrRequeue)
			}
			l := e.startGoListener(e.transport(), []messaging.Target{{Exchange: ex, Topic: topic}},
				[]*notify.Endpoint{goNotifyEndpoint(rec, "go", "once", notify.Filter{}, first)}, notify.WithAllowRequeue(allow))
			const n = 2
			notes := []pyNote{{Method: "info", EventType: "interop.requeue.0", Payload: 0}, {Method: "info", EventType: "interop.requeue.1", Payload: 1}}
			e.pyNotify(p, pyReq{Exchange: ex, Driver: "messagingv2", Topics: []string{topic}, PublisherID: "compute.host1", Notifications: notes})
			if allow {
				rec.waitN(t, e.ctx(opTimeout), n, func(nt notice) bool { return !nt.Requeued })
				rec.expectNoMore(t, quietWindow, "received again after being handled")
				checkRequeuedOnce(t, rec.all(), n)
			} else {
				rec.waitN(t, e.ctx(opTimeout), n, nil)
				rec.expectNoMore(t, quietWindow, "received again although requeues are not allowed")
				if got := rec.all(); len(got) != n {
					t.Errorf("received %d deliveries, want %d:\n%s", len(got), n, describeNotices(got))
				}
			}
			// Once the listener's connection is closed, anything it left
			// unacknowledged would be back in the queue.
			e.stopGoListener(l)
			if msgs, consumers := e.queueState(topic + ".info"); msgs != 0 || consumers != 0 {
				t.Errorf("queue %s.info holds %d messages and %d consumers after the listener stopped, want none", topic, msgs, consumers)
			}
		})
	}

	// oslo's test_simple_batch: 205 notifications reach a batch listener
	// (batch size 100, timeout 2s) as batches of 100, 100 and 5. They are
	// all queued before the listener starts (the notifier declares the
	// queue), so that the first two batches fill up whatever the speed
	// of the sender.
	runNotifyCase(t, "batch_205", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nbatch")
		notes, want := batchNotes()
		e.pyNotify(p, pyReq{Exchange: ex, Driver: "messagingv2", Topics: []string{topic}, PublisherID: "compute.host1", Notifications: notes})
		e.startGoBatchListener(e.transport(), []messaging.Target{{Exchange: ex, Topic: topic}},
			[]*notify.BatchEndpoint{goBatchEndpoint(rec, "go", "batch")}, 100, 2*time.Second)
		rec.waitN(t, e.ctx(opTimeout), len(want), nil)
		checkBatches(t, rec, []int{100, 100, 5}, want)
	})

	// oslo's test_compression: with kombu_compression=gzip, Python
	// compresses its notifications, and Go understands them.
	runNotifyCase(t, "compression", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("ngzip")
		capt := e.newCapture(bindControl(ex, topic+".info"))
		e.startGoListener(e.transport(), []messaging.Target{{Exchange: ex, Topic: topic}}, []*notify.Endpoint{goNotifyEndpoint(rec, "go", "all", notify.Filter{}, nil)})
		payload := unicodeArgs()
		e.pyNotify(p, pyReq{URL: e.s.url("kombu_compression", "gzip"), Exchange: ex, Driver: "messagingv2", Topics: []string{topic},
			PublisherID: "compute.host1", Notifications: []pyNote{{Method: "info", EventType: "interop.gzip", Payload: payload, Ctxt: fullContext()}}})
		checkCompression(t, "python's notification", capt.next(t, e.ctx(opTimeout)), true)
		n := rec.waitN(t, e.ctx(opTimeout), 1, nil)[0]
		if n.EventType != "interop.gzip" || !jsonEqual(n.Payload, payload) {
			t.Errorf("Go received %s", n)
		}
		checkNoteContext(t, n, safeContext())
	})
}

// batchNotes returns oslo's test_simple_batch notifications, and their
// event types sorted.
func batchNotes() ([]pyNote, []string) {
	notes := make([]pyNote, 205)
	want := make([]string, len(notes))
	for i := range notes {
		notes[i] = pyNote{Method: "info", EventType: fmt.Sprintf("test%03d", i), Payload: "Hello World!"}
		want[i] = notes[i].EventType
	}
	slices.Sort(want)
	return notes, want
}

// TestInteropNotifyGoToPython sends notifications with Go notifiers
// (sinks MessagingV2 and Messaging) to Python oslo.messaging listeners:
// every priority, the sanitised context, pools, NotificationFilter,
// requeues, batches and compression.
func TestInteropNotifyGoToPython(t *testing.T) {
	setup(t)
	t.Parallel()

	for _, s := range notifySinks {
		runNotifyCase(t, "priorities/"+s.name, func(t *testing.T) {
			e, p, rec := newNotifyCase(t)
			ex, topic := e.name("nex"), e.name("nprio")
			e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, Endpoints: []pyEndpoint{{Name: "all"}}})
			n := e.goNotifier(e.transport(), s.sink(), ex, "compute.host1", topic)
			ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), fullContext())
			since := time.Now()
			for i, m := range noteMethods {
				if err := goNotify(ctx, n, m, "interop."+m, notePayload(m, i)); err != nil {
					t.Fatalf("Notifier %s: %v", m, err)
				}
			}
			checkPriorities(t, rec.waitN(t, e.ctx(opTimeout), len(noteMethods), nil), "compute.host1", since)
		})
	}

	// Every key of oslo's safe list reaches Python, and nothing else.
	runNotifyCase(t, "sanitised_context", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nctx")
		e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, Endpoints: []pyEndpoint{{Name: "all"}}})
		n := e.goNotifier(e.transport(), notify.MessagingV2(), ex, "compute.host1", topic)
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), allKeysContext())
		if err := n.Info(ctx, "interop.context", nil); err != nil {
			t.Fatalf("Notifier.Info: %v", err)
		}
		got := rec.waitN(t, e.ctx(opTimeout), 1, nil)[0]
		if string(got.Payload) != "null" {
			t.Errorf("payload %s, want null", got.Payload)
		}
		checkNoteContext(t, got, allSafeContext())
	})

	// oslo's test_two_pools_three_listener, in short: each pool, and
	// the listeners without a pool, get a copy.
	runNotifyCase(t, "two_pools", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("npools")
		for _, l := range []struct{ name, pool string }{{"plain", ""}, {"pool_a", e.name("py_pool_a")}, {"pool_b", e.name("py_pool_b")}} {
			e.startPyListener(p, rec, l.name, pyReq{Exchange: ex, Topics: []string{topic}, Pool: l.pool, Endpoints: []pyEndpoint{{Name: "all"}}})
		}
		n := e.goNotifier(e.transport(), notify.MessagingV2(), ex, "compute.host1", topic)
		var want []string
		for i := range 3 {
			want = append(want, fmt.Sprintf("interop.pool.%d", i))
			if err := n.Info(e.ctx(opTimeout), want[i], i); err != nil {
				t.Fatalf("Notifier.Info: %v", err)
			}
		}
		rec.wait(t, e.ctx(opTimeout), "3 notifications on each listener", func(ns []notice, _ []batchInfo) bool {
			for _, l := range []string{"plain", "pool_a", "pool_b"} {
				if len(filterNotices(ns, byListener(l))) < 3 {
					return false
				}
			}
			return true
		})
		for _, l := range []string{"plain", "pool_a", "pool_b"} {
			if got := eventTypes(filterNotices(rec.all(), byListener(l))); !slices.Equal(got, want) {
				t.Errorf("listener %s received %v, want %v", l, got, want)
			}
		}
	})

	runNotifyCase(t, "filter", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nfilter")
		e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, Endpoints: []pyEndpoint{
			{Name: "by_event", Filter: &pyFilter{EventType: filterEvent}},
			{Name: "by_publisher", Filter: &pyFilter{PublisherID: filterPublisher}},
			{Name: "by_context", Filter: &pyFilter{Context: map[string]string{"project_id": filterProject}}},
			{Name: "by_secret", Filter: &pyFilter{Context: map[string]string{"auth_token": ".*"}}},
			{Name: "all"},
		}})
		n := e.goNotifier(e.transport(), notify.MessagingV2(), ex, "unused", topic)
		for _, fc := range filterCases {
			ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), fc.context())
			if err := n.Prepare(notify.PublisherID(fc.publisherID)).Info(ctx, fc.eventType, "x"); err != nil {
				t.Fatalf("Notifier.Info: %v", err)
			}
		}
		rec.waitN(t, e.ctx(opTimeout), len(filterCases), func(n notice) bool { return n.Endpoint == "all" })
		checkFilters(t, rec, "py")
	})

	// The endpoint answers REQUEUE the first time it sees each
	// notification: with allow_requeue the notification comes back and
	// is handled; without, it is acknowledged and never comes back.
	for _, allow := range []bool{true, false} {
		name := "requeue_allowed"
		if !allow {
			name = "requeue_not_allowed"
		}
		runNotifyCase(t, name, func(t *testing.T) {
			e, p, rec := newNotifyCase(t)
			ex, topic := e.name("nex"), e.name("nrequeue")
			e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, AllowRequeue: allow,
				Endpoints: []pyEndpoint{{Name: "once", RequeueOnce: true}}})
			n := e.goNotifier(e.transport(), notify.MessagingV2(), ex, "compute.host1", topic)
			const count = 2
			for i := range count {
				if err := n.Info(e.ctx(opTimeout), fmt.Sprintf("interop.requeue.%d", i), i); err != nil {
					t.Fatalf("Notifier.Info: %v", err)
				}
			}
			if allow {
				rec.waitN(t, e.ctx(opTimeout), count, func(nt notice) bool { return !nt.Requeued })
				rec.expectNoMore(t, quietWindow, "received again after being handled")
				checkRequeuedOnce(t, rec.all(), count)
			} else {
				rec.waitN(t, e.ctx(opTimeout), count, nil)
				rec.expectNoMore(t, quietWindow, "received again although requeues are not allowed")
				if got := rec.all(); len(got) != count {
					t.Errorf("received %d deliveries, want %d:\n%s", len(got), count, describeNotices(got))
				}
			}
		})
	}

	// oslo's test_simple_batch with a Python batch listener
	// (batch_size=100, batch_timeout=2); see the Python to Go case.
	runNotifyCase(t, "batch_205", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("nbatch")
		n := e.goNotifier(e.transport(), notify.MessagingV2(), ex, "compute.host1", topic)
		notes, want := batchNotes()
		for _, nt := range notes {
			if err := n.Info(e.ctx(opTimeout), nt.EventType, nt.Payload); err != nil {
				t.Fatalf("Notifier.Info: %v", err)
			}
		}
		e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, BatchSize: 100, BatchTimeout: 2,
			Endpoints: []pyEndpoint{{Name: "batch"}}})
		rec.waitN(t, e.ctx(opTimeout), len(want), nil)
		checkBatches(t, rec, []int{100, 100, 5}, want)
	})

	runNotifyCase(t, "compression", func(t *testing.T) {
		e, p, rec := newNotifyCase(t)
		ex, topic := e.name("nex"), e.name("ngzip")
		capt := e.newCapture(bindControl(ex, topic+".info"))
		e.startPyListener(p, rec, "py", pyReq{Exchange: ex, Topics: []string{topic}, Endpoints: []pyEndpoint{{Name: "all"}}})
		n := e.goNotifier(e.transport("kombu_compression", "gzip"), notify.MessagingV2(), ex, "compute.host1", topic)
		payload := unicodeArgs()
		if err := n.Info(messaging.NewOutgoingContext(e.ctx(opTimeout), fullContext()), "interop.gzip", payload); err != nil {
			t.Fatalf("Notifier.Info: %v", err)
		}
		checkCompression(t, "Go's notification", capt.next(t, e.ctx(opTimeout)), true)
		got := rec.waitN(t, e.ctx(opTimeout), 1, nil)[0]
		if got.EventType != "interop.gzip" || !jsonEqual(got.Payload, payload) {
			t.Errorf("Python received %s", got)
		}
		checkNoteContext(t, got, safeContext())
	})
}
