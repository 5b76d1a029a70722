package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// allPriorities are oslo's notification priorities, as listeners name
// them.
var allPriorities = []string{"audit", "debug", "info", "warn", "error", "critical", "sample"}

// notifyConn opens a connection and returns it as a driver.NotifyConn,
// or skips the test if the driver does not implement it.
func (s *suite) notifyConn() driver.NotifyConn {
	s.t.Helper()
	c, ok := s.open().(driver.NotifyConn)
	if !ok {
		s.t.Skip("the driver does not implement driver.NotifyConn")
	}
	return c
}

// naddr returns the address notifications are sent to: topic on the
// test's exchange.
func (s *suite) naddr(topic string) driver.Address {
	return driver.Address{Exchange: s.exchange, Topic: topic}
}

// target returns the notification target of topic on the test's
// exchange, for priorities.
func (s *suite) target(topic string, priorities ...string) driver.NotifyTarget {
	return driver.NotifyTarget{Exchange: s.exchange, Topic: topic, Priorities: priorities}
}

// listenNotifications starts a notification listener on c that is closed
// when the test ends.
func (s *suite) listenNotifications(c driver.NotifyConn, pool string, opts driver.ListenOptions, targets ...driver.NotifyTarget) driver.NotifyListener {
	s.t.Helper()
	l, err := c.ListenNotifications(s.ctx(waitTimeout), targets, pool, opts)
	if err != nil {
		s.t.Fatalf("ListenNotifications(%+v, pool %q) = %v", targets, pool, err)
	}
	s.t.Cleanup(func() {
		if err := l.Close(); err != nil {
			s.t.Errorf("NotifyListener.Close() = %v", err)
		}
	})
	return l
}

// newNotification returns a notification of priority (upper case, as on
// the wire) whose payload is {"seq": n}, with every id set.
func newNotification(priority string, n int) *driver.Notification {
	return &driver.Notification{
		MessageID:   wire.NewUUID(),
		PublisherID: "drivertest.host1",
		EventType:   "drivertest.event",
		Priority:    strings.ToUpper(priority),
		Payload:     seqArgs(n),
		Timestamp:   time.Now().UTC().Format("2006-01-02 15:04:05.000000"),
		Context:     map[string]any{"user_id": "u1"},
		UniqueID:    wire.NewID(),
	}
}

// notify sends n to addr and fails the test if it does not succeed.
func (s *suite) notify(c driver.NotifyConn, addr driver.Address, n *driver.Notification, envelope bool) {
	s.t.Helper()
	if err := c.Notify(s.ctx(waitTimeout), addr, n, driver.NotifyOptions{Envelope: envelope}); err != nil {
		s.t.Fatalf("Notify(%s, %s %s) = %v", describe(addr), n.Priority, n.EventType, err)
	}
}

// nnext returns the next notification that reaches l, failing the test
// if none arrives in time.
func (s *suite) nnext(l driver.NotifyListener) driver.NotifyDelivery {
	s.t.Helper()
	d, err := l.Next(s.ctx(waitTimeout))
	if err != nil {
		s.t.Fatalf("NotifyListener.Next() = %v", err)
	}
	return d
}

// ack acknowledges d and fails the test if that does not succeed.
func (s *suite) ack(d driver.NotifyDelivery) {
	s.t.Helper()
	if err := d.Ack(); err != nil {
		s.t.Errorf("Ack() = %v", err)
	}
}

// nseq returns the "seq" of a notification made by newNotification, or
// -1.
func nseq(t *testing.T, d driver.NotifyDelivery) int {
	t.Helper()
	var p struct {
		Seq *int `json:"seq"`
	}
	if err := json.Unmarshal(d.Notification().Payload, &p); err != nil || p.Seq == nil {
		t.Errorf("notification payload %s: no seq (%v)", show(d.Notification().Payload), err)
		return -1
	}
	return *p.Seq
}

// nseqs returns the sorted seqs of ds.
func nseqs(t *testing.T, ds []driver.NotifyDelivery) []int {
	t.Helper()
	out := make([]int, 0, len(ds))
	for _, d := range ds {
		out = append(out, nseq(t, d))
	}
	sort.Ints(out)
	return out
}

