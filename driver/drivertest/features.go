package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// testMandatory checks that mandatory sends to a topic without queues
// fail at once with ErrUndeliverable, and succeed once a server listens.
func testMandatory(s *suite) {
	s.skipUnless(s.cfg.Features.Mandatory, "Mandatory")
	t := s.t
	c := s.open()
	ctx := s.ctx(waitTimeout)
	mandatory := driver.SendOptions{Mandatory: true}

	for _, addr := range []driver.Address{s.addr(""), s.addr("srv")} {
		if err := c.Cast(ctx, addr, castReq("lost", json.RawMessage(`{}`)), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
			t.Errorf("mandatory Cast(%s) without a queue = %v, want %v", describe(addr), err, driver.ErrUndeliverable)
		}
		start := time.Now()
		if _, err := c.Call(ctx, addr, callReq("lost", json.RawMessage(`{}`)), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
			t.Errorf("mandatory Call(%s) without a queue = %v, want %v", describe(addr), err, driver.ErrUndeliverable)
		}
		within(t, "mandatory Call without a queue", start, promptly)
		if err := c.Cast(ctx, addr, castReq("lost", json.RawMessage(`{}`)), driver.SendOptions{}); err != nil {
			t.Errorf("Cast(%s) without a queue = %v, want nil", describe(addr), err)
		}
	}

	l := s.server(s.addr("srv"))
	for i, addr := range []driver.Address{s.addr(""), s.addr("srv")} {
		if err := c.Cast(ctx, addr, castReq("routed", seqArgs(i)), mandatory); err != nil {
			t.Errorf("mandatory Cast(%s) with a server = %v", describe(addr), err)
		}
	}
	if seqs := seqsOf(t, s.receive([]driver.Listener{l}, 2)[0]); fmt.Sprint(seqs) != "[0 1]" {
		t.Errorf("received %v, want the casts [0 1]", seqs)
	}
	s.serve(l, echo)
	args := seqArgs(2)
	r, err := c.Call(ctx, s.addr("srv"), callReq("routed", args), mandatory)
	if err != nil || !jsonEqual(r.Result, args) {
		t.Errorf("mandatory Call() with a server = %v, %v; want result %s", r, err, args)
	}
}

