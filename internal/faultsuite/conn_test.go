package faultsuite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// The connection scenarios share a shape: a private node, two RPC
// servers (srv-a and srv-b) on one topic, a client (through a fault
// proxy where the fault needs one) sending a load of calls (2 s
// deadlines), casts and fanout casts with ledger ids, the fault, a
// settle period, then the checks.

// connBasicLoad starts 4 callers, 2 casters and a fanout caster on c.
func (r *connRig) connBasicLoad(c *rpc.Client, sleepMS int) *connLoad {
	return r.load(150*time.Millisecond, 200,
		connWorker{op: faulttest.OpCall, client: c, sleepMS: sleepMS},
		connWorker{op: faulttest.OpCall, client: c, sleepMS: sleepMS},
		connWorker{op: faulttest.OpCall, client: c, sleepMS: sleepMS},
		connWorker{op: faulttest.OpCall, client: c, sleepMS: sleepMS},
		connWorker{op: faulttest.OpCast, client: c},
		connWorker{op: faulttest.OpCast, client: c},
		connWorker{op: faulttest.OpFanout, client: c},
	)
}

// TestIntegrationS01ConnectionReset resets the caller's connections
// (TCP RST through a proxy) three times mid-traffic, then closes them
// twice from the broker (rabbitmqctl close_connection, 320
// CONNECTION_FORCED).
func TestIntegrationS01ConnectionReset(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S1", "caller's connections reset (TCP RST via proxy) ×3, then closed by the broker (close_connection) ×2, mid-traffic",
		"no hung caller; success without execution 0; no duplicate; confirmed casts all executed; no late execution; "+
			"a call succeeds within 15 s of each fault; no leak after Close",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S1")
	p := r.proxy()
	r.start()
	r.server("srv-a", connURL(r.node.URL()), 20*time.Second)
	r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	ev := newConnEvents()
	ctr := r.open(connURL(r.proxyURL(p)), "cli", ev)
	c := r.client(ctr)
	if _, ok := r.probe(c, 20*time.Second); !ok {
		t.Fatal("no call succeeded before the fault")
	}

	ld := r.connBasicLoad(c, 0)
	r.pause(2 * time.Second)
	faults := 0
	for i := range 5 {
		r.l.MarkFault()
		since := time.Now()
		what := "reset"
		if i < 3 {
			p.ResetAll()
		} else {
			what = "close_connection"
			n, err := r.node.CloseConnections(r.ctx, r.name+"cli")
			if err != nil || n == 0 {
				t.Errorf("close_connection of the caller's connections: closed %d, %v", n, err)
			}
		}
		faults++
		took, ok := r.probe(c, connRecoveryBudget)
		if !ok {
			t.Errorf("fault %d (%s): no call succeeded within %v", i+1, what, connRecoveryBudget)
		}
		wctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		lost, _ := ev.wait(wctx, driver.EventDisconnected, since, nil)
		cancel()
		notes = append(notes, fmt.Sprintf("%s %d: a call succeeded after %v (disconnect seen: %v)",
			what, i+1, took.Round(time.Millisecond), !lost.Time.IsZero()))
		r.pause(1500 * time.Millisecond)
	}
	ld.Stop()
	r.finish(5 * time.Second)
	notes = append(notes, "client events: "+ev.summary())

	r.assertCore()
	r.l.AssertNoDuplicates(t)
	r.l.AssertNoLost(t)
	r.l.AssertNoLateExecutions(t)
	if n := ev.count(driver.EventDisconnected, time.Time{}); n < faults {
		t.Errorf("the client reported %d disconnections for %d faults", n, faults)
	}
	if ev.count(driver.EventReconnected, time.Time{}) == 0 {
		t.Error("the client never reported a reconnection")
	}
	rep := r.l.Report()
	if rep.Calls.OK == 0 || rep.Casts.OK == 0 || rep.Fanouts.OK == 0 {
		t.Errorf("the load did not get through: %s", rep)
	}
}