// seqRange returns [0, n).
func seqRange(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// receiveNotifications takes the notifications that reach the listeners
// ls until want of them arrived in total, and then for quietWait more,
// acknowledging each at once, and returns them by listener. It fails
// the test if fewer arrive within waitTimeout.
func (s *suite) receiveNotifications(ls []driver.NotifyListener, want int) [][]driver.NotifyDelivery {
	s.t.Helper()
	return receiveFrom(s, "notifications", ls, want, func(i int, d driver.NotifyDelivery) {
		if err := d.Ack(); err != nil {
			s.t.Errorf("listener %d: Ack() = %v", i, err)
		}
	})
}

// expectNone fails the test if a notification reaches l within
// quietWait.
func (s *suite) expectNone(l driver.NotifyListener, what string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), quietWait)
	defer cancel()
	if d, err := l.Next(ctx); err == nil {
		s.t.Errorf("%s: got notification %s", what, show(d.Notification().Payload))
	} else if !errors.Is(err, context.DeadlineExceeded) {
		s.t.Errorf("%s: Next() = %v, want %v", what, err, context.DeadlineExceeded)
	}
}

// testNotifyRoundTrip checks that every field of a notification arrives
// unchanged, in both formats, for every priority and payload kind.
func testNotifyRoundTrip(s *suite) {
	t := s.t
	c := s.notifyConn()
	l := s.listenNotifications(c, "", driver.ListenOptions{}, s.target(s.topic, allPriorities...))
	payloads := []string{`null`, `false`, `true`, `0`, `-2.5`, `12345678901234567890`, `""`,
		`"é✓😀 <&> \"q\"\n\u0000"`, `[]`, `{}`, `[1, "two", null, {"k": [true]}]`,
		`{"id": 7, "name": "vm", "nested": {"a": {"b": [1.5, -3]}}, "ключ": "значение"}`}
	ctxt := map[string]any{"user_id": "u1", "project_id": "p-é", "is_admin": true, "roles": []any{"admin", "member"},
		"n": 42, "f": 1.5, "none": nil, "dict": map[string]any{"k": "v", "l": []any{1, "x"}}, "emoji": "😀"}
	sent := map[string]*driver.Notification{}
	for i, p := range payloads {
		n := &driver.Notification{
			MessageID:   wire.NewUUID(),
			PublisherID: "compute.hôte-" + fmt.Sprint(i),
			EventType:   "compute.instance.créé",
			Priority:    strings.ToUpper(allPriorities[i%len(allPriorities)]),
			Payload:     json.RawMessage(p),
			Timestamp:   "2026-11-21 04:49:35.023246",
			Context:     ctxt,
			UniqueID:    wire.NewID(),
		}
		if i%3 == 0 {
			n.Timestamp = "2026-11-21 04:49:35"
		}
		sent[n.UniqueID] = n
		s.notify(c, s.naddr(s.topic), n, i%2 == 0)
	}
	got := s.receiveNotifications([]driver.NotifyListener{l}, len(payloads))[0]
	if len(got) != len(payloads) {
		t.Fatalf("received %d notifications, want %d", len(got), len(payloads))
	}
	for _, d := range got {
		g := d.Notification()
		w, ok := sent[g.UniqueID]
		if !ok {
			t.Errorf("received a notification with unknown _unique_id %q: %+v", g.UniqueID, g)
			continue
		}
		delete(sent, g.UniqueID)
		if g.MessageID != w.MessageID || g.PublisherID != w.PublisherID || g.EventType != w.EventType ||
			g.Priority != w.Priority || g.Timestamp != w.Timestamp {
			t.Errorf("received %+v, want %+v", *g, *w)
		}
		if string(w.Payload) == "null" {
			if g.Payload != nil && !jsonEqual(g.Payload, []byte("null")) {
				t.Errorf("payload %s, want null", show(g.Payload))
			}
		} else if !jsonEqual(g.Payload, w.Payload) {
			t.Errorf("payload %s, want %s", show(g.Payload), w.Payload)
		}
		if gc, wc := jsonOf(t, g.Context), jsonOf(t, w.Context); !jsonEqual(gc, wc) {
			t.Errorf("context %s, want %s", gc, wc)
		}
	}
}

