package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/wire"
)

// bubbleTransport returns a transport on a broker private to the
// current synctest bubble.
func bubbleTransport() *messaging.Transport {
	return messaging.NewTransport(memory.NewBroker().Conn())
}

// run serves l in the bubble; served yields Serve's result.
func run(t *testing.T, l *Listener) (served <-chan error) {
	if err := l.Listen(context.Background()); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- l.Serve(context.Background()) }()
	synctest.Wait()
	return errc
}

// shutdown shuts l down and checks Serve's result.
func shutdown(t *testing.T, l *Listener, served <-chan error) {
	t.Helper()
	if err := l.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrListenerClosed) {
		t.Errorf("Serve = %v, want ErrListenerClosed", err)
	}
}

// pending returns how many notifications a new listener on topic (info
// priority, default exchange) receives at once.
func pending(t *testing.T, tr *messaging.Transport, topic string) int {
	t.Helper()
	lis, err := tr.Conn().(driver.NotifyConn).ListenNotifications(context.Background(),
		[]driver.NotifyTarget{{Exchange: tr.ControlExchange(), Topic: topic, Priorities: []string{"info"}}}, "", driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	for {
		done := make(chan struct{})
		var err error
		go func() {
			_, err = lis.Next(ctx)
			close(done)
		}()
		synctest.Wait()
		select {
		case <-done:
			if err != nil {
				t.Fatal(err)
			}
			n++
		default:
			cancel()
			<-done
			return n
		}
	}
}

type batchLog struct {
	mu    sync.Mutex
	sizes []int
	at    []time.Duration
	start time.Time
	items []*Notification
}

func (b *batchLog) handle(_ context.Context, batch []*Notification) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sizes = append(b.sizes, len(batch))
	b.at = append(b.at, time.Since(b.start))
	b.items = append(b.items, batch...)
	return nil
}

func (b *batchLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprint(b.sizes, b.at)
}

// NotifyTestCase.test_simple_batch: 205 notifications in batches of
// 100 arrive as 100, 100 and, after the timeout, 5.
func TestBatch205(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		got := &batchLog{start: time.Now()}
		l, err := NewBatchListener(tr, []messaging.Target{{Topic: "batch"}}, []*BatchEndpoint{{Info: got.handle}}, 100, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("batch"))
		for i := range 205 {
			if err := n.Info(context.Background(), "test", fmt.Sprintf("n%03d", i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := got.String(); s != "[100 100] [0s 0s]" {
			t.Errorf("before the timeout: %s", s)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s := got.String(); s != "[100 100 5] [0s 0s 2s]" {
			t.Errorf("batches %s, want 100, 100 and 5 after 2s", s)
		}
		shutdown(t, l, served)
		if p := payloads(t, got.items); fmt.Sprint(p) != fmt.Sprint(numbered("n", 205)) {
			t.Errorf("received %v", p)
		}
		if n := pending(t, tr, "batch"); n != 0 {
			t.Errorf("%d notifications left unacknowledged", n)
		}
	})
}

// oslo's test_batch_timeout and test_batch_size.
func TestBatchTimeoutAndSize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		send    int
		want    string
	}{
		{"timeout", time.Second, 12, "[5 5 2] [0s 0s 1s]"},
		{"size", 0, 10, "[5 5] [0s 0s]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := bubbleTransport()
				defer tr.Close()
				got := &batchLog{start: time.Now()}
				l, err := NewBatchListener(tr, []messaging.Target{{Topic: "testtopic"}}, []*BatchEndpoint{{Info: got.handle}}, 5, tc.timeout, WithAllowRequeue(true))
				if err != nil {
					t.Fatal(err)
				}
				served := run(t, l)
				n := newNotifier(t, tr, "testpublisher", WithSinks(Messaging()), WithTopics("testtopic"))
				for range tc.send {
					if err := n.Info(context.Background(), "an_event.start", "test message"); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				if s := got.String(); s != tc.want {
					t.Errorf("batches %s, want %s", s, tc.want)
				}
				for _, n := range got.items {
					if n.PublisherID != "testpublisher" || n.EventType != "an_event.start" || string(n.Payload) != `"test message"` {
						t.Errorf("batch item %+v", n)
					}
				}
				shutdown(t, l, served)
			})
		})
	}
}