// TestIntegrationS02ServerCutAfterAck cuts srv-a's connections (FIN
// from the proxy) right after srv-a has sent k acknowledgements
// (a basic.ack frame is 21 bytes), or in the middle of the next one,
// six times, while calls and casts go to the topic (shared by srv-a and
// srv-b) and to srv-a's own queue. A request whose acknowledgement was
// lost is delivered again: to srv-b (a duplicate across servers, which
// at most once per server allows and the suite counts) or to srv-a
// again after it reconnects, whose duplicate filter must drop it.
func TestIntegrationS02ServerCutAfterAck(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S2", "srv-a's connections cut right after k acks (21·k bytes upstream) or inside the next ack, ×6, mid-traffic",
		"no hung caller; success without execution 0; no server executes a ledger id twice (duplicate filter); "+
			"cross-server duplicates counted; confirmed casts all executed; srv-a consumes again within 15 s of each cut; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S2")
	pa := r.proxy()
	r.start()
	a := r.server("srv-a", connURL(r.proxyURL(pa)), 20*time.Second)
	r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	c := r.client(r.open(connURL(r.node.URL()), "cli", nil))
	toA := rpc.ToServer("srv-a")
	if _, ok := r.probe(c, 20*time.Second, toA); !ok {
		t.Fatal("no call to srv-a succeeded before the fault")
	}

	ld := r.load(100*time.Millisecond, 120,
		connWorker{op: faulttest.OpCall, client: c},
		connWorker{op: faulttest.OpCall, client: c, opts: []rpc.CallOption{toA}},
		connWorker{op: faulttest.OpCall, client: c, opts: []rpc.CallOption{toA}},
		connWorker{op: faulttest.OpCast, client: c},
		connWorker{op: faulttest.OpCast, client: c, opts: []rpc.CallOption{toA}},
		connWorker{op: faulttest.OpFanout, client: c},
	)
	r.pause(time.Second)
	isListener := func(e driver.Event) bool { return e.Queue == r.topic }
	for i, n := range []int64{21, 52, 63, 31, 42, 73} {
		since := time.Now()
		r.l.MarkFault()
		pa.CutAfterIn(faulttest.Upstream, n)
		wctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		_, cut := a.ev.wait(wctx, driver.EventDisconnected, since, isListener)
		cancel()
		// Disarmed at once: new connections must get through.
		pa.CutAfterIn(faulttest.Upstream, 0)
		if !cut {
			t.Errorf("round %d: srv-a's listener connection was not cut within 10 s of arming a %d-byte cut", i+1, n)
			continue
		}
		rctx, cancel := context.WithTimeout(r.ctx, connRecoveryBudget)
		back, ok := a.ev.wait(rctx, driver.EventReconnected, since, isListener)
		cancel()
		if !ok {
			t.Errorf("round %d: srv-a's listener did not consume again within %v", i+1, connRecoveryBudget)
			continue
		}
		notes = append(notes, fmt.Sprintf("cut %d after %d bytes: listener back in %v", i+1, n, back.Time.Sub(since).Round(time.Millisecond)))
		r.pause(time.Second)
	}
	if _, ok := r.probe(c, connRecoveryBudget, toA); !ok {
		t.Errorf("no call to srv-a succeeded within %v of the last cut", connRecoveryBudget)
	}
	ld.Stop()
	r.finish(5 * time.Second)
	notes = append(notes, "srv-a events: "+a.ev.summary())

	r.assertCore()
	r.l.AssertNoLost(t)
	same, cross := r.sameServerDuplicates()
	if len(same) > 0 {
		t.Errorf("%d ledger ids executed twice by one server (the duplicate filter let them through): %s", len(same), strings.Join(same, ", "))
	}
	notes = append(notes, fmt.Sprintf("duplicates across servers %d, on one server %d, dropped by the servers' duplicate filter %d",
		cross, len(same), r.logs.get("rabbit: ignoring a duplicate message")))
	if rep := r.l.Report(); rep.Calls.OK == 0 || rep.Casts.OK == 0 {
		t.Errorf("the load did not get through: %s", rep)
	}
}