// testNotifyPriorities checks that a notification goes to the queue of
// its priority only, which keeps it until a listener of that priority
// comes.
func testNotifyPriorities(s *suite) {
	t := s.t
	c := s.notifyConn()
	info := s.listenNotifications(c, "", driver.ListenOptions{}, s.target(s.topic, "info"))
	errs := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "error"))
	for i, p := range []string{"INFO", "ERROR", "INFO", "WARN", "ERROR", "INFO"} {
		s.notify(c, s.naddr(s.topic), newNotification(p, i), i%2 == 0)
	}
	got := s.receiveNotifications([]driver.NotifyListener{info, errs}, 5)
	if seqs := nseqs(t, got[0]); fmt.Sprint(seqs) != "[0 2 5]" {
		t.Errorf("the info listener received %v, want the info notifications [0 2 5]", seqs)
	}
	if seqs := nseqs(t, got[1]); fmt.Sprint(seqs) != "[1 4]" {
		t.Errorf("the error listener received %v, want the error notifications [1 4]", seqs)
	}
	for _, ds := range got {
		for _, d := range ds {
			if p := d.Notification().Priority; p != "INFO" && p != "ERROR" {
				t.Errorf("received priority %q", p)
			}
		}
	}
	// The warn notification waited in its queue.
	warn := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "warn"))
	if seqs := nseqs(t, s.receiveNotifications([]driver.NotifyListener{warn}, 1)[0]); fmt.Sprint(seqs) != "[3]" {
		t.Errorf("a later warn listener received %v, want the warn notification [3]", seqs)
	}
}

// testNotifyBeforeListener checks that notifications sent before any
// listener exists wait for the first one: the notifier declares their
// queue.
func testNotifyBeforeListener(s *suite) {
	t := s.t
	c := s.notifyConn()
	const n = 6
	for i := range n {
		s.notify(c, s.naddr(s.topic), newNotification("info", i), i%2 == 1)
	}
	l := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info"))
	got := s.receiveNotifications([]driver.NotifyListener{l}, n)[0]
	var order []int
	for _, d := range got {
		order = append(order, nseq(t, d))
	}
	if fmt.Sprint(order) != fmt.Sprint(seqRange(n)) {
		t.Errorf("the first listener received %v, want the notifications sent before it, in order: %v", order, seqRange(n))
	}
}

// testNotifySharedQueue checks that listeners without a pool share their
// queue: each gets some, none gets one twice, none is lost.
func testNotifySharedQueue(s *suite) {
	t := s.t
	const n = 20
	ls := []driver.NotifyListener{
		s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info")),
		s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info")),
	}
	c := s.notifyConn()
	for i := range n {
		s.notify(c, s.naddr(s.topic), newNotification("info", i), true)
	}
	got := s.receiveNotifications(ls, n)
	for i, ds := range got {
		if len(ds) == 0 {
			t.Errorf("listener %d received nothing: the queue's listeners must share it", i)
		}
	}
	if all := nseqs(t, append(got[0], got[1]...)); fmt.Sprint(all) != fmt.Sprint(seqRange(n)) {
		t.Errorf("the listeners received %v together, want %v, each once", all, seqRange(n))
	}
}

// testNotifyPools checks that every pool gets its own copy of each
// notification, as does the queue of the listeners without a pool, and
// that the listeners of a pool share its copy.
func testNotifyPools(s *suite) {
	t := s.t
	const n = 10
	poolA, poolB := s.name("poolA"), s.name("poolB")
	tg := s.target(s.topic, "info")
	a := []driver.NotifyListener{
		s.listenNotifications(s.notifyConn(), poolA, driver.ListenOptions{}, tg),
		s.listenNotifications(s.notifyConn(), poolA, driver.ListenOptions{}, tg),
	}
	b := s.listenNotifications(s.notifyConn(), poolB, driver.ListenOptions{}, tg)
	plain := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, tg)
	c := s.notifyConn()
	for i := range n {
		s.notify(c, s.naddr(s.topic), newNotification("info", i), i%2 == 0)
	}
	got := s.receiveNotifications([]driver.NotifyListener{a[0], a[1], b, plain}, 3*n)
	for i := range a {
		if len(got[i]) == 0 {
			t.Errorf("listener %d of pool A received nothing: the listeners of a pool must share it", i)
		}
	}
	want := fmt.Sprint(seqRange(n))
	if seqs := nseqs(t, append(got[0], got[1]...)); fmt.Sprint(seqs) != want {
		t.Errorf("pool A received %v, want %v, each once", seqs, want)
	}
	if seqs := nseqs(t, got[2]); fmt.Sprint(seqs) != want {
		t.Errorf("pool B received %v, want %v, each once", seqs, want)
	}
	if seqs := nseqs(t, got[3]); fmt.Sprint(seqs) != want {
		t.Errorf("the listener without a pool received %v, want %v, each once", seqs, want)
	}
}

