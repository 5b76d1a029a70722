package faultsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// The lifecycle scenarios: broker alarms (S7, S8), slow handlers and
// heartbeats (S10), a slow consumer (S11), a client crash (S12),
// start/stop cycles (S13) and a notification backlog (S17).

// lifeReport returns the report function of record for l.
func lifeReport(l *faulttest.Ledger) func() *faulttest.Report {
	return func() *faulttest.Report {
		r := l.Report()
		return &r
	}
}

func TestIntegrationS07MemoryAlarm(t *testing.T) {
	lifeAlarm(t, "S7", "memory")
}

func TestIntegrationS08DiskAlarm(t *testing.T) {
	lifeAlarm(t, "S8", "disk")
}

// lifeAlarm raises a memory or disk alarm on a node while calls, casts,
// fanout casts and 1 MiB casts flow, holds it for 8 s while a server
// drains a backlog, then clears it.
func lifeAlarm(t *testing.T, id, resource string) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: id})
	var notes string
	record(t, id, resource+" alarm for 8 s while 4 callers (2 s), 2 casters (1 s), a fanout caster and a 1 MiB caster send",
		"no caller past its deadline + 2 s; no success without execution, duplicate or lost cast; "+
			"a backlog is consumed during the alarm; calls succeed again after it; nothing leaks",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "life" + strings.ToLower(id)})
	url := lifeURL(n, 2, 10)
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	topic := "life" + strings.ToLower(id)
	backlog := topic + "backlog"
	setAlarm := n.SetMemoryAlarm
	if resource == "disk" {
		setAlarm = n.SetDiskAlarm
	}

	var srvEv, cliEv lifeEvents
	srvTr := lifeOpen(t, url, &srvEv)
	cliTr := lifeOpen(t, url, &cliEv)
	srvA := lifeServe(ctx, t, srvTr, messaging.Target{Topic: topic, Server: "a"}, lifeWorkEndpoint(l, "a", nil))
	srvB := lifeServe(ctx, t, srvTr, messaging.Target{Topic: topic, Server: "b"}, lifeWorkEndpoint(l, "b", nil))

	// The backlog: casts waiting in a queue whose server is stopped, to
	// be consumed while the alarm is on.
	var alarmOn atomic.Bool
	var backlogInAlarm atomic.Int32
	backlogEP := lifeWorkEndpoint(l, "backlog", func(context.Context, lifeArgs) {
		if alarmOn.Load() {
			backlogInAlarm.Add(1)
		}
	})
	pre := lifeServe(ctx, t, srvTr, messaging.Target{Topic: backlog, Server: "bl"}, backlogEP)
	if err := pre.stop(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := rpc.NewClient(cliTr, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	const backlogSize = 30
	for i := range backlogSize {
		if err := lifeSend(ctx, l, client, faulttest.OpCast, 5*time.Second, lifeArgs{}, rpc.Topic(backlog)); err != nil {
			t.Fatalf("backlog cast %d: %v", i, err)
		}
	}

	// The load.
	var healedAt atomic.Int64 // UnixNano; 0 before the alarm clears
	var errsInAlarm, callsAfterHeal atomic.Int32
	var firstAfterHeal atomic.Int64 // UnixNano of the first call sent and answered after the alarm
	account := func(op faulttest.Op, start time.Time, inAlarm bool, err error) {
		if err != nil && inAlarm {
			errsInAlarm.Add(1)
		}
		if h := healedAt.Load(); op == faulttest.OpCall && err == nil && h != 0 && start.UnixNano() > h {
			callsAfterHeal.Add(1)
			firstAfterHeal.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	over := &lifeOverruns{}
	op := func(name string, kind faulttest.Op, timeout time.Duration, a lifeArgs) func() {
		return func() {
			start, inAlarm := time.Now(), alarmOn.Load()
			// Stacks of the senders still blocked 1 s past a deadline,
			// taken once, to show where they wait.
			late := time.AfterFunc(timeout+time.Second, over.dump)
			err := lifeSend(ctx, l, client, kind, timeout, a)
			late.Stop()
			over.add(name, time.Since(start)-timeout)
			account(kind, start, inAlarm, err)
		}
	}
	ld := newLifeLoad()
	defer ld.Stop()
	for range 4 {
		ld.run(80, 250*time.Millisecond, op("call", faulttest.OpCall, 2*time.Second, lifeArgs{}))
	}
	for range 2 {
		ld.run(60, 250*time.Millisecond, op("cast", faulttest.OpCast, time.Second, lifeArgs{}))
	}
	ld.run(30, 500*time.Millisecond, op("fanout", faulttest.OpFanout, time.Second, lifeArgs{}))
	ld.run(20, 500*time.Millisecond, op("1MiB-cast", faulttest.OpCast, time.Second, lifeArgs{Pad: strings.Repeat("x", 1<<20)}))

	lifeSleep(ctx, 3*time.Second)
	if err := setAlarm(ctx, true); err != nil {
		t.Fatal(err)
	}
	l.MarkFault()
	alarmOn.Store(true)
	raised := time.Now()
	t.Logf("%s alarm raised", resource)

	// A server started during the alarm drains the backlog.
	drain := lifeServe(ctx, t, srvTr, messaging.Target{Topic: backlog, Server: "bl2"}, backlogEP)
	for i := 0; i < 100 && backlogInAlarm.Load() < backlogSize; i++ { // at most 10 s
		lifeSleep(ctx, 100*time.Millisecond)
	}
	blocked := 0
	if conns, err := n.ListConnections(ctx); err == nil {
		for _, c := range conns {
			if c.State == "blocked" || c.State == "blocking" {
				blocked++
			}
		}
	}
	lifeSleep(ctx, 8*time.Second-time.Since(raised))
	alarmOn.Store(false)
	if err := setAlarm(ctx, false); err != nil {
		t.Fatal(err)
	}
	l.MarkHealed()
	healed := time.Now()
	healedAt.Store(healed.UnixNano())
	t.Logf("%s alarm cleared after %v", resource, healed.Sub(raised).Round(time.Millisecond))

	// Recovery: calls sent after the alarm are answered (within the
	// reconnection back-off, at most 3 s per wait, and the call's 2 s).
	for i := 0; i < 200 && callsAfterHeal.Load() < 4; i++ { // at most 20 s
		lifeSleep(ctx, 100*time.Millisecond)
	}
	lifeSleep(ctx, time.Second)
	ld.Stop()

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.WaitReturned(wctx); err != nil {
		t.Error(err)
	}
	sctx, cancel2 := context.WithTimeout(ctx, 8*time.Second) // the settle period
	defer cancel2()
	_ = l.WaitDelivered(sctx)

	for _, s := range []*lifeServer{srvA, srvB, drain} {
		if err := s.stop(ctx); err != nil {
			t.Error(err)
		}
	}
	_ = cliTr.Close()
	_ = srvTr.Close()
	w.Stop()
	lifeFinish(ctx, t, l, n, "reply_", topic+"_fanout_", backlog+"_fanout_")

	r := l.Report()
	recovery := "none"
	if f := firstAfterHeal.Load(); f != 0 {
		recovery = time.Duration(f - healed.UnixNano()).Round(time.Millisecond).String()
	}
	notes = fmt.Sprintf("alarm held %v; connections blocked/blocking during it: %d; errors of sends started during it: %d; "+
		"backlog consumed during it: %d/%d; calls ok after it: %d (first answered %s after clearing); late executions %d; "+
		"longest past the deadline: %s; client events: %s; server events: %s",
		healed.Sub(raised).Round(100*time.Millisecond), blocked, errsInAlarm.Load(), backlogInAlarm.Load(), backlogSize,
		callsAfterHeal.Load(), recovery, r.Late, over, cliEv.String(), srvEv.String())
	if r.MaxOverrun > time.Second {
		over.mu.Lock()
		t.Logf("senders blocked 1 s past their deadline (first time):\n%s", over.stacks)
		over.mu.Unlock()
	}
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLost(t)
	if got := backlogInAlarm.Load(); got != backlogSize {
		t.Errorf("%d of the %d backlog casts were consumed during the alarm: consumers must keep receiving", got, backlogSize)
	}
	if errsInAlarm.Load() == 0 {
		t.Errorf("no send started during the alarm failed: the %s alarm had no effect", resource)
	}
	if callsAfterHeal.Load() == 0 {
		t.Errorf("no call sent after the alarm cleared succeeded within 20 s")
	}
}

func TestIntegrationS10SlowHandlers(t *testing.T) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S10"})
	var notes string
	record(t, "S10", "handlers sleeping 7-9 s (over 3 x the 2 s heartbeat) with no other traffic",
		"no connection lost or replaced; a call of 15 s to a 7 s handler and a call with a 4 s call monitor "+
			"to a 9 s handler succeed; casts run; nothing leaks",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "lifes10"})
	url := lifeURL(n, 2, 10)
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	topic := "lifes10"

	var srvEv, cliEv lifeEvents
	srvTr := lifeOpen(t, url, &srvEv)
	cliTr := lifeOpen(t, url, &cliEv)
	srv := lifeServe(ctx, t, srvTr, messaging.Target{Topic: topic, Server: "slow"}, lifeWorkEndpoint(l, "slow", nil))
	client, err := rpc.NewClient(cliTr, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	// A quick call opens every connection: publishing and reply queue.
	if err := lifeSend(ctx, l, client, faulttest.OpCall, 10*time.Second, lifeArgs{}); err != nil {
		t.Fatalf("first call: %v", err)
	}
	before, err := n.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var plainErr, monitorErr error
	var castErrs [2]error
	start := time.Now()
	wg.Go(func() {
		plainErr = lifeSend(ctx, l, client, faulttest.OpCall, 15*time.Second, lifeArgs{SleepMS: 7000})
	})
	wg.Go(func() {
		monitorErr = lifeSend(ctx, l, client, faulttest.OpCall, 25*time.Second, lifeArgs{SleepMS: 9000},
			rpc.CallMonitorTimeout(4*time.Second))
	})
	for i := range castErrs {
		wg.Go(func() {
			castErrs[i] = lifeSend(ctx, l, client, faulttest.OpCast, 5*time.Second, lifeArgs{SleepMS: 7000})
		})
	}
	wg.Wait()
	slow := time.Since(start)
	// The casts' handlers end 7 s after they started: wait for them
	// before the connections are compared.
	lifeSleep(ctx, 1*time.Second)
	after, err := n.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = l.WaitDelivered(wctx)
	if err := srv.stop(ctx); err != nil {
		t.Error(err)
	}
	_ = cliTr.Close()
	_ = srvTr.Close()
	w.Stop()
	lifeFinish(ctx, t, l, n, "reply_", topic+"_fanout_")

	notes = fmt.Sprintf("slow phase %v; connections of ours before %d, after %d; client events: %s; server events: %s",
		slow.Round(100*time.Millisecond), len(lifeOurs(before)), len(lifeOurs(after)), cliEv.String(), srvEv.String())
	if plainErr != nil {
		t.Errorf("call to a 7 s handler with a 15 s deadline: %v", plainErr)
	}
	if monitorErr != nil {
		t.Errorf("call with a 4 s call monitor to a 9 s handler: %v (heartbeats did not keep it alive)", monitorErr)
	}
	for i, err := range castErrs {
		if err != nil {
			t.Errorf("cast %d: %v", i, err)
		}
	}
	for _, c := range lifeOurs(before) {
		if !slices.ContainsFunc(after, func(a faulttest.ConnectionInfo) bool { return a.Addr == c.Addr && a.PID == c.PID }) {
			t.Errorf("connection %s (%s) was lost while handlers slept", c.Name, c.Addr)
		}
	}
	if len(lifeOurs(after)) != len(lifeOurs(before)) {
		t.Errorf("connections of ours: %d before the slow handlers, %d after", len(lifeOurs(before)), len(lifeOurs(after)))
	}
	for name, ev := range map[string]*lifeEvents{"client": &cliEv, "server": &srvEv} {
		if d := ev.count(driver.EventDisconnected); d > 0 {
			t.Errorf("%s transport: %d unexpected disconnections (%s)", name, d, ev.String())
		}
	}
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLost(t)
}

func TestIntegrationS11SlowConsumer(t *testing.T) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S11"})
	var notes string
	const (
		prefetch = 4
		flood    = 200
		padSize  = 64 << 10
	)
	record(t, "S11", "a server (max concurrency 4) whose handlers block on a gate while 200 casts of 64 KiB flood its topic",
		"unacked <= prefetch x consumers on the topic queue; a second server gets the rest; "+
			"heap growth below half the flood; no cast lost or duplicated; nothing leaks",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "lifes11"})
	url := lifeURL(n, 10, 30)
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	topic := "lifes11"

	gate := make(chan struct{})
	var gateOnce sync.Once
	openGate := func() { gateOnce.Do(func() { close(gate) }) }
	defer openGate()
	var execA, execB atomic.Int32
	hookA := func(ctx context.Context, _ lifeArgs) {
		execA.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	hookB := func(context.Context, lifeArgs) { execB.Add(1) }

	trA := lifeOpen(t, url, nil)
	srvA := lifeServe(ctx, t, trA, messaging.Target{Topic: topic, Server: "a"}, lifeWorkEndpoint(l, "a", hookA),
		rpc.WithMaxConcurrency(prefetch))
	unackedA, ok := trA.Conn().(interface{ Unacked() int })
	if !ok {
		t.Fatalf("the rabbit driver's connection %T has no Unacked method", trA.Conn())
	}
	cliTr := lifeOpen(t, url, nil)
	client, err := rpc.NewClient(cliTr, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc

	pad := strings.Repeat("p", padSize)
	ld := newLifeLoad()
	defer ld.Stop()
	var castErrs atomic.Int32
	for range 2 {
		ld.run(flood/2, 0, func() {
			if lifeSend(ctx, l, client, faulttest.OpCast, 5*time.Second, lifeArgs{Pad: pad}) != nil {
				castErrs.Add(1)
			}
		})
	}
	maxUnacked, maxDriverUnacked, polls := 0, 0, 0
	poll := func() {
		if q, found, err := lifeQueue(ctx, n, topic); err == nil && found {
			maxUnacked = max(maxUnacked, q.Unacked)
			polls++
		}
		maxDriverUnacked = max(maxDriverUnacked, unackedA.Unacked())
	}
	floodDone := make(chan struct{})
	go func() { ld.Wait(); close(floodDone) }()
	// The driver's count is sampled often, the broker's about once a
	// second (each listing runs rabbitmqctl).
	var sampler sync.WaitGroup
	var driverMax atomic.Int64
	var samples atomic.Int32
	sampler.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			u := int64(unackedA.Unacked())
			if u > driverMax.Load() {
				driverMax.Store(u)
			}
			samples.Add(1)
			select {
			case <-floodDone:
				return
			case <-tick.C:
			}
		}
	})
