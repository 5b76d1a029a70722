package faultsuite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// TestIntegrationS06ClusterFaults runs the scenarios that need a 3-node
// cluster on one cluster, one after the other, making the cluster whole
// again between them: S6 (the node the client is on dies), S9 (the node
// that homes a server's queues dies) and S14 (the leader of quorum
// queues dies). Run one with -run 'TestIntegrationS06ClusterFaults/S09'.
func TestIntegrationS06ClusterFaults(t *testing.T) {
	c := faulttest.StartCluster(t, 3, faulttest.NodeOptions{Name: "clu"})
	t.Run("S06NodeFailure", func(t *testing.T) { cluNodeFailure(t, c) })
	if !cluHeal(t, c) {
		return
	}
	t.Run("S09QueueOnDeadNode", func(t *testing.T) { cluQueueOnDeadNode(t, c) })
	if !cluHeal(t, c) {
		return
	}
	t.Run("S14QuorumLeaderLoss", func(t *testing.T) { cluQuorumLeaderLoss(t, c) })
}

// cluNodeFailure is S6: with a multi-host URL, the node that a
// transport's publishing, reply and listener connections are on is
// killed while calls and casts flow.
func cluNodeFailure(t *testing.T, c *faulttest.Cluster) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S6"})
	var notes cluNotes
	record(t, "S6", "kill -9 of the cluster node that a transport's publishing, reply and listener connections are on "+
		"(multi-host URL, 3 nodes), under 4 callers, 2 casters and a fanout caster",
		fmt.Sprintf("hung 0; swe 0; dup 0; the publishing, reply and listener connections all reconnect to live nodes "+
			"and a call succeeds within the back-off budget (%v); 10 calls after recovery all succeed; no leaks", cluRecoveryBudget),
		cluReport(l), notes.String)
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	log := newCluLog(t, slog.LevelWarn)
	topic := "clus6" + cluRandom()
	url := cluURL(c.URL())

	evA := newCluEvents()
	trA := cluOpen(t, url, log, evA)
	trB := cluOpen(t, url, log, nil)
	srvA, err := cluStartServer(ctx, t, trA, messaging.Target{Topic: topic, Server: "a"}, l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := cluStartServer(ctx, t, trB, messaging.Target{Topic: topic, Server: "b"}, l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rpc.NewClient(trA, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b"} {
		if err := cluSend(ctx, l, faulttest.OpCall, 10*time.Second, cluCall(client, rpc.ToServer(s))); err != nil {
			t.Fatalf("call to server %s before the fault: %v", s, err)
		}
	}
	roles := []string{"publish", "reply", "listen"}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	before, ok := evA.waitUp(wctx, roles, time.Time{}, "")
	wcancel()
	if !ok {
		t.Fatalf("the transport did not report its three connections: %v", before)
	}
	on := before["publish"].Addr
	victim := cluNodeAt(c, on)
	if victim == nil {
		t.Fatalf("the publishing connection is on %s, which is no member of the cluster", on)
	}
	for _, r := range roles {
		notes.add("%s on %s before", r, before[r].Addr)
		if before[r].Addr != on {
			// The driver starts every connection of a Conn on the same
			// host: this would be a change of design, not a fault.
			t.Errorf("the %s connection started on %s, the publishing one on %s", r, before[r].Addr, on)
		}
	}

	load := cluStartLoad(ctx, l, 100*time.Millisecond, 120,
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(client)},
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(client)},
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(client)},
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(client)},
		cluWorker{faulttest.OpCast, cluCallTimeout, cluCast(client, rpc.Mandatory(true))},
		cluWorker{faulttest.OpCast, cluCallTimeout, cluCast(client, rpc.Mandatory(true))},
		cluWorker{faulttest.OpFanout, cluCallTimeout, cluCast(client, rpc.Fanout(true))},
	)
	cluSleep(ctx, 2*time.Second)

	killed := time.Now()
	l.MarkFault()
	if err := victim.Kill(ctx); err != nil {
		load.Stop(10 * time.Second)
		t.Fatal(err)
	}
	t.Logf("killed %s (%s), which had the transport's connections", victim.Name(), on)
	wctx, wcancel = context.WithTimeout(ctx, cluRecoveryBudget)
	after, ok := evA.waitUp(wctx, roles, killed, on)
	wcancel()
	for _, r := range roles {
		ev, up := after[r]
		if !up {
			t.Errorf("the %s connection did not reconnect to a live node within %v", r, cluRecoveryBudget)
			notes.add("%s not reconnected", r)
			continue
		}
		notes.add("%s on %s after %v", r, ev.Addr, ev.Time.Sub(killed).Round(time.Millisecond))
	}
	if !ok {
		t.Logf("events: %d disconnected, %d reconnected since the kill", evA.count(driver.EventDisconnected, killed),
			evA.count(driver.EventReconnected, killed))
	}
	cluSleep(ctx, 3*time.Second)
	if !load.Stop(2*cluCallTimeout + l.Slack()) {
		t.Error("the senders did not return after the load was stopped")
	}

	r := l.Report()
	if !r.Recovered || r.TimeToRecover > cluRecoveryBudget {
		t.Errorf("first success after the kill: %v (recovered %v), want within %v", r.TimeToRecover, r.Recovered, cluRecoveryBudget)
	}
	failed := 0
	for range 10 {
		if err := cluSend(ctx, l, faulttest.OpCall, cluCallTimeout, cluCall(client)); err != nil {
			failed++
			t.Errorf("call after recovery: %v", err)
		}
	}
	notes.add("%d/10 calls after recovery failed", failed)

	errs := []error{srvA.stop(), srvB.stop(), trA.Close(), trB.Close()}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	w.Stop()
	cluFinish(ctx, t, l, cluLive(c, victim), &notes, topic)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLeaks(t)
	// Casts confirmed while the topic queue was on the killed node are
	// lost with it (a classic queue's messages live on one node), so
	// losses are measured here, not asserted.
	r = l.Report()
	notes.add("lost casts/fanouts %d (broker-side loss with the node), late executions %d", r.Lost, r.Late)
}