// testNotifyTopics checks that topics are independent, and that one
// listener can consume several targets on several exchanges, with and
// without a pool.
func testNotifyTopics(s *suite) {
	t := s.t
	other := s.name("topic")
	ex2 := s.name("ex")
	t2 := driver.NotifyTarget{Exchange: ex2, Topic: s.name("topic"), Priorities: []string{"info", "error"}}
	only := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info"))
	multi := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(other, "info"), t2)
	pool := s.listenNotifications(s.notifyConn(), s.name("pool"), driver.ListenOptions{}, s.target(other, "info"), t2)
	c := s.notifyConn()
	s.notify(c, s.naddr(s.topic), newNotification("info", 0), true)
	s.notify(c, s.naddr(other), newNotification("info", 1), false)
	s.notify(c, driver.Address{Exchange: ex2, Topic: t2.Topic}, newNotification("info", 2), true)
	s.notify(c, driver.Address{Exchange: ex2, Topic: t2.Topic}, newNotification("error", 3), false)
	s.notify(c, driver.Address{Exchange: ex2, Topic: t2.Topic}, newNotification("warn", 4), true)
	got := s.receiveNotifications([]driver.NotifyListener{only, multi, pool}, 7)
	if seqs := nseqs(t, got[0]); fmt.Sprint(seqs) != "[0]" {
		t.Errorf("the listener of %s received %v, want [0]", s.topic, seqs)
	}
	if seqs := nseqs(t, got[1]); fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("the listener of two targets received %v, want [1 2 3]", seqs)
	}
	if seqs := nseqs(t, got[2]); fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("the pool listener of two targets received %v, want [1 2 3]", seqs)
	}
}

// testNotifyRequeue checks that a requeued notification is delivered
// again, to the same listener or another, and then acknowledged once.
func testNotifyRequeue(s *suite) {
	t := s.t
	ls := []driver.NotifyListener{
		s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info")),
		s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info")),
	}
	got := s.collect(ls)
	c := s.notifyConn()
	n := newNotification("info", 7)
	s.notify(c, s.naddr(s.topic), n, true)
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	var first driver.NotifyDelivery
	select {
	case first = <-got:
	case <-timeout.C:
		t.Fatalf("no notification within %v", waitTimeout)
	}
	if err := first.Requeue(); err != nil {
		t.Fatalf("Requeue() = %v", err)
	}
	if err := first.Ack(); err == nil {
		t.Error("Ack() after Requeue() = nil, want an error")
	}
	var again driver.NotifyDelivery
	select {
	case again = <-got:
	case <-timeout.C:
		t.Fatalf("the requeued notification was not delivered again within %v", waitTimeout)
	}
	if g := again.Notification(); g.UniqueID != n.UniqueID || g.MessageID != n.MessageID || nseq(t, again) != 7 {
		t.Errorf("redelivered %+v, want the requeued notification %+v", *g, *n)
	}
	s.ack(again)
	quiet := time.NewTimer(quietWait)
	defer quiet.Stop()
	select {
	case d := <-got:
		t.Errorf("the notification was delivered a third time, after its Ack: %+v", *d.Notification())
	case <-quiet.C:
	}
}

// collect returns the notifications that reach the listeners ls, without
// settling them, until the test ends.
func (s *suite) collect(ls []driver.NotifyListener) <-chan driver.NotifyDelivery {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan driver.NotifyDelivery)
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Go(func() {
			for {
				d, err := l.Next(ctx)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, driver.ErrClosed) {
						s.t.Errorf("listener %d: Next() = %v", i, err)
					}
					return
				}
				select {
				case ch <- d:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	s.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ch
}

// testNotifyCloseRedelivers checks that the notifications a closed
// listener had not acknowledged, returned by Next or not, go to the next
// listener, and that the deliveries of a closed listener can no longer
// be settled.
func testNotifyCloseRedelivers(s *suite) {
	t := s.t
	const n = 4
	c := s.notifyConn()
	l1, err := c.ListenNotifications(s.ctx(waitTimeout), []driver.NotifyTarget{s.target(s.topic, "info")}, "", driver.ListenOptions{})
	if err != nil {
		t.Fatalf("ListenNotifications() = %v", err)
	}
	for i := range n {
		s.notify(c, s.naddr(s.topic), newNotification("info", i), true)
	}
	taken := []driver.NotifyDelivery{s.nnext(l1), s.nnext(l1)}
	s.ack(taken[0])
	if err := l1.Close(); err != nil {
		t.Fatalf("NotifyListener.Close() = %v", err)
	}
	if err := l1.Close(); err != nil {
		t.Errorf("second NotifyListener.Close() = %v", err)
	}
	if err := taken[1].Ack(); err == nil {
		t.Error("Ack() of a delivery of a closed listener = nil, want an error")
	}
	if err := taken[1].Requeue(); err == nil {
		t.Error("Requeue() of a delivery of a closed listener = nil, want an error")
	}
	l2 := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info"))
	got := s.receiveNotifications([]driver.NotifyListener{l2}, n-1)[0]
	if seqs := nseqs(t, got); fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("the next listener received %v, want the unacknowledged [1 2 3], each once", seqs)
	}
}