polling:
	for range 60 { // at most 60 polls of about a second
		poll()
		select {
		case <-floodDone:
			break polling
		default:
		}
	}
	ld.Stop()   // a flood not done by now stops
	<-floodDone // each cast is bounded by its 5 s context
	sampler.Wait()
	poll()
	maxDriverUnacked = max(maxDriverUnacked, int(driverMax.Load()))
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapGrowth := int64(ms.HeapAlloc) - int64(heapBefore)
	q, _, err := lifeQueue(ctx, n, topic)
	if err != nil {
		t.Fatal(err)
	}
	phase1 := fmt.Sprintf("phase 1 (one gated server): queue ready+unacked %d, unacked max %d in %d listings (driver %d in %d samples), executed %d",
		q.Messages, maxUnacked, polls, maxDriverUnacked, samples.Load(), execA.Load())
	t.Log(phase1)
	if maxUnacked > prefetch || maxDriverUnacked > prefetch {
		t.Errorf("%s: unacked above the prefetch %d of the only consumer", phase1, prefetch)
	}
	if got := execA.Load(); got > prefetch {
		t.Errorf("the gated server runs %d handlers, above its max concurrency %d", got, prefetch)
	}
	if limit := int64(flood * padSize / 2); heapGrowth > limit {
		t.Errorf("heap grew by %d bytes while %d casts of %d bytes waited: more than half the flood (%d)", heapGrowth, flood, padSize, limit)
	}

	// A second server on the topic gets the work the first cannot take.
	trB := lifeOpen(t, url, nil)
	srvB := lifeServe(ctx, t, trB, messaging.Target{Topic: topic, Server: "b"}, lifeWorkEndpoint(l, "b", hookB),
		rpc.WithMaxConcurrency(prefetch))
	want := int32(flood - 2*prefetch - int(castErrs.Load()))
	maxUnacked2 := 0
	for i := 0; i < 30 && execB.Load() < want; i++ { // at most 30 polls of about a second
		if q, found, err := lifeQueue(ctx, n, topic); err == nil && found {
			maxUnacked2 = max(maxUnacked2, q.Unacked)
		}
		lifeSleep(ctx, 200*time.Millisecond)
	}
	if got := execB.Load(); got < want {
		t.Errorf("the second server executed %d casts, want at least %d (all but what the gated one holds)", got, want)
	}
	if maxUnacked2 > 2*prefetch {
		t.Errorf("with two consumers, unacked max %d above 2 x prefetch %d", maxUnacked2, prefetch)
	}
	aHeld := execA.Load()
	openGate()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := l.WaitDelivered(sctx); err != nil {
		t.Error(err)
	}
	for _, s := range []*lifeServer{srvA, srvB} {
		if err := s.stop(ctx); err != nil {
			t.Error(err)
		}
	}
	_ = cliTr.Close()
	_ = trA.Close()
	_ = trB.Close()
	w.Stop()
	lifeFinish(ctx, t, l, n, "reply_", topic+"_fanout_")

	notes = fmt.Sprintf("%s; heap growth %.1f MiB for a %.1f MiB flood; phase 2: unacked max %d, executed by a %d (gated), by b %d; "+
		"after the gate: by a %d; cast errors %d",
		phase1, float64(heapGrowth)/(1<<20), float64(flood*padSize)/(1<<20), maxUnacked2, aHeld, execB.Load(),
		execA.Load(), castErrs.Load())
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLost(t)
	if castErrs.Load() > 0 {
		t.Errorf("%d casts failed while the broker was healthy", castErrs.Load())
	}
}