// oslo's test_batch_size_exception_path, with requeues allowed: the
// failed batch comes back, and the batch's other priorities are not
// affected.
func TestBatchRequeue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		var calls atomic.Int32
		got := &batchLog{start: time.Now()}
		warns := &batchLog{start: time.Now()}
		ep := &BatchEndpoint{
			Info: func(ctx context.Context, b []*Notification) error {
				if calls.Add(1) == 2 {
					return errBoom
				}
				return got.handle(ctx, b)
			},
			Warn: warns.handle,
		}
		l, err := NewBatchListener(tr, []messaging.Target{{Topic: "testtopic"}}, []*BatchEndpoint{ep}, 5, 0,
			WithAllowRequeue(true), WithMaxConcurrency(1), WithLogger(slog.New(&logRecords{})))
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("testtopic"))
		for i := range 10 {
			p := PriorityInfo
			if i == 7 {
				p = PriorityWarn
			}
			if err := n.Notify(context.Background(), p, "e", fmt.Sprintf("n%03d", i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		// Batch 1: n000-n004. Batch 2: n005-n009, whose info group fails
		// and is requeued; the warn one is handled. The 4 requeued come
		// back; the fifth in their batch is the next one sent.
		if err := n.Info(context.Background(), "e", "n010"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if calls.Load() != 3 || got.String() != "[5 5] [0s 0s]" || warns.String() != "[1] [0s]" {
			t.Errorf("%d calls, info batches %s, warn batches %s", calls.Load(), got, warns)
		}
		var ps []string
		for _, n := range append(got.items, warns.items...) {
			ps = append(ps, string(n.Payload))
		}
		if len(ps) != 11 {
			t.Errorf("handled %v", ps)
		}
		shutdown(t, l, served)
	})
}

// On Shutdown a batch listener dispatches the batch it was collecting.
func TestShutdownFlushesBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		got := &batchLog{start: time.Now()}
		l, err := NewBatchListener(tr, []messaging.Target{{Topic: "t"}}, []*BatchEndpoint{{Info: got.handle}}, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("t"))
		for range 3 {
			if err := n.Info(context.Background(), "e", nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := got.String(); s != "[] []" {
			t.Errorf("batches before Shutdown: %s", s)
		}
		shutdown(t, l, served)
		if s := got.String(); s != "[3] [0s]" {
			t.Errorf("batches after Shutdown: %s, want [3]", s)
		}
		if n := pending(t, tr, "t"); n != 0 {
			t.Errorf("%d left", n)
		}
	})
}

// oslo's test_requeue: a requeued notification comes back and is
// handled, not taken for a duplicate.
func TestRequeue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		result error
		allow  bool
		calls  int32
	}{
		{"requeue allowed", ErrRequeue, true, 2},
		{"exception requeues", errBoom, true, 2},
		{"requeue not allowed", ErrRequeue, false, 1},
		{"exception not requeued", errBoom, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := bubbleTransport()
				defer tr.Close()
				var calls atomic.Int32
				var ids sync.Map
				ep := &Endpoint{Info: func(ctx context.Context, n *Notification) error {
					ids.Store(n.MessageID, true)
					if calls.Add(1) == 1 {
						return tc.result
					}
					return nil
				}}
				l, err := NewListener(tr, []messaging.Target{{Topic: "testtopic"}}, []*Endpoint{ep},
					WithAllowRequeue(tc.allow), WithLogger(slog.New(&logRecords{})))
				if err != nil {
					t.Fatal(err)
				}
				served := run(t, l)
				n := newNotifier(t, tr, "testpublisher", WithSinks(Messaging()), WithTopics("testtopic"))
				if err := n.Info(context.Background(), "an_event.start", "test"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				shutdown(t, l, served)
				if got := calls.Load(); got != tc.calls {
					t.Errorf("handler called %d times, want %d", got, tc.calls)
				}
				count := 0
				ids.Range(func(any, any) bool { count++; return true })
				if count != 1 {
					t.Errorf("%d message ids, want the same notification each time", count)
				}
				if n := pending(t, tr, "testtopic"); n != 0 {
					t.Errorf("%d notifications left in the queue", n)
				}
			})
		})
	}
}