// testNotifySettleOnce checks that a delivery is settled once: a second
// Ack or Requeue fails.
func testNotifySettleOnce(s *suite) {
	t := s.t
	c := s.notifyConn()
	l := s.listenNotifications(c, "", driver.ListenOptions{}, s.target(s.topic, "info"))
	s.notify(c, s.naddr(s.topic), newNotification("info", 0), true)
	d := s.nnext(l)
	s.ack(d)
	if err := d.Ack(); err == nil {
		t.Error("second Ack() = nil, want an error")
	}
	if err := d.Requeue(); err == nil {
		t.Error("Requeue() after Ack() = nil, want an error")
	}
	s.notify(c, s.naddr(s.topic), newNotification("info", 1), false)
	d = s.nnext(l)
	if err := d.Requeue(); err != nil {
		t.Fatalf("Requeue() = %v", err)
	}
	if err := d.Requeue(); err == nil {
		t.Error("second Requeue() = nil, want an error")
	}
	if err := d.Ack(); err == nil {
		t.Error("Ack() after Requeue() = nil, want an error")
	}
	again := s.nnext(l)
	if nseq(t, again) != 1 {
		t.Errorf("received %s after Requeue, want the requeued notification", show(again.Notification().Payload))
	}
	s.ack(again)
	s.expectNone(l, "after the last Ack")
}

// testNotifyPrefetch checks that notifications returned by Next count
// against the prefetch until they are settled.
func testNotifyPrefetch(s *suite) {
	t := s.t
	c := s.notifyConn()
	l := s.listenNotifications(c, "", driver.ListenOptions{Prefetch: 2}, s.target(s.topic, "info"))
	for i := range 4 {
		s.notify(c, s.naddr(s.topic), newNotification("info", i), true)
	}
	d0, d1 := s.nnext(l), s.nnext(l)
	s.expectNone(l, "with a prefetch of 2 and 2 notifications unacknowledged")
	s.ack(d0)
	d2 := s.nnext(l)
	if err := d1.Requeue(); err != nil {
		t.Fatal(err)
	}
	d3 := s.nnext(l)
	s.ack(d2)
	s.ack(d3)
	d4 := s.nnext(l)
	s.ack(d4)
	got := []int{nseq(t, d0), nseq(t, d1), nseq(t, d2), nseq(t, d3), nseq(t, d4)}
	want := []int{0, 1, 2, 3, got[1]}
	slices.Sort(want)
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, want) {
		t.Errorf("received %v, want each of [0 1 2 3] once and the requeued %d again", got, got[1])
	}
	s.expectNone(l, "after every notification was acknowledged")
}

// testNotifyMalformed checks that messages that are not oslo
// notifications are dropped, never returned.
func testNotifyMalformed(s *suite) {
	if s.cfg.Inject == nil {
		s.t.Skip("Config.Inject is not set: the driver cannot be fed malformed messages")
	}
	t := s.t
	c := s.notifyConn()
	l := s.listenNotifications(c, "", driver.ListenOptions{}, s.target(s.topic, "info"))
	key := s.topic + ".info"
	for _, body := range []string{`not json`, `[1, 2]`, `"a string"`, `{"oslo.version": "2.1", "oslo.message": "{}"}`,
		`{"oslo.version": "2.0", "oslo.message": "[]"}`, `{"priority": 1}`, `{"event_type": ["x"]}`} {
		s.cfg.Inject(t, s.exchange, key, []byte(body))
	}
	good := newNotification("info", 1)
	s.notify(c, s.naddr(s.topic), good, true)
	d := s.nnext(l)
	if g := d.Notification(); g.UniqueID != good.UniqueID {
		t.Errorf("Next() = %+v, want the only valid notification", *g)
	}
	s.ack(d)
	s.expectNone(l, "after the malformed messages")
}

