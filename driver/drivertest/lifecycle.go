package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// callResult is the outcome of a call made in a helper goroutine.
type callResult struct {
	reply *driver.Reply
	err   error
}

// goCall makes a call in a new goroutine, joined when the test ends, and
// returns the channel of its outcome.
func (s *suite) goCall(ctx context.Context, c driver.RPCConn, addr driver.Address, req *driver.Request, opts driver.SendOptions) <-chan callResult {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan callResult, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		r, err := c.Call(ctx, addr, req, opts)
		ch <- callResult{r, err}
	})
	s.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ch
}

// await returns the outcome of a call started by goCall, failing the
// test if it does not come within d.
func (s *suite) await(ch <-chan callResult, what string, d time.Duration) callResult {
	s.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r
	case <-timer.C:
		s.t.Fatalf("%s: Call did not return within %v", what, d)
		return callResult{}
	}
}

// testCallTimeout checks that a call nobody answers ends with the
// deadline of its context, not before.
func testCallTimeout(s *suite) {
	t := s.t
	c := s.open()
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, s.addr(""), callReq("nobody_there", json.RawMessage(`{}`)), driver.SendOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call() = %v, want an error wrapping %v", err, context.DeadlineExceeded)
	}
	if errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Call() = %v, want no %v without SendOptions.Mandatory", err, driver.ErrUndeliverable)
	}
	if ctx.Err() == nil {
		t.Errorf("Call() returned after %v, before its deadline", time.Since(start))
	}
	within(t, "Call without a server", start, timeout+promptly)
}

// testConcurrentCalls checks that concurrent calls on one connection get
// their own replies, even when the server answers in reverse order.
func testConcurrentCalls(s *suite) {
	t := s.t
	const n = 50
	var pending []driver.Delivery // used by the serving goroutine only
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		pending = append(pending, d)
		if len(pending) < n {
			return
		}
		for i := len(pending) - 1; i >= 0; i-- {
			if err := pending[i].Reply(ctx, &driver.Reply{Result: pending[i].Request().Args}); err != nil && ctx.Err() == nil {
				t.Errorf("server: Reply() = %v", err)
			}
		}
		pending = nil
	})
	c := s.open()
	ctx := s.ctx(waitTimeout)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			args := seqArgs(i)
			r, err := c.Call(ctx, s.addr("srv"), callReq("echo", args), driver.SendOptions{})
			switch {
			case err != nil:
				t.Errorf("call %d: %v", i, err)
			case !jsonEqual(r.Result, args):
				t.Errorf("call %d: result %s, want %s", i, show(r.Result), args)
			}
		})
	}
	wg.Wait()
}

// testLateReply checks that a reply to a call whose caller gave up is
// dropped without disturbing the next calls of that connection.
func testLateReply(s *suite) {
	t := s.t
	l := s.server(s.addr("srv"))
	c := s.open()

	ctx1, cancel1 := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel1()
	first := s.goCall(ctx1, c, s.addr("srv"), callReq("slow", seqArgs(1)), driver.SendOptions{})
	d1 := s.next(l)
	if r := s.await(first, "first call", waitTimeout); !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("first call = %v, %v; want an error wrapping %v", r.reply, r.err, context.DeadlineExceeded)
	}

	second := s.goCall(s.ctx(waitTimeout), c, s.addr("srv"), callReq("fast", seqArgs(2)), driver.SendOptions{})
	d2 := s.next(l)
	if seq(t, d2) != 2 {
		t.Fatalf("server got %s, want the second call", show(d2.Request().Args))
	}
	ctx := s.ctx(waitTimeout)
	if s.cfg.Features.Heartbeat {
		if err := d1.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("late Heartbeat() = %v, want nil: the caller's connection is still open", err)
		}
	}
	if err := d1.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"late"`)}); err != nil && ctx.Err() == nil {
		t.Errorf("late Reply() = %v, want nil: the caller's connection is still open", err)
	}
	if err := d2.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"second"`)}); err != nil && ctx.Err() == nil {
		t.Errorf("Reply() = %v", err)
	}
	r := s.await(second, "second call", waitTimeout)
	if r.err != nil || !jsonEqual(r.reply.Result, []byte(`"second"`)) {
		t.Fatalf("second call = %v, %v; want result \"second\"", r.reply, r.err)
	}

	s.serve(l, echo)
	args := seqArgs(3)
	if r := s.call(c, s.addr("srv"), callReq("echo", args)); !jsonEqual(r.Result, args) {
		t.Errorf("third call: result %s, want %s", show(r.Result), args)
	}
}

// testListenerClose checks that Next honours its context and that Close
// ends a blocked Next with ErrClosed.
func testListenerClose(s *suite) {
	l := s.server(s.addr("srv")) // closed a second time by the cleanup: Close is idempotent
	checkNextAndClose(s, l)
}