func TestIntegrationS12ClientCrash(t *testing.T) {
	if os.Getenv(lifeChildEnv) == "s12" {
		lifeChildS12(t)
		return
	}
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S12"})
	var notes string
	const ttl = 6 // seconds of x-expires
	record(t, "S12", "kill -9 of a process with a client (after a call) and a server (fanout queue)",
		"its reply and fanout queues remain with 0 consumers, then expire within x-expires ("+strconv.Itoa(ttl)+" s) + 10 s; "+
			"its connections close; only the topic queues remain; nothing leaks",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "lifes12"})
	url := lifeURL(n, 5, ttl)
	l.GoroutineBaseline()
	topic := "lifes12"

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id := l.Sent(cctx, faulttest.OpCall)
	child := startLifeChild(t, "TestIntegrationS12ClientCrash",
		lifeChildEnv+"=s12", lifeChildURL+"="+url, lifeChildTopic+"="+topic, lifeChildID+"="+id)
	for i, ready := 0, false; !ready; i++ { // bounded by cctx and 100 lines
		if i == 100 {
			t.Fatal("the child process did not get ready in 100 lines")
		}
		line, err := child.next(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(line) < 3 && (line[0] == "EXEC" || line[0] == "CALLED") {
			t.Fatalf("malformed line from the child process: %q", line)
		}
		switch line[0] {
		case "EXEC":
			l.Executed(line[1], line[2])
		case "CALLED":
			var cerr error
			if line[2] != "ok" {
				cerr = errors.New(strings.Join(line[2:], " "))
			}
			l.Returned(line[1], cerr)
		case "READY":
			ready = true
		}
	}
	childConn := lifeConnPrefix() + strconv.Itoa(child.pid) + ":"
	conns, err := n.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	childConns := 0
	for _, c := range conns {
		if strings.HasPrefix(c.Name, childConn) {
			childConns++
		}
	}
	if err := child.kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	l.MarkFault()

	// Right after the crash: the process's queues, without consumers.
	var orphans []faulttest.QueueInfo
	for i := 0; i < 20 && len(orphans) < 2; i++ { // at most 20 listings, within the ttl
		qs, err := n.ListQueues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		orphans = orphans[:0]
		for _, q := range qs {
			if (strings.HasPrefix(q.Name, "reply_") || strings.HasPrefix(q.Name, topic+"_fanout_")) && q.Consumers == 0 {
				orphans = append(orphans, q)
			}
		}
		if time.Since(killed) > ttl*time.Second {
			break
		}
	}
	seenAfter := time.Since(killed)
	var names []string
	for _, q := range orphans {
		names = append(names, q.Name)
	}
	// Then they expire.
	var st lifeBroker
	expired := time.Duration(0)
	for i := 0; i < 100 && time.Since(killed) < (ttl+10)*time.Second; i++ { // bounded by the ttl + 10 s
		st, err = lifeBrokerState(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(st.Queues, func(q string) bool { return slices.Contains(names, q) }) {
			expired = time.Since(killed)
			break
		}
		lifeSleep(ctx, 250*time.Millisecond)
	}
	lifeFinish(ctx, t, l, n, "reply_", topic+"_fanout_")

	notes = fmt.Sprintf("child connections before the kill %d; orphaned queues seen %v after the kill: %v; expired after %v; queues left %v, connections %d",
		childConns, seenAfter.Round(100*time.Millisecond), names, expired.Round(100*time.Millisecond), st.Queues, st.Conns)
	if childConns < 2 {
		t.Errorf("the child had %d connections before the kill, want at least 2 (publishing, reply queue, listener)", childConns)
	}
	if len(orphans) != 2 {
		t.Errorf("after the kill, queues without consumers: %v, want one reply_ and one %s_fanout_ queue", names, topic)
	}
	if expired == 0 {
		t.Errorf("the crashed process's queues %v still exist %v after the kill, past their x-expires of %d s + 10 s", names, time.Since(killed).Round(time.Second), ttl)
	}
	if want := []string{topic, topic + ".child"}; !slices.Equal(st.Queues, want) || st.Conns != 0 {
		t.Errorf("the node holds queues %v and %d connections, want only %v and none", st.Queues, st.Conns, want)
	}
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
}

// lifeChildS12 is the crashing process of S12: a server of the topic
// (hence a fanout queue) and a client that makes one call (hence a
// reply queue); then it waits to be killed.
func lifeChildS12(t *testing.T) {
	ctx := t.Context()
	tr, err := messaging.Open(os.Getenv(lifeChildURL))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	topic := os.Getenv(lifeChildTopic)
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "work", func(_ context.Context, a lifeArgs) (string, error) {
		lifeChildSay("EXEC", a.ID, "child")
		return a.ID, nil
	})
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: topic, Server: "child"}, []*rpc.Endpoint{ep})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := srv.Listen(lctx); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ctx) }()
	client, err := rpc.NewClient(tr, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getenv(lifeChildID)
	cctx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	var reply string
	if err := client.Call(cctx, "work", lifeArgs{ID: id}, &reply); err != nil {
		lifeChildSay("CALLED", id, "error:", strings.ReplaceAll(err.Error(), "\n", " "))
	} else {
		lifeChildSay("CALLED", id, "ok")
	}
	lifeChildSay("READY")
	lifeChildWait(t)
}

