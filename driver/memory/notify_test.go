package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/wire"
)

// Notification helpers, for synctest bubbles.

func note(priority string, n int) *driver.Notification {
	return &driver.Notification{MessageID: wire.NewUUID(), PublisherID: "p", EventType: "e", Priority: priority,
		Payload: json.RawMessage(fmt.Sprintf(`{"seq": %d}`, n)), Timestamp: "2026-11-21 04:49:35", UniqueID: wire.NewID()}
}

func target(topic string, priorities ...string) driver.NotifyTarget {
	return driver.NotifyTarget{Exchange: exchange, Topic: topic, Priorities: priorities}
}

func sendNote(t *testing.T, c driver.NotifyConn, topic string, n *driver.Notification) {
	t.Helper()
	if err := c.Notify(t.Context(), driver.Address{Exchange: exchange, Topic: topic}, n, driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatalf("Notify(%s, %s) = %v", topic, n.Priority, err)
	}
}

func listenNotes(t *testing.T, c driver.NotifyConn, pool string, prefetch int, targets ...driver.NotifyTarget) driver.NotifyListener {
	t.Helper()
	l, err := c.ListenNotifications(t.Context(), targets, pool, driver.ListenOptions{Prefetch: prefetch})
	if err != nil {
		t.Fatalf("ListenNotifications = %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func noteSeq(t *testing.T, d driver.NotifyDelivery) int {
	t.Helper()
	var p struct {
		Seq int `json:"seq"`
	}
	if err := json.Unmarshal(d.Notification().Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", d.Notification().Payload, err)
	}
	return p.Seq
}

// takeNotes returns the deliveries l holds, in order, waiting a second
// (of bubble time) for each, and acknowledges them if ack is set.
func takeNotes(t *testing.T, l driver.NotifyListener, ack bool) ([]int, []driver.NotifyDelivery) {
	t.Helper()
	var seqs []int
	var ds []driver.NotifyDelivery
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		d, err := l.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return seqs, ds
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		if ack {
			if err := d.Ack(); err != nil {
				t.Fatalf("Ack() = %v", err)
			}
		}
		seqs = append(seqs, noteSeq(t, d))
		ds = append(ds, d)
	}
}

// TestNotifyRoundRobinAndRequeue checks the exact order of deliveries:
// round robin between the listeners of a queue, and a requeued
// notification going back to the front of its queue for the next
// listener in turn.
func TestNotifyRoundRobinAndRequeue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l1 := listenNotes(t, conn(t, b), "", 1, target("n", "info"))
		l2 := listenNotes(t, conn(t, b), "", 1, target("n", "info"))
		for i := range 4 {
			sendNote(t, c, "n", note("INFO", i))
		}
		// Prefetch 1: l1 holds 0, l2 holds 1, 2 and 3 wait in the queue.
		d0, d1 := nextNote(t, l1), nextNote(t, l2)
		if noteSeq(t, d0) != 0 || noteSeq(t, d1) != 1 {
			t.Fatalf("got %d and %d, want 0 and 1", noteSeq(t, d0), noteSeq(t, d1))
		}
		// Requeued, 0 goes back in front of 2 and 3, to l1 whose turn it
		// is and which has room again.
		if err := d0.Requeue(); err != nil {
			t.Fatal(err)
		}
		again := nextNote(t, l1)
		if noteSeq(t, again) != 0 || again.Notification().UniqueID != d0.Notification().UniqueID {
			t.Errorf("after Requeue l1 got %d, want 0 again", noteSeq(t, again))
		}
		for _, d := range []driver.NotifyDelivery{again, d1} {
			if err := d.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		s1, _ := takeNotes(t, l1, true)
		s2, _ := takeNotes(t, l2, true)
		if fmt.Sprint(s1, s2) != "[2] [3]" {
			t.Errorf("then l1 got %v and l2 %v, want [2] and [3]", s1, s2)
		}
	})
}

func nextNote(t *testing.T, l driver.NotifyListener) driver.NotifyDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	d, err := l.Next(ctx)
	if err != nil {
		t.Fatalf("Next() = %v", err)
	}
	return d
}

// TestNotifyCloseOrder checks that a closing listener returns, in order,
// the notifications Next returned and those waiting for Next, in front of
// what its queue still holds.
func TestNotifyCloseOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l1 := listenNotes(t, conn(t, b), "", 4, target("n", "info"))
		for i := range 6 {
			sendNote(t, c, "n", note("INFO", i))
		}
		d0, d1 := nextNote(t, l1), nextNote(t, l1)
		if err := d0.Ack(); err != nil {
			t.Fatal(err)
		}
		// l1 holds 1 (returned) and 2, 3 (waiting); 4 and 5 are queued.
		if err := l1.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d1.Ack(); !errors.Is(err, driver.ErrClosed) {
			t.Errorf("Ack() after the listener closed = %v, want %v", err, driver.ErrClosed)
		}
		l2 := listenNotes(t, conn(t, b), "", 0, target("n", "info"))
		if got, _ := takeNotes(t, l2, true); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
			t.Errorf("the next listener got %v, want [1 2 3 4 5]", got)
		}
	})
}