// checkNextAndClose checks that the Next of the listener l honours its
// context and that Close ends a blocked Next with ErrClosed; it is
// shared by the request and the notification listeners.
func checkNextAndClose[D any, L listener[D]](s *suite, l L) {
	t := s.t
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next(cancelled ctx) = %v, want %v", err, context.Canceled)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := l.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next(ctx with 50ms timeout) = %v, want %v", err, context.DeadlineExceeded)
	}
	within(t, "Next with a 50ms timeout", start, promptly)

	errc := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	nextCtx := s.ctx(waitTimeout)
	wg.Go(func() {
		_, err := l.Next(nextCtx)
		errc <- err
	})
	quiet := time.NewTimer(quietWait) // let Next block
	select {
	case err := <-errc:
		quiet.Stop()
		t.Fatalf("Next() returned %v before Close", err)
	case <-quiet.C:
	}
	start = time.Now()
	if err := l.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	timer := time.NewTimer(promptly)
	defer timer.Stop()
	select {
	case err := <-errc:
		if !errors.Is(err, driver.ErrClosed) {
			t.Errorf("blocked Next() = %v after Close, want %v", err, driver.ErrClosed)
		}
		within(t, "Next after Close", start, promptly)
	case <-timer.C:
		t.Fatalf("blocked Next() did not return within %v of Close", promptly)
	}
	if _, err := l.Next(s.ctx(promptly)); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Next() after Close = %v, want %v", err, driver.ErrClosed)
	}
}

// testReplyAfterListenerClose checks that a delivery stays usable after
// its listener is closed.
func testReplyAfterListenerClose(s *suite) {
	t := s.t
	l := s.server(s.addr("srv"))
	c := s.open()
	res := s.goCall(s.ctx(waitTimeout), c, s.addr("srv"), callReq("work", json.RawMessage(`{}`)), driver.SendOptions{})
	d := s.next(l)
	if err := l.Close(); err != nil {
		t.Errorf("Listener.Close() = %v", err)
	}
	if err := d.Reply(s.ctx(waitTimeout), &driver.Reply{Result: json.RawMessage(`"still here"`)}); err != nil {
		t.Errorf("Reply() after Listener.Close = %v", err)
	}
	if r := s.await(res, "call", waitTimeout); r.err != nil || !jsonEqual(r.reply.Result, []byte(`"still here"`)) {
		t.Errorf("Call() = %v, %v; want result \"still here\"", r.reply, r.err)
	}
}

// testConnCloseDuringCall checks that closing a connection ends its
// calls in progress with ErrClosed.
func testConnCloseDuringCall(s *suite) {
	t := s.t
	l := s.server(s.addr("srv"))
	c := s.open() // closed a second time by the cleanup: Close is idempotent
	res := s.goCall(s.ctx(waitTimeout), c, s.addr("srv"), callReq("pending", json.RawMessage(`{}`)), driver.SendOptions{})
	d := s.next(l) // the call is in progress
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	r := s.await(res, "call in progress during Close", promptly)
	if !errors.Is(r.err, driver.ErrClosed) {
		t.Errorf("Call() = %v, %v after Close, want an error wrapping %v", r.reply, r.err, driver.ErrClosed)
	}
	within(t, "Call after Close", start, promptly)
	// Replying to the closed connection may fail (a driver may also retry
	// until its ctx ends), but must not hang.
	start = time.Now()
	_ = d.Reply(s.ctx(time.Second), &driver.Reply{})
	within(t, "Reply to a closed connection with a 1s ctx", start, promptly)
}

// testClosedConn checks the operations on a closed connection.
func testClosedConn(s *suite) {
	t := s.t
	c := s.open()
	ctx := s.ctx(promptly)
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping() = %v", err)
	}
	l := s.listen(c, s.addr("srv"))
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := c.Ping(ctx); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Ping() after Close = %v, want %v", err, driver.ErrClosed)
	}
	if _, err := c.Call(ctx, s.addr("srv"), callReq("closed", json.RawMessage(`{}`)), driver.SendOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Call() after Close = %v, want %v", err, driver.ErrClosed)
	}
	if err := c.Cast(ctx, s.addr("srv"), castReq("closed", json.RawMessage(`{}`)), driver.SendOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Cast() after Close = %v, want %v", err, driver.ErrClosed)
	}
	if _, err := c.Listen(ctx, s.addr("srv"), driver.ListenOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Listen() after Close = %v, want %v", err, driver.ErrClosed)
	}
	if _, err := l.Next(ctx); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Next() on a listener of a closed connection = %v, want %v", err, driver.ErrClosed)
	}
}