func TestIntegrationS13StartStopCycles(t *testing.T) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S13"})
	var notes string
	const cycles = 50
	record(t, "S13", strconv.Itoa(cycles)+" cycles of: open, serve, call, cast, fanout cast, graceful stop, close",
		"after each cycle: only the topic queues (topic, topic.srv) remain, no connection, no goroutine; "+
			"every message of the cycle executed once",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "lifes13"})
	url := lifeURL(n, 10, 30)
	topic := "lifes13"
	allowed := []string{topic, topic + ".srv"}
	l.GoroutineBaseline()

	done := 0
	start := time.Now()
	var maxQueues int
	for i := range cycles {
		// A cycle takes about a second; two minutes for all means a
		// cycle hangs (each wait in it is bounded).
		if time.Since(start) > 2*time.Minute {
			t.Errorf("stopped after %d cycles in %v: a cycle hangs", done, time.Since(start).Round(time.Second))
			break
		}
		if err := lifeCycle(ctx, t, l, url, topic); err != nil {
			t.Errorf("cycle %d: %v", i, err)
			break
		}
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.CheckGoroutines(gctx)
		cancel()
		if r := l.Report(); err != nil || r.LeakedGoroutines > 0 {
			t.Errorf("cycle %d: %d goroutines left (%v):\n%s", i, r.LeakedGoroutines, err, r.GoroutineDump)
			break
		}
		var st lifeBroker
		clean := false
		for range 25 { // at most 25 listings, about 10 s
			if st, err = lifeBrokerState(ctx, n); err != nil {
				break
			}
			maxQueues = max(maxQueues, len(st.Queues))
			if clean = slices.Equal(st.Queues, allowed) && st.Conns == 0; clean {
				break
			}
			lifeSleep(ctx, 100*time.Millisecond)
		}
		if !clean {
			t.Errorf("cycle %d: after the graceful stop the node holds queues %v and %d connections (%v), want only %v and none",
				i, st.Queues, st.Conns, err, allowed)
			break
		}
		done++
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = l.WaitDelivered(wctx)
	lifeFinish(ctx, t, l, n, "reply_", topic+"_fanout_")

	notes = fmt.Sprintf("%d of %d cycles clean, %.2f s per cycle with its checks; most queues seen %d",
		done, cycles, time.Since(start).Seconds()/float64(max(done, 1)), maxQueues)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLost(t)
	if r := l.Report(); r.Calls.OK != done || r.Casts.Executions != done || r.Fanouts.Executions != done {
		t.Errorf("report %s: want %d calls answered, casts and fanout casts executed", r, done)
	}
}