// TestIntegrationS03HalfOpen black-holes the caller's established
// connections (nothing forwarded either way, nothing closed) with a
// 2 s heartbeat, mid-traffic, then lets them through again.
func TestIntegrationS03HalfOpen(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S3", "caller's links black-holed both ways (no FIN, no RST) with heartbeat 2 s, until detected + 3 s, mid-traffic",
		"the client finds a link dead within 3 × heartbeat + 2 s; no hung caller (deadline + 2 s); success without execution 0; "+
			"no duplicate; confirmed casts all executed; a call succeeds within 15 s of the link's return; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S3")
	p := r.proxy()
	r.start()
	r.server("srv-a", connURL(r.node.URL()), 20*time.Second)
	r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	ev := newConnEvents()
	c := r.client(r.open(connURL(r.proxyURL(p), "heartbeat_timeout_threshold=2"), "cli", ev))
	if _, ok := r.probe(c, 20*time.Second); !ok {
		t.Fatal("no call succeeded before the fault")
	}

	ld := r.connBasicLoad(c, 0)
	r.pause(2 * time.Second)
	since := time.Now()
	r.l.MarkFault()
	p.Blackhole(true)
	budget := 3*connHeartbeat + 2*time.Second
	dctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	first, detected := ev.wait(dctx, driver.EventDisconnected, since, nil)
	cancel()
	switch {
	case !detected:
		t.Errorf("the client did not find its black-holed links dead within 20 s (heartbeat %v)", connHeartbeat)
	case first.Time.Sub(since) > budget:
		t.Errorf("the client found its black-holed link dead after %v, beyond 3 × heartbeat + 2 s = %v",
			first.Time.Sub(since).Round(time.Millisecond), budget)
	}
	r.pause(3 * time.Second)
	p.Blackhole(false)
	r.l.MarkHealed()
	took, ok := r.probe(c, connRecoveryBudget)
	if !ok {
		t.Errorf("no call succeeded within %v of the link's return", connRecoveryBudget)
	}
	r.pause(2 * time.Second)
	ld.Stop()
	r.finish(5 * time.Second)

	var detections []string
	for _, e := range ev.since(driver.EventDisconnected, since) {
		what := "publish"
		if e.Queue != "" {
			what = "reply"
		}
		detections = append(detections, fmt.Sprintf("%s after %v", what, e.Time.Sub(since).Round(time.Millisecond)))
	}
	notes = append(notes, "links found dead: "+strings.Join(detections, ", "),
		fmt.Sprintf("a call succeeded %v after the link's return", took.Round(time.Millisecond)),
		"client events: "+ev.summary())
	r.assertCore()
	r.l.AssertNoDuplicates(t)
	r.l.AssertNoLost(t)
	rep := r.l.Report()
	notes = append(notes, fmt.Sprintf("calls executed after their deadline %d (requests held in the link reach the broker late, with their full TTL)", rep.Late))
	if connErrorCount(rep, faulttest.ErrorTimeout)+connErrorCount(rep, faulttest.ErrorDelivery) == 0 {
		t.Errorf("no send failed during the black hole: the fault did not take: %s", rep)
	}
}