// A notification published twice with the same _unique_id (a re-sent
// copy) is handled once, and both copies are acknowledged.
func TestDuplicateDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		got := newSink()
		l, err := NewListener(tr, []messaging.Target{{Topic: "dup"}}, []*Endpoint{{Info: got.handle}}, WithMaxConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		conn := tr.Conn().(driver.NotifyConn)
		dn := &driver.Notification{
			MessageID: wire.NewUUID(), PublisherID: "p", EventType: "e", Priority: "INFO",
			Payload: []byte(`"x"`), Timestamp: formatTimestamp(time.Now()), UniqueID: wire.NewID(),
		}
		addr := driver.Address{Exchange: "openstack", Topic: "dup"}
		for range 2 {
			if err := conn.Notify(context.Background(), addr, dn, driver.NotifyOptions{Envelope: true}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		// After the dedup window the id is forgotten.
		time.Sleep(dedupWindow)
		if err := conn.Notify(context.Background(), addr, dn, driver.NotifyOptions{Envelope: true}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		shutdown(t, l, served)
		if got.len() != 2 {
			t.Errorf("handled %d times, want 2 (once, then once more after the window)", got.len())
		}
		if n := pending(t, tr, "dup"); n != 0 {
			t.Errorf("%d copies left unacknowledged", n)
		}
	})
}

func TestDedupBounds(t *testing.T) {
	t.Parallel()
	d := newDedup(time.Minute, 3)
	now := time.Now()
	for i := range 5 {
		d.add(fmt.Sprint(i), now.Add(time.Duration(i)*time.Second))
	}
	at := now.Add(5 * time.Second)
	for i, want := range []bool{false, false, true, true, true} {
		if got := d.contains(fmt.Sprint(i), at); got != want {
			t.Errorf("contains(%d) = %v, want %v (at most 3 remembered)", i, got, want)
		}
	}
	if d.contains("4", now.Add(64*time.Second)) {
		t.Error("an id outlived the window")
	}
	if d.contains("", at) {
		t.Error("the empty id is a duplicate")
	}
	big := newDedup(time.Hour, 1000)
	for i := range 5000 {
		big.add(fmt.Sprint(i), now)
	}
	if len(big.seen) != 1000 || len(big.order)-big.head != 1000 || cap(big.order) > 4000 {
		t.Errorf("dedup holds %d ids, %d entries (cap %d)", len(big.seen), len(big.order)-big.head, cap(big.order))
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		done := false
		ep := &Endpoint{Info: func(ctx context.Context, n *Notification) error {
			time.Sleep(5 * time.Second)
			done = true
			return nil
		}}
		l, err := NewListener(tr, []messaging.Target{{Topic: "drain"}}, []*Endpoint{ep})
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("drain"))
		if err := n.Info(context.Background(), "e", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the handler is running
		start := time.Now()
		shutdown(t, l, served)
		if d := time.Since(start); d != 5*time.Second || !done {
			t.Errorf("Shutdown returned after %v (handler done: %v), want 5s", d, done)
		}
		if n := pending(t, tr, "drain"); n != 0 {
			t.Errorf("%d left: the drained notification was not acknowledged", n)
		}
		// Later notifications wait for another listener.
		if err := n.Info(context.Background(), "e", nil); err != nil {
			t.Fatal(err)
		}
		if n := pending(t, tr, "drain"); n != 1 {
			t.Errorf("%d pending after Shutdown, want 1", n)
		}
	})
}