// lifeCycle runs one S13 cycle: it opens a server and a client on
// transports of their own, sends a call, a cast and a fanout cast, waits
// for them to run, and stops everything gracefully.
func lifeCycle(ctx context.Context, t *testing.T, l *faulttest.Ledger, url, topic string) error {
	str, err := messaging.Open(url, messaging.WithLogger(lifeLogger(t)))
	if err != nil {
		return err
	}
	defer str.Close()
	ctr, err := messaging.Open(url, messaging.WithLogger(lifeLogger(t)))
	if err != nil {
		return err
	}
	defer ctr.Close()
	srv := lifeServe(ctx, t, str, messaging.Target{Topic: topic, Server: "srv"}, lifeWorkEndpoint(l, "srv", nil))
	client, err := rpc.NewClient(ctr, messaging.Target{Topic: topic})
	if err != nil {
		return err
	}
	errs := []error{
		lifeSend(ctx, l, client, faulttest.OpCall, 5*time.Second, lifeArgs{}),
		lifeSend(ctx, l, client, faulttest.OpCast, 5*time.Second, lifeArgs{}, rpc.ToServer("srv")),
		lifeSend(ctx, l, client, faulttest.OpFanout, 5*time.Second, lifeArgs{}),
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	errs = append(errs, l.WaitDelivered(wctx), srv.stop(ctx), ctr.Close(), str.Close())
	return errors.Join(errs...)
}

func TestIntegrationS17NotificationBacklog(t *testing.T) {
	if os.Getenv(lifeChildEnv) == "s17" {
		lifeChildS17(t)
		return
	}
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S17"})
	var notes string
	const (
		backlogA = 200
		backlogB = 100
		held     = 10 // the prefetch of the listener that is killed
	)
	record(t, "S17", "200 notifications sent with no listener, then a listener started; "+
		"variant: 100 more, a listener process killed -9 holding 10 unacknowledged",
		"every confirmed notification received (at least once); no duplicate without a crash; "+
			"the 10 held by the killed listener redelivered; nothing leaks",
		lifeReport(l), func() string { return notes })

	ctx := t.Context()
	n := faulttest.StartNode(t, faulttest.NodeOptions{Name: "lifes17"})
	url := lifeURL(n, 10, 30)
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	topicA, topicB := "lifes17a", "lifes17b"

	pubTr := lifeOpen(t, url, nil)
	send := func(topic string, count int) int {
		nt, err := notify.NewNotifier(pubTr, "life.s17", notify.WithSinks(notify.MessagingV2()), notify.WithTopics(topic))
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for range count {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			id := l.Sent(cctx, faulttest.OpNotify)
			err := nt.Info(cctx, "life.backlog", lifeNotice{ID: id})
			cancel()
			l.Returned(id, err)
			if err == nil {
				ok++
			}
		}
		return ok
	}
	tally := &lifeTally{by: map[string][]string{}}

	// The backlog.
	sentA := send(topicA, backlogA)
	qA, foundA, err := lifeQueue(ctx, n, topicA+".info")
	if err != nil {
		t.Fatal(err)
	}
	lisTr := lifeOpen(t, url, nil)
	lisA := lifeListen(ctx, t, lisTr, topicA, "a", l, tally)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := l.WaitDelivered(wctx); err != nil {
		t.Error(err)
	}
	rA := l.Report()

	// The variant: a listener process killed while it holds
	// notifications unacknowledged.
	sentB := send(topicB, backlogB)
	child := startLifeChild(t, "TestIntegrationS17NotificationBacklog",
		lifeChildEnv+"=s17", lifeChildURL+"="+url, lifeChildTopic+"="+topicB, lifeChildID+"="+strconv.Itoa(held))
	cctx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	var childIDs []string
	for i := 0; len(childIDs) < held; i++ { // bounded by cctx and 100 lines
		if i == 100 {
			t.Fatalf("the child process reported %d notifications in 100 lines", len(childIDs))
		}
		line, err := child.next(cctx)
		if err != nil {
			t.Fatalf("after %d notifications taken by the child: %v", len(childIDs), err)
		}
		if line[0] == "EXEC" && len(line) == 2 {
			l.Executed(line[1], "child")
			tally.add(line[1], "child")
			childIDs = append(childIDs, line[1])
		}
	}
	if err := child.kill(); err != nil {
		t.Fatal(err)
	}
	lisB := lifeListen(ctx, t, lisTr, topicB, "b", l, tally)
	redelivered := 0
	for i := 0; i < 200; i++ { // at most 20 s
		redelivered = 0
		for _, id := range childIDs {
			if slices.Contains(tally.get(id), "b") {
				redelivered++
			}
		}
		if redelivered == len(childIDs) {
			break
		}
		lifeSleep(ctx, 100*time.Millisecond)
	}
	wctx2, cancel3 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel3()
	if err := l.WaitDelivered(wctx2); err != nil {
		t.Error(err)
	}

	for _, stop := range []func(context.Context) error{lisA, lisB} {
		if err := stop(ctx); err != nil {
			t.Error(err)
		}
	}
	_ = lisTr.Close()
	_ = pubTr.Close()
	w.Stop()
	lifeFinish(ctx, t, l, n, "reply_")

	r := l.Report()
	var unexpected []string
	for id, by := range tally.snapshot() {
		if len(by) > 1 && !(slices.Contains(childIDs, id) && len(by) == 2) {
			unexpected = append(unexpected, fmt.Sprintf("%s by %v", id, by))
		}
	}
	notes = fmt.Sprintf("backlog: %d confirmed, queue %s.info held %d before the listener, received %d, duplicates %d; "+
		"variant: %d confirmed, %d taken by the killed listener, %d of them redelivered, duplicates %d in all",
		sentA, topicA, qA.Messages, rA.Notifications.Executed, rA.Notifications.Duplicates,
		sentB, len(childIDs), redelivered, r.Notifications.Duplicates)
	if sentA != backlogA || sentB != backlogB {
		t.Errorf("notifications confirmed: %d of %d and %d of %d, with a healthy broker", sentA, backlogA, sentB, backlogB)
	}
	if !foundA || qA.Messages != sentA {
		t.Errorf("before the listener started, queue %s.info held %d messages (found %v), want the %d confirmed", topicA, qA.Messages, foundA, sentA)
	}
	if rA.Notifications.Executed != sentA || rA.Notifications.Duplicates != 0 {
		t.Errorf("backlog: %d of %d notifications received, %d duplicated, want all once", rA.Notifications.Executed, sentA, rA.Notifications.Duplicates)
	}
	if redelivered != len(childIDs) {
		t.Errorf("%d of the %d notifications held by the killed listener were redelivered", redelivered, len(childIDs))
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		t.Errorf("duplicates other than the killed listener's redeliveries: %v", unexpected)
	}
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoLost(t)
}

// lifeChildS17 is the listener process of S17 that is killed: it takes
// at most OMSG_FAULTSUITE_LIFE_ID notifications at once, reports each
// and never acknowledges them.
func lifeChildS17(t *testing.T) {
	ctx := t.Context()
	held, err := strconv.Atoi(os.Getenv(lifeChildID))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := messaging.Open(os.Getenv(lifeChildURL))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ep := &notify.Endpoint{Info: func(ctx context.Context, nt *notify.Notification) error {
		var p lifeNotice
		if err := json.Unmarshal(nt.Payload, &p); err != nil {
			return err
		}
		lifeChildSay("EXEC", p.ID)
		<-ctx.Done()
		return ctx.Err()
	}}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: os.Getenv(lifeChildTopic)}}, []*notify.Endpoint{ep},
		notify.WithMaxConcurrency(held))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = lis.Serve(ctx) }()
	lifeChildSay("READY")
	lifeChildWait(t)
}