// TestNotifyPoolsPersist checks that a pool queue and its bindings
// outlive the pool's listeners, and that a pool queue is shared by the
// exchanges it is bound on.
func TestNotifyPoolsPersist(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		other := driver.NotifyTarget{Exchange: "other", Topic: "n2", Priorities: []string{"error"}}
		l := listenNotes(t, conn(t, b), "pool", 0, target("n", "info"), other)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		sendNote(t, c, "n", note("INFO", 0))
		if err := c.Notify(t.Context(), driver.Address{Exchange: "other", Topic: "n2"}, note("ERROR", 1), driver.NotifyOptions{}); err != nil {
			t.Fatal(err)
		}
		sendNote(t, c, "n", note("WARN", 2)) // not bound
		// A listener of the pool on one target only still gets all
		// that the pool queue holds.
		l2 := listenNotes(t, conn(t, b), "pool", 0, target("n", "info"))
		if got, _ := takeNotes(t, l2, true); !slices.Equal(got, []int{0, 1}) {
			t.Errorf("the pool listener got %v, want [0 1]", got)
		}
		plain := listenNotes(t, conn(t, b), "", 0, target("n", "info", "warn"))
		if got, _ := takeNotes(t, plain, true); !slices.Equal(got, []int{0, 2}) {
			t.Errorf("the unpooled listener got %v, want [0 2]", got)
		}
	})
}

// TestNotifyDoesNotModify checks that Notify fills in an empty
// _unique_id in what it sends only, and routes by the lower-cased
// priority.
func TestNotifyDoesNotModify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l := listenNotes(t, c, "", 0, target("n", "critical"))
		n := note("CrItIcAl", 0)
		n.UniqueID = ""
		sendNote(t, c, "n", n)
		d := nextNote(t, l)
		if n.UniqueID != "" || len(d.Notification().UniqueID) != 32 || d.Notification().Priority != "CrItIcAl" {
			t.Errorf("sent _unique_id %q, received %+v", n.UniqueID, *d.Notification())
		}
		d.Notification().EventType = "changed" // the caller's to modify
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNotifyConcurrentNext checks that concurrent Next calls on one
// listener get different notifications, with -race.
func TestNotifyConcurrentNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l := listenNotes(t, c, "", 3, target("n", "info"))
		const n = 30
		var mu sync.Mutex
		var got []int
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					ctx, cancel := context.WithTimeout(t.Context(), time.Second)
					d, err := l.Next(ctx)
					cancel()
					if err != nil {
						return
					}
					mu.Lock()
					got = append(got, noteSeq(t, d))
					mu.Unlock()
					if err := d.Ack(); err != nil {
						t.Errorf("Ack() = %v", err)
					}
				}
			})
		}
		for i := range n {
			sendNote(t, c, "n", note("INFO", i))
		}
		wg.Wait()
		slices.Sort(got)
		if len(got) != n || got[0] != 0 || got[n-1] != n-1 || len(slices.Compact(got)) != n {
			t.Errorf("got %v, want each of 0..%d once", got, n-1)
		}
	})
}

// TestNotifyErrors checks the arguments that Notify and
// ListenNotifications refuse.
func TestNotifyErrors(t *testing.T) {
	b := memory.NewBroker()
	c := b.Conn()
	defer c.Close()
	ctx := t.Context()
	if err := c.Notify(ctx, driver.Address{Exchange: exchange, Topic: "n"}, &driver.Notification{}, driver.NotifyOptions{}); err == nil {
		t.Error("Notify without a priority = nil")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Notify(cctx, driver.Address{Exchange: exchange, Topic: "n"}, note("INFO", 0), driver.NotifyOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Notify(cancelled ctx) = %v", err)
	}
	if _, err := c.ListenNotifications(cctx, []driver.NotifyTarget{target("n", "info")}, "", driver.ListenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ListenNotifications(cancelled ctx) = %v", err)
	}
	if _, err := c.ListenNotifications(ctx, []driver.NotifyTarget{target("n", "info")}, "", driver.ListenOptions{Prefetch: -1}); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("ListenNotifications(prefetch -1) = %v, want %v", err, messaging.ErrInvalidOption)
	}
	for _, tg := range []driver.NotifyTarget{{Topic: "n", Priorities: []string{"info"}}, target("n", "info", "")} {
		if _, err := c.ListenNotifications(ctx, []driver.NotifyTarget{tg}, "", driver.ListenOptions{}); err == nil {
			t.Errorf("ListenNotifications(%+v) = nil error", tg)
		}
	}
}