// A handler stuck past Shutdown's deadline is cancelled by Close, and
// its notification, never acknowledged, is delivered again.
func TestShutdownDeadlineThenClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		ep := &Endpoint{Info: func(ctx context.Context, n *Notification) error {
			<-ctx.Done()
			return ctx.Err()
		}}
		l, err := NewListener(tr, []messaging.Target{{Topic: "stuck"}}, []*Endpoint{ep}, WithLogger(slog.New(&logRecords{})))
		if err != nil {
			t.Fatal(err)
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("stuck"))
		if err := n.Info(context.Background(), "e", "again"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown with a stuck handler = %v, want DeadlineExceeded", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Serve = %v", err)
		}
		if n := pending(t, tr, "stuck"); n != 1 {
			t.Errorf("%d pending after Close, want the unacknowledged notification back", n)
		}
	})
}

func TestMaxConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		var running, peak atomic.Int32
		ep := &Endpoint{Info: func(ctx context.Context, n *Notification) error {
			r := running.Add(1)
			for {
				p := peak.Load()
				if r <= p || peak.CompareAndSwap(p, r) {
					break
				}
			}
			time.Sleep(time.Second)
			running.Add(-1)
			return nil
		}}
		l, err := NewListener(tr, []messaging.Target{{Topic: "c"}}, []*Endpoint{ep}, WithMaxConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		if l.prefetch() != 2 {
			t.Errorf("prefetch %d, want 2", l.prefetch())
		}
		served := run(t, l)
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("c"))
		for range 5 {
			if err := n.Info(context.Background(), "e", nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		time.Sleep(time.Hour)
		shutdown(t, l, served)
		if peak.Load() != 2 {
			t.Errorf("peak concurrency %d, want 2", peak.Load())
		}
	})
}

func TestLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		eps := []*Endpoint{{Info: func(context.Context, *Notification) error { return nil }}}
		targets := []messaging.Target{{Topic: "life"}}
		newL := func() *Listener {
			l, err := NewListener(tr, targets, eps)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}

		// Serve's context ends it.
		l := newL()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- l.Serve(ctx) }()
		synctest.Wait()
		if err := l.Serve(context.Background()); err == nil {
			t.Error("a second Serve succeeded")
		}
		if err := l.Listen(context.Background()); err == nil {
			t.Error("Listen while serving succeeded")
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve after its context ended = %v", err)
		}

		// Shutdown before Serve; then Serve and Listen refuse.
		l = newL()
		if err := l.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown of a new listener: %v", err)
		}
		if err := l.Serve(context.Background()); !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Serve after Shutdown = %v", err)
		}
		if err := l.Listen(context.Background()); !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Listen after Shutdown = %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close after Shutdown: %v", err)
		}

		// Listen, then Shutdown without Serve: the consumer is closed, so
		// notifications wait for others.
		l = newL()
		if err := l.Listen(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Listen(context.Background()); err == nil {
			t.Error("a second Listen succeeded")
		}
		if err := l.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		n := newNotifier(t, tr, "p", WithSinks(MessagingV2()), WithTopics("life"))
		if err := n.Info(context.Background(), "e", nil); err != nil {
			t.Fatal(err)
		}
		if got := pending(t, tr, "life"); got != 1 {
			t.Errorf("%d pending, want 1", got)
		}

		// Closing the transport ends Serve with ErrClosed.
		tr2 := bubbleTransport()
		l, err := NewListener(tr2, targets, eps)
		if err != nil {
			t.Fatal(err)
		}
		errc = make(chan error, 1)
		go func() { errc <- l.Serve(context.Background()) }()
		synctest.Wait()
		_ = tr2.Close()
		if err := <-errc; !errors.Is(err, messaging.ErrClosed) {
			t.Errorf("Serve after the transport closed = %v, want ErrClosed", err)
		}
		_ = l.Close()
	})
}