// TestIntegrationS03HalfOpenAfterHandshake black-holes a connection at
// the moment amqp091-go may not watch (see faulttest.Proxy.Blackhole):
// right after its AMQP handshake, before it read any other frame.
// Whether amqp091-go then arms its heartbeat read deadline depends on a
// race between its frame reader and the end of its handshake, so each
// path is tried up to three times: the client's reply connection (made
// by its first call, then after the broker closed the client's
// connections), and a server's listener connection as it reconnects
// after the broker closed it. The held link stays half-open for the
// whole budget: the driver must find it dead on its own and connect
// again.
func TestIntegrationS03HalfOpenAfterHandshake(t *testing.T) {
	var r *connRig
	var notes []string
	const trials = 3
	// Three heartbeats to find the link dead, then the back-off.
	budget := 3*connHeartbeat + 4*time.Second
	record(t, "S3b", "a link black-holed right after its AMQP handshake (heartbeat 2 s), up to 3 times: the client's reply "+
		"connection, then srv-c's listener connection reconnecting",
		"each time a call (to srv-c for its listener) succeeds within 10 s although the held link stays half-open; "+
			"no hung caller; success without execution 0; no duplicate; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S3b")
	hp := newConnHoldProxy(t, r.node.Addr())
	r.mu.Lock()
	r.proxies = append(r.proxies, hp)
	r.mu.Unlock()
	r.start()
	hb := "heartbeat_timeout_threshold=2"
	holdURL := connURL(hp.URL(r.node.URL(), r.node.Addr()), hb)
	r.server("srv-a", connURL(r.node.URL(), hb), 20*time.Second)
	sc := r.server("srv-c", holdURL, 20*time.Second)
	ev := newConnEvents()
	c := r.client(r.open(holdURL, "cli", ev))
	ld := r.load(200*time.Millisecond, 150,
		connWorker{op: faulttest.OpCall, client: c},
		connWorker{op: faulttest.OpCall, client: c})

	paths := []struct {
		name, conns string
		opts        []rpc.CallOption
	}{
		{"the client's reply connection", r.name + "cli", nil},
		{"srv-c's listener connection", r.name + "srv-srv-c", []rpc.CallOption{rpc.ToServer("srv-c")}},
	}
	for pi, path := range paths {
		for i := range trials {
			hp.Reset()
			hp.Arm(1)
			r.l.MarkFault()
			// The first trial of the client's path is its first call.
			if pi > 0 || i > 0 {
				if n, err := r.node.CloseConnections(r.ctx, path.conns); err != nil || n == 0 {
					t.Fatalf("closing %s: closed %d, %v", path.name, n, err)
				}
			}
			took, ok := r.probe(c, budget, path.opts...)
			held := hp.Held()
			hp.Release()
			r.l.MarkHealed()
			notes = append(notes, fmt.Sprintf("%s, trial %d: held %d, a call succeeded: %v after %v", path.name, i+1, held, ok, took.Round(time.Millisecond)))
			if held != 1 {
				t.Errorf("%s, trial %d: the proxy held %d connections, want 1", path.name, i+1, held)
			}
			if ok {
				continue
			}
			t.Errorf("%s, trial %d: no call succeeded within %v while the link stayed half-open since its handshake "+
				"(client events: %s; srv-c events: %s)", path.name, i+1, budget, ev.summary(), sc.ev.summary())
			// Closing the held link ends the half-open state: it must
			// work again.
			if took, ok = r.probe(c, connRecoveryBudget, path.opts...); !ok {
				t.Fatalf("%s: no call succeeded within %v of the held link's closing", path.name, connRecoveryBudget)
			}
			notes = append(notes, fmt.Sprintf("after closing the held link a call succeeded in %v", took.Round(time.Millisecond)))
			break
		}
	}
	ld.Stop()
	r.finish(5 * time.Second)
	notes = append(notes, "client events: "+ev.summary(), "srv-c events: "+sc.ev.summary())
	r.assertCore()
	r.l.AssertNoDuplicates(t)
}

// TestIntegrationS04BrokerRestartApp stops and starts the broker
// application (rabbitmqctl stop_app, start_app) while calls are pending
// (handlers take 300 ms).
func TestIntegrationS04BrokerRestartApp(t *testing.T) { connRestart(t, "S4", false) }

// TestIntegrationS04BrokerKill kills the broker (SIGKILL) and starts it
// again while calls are pending.
func TestIntegrationS04BrokerKill(t *testing.T) { connRestart(t, "S4b", true) }