// testHeartbeatKeepsCallAlive checks that a server's heartbeats keep a
// call alive past its monitor timeout.
//
// The test depends on the scheduler: on a machine so loaded that the
// server could not send its heartbeats in time, a monitor timeout is
// legitimate, and the test tries again, a bounded number of times.
func testHeartbeatKeepsCallAlive(s *suite) {
	s.skipUnless(s.cfg.Features.Heartbeat, "Heartbeat")
	t := s.t
	const (
		monitor  = 500 * time.Millisecond
		beat     = 100 * time.Millisecond
		beats    = 15 // 1.5s in all
		attempts = 3
		// tooLate is a gap between two messages of the server that
		// makes a monitor timeout the machine's fault.
		tooLate = monitor - beat
	)
	sent := make(chan []time.Time, 1) // when the server sent each heartbeat
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		if mt := d.Request().MonitorTimeout; mt == nil || *mt != monitor.Seconds() {
			t.Errorf("server: MonitorTimeout = %s, want %v", fmtFloatPtr(mt), monitor.Seconds())
		}
		var times []time.Time
		defer func() {
			select {
			case sent <- times:
			case <-ctx.Done():
			}
		}()
		tick := time.NewTicker(beat)
		defer tick.Stop()
		for i := range beats + 1 {
			if i > 0 {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			if err := d.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("server: Heartbeat() = %v", err)
				return
			}
			times = append(times, time.Now())
		}
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"finished"`)}); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply() = %v", err)
		}
	})
	c := s.open()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		r, err := c.Call(s.ctx(waitTimeout), s.addr("srv"), callReq("long_running", json.RawMessage(`{}`)),
			driver.SendOptions{MonitorTimeout: monitor})
		elapsed := time.Since(start)
		var times []time.Time
		select {
		case times = <-sent:
		case <-s.ctx(waitTimeout).Done():
			t.Fatalf("the server did not finish in %v", waitTimeout)
		}
		if err == nil {
			if !jsonEqual(r.Result, []byte(`"finished"`)) {
				t.Errorf("Call() result = %s, want \"finished\"", show(r.Result))
			}
			if elapsed < 2*monitor {
				t.Errorf("Call() returned after %v, before the server could have finished", elapsed)
			}
			return
		}
		worst, prev := time.Duration(0), start
		for _, at := range times {
			worst, prev = max(worst, at.Sub(prev)), at
		}
		if errors.Is(err, driver.ErrHeartbeatTimeout) && worst >= tooLate {
			if attempt < attempts {
				t.Logf("attempt %d: Call() = %v, but the server itself was %v late: retrying", attempt, err, worst)
				continue
			}
			t.Fatalf("Call() = %v after %v; inconclusive: the server could not send its heartbeats in time (%v late) in %d attempts, the machine is overloaded",
				err, elapsed, worst, attempts)
		}
		t.Fatalf("Call() = %v after %v, want the result after %v of heartbeats (sent at most %v apart)",
			err, elapsed, beats*beat, worst)
	}
}

// testHeartbeatTimeout checks that a call whose server sends nothing
// fails with ErrHeartbeatTimeout after its monitor timeout, well before
// its deadline.
func testHeartbeatTimeout(s *suite) {
	s.skipUnless(s.cfg.Features.Heartbeat, "Heartbeat")
	t := s.t
	const monitor = 300 * time.Millisecond
	s.serve(s.server(s.addr("srv")), func(context.Context, driver.Delivery) {}) // never answers
	c := s.open()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Call(ctx, s.addr("srv"), callReq("stuck", json.RawMessage(`{}`)), driver.SendOptions{MonitorTimeout: monitor})
	elapsed := time.Since(start)
	if !errors.Is(err, driver.ErrHeartbeatTimeout) {
		t.Errorf("Call() = %v after %v, want an error wrapping %v", err, elapsed, driver.ErrHeartbeatTimeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call() = %v, want an error that also matches %v", err, context.DeadlineExceeded)
	}
	if elapsed < monitor {
		t.Errorf("Call() failed after %v, before the monitor timeout %v", elapsed, monitor)
	}
	within(t, "Call with an expired monitor", start, monitor+promptly)
}

// testPersistent checks that the topic and server queues keep messages
// for the next listener: those sent while no listener consumes them, and
// those a closed listener had been given but not yet returned.
func testPersistent(s *suite) {
	s.skipUnless(s.cfg.Features.Persistent, "Persistent")
	t := s.t
	c := s.open()
	l1, err := c.Listen(s.ctx(waitTimeout), s.addr("srv"), driver.ListenOptions{})
	if err != nil {
		t.Fatalf("Listen() = %v", err)
	}
	if err := l1.Close(); err != nil {
		t.Fatalf("Listener.Close() = %v", err)
	}
	for i := range 6 {
		s.cast(c, s.addr([]string{"", "srv"}[i%2]), castReq("while_away", seqArgs(i)))
	}
	l2 := s.server(s.addr("srv"))
	if seqs := seqsOf(t, s.receive([]driver.Listener{l2}, 6)[0]); fmt.Sprint(seqs) != "[0 1 2 3 4 5]" {
		t.Errorf("new listener received %v, want the casts [0 1 2 3 4 5] sent while none listened", seqs)
	}

	// Close l2 with casts given to it but not taken: the next listener
	// gets them.
	for i := range 5 {
		s.cast(c, s.addr(""), castReq("unfinished", seqArgs(i)))
	}
	taken := []driver.Delivery{s.next(l2), s.next(l2)}
	if err := l2.Close(); err != nil {
		t.Fatalf("Listener.Close() = %v", err)
	}
	l3 := s.server(s.addr("srv"))
	got := append(taken, s.receive([]driver.Listener{l3}, 3)[0]...)
	if seqs := seqsOf(t, got); fmt.Sprint(seqs) != "[0 1 2 3 4]" {
		t.Errorf("casts taken before and after Listener.Close: %v, want [0 1 2 3 4], each once", seqs)
	}
}