// cluFinish settles a scenario whose clients and servers are closed and
// checks for leaks on node: reply and fanout queues of topic,
// connections of this program, and goroutines.
func cluFinish(ctx context.Context, t *testing.T, l *faulttest.Ledger, node *faulttest.Node, notes *cluNotes, topics ...string) {
	t.Helper()
	settle, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := l.WaitDelivered(settle); err != nil {
		notes.add("settle: %v", err)
	}
	cancel()
	if node == nil {
		t.Error("no live node to check for leaks")
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	f := faulttest.LeakFilter{
		QueuePrefixes:      []string{"reply_"},
		ConnectionPrefixes: []string{cluProgram()},
	}
	for _, topic := range topics {
		f.QueuePrefixes = append(f.QueuePrefixes, topic+"_fanout_")
	}
	if err := l.CheckLeaks(lctx, node, f); err != nil {
		t.Error(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	if err := l.CheckGoroutines(gctx); err != nil {
		t.Error(err)
	}
}

// cluQueueOnDeadNode is S9: the node that homes a server's topic queue
// (a classic queue) dies while the server consumes it from another
// node. A non-durable queue is removed with its node, so the server
// declares it again elsewhere; a durable one cannot be declared or
// consumed until its node returns (404 NOT_FOUND), and the server must
// retry with back-off, not in a tight loop.
func cluQueueOnDeadNode(t *testing.T, c *faulttest.Cluster) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S9"})
	var notes cluNotes
	const window = 8 * time.Second
	const freshListen = 5 * time.Second
	record(t, "S9", "kill -9 of the node that homes two servers' topic queues (classic, one non-durable, one durable) "+
		"while they consume them through another node; a new server listens during the outage; the node restarts",
		fmt.Sprintf("non-durable: the server declares its queue again and a call succeeds within %v; durable: the broker's "+
			"NOT_FOUND is logged, the server retries with back-off (≥ 2 and ≤ the back-off's maximum of connection attempts "+
			"over %v), a new server's Listen returns an error by its %v deadline after bounded attempts, and the server "+
			"consumes again within %v of the restart, then stops reconnecting; hung 0; swe 0; dup 0; no leaks",
			cluRecoveryBudget, window, freshListen, cluRecoveryBudget),
		cluReport(l), notes.String)
	ctx, cancel := context.WithTimeout(t.Context(), 58*time.Second)
	defer cancel()
	base := goleak.IgnoreCurrent()
	w := l.StartWatchdog(t)
	log := newCluLog(t, slog.LevelWarn)
	a, b := c.Nodes[0], c.Nodes[1]
	id := cluRandom()
	topicN, topicD := "clus9n"+id, "clus9d"+id
	// The durable queues need a durable control exchange, which the
	// earlier scenarios' default one is not.
	exD := messaging.WithControlExchange("clus9x" + id)

	// Home both topic queues on b, declared as the driver declares them.
	raw, err := amqp.Dial(b.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := raw.Channel()
	if err == nil {
		_, err = ch.QueueDeclare(topicN, false, false, false, false, amqp.Table{})
	}
	if err == nil {
		_, err = ch.QueueDeclare(topicD, true, false, false, false, amqp.Table{})
	}
	_ = raw.Close()
	if err != nil {
		t.Fatal(err)
	}

	// Each server's transport reaches a through a proxy of its own, which
	// counts its connection attempts.
	pN, pD, pL := faulttest.NewProxy(t, a.Addr()), faulttest.NewProxy(t, a.Addr()), faulttest.NewProxy(t, a.Addr())
	proxied := func(p *faulttest.Proxy, extra ...string) string {
		u, err := p.URL(cluURL(a.URL(), extra...))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	trN := cluOpen(t, proxied(pN), log, nil)
	trD := cluOpen(t, proxied(pD, "amqp_durable_queues=true"), log, nil, exD)
	trCN := cluOpen(t, cluURL(a.URL()), log, nil)
	trCD := cluOpen(t, cluURL(a.URL(), "amqp_durable_queues=true"), log, nil, exD)
	srvN, err := cluStartServer(ctx, t, trN, messaging.Target{Topic: topicN, Server: "n"}, l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srvD, err := cluStartServer(ctx, t, trD, messaging.Target{Topic: topicD, Server: "d"}, l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	clientN, err := rpc.NewClient(trCN, messaging.Target{Topic: topicN})
	if err != nil {
		t.Fatal(err)
	}
	clientD, err := rpc.NewClient(trCD, messaging.Target{Topic: topicD})
	if err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*rpc.Client{clientN, clientD} {
		if err := cluSend(ctx, l, faulttest.OpCall, 10*time.Second, cluCall(cl)); err != nil {
			t.Fatalf("call before the fault: %v", err)
		}
	}

	attemptsN0, attemptsD0 := pN.Stats().Accepted, pD.Stats().Accepted
	notFound0 := log.notFoundCount()
	killed := time.Now()
	l.MarkFault()
	if err := b.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s, the home of %s and %s", b.Name(), topicN, topicD)
	load := cluStartLoad(ctx, l, 250*time.Millisecond, 40,
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(clientN)},
		cluWorker{faulttest.OpCall, cluCallTimeout, cluCall(clientD)},
	)

	// A server that starts now cannot declare its queue.
	trL := cluOpen(t, proxied(pL, "amqp_durable_queues=true"), log, nil, exD)
	listenStart := time.Now()
	srvL, err := cluStartServer(ctx, t, trL, messaging.Target{Topic: topicD, Server: "late"}, l, freshListen)
	listenTook := time.Since(listenStart)
	attemptsL := pL.Stats().Accepted
	switch {
	case err == nil:
		t.Errorf("a new server listened on %s, whose home node is down", topicD)
		_ = srvL.stop()
	case listenTook > freshListen+l.Slack():
		t.Errorf("Listen returned after %v, past its %v deadline: %v", listenTook.Round(time.Millisecond), freshListen, err)
	}
	notes.add("new server's Listen: %v after %v and %d connection attempts", err, listenTook.Round(time.Millisecond), attemptsL)
	if maxL := int64(cluMaxAttempts(freshListen)); attemptsL < 2 || attemptsL > maxL {
		t.Errorf("the new server made %d connection attempts in %v, want 2 to %d", attemptsL, freshListen, maxL)
	}
	_ = trL.Close()

	cluSleep(ctx, window-time.Since(killed))
	attemptsN, attemptsD := pN.Stats().Accepted-attemptsN0, pD.Stats().Accepted-attemptsD0
	notFound := log.notFoundCount() - notFound0
	maxD := int64(cluMaxAttempts(window))
	notes.add("over %v: non-durable server %d connection attempts, durable server %d (max %d), NOT_FOUND logged %d times",
		window, attemptsN, attemptsD, maxD, notFound)
	if attemptsD < 2 || attemptsD > maxD {
		t.Errorf("the durable queue's server made %d connection attempts in %v, want 2 to %d (back-off)", attemptsD, window, maxD)
	}
	if attemptsN < 1 || attemptsN > maxD {
		t.Errorf("the non-durable queue's server made %d connection attempts in %v, want 1 to %d", attemptsN, window, maxD)
	}
	if notFound == 0 {
		t.Error("the driver never logged the broker's NOT_FOUND for the queue on the dead node")
	}
	// The non-durable queue was declared again on a live node.
	if took, err := cluProbe(ctx, l, faulttest.OpCall, cluRecoveryBudget, cluCall(clientN)); err != nil {
		t.Errorf("non-durable queue's server, after the kill: %v", err)
	} else {
		notes.add("non-durable: call ok %v after the window", took.Round(time.Millisecond))
	}

	healed := time.Now()
	if err := b.Start(ctx); err != nil {
		load.Stop(10 * time.Second)
		t.Fatal(err)
	}
	l.MarkHealed()
	notes.add("restart took %v", time.Since(healed).Round(time.Millisecond))
	up := time.Now()
	took, err := cluProbe(ctx, l, faulttest.OpCall, cluRecoveryBudget, cluCall(clientD))
	if err != nil {
		t.Errorf("durable queue's server, after the node restarted: %v", err)
	} else {
		notes.add("durable: call ok %v after the node accepted connections", took.Round(time.Millisecond))
	}
	if !load.Stop(2*cluCallTimeout + l.Slack()) {
		t.Error("the senders did not return after the load was stopped")
	}
	// Once consuming again, the server stops making connections.
	settled := pD.Stats().Accepted
	cluSleep(ctx, 2*time.Second)
	if extra := pD.Stats().Accepted - settled; err == nil && extra != 0 {
		t.Errorf("the durable queue's server made %d more connections after it recovered", extra)
	}
	notes.add("durable recovered %v after restart began", up.Sub(healed).Round(time.Millisecond)+took.Round(time.Millisecond))

	errs := []error{srvN.stop(), srvD.stop(), trN.Close(), trD.Close(), trCN.Close(), trCD.Close()}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	w.Stop()
	for _, p := range []*faulttest.Proxy{pN, pD, pL} {
		p.Close()
	}
	settle, scancel := context.WithTimeout(ctx, 5*time.Second)
	_ = l.WaitReturned(settle)
	scancel()
	lctx, lcancel := context.WithTimeout(ctx, 15*time.Second)
	defer lcancel()
	f := faulttest.LeakFilter{
		QueuePrefixes:      []string{"reply_", topicN + "_fanout_", topicD + "_fanout_"},
		ConnectionPrefixes: []string{cluProgram()},
	}
	if err := l.CheckLeaks(lctx, a, f); err != nil {
		t.Error(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	if n, dump := cluGoroutines(gctx, base); n > 0 {
		t.Errorf("%d goroutines leaked:\n%s", n, dump)
	} else {
		notes.add("goroutines leaked 0")
	}
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLeaks(t)
}

// cluQuorumLeaderLoss is S14: with rabbit_quorum_queue, the leader of
// the topic queue and of the notification queue is killed while casts
// and notifications flow.
func cluQuorumLeaderLoss(t *testing.T, c *faulttest.Cluster) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S14"})
	var notes cluNotes
	record(t, "S14", "kill -9 of the leader node of quorum queues (rabbit_quorum_queue=true, 3 nodes), which is also the node "+
		"of the publishing connection, under 2 casters and 2 notifiers (each send bounded to 3 s)",
		fmt.Sprintf("confirmed casts and notifications all executed (lost 0), none twice (dup 0); failed sends "+
			"return delivery or timeout errors (nacks and lost confirms surfaced); a cast and a notification sent after the kill "+
			"are confirmed within %v of it; hung 0; no leaks", cluRecoveryBudget),
		cluReport(l), notes.String)
	ctx, cancel := context.WithTimeout(t.Context(), 58*time.Second)
	defer cancel()
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	log := newCluLog(t, slog.LevelWarn)
	id := cluRandom()
	topic, ntopic := "clus14"+id, "clus14n"+id
	// Quorum queues are durable and need a durable control exchange.
	ex := messaging.WithControlExchange("clus14x" + id)
	url := cluURL(c.URL(), "rabbit_quorum_queue=true")

	// The publishing transport's node is made the leader of both queues
	// (declared there first, as the driver declares them), so that the
	// kill takes the leader and the publisher's connection at once.
	evP := newCluEvents()
	trP := cluOpen(t, url, log, evP, ex)
	if err := trP.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	up, ok := evP.waitUp(wctx, []string{"publish"}, time.Time{}, "")
	wcancel()
	victim := cluNodeAt(c, up["publish"].Addr)
	if !ok || victim == nil {
		t.Fatalf("the publishing connection is on no member of the cluster: %v", up)
	}
	for _, q := range []string{topic, ntopic + ".info"} {
		if err := cluRawDeclareQuorum(victim, q); err != nil {
			t.Fatal(err)
		}
	}

	evS := newCluEvents()
	trS := cluOpen(t, url, log, evS, ex)
	srv, err := cluStartServer(ctx, t, trS, messaging.Target{Topic: topic, Server: "q"}, l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := cluStartListener(ctx, t, trS, ntopic, "listener", l, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rpc.NewClient(trP, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	notifier, err := notify.NewNotifier(trP, "clu.s14", notify.WithTopics(ntopic), notify.WithSinks(notify.MessagingV2()))
	if err != nil {
		t.Fatal(err)
	}
	if err := cluSend(ctx, l, faulttest.OpCast, 10*time.Second, cluCast(client)); err != nil {
		t.Fatalf("cast before the fault: %v", err)
	}
	if err := cluSend(ctx, l, faulttest.OpNotify, 10*time.Second, cluNotify(notifier)); err != nil {
		t.Fatalf("notification before the fault: %v", err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 10*time.Second)
	err = l.WaitDelivered(wctx)
	wcancel()
	if err != nil {
		t.Fatalf("the first cast and notification were not delivered: %v", err)
	}
	for _, q := range []string{topic, ntopic + ".info"} {
		leader, err := cluQueueLeader(ctx, victim, q)
		if err != nil {
			t.Fatal(err)
		}
		if leader != victim.Name() {
			t.Fatalf("the leader of %s is %s, not %s where it was declared", q, leader, victim.Name())
		}
	}
	leader := victim.Name()
	notes.add("publisher and both queue leaders on %s before", leader)

	// Raw channels publishing to a third quorum queue led by the victim:
	// one opened before the kill, one right after it.
	rawQueue := "clus14raw" + id
	if err := cluRawDeclareQuorum(victim, rawQueue); err != nil {
		t.Fatal(err)
	}
	raw, err := cluRawQuorumOpen(cluLive(c, victim), rawQueue, true)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.close()
	firstOK := newCluFirstOK()
	load := cluStartLoad(ctx, l, 75*time.Millisecond, 90,
		cluWorker{faulttest.OpCast, 3 * time.Second, firstOK.wrap(faulttest.OpCast, cluCast(client))},
		cluWorker{faulttest.OpCast, 3 * time.Second, firstOK.wrap(faulttest.OpCast, cluCast(client))},
		cluWorker{faulttest.OpNotify, 3 * time.Second, firstOK.wrap(faulttest.OpNotify, cluNotify(notifier))},
		cluWorker{faulttest.OpNotify, 3 * time.Second, firstOK.wrap(faulttest.OpNotify, cluNotify(notifier))},
	)
	cluSleep(ctx, 2500*time.Millisecond)
	killed := time.Now()
	l.MarkFault()
	if err := victim.Kill(ctx); err != nil {
		load.Stop(10 * time.Second)
		t.Fatal(err)
	}
	t.Logf("killed %s, the leader of %s", victim.Name(), topic)
	rawDone := make(chan string, 2)
	go func() { rawDone <- "raw channel opened before the kill: " + raw.run(ctx, 10*time.Second) }()
	go func() {
		late, err := cluRawQuorumOpen(cluLive(c, victim), rawQueue, false)
		if err != nil {
			rawDone <- "raw channel opened after the kill: " + err.Error()
			return
		}
		defer late.close()
		rawDone <- "raw channel opened right after the kill: " + late.run(ctx, 10*time.Second)
	}()
	// Let the load run to its end (90 sends each, at least 7 s), or stop
	// it after 20 s: the checks below tell why it took long.
	if !load.wait(20 * time.Second) {
		notes.add("load stopped after 20 s")
		if !load.Stop(3*time.Second + l.Slack()) {
			t.Error("the senders did not return after the load was stopped")
		}
	}
	notes.add("%s", <-rawDone)
	notes.add("%s", <-rawDone)
	raw.close()
	live := cluLive(c, victim)
	if newLeader, err := cluQueueLeader(ctx, live, topic); err == nil {
		notes.add("topic queue leader after: %s", newLeader)
		if newLeader == leader {
			t.Errorf("the topic queue's leader is still the killed node %s", leader)
		}
	} else {
		t.Error(err)
	}
	settle, scancel := context.WithTimeout(ctx, 15*time.Second)
	if err := l.WaitDelivered(settle); err != nil {
		notes.add("settle: %v", err)
	}
	scancel()

	r := l.Report()
	for _, s := range []struct {
		name string
		st   faulttest.OpStats
		op   faulttest.Op
	}{{"casts", r.Casts, faulttest.OpCast}, {"notifications", r.Notifications, faulttest.OpNotify}} {
		for k, n := range s.st.Errors {
			if k != faulttest.ErrorDelivery && k != faulttest.ErrorTimeout {
				t.Errorf("%d %s failed with errors of kind %s, want delivery or timeout errors", n, s.name, k)
			}
		}
		first, ok := firstOK.after(s.op, killed)
		if !ok || first > cluRecoveryBudget {
			t.Errorf("%s: first confirmed send after the kill: %v (any: %v), want within %v", s.name, first.Round(time.Millisecond), ok, cluRecoveryBudget)
		}
		notes.add("%s: %d sent, %d confirmed, errors %v, first confirmed %v after the kill (any: %v)", s.name, s.st.Sent, s.st.OK,
			s.st.Errors, first.Round(time.Millisecond), ok)
	}
	notes.add("publish retries after basic.nack logged %d times", log.count("rabbit: publish failed, retrying"))
	notes.add("listener reconnections %d", evS.count(driver.EventReconnected, killed))

	errs := []error{srv.stop(), lis.stop(), trS.Close(), trP.Close()}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	w.Stop()
	cluFinish(ctx, t, l, live, &notes, topic)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoLost(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLeaks(t)
}

// TestIntegrationS15QueueChurn is S15: 30 RPC servers with their clients
// are started and stopped three times, with 5 servers each time whose
// topic queue the broker refuses to declare (a durable queue of that
// name exists).
func TestIntegrationS15QueueChurn(t *testing.T) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S15"})
	var notes cluNotes
	const apps, bad, cycles = 30, 5, 3
	// Each app declares its topic, server and fanout queues and its reply
	// queue, on its listener and reply connections, and publishes on a
	// third.
	const declaresPerApp, connsPerApp = 4, 3
	record(t, "S15", fmt.Sprintf("queue churn: %d transports, each with an RPC server and a client making one call, "+
		"started and stopped %d times, plus %d servers per cycle whose topic queue declaration the broker refuses", apps, cycles, bad),
		fmt.Sprintf("every call answered, once; per cycle, queue.declare count between %d and %d (the refused ones may count; "+
			"+%d in the first cycle for racing creations) and connections created exactly %d; after each cycle the same %d queues (no reply or fanout queue left); each refused "+
			"Listen fails with ErrDeliveryFailure after exactly one connection (no re-declare loop); no leaks",
			apps*declaresPerApp, apps*declaresPerApp+bad, apps, apps*connsPerApp+bad, apps+1),
		cluReport(l), notes.String)
	node := faulttest.StartNode(t, faulttest.NodeOptions{Name: "clus15",
		Plugins: []string{"rabbitmq_management"}, Config: []string{"collect_statistics_interval = 500"}})
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	log := newCluLog(t, slog.LevelError)
	id := cluRandom()
	topic, badTopic := "clus15"+id, "clus15bad"+id

	raw, err := amqp.Dial(node.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := raw.Channel()
	if err == nil {
		_, err = ch.QueueDeclare(badTopic, true, false, false, false, nil)
	}
	_ = raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	pBad := faulttest.NewProxy(t, node.Addr())
	badURL, err := pBad.URL(cluURL(node.URL()))
	if err != nil {
		t.Fatal(err)
	}
	// The node's statistics lag: wait until they show the channel just
	// used, so that the baseline holds everything before the churn.
	churn0, err := cluStableChurn(ctx, node.ManagementPort(), func(c cluChurn) bool { return c.ChannelCreated >= 1 })
	if err != nil {
		t.Fatal(err)
	}
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	url := cluURL(node.URL())
	prev := churn0

	var refused []time.Duration
	var mu sync.Mutex // guards refused
	for cycle := range cycles {
		var wg sync.WaitGroup
		for i := range apps {
			wg.Go(func() {
				tr, err := messaging.Open(url, messaging.WithLogger(log.logger()))
				if err != nil {
					t.Error(err)
					return
				}
				defer tr.Close()
				name := fmt.Sprintf("s%02d", i)
				srv, err := cluStartServer(ctx, t, tr, messaging.Target{Topic: topic, Server: name}, l, 20*time.Second)
				if err != nil {
					t.Errorf("cycle %d, server %s: %v", cycle, name, err)
					return
				}
				client, err := rpc.NewClient(tr, messaging.Target{Topic: topic})
				if err != nil {
					t.Error(err)
				}
				if client != nil {
					if err := cluSend(ctx, l, faulttest.OpCall, 5*time.Second, cluCall(client, rpc.ToServer(name))); err != nil {
						t.Errorf("cycle %d, call to %s: %v", cycle, name, err)
					}
				}
				if err := srv.stop(); err != nil {
					t.Error(err)
				}
			})
		}
		for i := range bad {
			wg.Go(func() {
				tr, err := messaging.Open(badURL, messaging.WithLogger(log.logger()))
				if err != nil {
					t.Error(err)
					return
				}
				defer tr.Close()
				start := time.Now()
				srv, err := cluStartServer(ctx, t, tr, messaging.Target{Topic: badTopic, Server: fmt.Sprintf("b%d", i)}, l, 10*time.Second)
				took := time.Since(start)
				switch {
				case err == nil:
					t.Errorf("cycle %d: a server listened on %s, whose queue is declared with other flags", cycle, badTopic)
					_ = srv.stop()
				case !errors.Is(err, messaging.ErrDeliveryFailure):
					t.Errorf("cycle %d: refused Listen: %v, want an error matching messaging.ErrDeliveryFailure", cycle, err)
				}
				mu.Lock()
				refused = append(refused, took)
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			break
		}
		own, err := cluQueueCount(ctx, node, topic)
		if err != nil {
			t.Fatal(err)
		}
		replies, err := cluQueueCount(ctx, node, "reply_")
		if err != nil {
			t.Fatal(err)
		}
		fanouts, err := cluQueueCount(ctx, node, badTopic+"_fanout_")
		if err != nil {
			t.Fatal(err)
		}
		notes.add("cycle %d: %d queues of the topic, %d reply queues, %d fanout queues of the refused topic", cycle+1, own, replies, fanouts)
		churn, err := cluStableChurn(ctx, node.ManagementPort(), func(c cluChurn) bool {
			return c.ConnectionCreated-prev.ConnectionCreated >= apps*connsPerApp &&
				c.QueueDeclared-prev.QueueDeclared >= apps*declaresPerApp
		})
		if err != nil {
			t.Error(err)
		}
		declared := churn.QueueDeclared - prev.QueueDeclared
		created := churn.ConnectionCreated - prev.ConnectionCreated
		notes.add("cycle %d: queue.declare %d, queues created %d, deleted %d, connections created %d, channels created %d",
			cycle+1, declared, churn.QueueCreated-prev.QueueCreated, churn.QueueDeleted-prev.QueueDeleted, created,
			churn.ChannelCreated-prev.ChannelCreated)
		// The broker counts a refused declaration too, and may count twice
		// a declaration that races with another creating the same queue,
		// which only the first cycle's 30 servers do.
		lo, hi := apps*declaresPerApp, apps*declaresPerApp+bad
		if cycle == 0 {
			hi += apps
		}
		if declared < lo || declared > hi {
			t.Errorf("cycle %d: %d queue.declare, want %d to %d", cycle+1, declared, lo, hi)
		}
		if want := apps*connsPerApp + bad; created != want {
			t.Errorf("cycle %d: %d connections created, want %d", cycle+1, created, want)
		}
		prev = churn
		// The topic and server queues stay, as oslo's do; reply and
		// fanout queues go with their transports and servers.
		if own != apps+1 || replies != 0 || fanouts != 0 {
			t.Errorf("after cycle %d: %d queues named %s*, %d reply queues, %d fanout queues of %s; want %d, 0, 0",
				cycle+1, own, topic, replies, fanouts, badTopic, apps+1)
		}
	}
	if got, want := pBad.Stats().Accepted, int64(bad*cycles); got != want {
		t.Errorf("the refused servers made %d connections, want exactly %d (one per Listen)", got, want)
	}
	slices.Sort(refused)
	if len(refused) > 0 {
		notes.add("refused Listen returned after %v (median) to %v (max)", refused[len(refused)/2].Round(time.Millisecond),
			refused[len(refused)-1].Round(time.Millisecond))
	}

	notes.add("in all: queue.declare %d, connections created %d", prev.QueueDeclared-churn0.QueueDeclared,
		prev.ConnectionCreated-churn0.ConnectionCreated)

	w.Stop()
	pBad.Close()
	cluFinish(ctx, t, l, node, &notes, topic, badTopic)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLeaks(t)
	if r := l.Report(); r.Calls.OK != apps*cycles {
		t.Errorf("%d calls answered, want %d", r.Calls.OK, apps*cycles)
	}
}

// TestIntegrationS16ReconnectStorm is S16: 30 transports, each with an
// RPC server and a client, reach the node through one proxy, which is
// disabled for 5 s and enabled again.
func TestIntegrationS16ReconnectStorm(t *testing.T) {
	l := faulttest.NewLedger(faulttest.LedgerOptions{Name: "S16"})
	var notes cluNotes
	const apps = 30
	const outage = 5 * time.Second
	// Query for the storm: the back-off grows to 4 s, so that the waits
	// under way when the proxy returns differ widely from one connection
	// to the next.
	const query = "heartbeat_timeout_threshold=2&rabbit_retry_interval=1&rabbit_retry_backoff=1" +
		"&rabbit_interval_max=4&kombu_reconnect_delay=1&rabbit_transient_queues_ttl=10"
	const intervalMax, reconnectDelay = 4 * time.Second, time.Second
	// After the proxy returns, each connection's next attempt comes
	// within the longest back-off wait; add the reconnect delay and a
	// few seconds for the handshakes of 60 connections.
	const budget = intervalMax + reconnectDelay + 3*time.Second
	record(t, "S16", fmt.Sprintf("reconnect storm: %d transports (listener, reply and publishing connections) through one proxy, "+
		"disabled for %v then enabled", apps, outage),
		fmt.Sprintf("every transport's listener and reply connections reconnect within %v of the proxy's return and a call "+
			"through each succeeds; the reconnections are spread (spread > 0, at most half of them within any 100 ms); "+
			"hung 0; swe 0; dup 0; no leaks", budget),
		cluReport(l), notes.String)
	node := faulttest.StartNode(t, faulttest.NodeOptions{Name: "clus16"})
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	log := newCluLog(t, slog.LevelError)
	topic := "clus16" + cluRandom()
	p := faulttest.NewProxy(t, node.Addr())
	url, err := p.URL(node.URL() + "?" + query)
	if err != nil {
		t.Fatal(err)
	}
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)

	type app struct {
		name   string
		tr     *messaging.Transport
		ev     *cluEvents
		srv    *cluServer
		client *rpc.Client
	}
	all := make([]*app, apps)
	for i := range all {
		a := &app{name: fmt.Sprintf("s%02d", i), ev: newCluEvents()}
		a.tr = cluOpen(t, url, log, a.ev)
		if a.srv, err = cluStartServer(ctx, t, a.tr, messaging.Target{Topic: topic, Server: a.name}, l, 20*time.Second); err != nil {
			t.Fatal(err)
		}
		if a.client, err = rpc.NewClient(a.tr, messaging.Target{Topic: topic}); err != nil {
			t.Fatal(err)
		}
		all[i] = a
	}
	callAll := func(phase string) int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := 0
		for _, a := range all {
			wg.Go(func() {
				if err := cluSend(ctx, l, faulttest.OpCall, 5*time.Second, cluCall(a.client, rpc.ToServer(a.name))); err != nil {
					t.Errorf("%s: call to %s: %v", phase, a.name, err)
					mu.Lock()
					failed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return failed
	}
	if callAll("before the fault") > 0 {
		t.FailNow()
	}
	if st := p.Stats(); st.Active != apps*3 {
		t.Logf("%d connections through the proxy, expected %d", st.Active, apps*3)
	}

	l.MarkFault()
	p.Disable()
	cluSleep(ctx, outage)
	accepted0 := p.Stats().Accepted
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	l.MarkHealed()

	var times []time.Time
	late := 0
	wctx, wcancel := context.WithTimeout(ctx, budget)
	for _, a := range all {
		got, _ := a.ev.waitUp(wctx, []string{"listen", "reply"}, healed, "")
		for _, role := range []string{"listen", "reply"} {
			ev, up := got[role]
			if !up {
				late++
				t.Errorf("%s: the %s connection did not reconnect within %v of the proxy's return", a.name, role, budget)
				continue
			}
			times = append(times, ev.Time)
		}
	}
	wcancel()
	spread, stdev, most := cluSpread(times, 100*time.Millisecond)
	var first, last time.Duration
	if len(times) > 0 {
		first, last = slices.MinFunc(times, func(x, y time.Time) int { return x.Compare(y) }).Sub(healed),
			slices.MaxFunc(times, func(x, y time.Time) int { return x.Compare(y) }).Sub(healed)
	}
	notes.add("%d reconnections from %v to %v after the proxy returned: spread %v, stdev %v, at most %d within 100 ms; "+
		"%d connections accepted by the proxy since", len(times), first.Round(time.Millisecond), last.Round(time.Millisecond),
		spread.Round(time.Millisecond), stdev.Round(time.Millisecond), most, p.Stats().Accepted-accepted0)
	if spread <= 0 || stdev <= 0 {
		t.Errorf("the reconnections are not spread: spread %v, stdev %v", spread, stdev)
	}
	if len(times) > 0 && most > len(times)/2 {
		t.Errorf("%d of %d reconnections within 100 ms: no jitter", most, len(times))
	}
	if late == 0 {
		if failed := callAll("after the storm"); failed > 0 {
			notes.add("%d calls failed after the storm", failed)
		}
	}

	var errs []error
	for _, a := range all {
		errs = append(errs, a.srv.stop(), a.tr.Close())
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	w.Stop()
	p.Close()
	cluFinish(ctx, t, l, node, &notes, topic)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLeaks(t)
	if r := l.Report(); !r.Recovered {
		t.Errorf("no call succeeded after the proxy returned: %s", r)
	}
}