func connRestart(t *testing.T, id string, kill bool) {
	var r *connRig
	var notes []string
	fault := "broker application stopped for 3 s (stop_app, start_app) with calls pending (handlers 300 ms)"
	if kill {
		fault = "broker killed (SIGKILL) and restarted with calls pending (handlers 300 ms)"
	}
	record(t, id, fault,
		"no hung caller; success without execution 0; no duplicate; the client declares its reply queue again and a call "+
			"succeeds within 15 s of the restart, to each server too; no leak after Close",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, id)
	r.start()
	r.server("srv-a", connURL(r.node.URL()), 20*time.Second)
	r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	ev := newConnEvents()
	c := r.client(r.open(connURL(r.node.URL()), "cli", ev))
	if _, ok := r.probe(c, 20*time.Second); !ok {
		t.Fatal("no call succeeded before the fault")
	}
	before := connReplyQueues(t, r)

	ld := r.connBasicLoad(c, 300)
	r.pause(2 * time.Second)
	r.l.MarkFault()
	down := time.Now()
	if kill {
		r.restarted = true
		if err := r.node.Kill(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.pause(time.Second)
		if err := r.node.Restart(r.ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := r.node.StopApp(r.ctx); err != nil {
			t.Fatal(err)
		}
		r.pause(3 * time.Second)
		if err := r.node.StartApp(r.ctx); err != nil {
			t.Fatal(err)
		}
	}
	r.l.MarkHealed()
	notes = append(notes, fmt.Sprintf("broker down for %v", time.Since(down).Round(time.Millisecond)))
	took, ok := r.probe(c, connRecoveryBudget)
	if !ok {
		t.Errorf("no call succeeded within %v of the restart (client events: %s; servers' replies dropped: %d)",
			connRecoveryBudget, ev.summary(), r.dropped(down))
	}
	notes = append(notes, fmt.Sprintf("a call succeeded: %v, %v after the restart", ok, took.Round(time.Millisecond)))
	for _, s := range []string{"srv-a", "srv-b"} {
		if !ok {
			break // the same cause: the scenario stays within its time
		}
		if _, ok := r.probe(c, connRecoveryBudget, rpc.ToServer(s)); !ok {
			t.Errorf("no call to %s succeeded within %v of the restart", s, connRecoveryBudget)
		}
	}
	after := connReplyQueues(t, r)
	if len(before) != 1 || len(after) != 1 || before[0].Name != after[0].Name || after[0].Consumers != 1 {
		t.Errorf("reply queues before the fault %+v, after %+v: want the client's one queue, declared again and consumed", before, after)
	}
	r.pause(2 * time.Second)
	ld.Stop()
	notes = append(notes, fmt.Sprintf("servers' replies dropped since the fault: %d", r.dropped(down)))
	r.finish(5 * time.Second)
	notes = append(notes, "client events: "+ev.summary())
	r.assertCore()
	r.l.AssertNoDuplicates(t)
	rep := r.l.Report()
	notes = append(notes, fmt.Sprintf("confirmed casts lost with the broker's non-durable queues: %d; calls executed after their deadline: %d", rep.Lost, rep.Late))
	if ev.count(driver.EventReconnected, down) == 0 {
		t.Error("the client reported no reconnection after the restart")
	}
}

// dropped returns the number of replies the rig's servers dropped
// since.
func (r *connRig) dropped(since time.Time) int {
	r.mu.Lock()
	servers := append([]*connServer(nil), r.servers...)
	r.mu.Unlock()
	n := 0
	for _, s := range servers {
		n += s.ev.count(driver.EventReplyDropped, since)
	}
	return n
}

// connReplyQueues lists the node's reply queues.
func connReplyQueues(t *testing.T, r *connRig) []faulttest.QueueInfo {
	t.Helper()
	qs, err := r.node.ListQueues(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []faulttest.QueueInfo
	for _, q := range qs {
		if strings.HasPrefix(q.Name, "reply_") {
			out = append(out, q)
		}
	}
	return out
}

// TestIntegrationS05ReplyQueueDeleted deletes the reply queue of a live
// client (rabbitmqctl delete_queue) while its calls are in flight, and
// closes a third client while its calls are in flight, so that the
// servers' replies go to a queue that is gone for good; a second
// client's calls go on meanwhile.
func TestIntegrationS05ReplyQueueDeleted(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S5", "reply queue of a live client deleted with calls in flight (handlers 300 ms); "+
		"another client closed with calls in flight (handlers 1 s)",
		"no hung caller; success without execution 0; no duplicate; the client declares its reply queue again and a call "+
			"succeeds within 15 s; every call of an unaffected client succeeds; the servers drop the replies to the gone queue "+
			"(reply_dropped) once the 3 s retry is over; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S5")
	r.start()
	sa := r.server("srv-a", connURL(r.node.URL()), 20*time.Second)
	sb := r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	ev := newConnEvents()
	victim := r.client(r.open(connURL(r.node.URL()), "cli-a", ev))
	if _, ok := r.probe(victim, 20*time.Second); !ok {
		t.Fatal("no call succeeded before the fault")
	}
	qs := connReplyQueues(t, r)
	if len(qs) != 1 {
		t.Fatalf("reply queues %+v: want the first client's only", qs)
	}
	queue := qs[0].Name
	other := r.client(r.open(connURL(r.node.URL()), "cli-b", nil))
	doomedTr := r.open(connURL(r.node.URL()), "cli-c", nil)
	doomed := r.client(doomedTr)
	for _, cl := range []*rpc.Client{other, doomed} {
		if _, ok := r.probe(cl, 20*time.Second); !ok {
			t.Fatal("no call succeeded before the fault")
		}
	}
	otherSent0, _ := r.sentFailed(other)

	ldA := r.load(100*time.Millisecond, 150,
		connWorker{op: faulttest.OpCall, client: victim, sleepMS: 300},
		connWorker{op: faulttest.OpCall, client: victim, sleepMS: 300},
		connWorker{op: faulttest.OpCast, client: victim})
	ldB := r.load(100*time.Millisecond, 150,
		connWorker{op: faulttest.OpCall, client: other, sleepMS: 300},
		connWorker{op: faulttest.OpCall, client: other, sleepMS: 300})
	ldC := r.load(100*time.Millisecond, 150,
		connWorker{op: faulttest.OpCall, client: doomed, sleepMS: 1000},
		connWorker{op: faulttest.OpCall, client: doomed, sleepMS: 1000})
	r.pause(2 * time.Second)

	since := time.Now()
	r.l.MarkFault()
	if _, err := r.node.Ctl(r.ctx, "delete_queue", queue); err != nil {
		t.Fatal(err)
	}
	// Close the third client while its calls run (1 s handlers).
	slow0 := r.slowStarted()
	for i := 0; i < 50 && r.slowStarted() == slow0; i++ {
		r.pause(100 * time.Millisecond)
	}
	if r.slowStarted() == slow0 {
		t.Error("no call of the client to close was running within 5 s")
	}
	r.pause(100 * time.Millisecond)
	_ = doomedTr.Close()
	ldC.Stop()

	// The client declares its reply queue again.
	var back time.Duration
	for i := 0; i < 60 && back == 0 && time.Since(since) < connRecoveryBudget; i++ {
		for _, q := range connReplyQueues(t, r) {
			if q.Name == queue && q.Consumers == 1 {
				back = time.Since(since)
			}
		}
		r.pause(250 * time.Millisecond)
	}
	if back == 0 {
		t.Errorf("the client did not declare and consume its reply queue %s again within %v", queue, connRecoveryBudget)
	}
	took, ok := r.probe(victim, connRecoveryBudget)
	if !ok {
		t.Errorf("no call of the client whose reply queue was deleted succeeded within %v", connRecoveryBudget)
	}
	dctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	isDropped := func(e driver.Event) bool { return e.Queue != queue }
	_, droppedA := sa.ev.wait(dctx, driver.EventReplyDropped, since, isDropped)
	cancel()
	dropped := droppedA || sb.ev.count(driver.EventReplyDropped, since) > 0
	if !dropped {
		t.Error("no server reported a reply dropped to the closed client's gone reply queue within 10 s")
	}
	r.pause(2 * time.Second)
	ldA.Stop()
	ldB.Stop()
	r.finish(5 * time.Second)

	dsent, dfailed := r.sentFailed(doomed)
	notes = append(notes, fmt.Sprintf("closed client: %d calls, %d failed", dsent, dfailed))
	sent, failed := r.sentFailed(other)
	if failed > 0 {
		t.Errorf("%d of the %d calls of the unaffected client failed", failed, sent)
	}
	if sent-otherSent0 < 10 {
		t.Errorf("the unaffected client sent only %d calls during the scenario", sent-otherSent0)
	}
	notes = append(notes,
		fmt.Sprintf("reply queue consumed again after %v; a call succeeded %v after the deletion", back.Round(time.Millisecond), took.Round(time.Millisecond)),
		fmt.Sprintf("unaffected client: %d calls, %d failed", sent, failed),
		fmt.Sprintf("replies dropped: srv-a %d, srv-b %d; late replies at the client %d",
			sa.ev.count(driver.EventReplyDropped, since), sb.ev.count(driver.EventReplyDropped, since), ev.count(driver.EventLateReply, since)),
		"client events: "+ev.summary())
	r.assertCore()
	r.l.AssertNoDuplicates(t)
	if ev.count(driver.EventReconnected, since) == 0 {
		t.Error("the client reported no reconnection of its reply consumer")
	}
}

// TestIntegrationS05ReplyQueueGoneLong loses a client's reply queue
// for longer than the servers retry a reply (3 s here; oslo's
// kombu_missing_consumer_retry_timeout): the client is cut off from the
// broker (its proxy refuses connections) and its reply queue deleted
// while each server runs one of its calls. The servers give up those
// replies, as they should; then the client comes back and declares its
// queue again, and its calls must work again within the recovery
// budget.
func TestIntegrationS05ReplyQueueGoneLong(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S5b", "a client cut off for 6 s while its reply queue is deleted and each server runs one of its calls "+
		"(their replies are abandoned after the 3 s retry)",
		"the servers drop the two replies (reply_dropped); the client declares its reply queue again once back; "+
			"a call of the client succeeds within 15 s of its return; no hung caller; success without execution 0; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S5b")
	p := r.proxy()
	r.start()
	r.server("srv-a", connURL(r.node.URL()), 20*time.Second)
	r.server("srv-b", connURL(r.node.URL()), 20*time.Second)
	ev := newConnEvents()
	c := r.client(r.open(connURL(r.proxyURL(p)), "cli", ev))
	if _, ok := r.probe(c, 20*time.Second); !ok {
		t.Fatal("no call succeeded before the fault")
	}
	qs := connReplyQueues(t, r)
	if len(qs) != 1 {
		t.Fatalf("reply queues %+v: want the client's only", qs)
	}
	queue := qs[0].Name

	// One call to each server, running 2.5 s (or until its deadline).
	slow0 := r.slowStarted()
	done := make(chan struct{}, 2)
	for _, s := range []string{"srv-a", "srv-b"} {
		go func() {
			_ = r.send(c, faulttest.OpCall, connCallTimeout, 2500, rpc.ToServer(s))
			done <- struct{}{}
		}()
	}
	for i := 0; i < 50 && r.slowStarted() < slow0+2; i++ {
		r.pause(100 * time.Millisecond)
	}
	if r.slowStarted() < slow0+2 {
		t.Fatal("the two calls did not start running within 5 s")
	}
	since := time.Now()
	r.l.MarkFault()
	p.Disable()
	if _, err := r.node.Ctl(r.ctx, "delete_queue", queue); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	for range 2 {
		select {
		case <-done:
		case <-dctx.Done():
		}
	}
	for dctx.Err() == nil && r.dropped(since) < 2 {
		r.pause(100 * time.Millisecond)
	}
	cancel()
	dropped := r.dropped(since)
	if dropped < 2 {
		t.Errorf("the servers dropped %d replies to the deleted reply queue within 10 s; want the 2 replies", dropped)
	}
	r.pause(time.Until(since.Add(6 * time.Second)))
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	r.l.MarkHealed()
	var redeclared time.Duration
	for i := 0; i < 60 && redeclared == 0 && time.Since(back) < connRecoveryBudget; i++ {
		for _, q := range connReplyQueues(t, r) {
			if q.Name == queue && q.Consumers == 1 {
				redeclared = time.Since(back)
			}
		}
		r.pause(200 * time.Millisecond)
	}
	if redeclared == 0 {
		t.Errorf("the client did not declare and consume its reply queue %s again within %v of its return", queue, connRecoveryBudget)
	}
	took, ok := r.probe(c, connRecoveryBudget)
	if !ok {
		t.Errorf("no call of the client succeeded within %v of its return, although its reply queue was declared "+
			"again after %v: the servers still drop the replies to it (%d dropped since the fault)",
			connRecoveryBudget, redeclared.Round(time.Millisecond), r.dropped(since))
	}
	notes = append(notes,
		fmt.Sprintf("replies dropped while the client was away: %d", dropped),
		fmt.Sprintf("reply queue declared again %v after the client's return", redeclared.Round(time.Millisecond)),
		fmt.Sprintf("a call succeeded: %v, after %v; replies dropped since the fault: %d", ok, took.Round(time.Millisecond), r.dropped(since)))
	r.finish(5 * time.Second)
	notes = append(notes, "client events: "+ev.summary())
	r.assertCore()
	r.l.AssertNoDuplicates(t)
}

// TestIntegrationS19BrokerUnreachable starts everything while the
// broker refuses connections (a disabled proxy: ECONNREFUSED), then lets
// the broker be reached.
func TestIntegrationS19BrokerUnreachable(t *testing.T) {
	var r *connRig
	var notes []string
	record(t, "S19", "broker unreachable at start (connection refused), reachable 8 s later",
		"a call with a 1 s deadline returns by it (+2 s); with retry 0 a call and a cast fail with a delivery failure before "+
			"their 5 s deadline; a retrying server shuts down within 5 s; a server and a notification listener started "+
			"while unreachable work within 15 s of the broker's return; no hung caller; nothing lost; no leak",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return strings.Join(notes, "; ") })

	r = newConnRig(t, "S19")
	p := r.proxy()
	p.Disable()
	r.start()
	t0 := time.Now()
	url := connURL(r.proxyURL(p))
	ev := newConnEvents()
	ctr := r.open(url, "cli", ev)
	c := r.client(ctr)

	// Servers and a listener start while the broker is unreachable.
	sa := r.newServer("srv-a", url)
	go func() { sa.done <- sa.srv.Serve(r.ctx) }()
	r.notificationListener(url)
	sx := r.newServer("srv-x", url)
	go func() { sx.done <- sx.srv.Serve(r.ctx) }()
	lx := r.notificationListener(url)

	start := time.Now()
	err := r.send(c, faulttest.OpCall, time.Second, 0)
	el := time.Since(start)
	notes = append(notes, fmt.Sprintf("call with a 1 s deadline returned after %v: %v", el.Round(time.Millisecond), faulttest.Classify(err)))
	if faulttest.Classify(err) != faulttest.ErrorTimeout {
		t.Errorf("call with a 1 s deadline to an unreachable broker: %v; want a timeout", err)
	}
	for _, op := range []faulttest.Op{faulttest.OpCall, faulttest.OpCast} {
		start := time.Now()
		err := r.send(c, op, 5*time.Second, 0, rpc.Retry(0))
		el := time.Since(start)
		notes = append(notes, fmt.Sprintf("%v with retry 0 returned after %v: %v", op, el.Round(time.Millisecond), faulttest.Classify(err)))
		if !errors.Is(err, messaging.ErrDeliveryFailure) {
			t.Errorf("%v with retry 0 to an unreachable broker: %v; want an error matching messaging.ErrDeliveryFailure", op, err)
		}
	}
	r.pause(time.Second)
	// A server still trying to connect shuts down at once.
	sctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	start = time.Now()
	if err := sx.srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown of a server still trying to connect: %v", err)
	}
	cancel()
	select {
	case err := <-sx.done:
		if !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve of a server shut down while trying to connect: %v; want rpc.ErrServerClosed", err)
		}
		sx.done <- err // for finish
	case <-time.After(5 * time.Second):
		t.Error("Serve of a server shut down while trying to connect did not return within 5 s")
	}
	notes = append(notes, fmt.Sprintf("shutdown of a server still connecting took %v", time.Since(start).Round(time.Millisecond)))
	// So does a notification listener.
	sctx, cancel = context.WithTimeout(r.ctx, 5*time.Second)
	start = time.Now()
	if err := lx.lis.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown of a notification listener still trying to connect: %v", err)
	}
	cancel()
	select {
	case err := <-lx.done:
		if !errors.Is(err, notify.ErrListenerClosed) {
			t.Errorf("Serve of a notification listener shut down while trying to connect: %v; want notify.ErrListenerClosed", err)
		}
		lx.done <- err // for finish
	case <-time.After(5 * time.Second):
		t.Error("Serve of a notification listener shut down while trying to connect did not return within 5 s")
	}
	notes = append(notes, fmt.Sprintf("shutdown of a notification listener still connecting took %v", time.Since(start).Round(time.Millisecond)))

	r.pause(time.Until(t0.Add(8 * time.Second)))
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	r.l.MarkFault()
	r.l.MarkHealed()
	took, ok := r.probe(c, connRecoveryBudget)
	if !ok {
		t.Errorf("no call succeeded within %v of the broker's return", connRecoveryBudget)
	}
	notes = append(notes, fmt.Sprintf("a call succeeded %v after the broker's return", took.Round(time.Millisecond)))
	n, err := notify.NewNotifier(ctr, "conn.s19", notify.WithSinks(notify.MessagingV2()), notify.WithTopics(r.topic))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := r.send(c, faulttest.OpCast, connCallTimeout, 0); err != nil {
			t.Errorf("cast after the broker's return: %v", err)
		}
		if err := r.notifyOne(n, 5*time.Second); err != nil {
			t.Errorf("notification after the broker's return: %v", err)
		}
	}
	r.finish(10 * time.Second)
	notes = append(notes, "client events: "+ev.summary())
	r.assertCore()
	r.l.AssertNoLost(t)
	r.l.AssertNoDuplicates(t)
}

// connErrorCount returns the number of errors of kind among the calls, casts
// and fanout casts.
func connErrorCount(rep faulttest.Report, kind faulttest.ErrorKind) int {
	return rep.Calls.Errors[kind] + rep.Casts.Errors[kind] + rep.Fanouts.Errors[kind]
}