// testNotifyListenerClose checks that Next honours its context and that
// Close ends a blocked Next with ErrClosed.
func testNotifyListenerClose(s *suite) {
	l := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, s.target(s.topic, "info")) // closed again by the cleanup
	checkNextAndClose(s, l)
}

// testNotifyClosedConn checks the notification operations on a closed
// connection.
func testNotifyClosedConn(s *suite) {
	t := s.t
	c := s.notifyConn()
	ctx := s.ctx(promptly)
	tg := []driver.NotifyTarget{s.target(s.topic, "info")}
	l, err := c.ListenNotifications(ctx, tg, "", driver.ListenOptions{})
	if err != nil {
		t.Fatalf("ListenNotifications() = %v", err)
	}
	s.notify(c, s.naddr(s.topic), newNotification("info", 0), true)
	d := s.nnext(l)
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := l.Next(ctx); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Next() on a listener of a closed connection = %v, want %v", err, driver.ErrClosed)
	}
	if err := l.Close(); err != nil {
		t.Errorf("NotifyListener.Close() after Conn.Close = %v", err)
	}
	if err := d.Ack(); err == nil {
		t.Error("Ack() after Conn.Close = nil, want an error")
	}
	if err := c.Notify(ctx, s.naddr(s.topic), newNotification("info", 1), driver.NotifyOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Notify() after Close = %v, want %v", err, driver.ErrClosed)
	}
	if _, err := c.ListenNotifications(ctx, tg, "", driver.ListenOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("ListenNotifications() after Close = %v, want %v", err, driver.ErrClosed)
	}
	// The unacknowledged notification went back to its queue.
	l2 := s.listenNotifications(s.notifyConn(), "", driver.ListenOptions{}, tg[0])
	if seqs := nseqs(t, s.receiveNotifications([]driver.NotifyListener{l2}, 1)[0]); fmt.Sprint(seqs) != "[0]" {
		t.Errorf("the next listener received %v, want the notification left unacknowledged [0]", seqs)
	}
}

// testNotifyInvalid checks that Notify and ListenNotifications refuse
// what they cannot route.
func testNotifyInvalid(s *suite) {
	t := s.t
	c := s.notifyConn()
	ctx := s.ctx(waitTimeout)
	n := newNotification("info", 0)
	for _, addr := range []driver.Address{
		{Exchange: s.exchange, Topic: s.topic, Server: "srv"},
		{Exchange: s.exchange, Topic: s.topic, Fanout: true},
		{Exchange: s.exchange},
	} {
		if err := c.Notify(ctx, addr, n, driver.NotifyOptions{}); err == nil {
			t.Errorf("Notify(%+v) = nil, want an error", addr)
		}
	}
	if err := c.Notify(ctx, s.naddr(s.topic), nil, driver.NotifyOptions{}); err == nil {
		t.Error("Notify(nil) = nil, want an error")
	}
	bad := newNotification("info", 0)
	bad.Payload = json.RawMessage(`{"unterminated": `)
	if err := c.Notify(ctx, s.naddr(s.topic), bad, driver.NotifyOptions{}); err == nil {
		t.Error("Notify(payload that is not JSON) = nil, want an error")
	}
	for _, tc := range []struct {
		what    string
		targets []driver.NotifyTarget
		opts    driver.ListenOptions
	}{
		{"no targets", nil, driver.ListenOptions{}},
		{"no topic", []driver.NotifyTarget{{Exchange: s.exchange, Priorities: []string{"info"}}}, driver.ListenOptions{}},
		{"no priorities", []driver.NotifyTarget{s.target(s.topic)}, driver.ListenOptions{}},
		{"negative prefetch", []driver.NotifyTarget{s.target(s.topic, "info")}, driver.ListenOptions{Prefetch: -1}},
	} {
		if l, err := c.ListenNotifications(ctx, tc.targets, "", tc.opts); err == nil {
			_ = l.Close()
			t.Errorf("ListenNotifications(%s) = nil error, want an error", tc.what)
		}
	}
}
