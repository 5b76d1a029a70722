package faulttest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/rpc"
)

func TestIntegrationProxy(t *testing.T) {
	n := StartNode(t, NodeOptions{Name: "ftproxy"})
	ctx := integrationCtx(t)
	p := NewProxy(t, n.Addr())
	viaProxy, err := p.URL(n.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("forwards", func(t *testing.T) {
		c := amqpDial(t, viaProxy, "ft-proxied", 0)
		ch := channel(t, c)
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.PublishWithContext(ctx, "", q.Name, true, false, amqp.Publishing{Body: []byte("through")}); err != nil {
			t.Fatal(err)
		}
		var got amqp.Delivery
		for range 100 { // at most 100 gets, 10 s
			var ok bool
			if got, ok, err = ch.Get(q.Name, true); err != nil || ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || string(got.Body) != "through" {
			t.Fatalf("got %q, %v through the proxy", got.Body, err)
		}
		conns, err := n.ListConnections(ctx)
		if ci, ok := findConn(conns, "ft-proxied"); err != nil || !ok || ci.PeerPort == 0 {
			t.Errorf("the node does not see the proxied connection: %+v, %v", conns, err)
		}
		if st := p.Stats(); st.Accepted < 1 || st.Active < 1 || st.BytesUp == 0 || st.BytesDown == 0 {
			t.Errorf("Stats() = %+v", st)
		}
	})

	t.Run("reset", func(t *testing.T) {
		c := amqpDial(t, viaProxy, "ft-reset", 0)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		p.ResetAll()
		if e := waitClosed(t, closed, 15*time.Second); e == nil {
			t.Error("connection closed cleanly after a reset")
		}
	})

	t.Run("blackhole and heartbeat", func(t *testing.T) {
		c := amqpDial(t, viaProxy, "ft-heartbeat", 2*time.Second)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		// amqp091-go (v1.16.0) sets its read deadline only when it reads
		// a frame after the handshake (whose end clears the deadline): a
		// connection black-holed before any such frame is never found
		// dead. Opening a channel reads one.
		channel(t, c)
		p.Blackhole(true)
		t.Cleanup(func() { p.Blackhole(false) })
		start := time.Now()
		// Detection takes a few heartbeats (about 6 s here): 30 s bounds
		// it well above that.
		e := waitClosed(t, closed, 30*time.Second)
		t.Logf("half-open connection detected after %v: %v", time.Since(start).Round(time.Millisecond), e)
		if e == nil {
			t.Error("connection closed cleanly through a blackhole")
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		c := amqpDial(t, viaProxy, "ft-disabled", 0)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		p.Disable()
		if e := waitClosed(t, closed, 15*time.Second); e == nil {
			t.Error("connection closed cleanly by a disabled proxy")
		}
		if err := probeAMQP(viaProxy); err == nil {
			t.Error("a disabled proxy let a connection through")
		}
		if err := p.Enable(); err != nil {
			t.Fatal(err)
		}
		if err := probeAMQP(viaProxy); err != nil {
			t.Errorf("after Enable: %v", err)
		}
	})

	t.Run("ledger of an RPC run with a reset", func(t *testing.T) {
		ledgerRun(ctx, t, n, p)
	})
}

// ledgerArgs are the arguments of the run's method.
type ledgerArgs struct {
	ID string `json:"ledger_id"`
}

// ledgerRun calls and casts through the proxy, resets the client's
// connections once, and checks what the ledger counted.
func ledgerRun(ctx context.Context, t *testing.T, n *Node, p *Proxy) {
	l := NewLedger(LedgerOptions{Name: "rpc-reset", Slack: 3 * time.Second})
	l.GoroutineBaseline()
	w := l.StartWatchdog(t)
	topic := "ftrun" + randomHex(4)

	logger := testLogger(t)
	srvTr, err := messaging.Open(n.URL(), messaging.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer srvTr.Close()
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "work", func(_ context.Context, a ledgerArgs) (string, error) {
		l.Executed(a.ID, "srv")
		return a.ID, nil
	})
	srv, err := rpc.NewServer(srvTr, messaging.Target{Topic: topic, Server: "srv"}, []*rpc.Endpoint{ep})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ctx) })
	defer wg.Wait()
	defer srv.Close()

	cliURL, err := p.URL(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	cliTr, err := messaging.Open(cliURL, messaging.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer cliTr.Close()
	client, err := rpc.NewClient(cliTr, messaging.Target{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	send := func(op Op) error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		id := l.Sent(cctx, op)
		var err error
		if op == OpCall {
			var reply string
			if err = client.Call(cctx, "work", ledgerArgs{ID: id}, &reply); err == nil && reply != id {
				err = fmt.Errorf("reply %q to %s", reply, id)
			}
		} else {
			err = client.Cast(cctx, "work", ledgerArgs{ID: id})
		}
		l.Returned(id, err)
		return err
	}
	for i := range 10 {
		if err := send(OpCall); err != nil {
			t.Fatalf("call %d before the fault: %v", i, err)
		}
		if err := send(OpCast); err != nil {
			t.Fatalf("cast %d before the fault: %v", i, err)
		}
	}
	l.MarkFault()
	p.ResetAll()
	recovered := false
	for range 10 { // at most 10 calls of 3 s
		if send(OpCall) == nil {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Error("no call succeeded after the reset")
	}

	// Close everything, then count.
	_ = cliTr.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Error(err)
	}
	wg.Wait()
	_ = srvTr.Close()
	w.Stop()
	settle, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	_ = l.WaitDelivered(settle)
	lctx, cancel3 := context.WithTimeout(ctx, 15*time.Second)
	defer cancel3()
	prog := filepath.Base(os.Args[0]) + ":"
	if err := l.CheckLeaks(lctx, n, LeakFilter{QueuePrefixes: []string{"reply_", topic + "_fanout_"}, ConnectionPrefixes: []string{prog}}); err != nil {
		t.Fatal(err)
	}
	gctx, cancel4 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel4()
	if err := l.CheckGoroutines(gctx); err != nil {
		t.Fatal(err)
	}

	r := l.Report()
	t.Logf("report: %s", r)
	l.AssertNoHungCallers(t)
	l.AssertAllReturned(t)
	l.AssertNoSuccessWithoutExecution(t)
	l.AssertNoDuplicates(t)
	l.AssertNoLost(t)
	l.AssertNoLeaks(t)
	if r.Calls.Sent < 11 || r.Calls.OK < 11 || r.Casts.OK != 10 || r.Casts.Executions != 10 || !r.Recovered {
		t.Errorf("report: %s; want at least 11 calls answered, 10 casts executed, and a recovery", r)
	}
	// The topic's own queues stay (oslo's are not auto-deleted), which
	// the filter left out.
	queues, err := n.ListQueues(ctx)
	names := make([]string, len(queues))
	for i, q := range queues {
		names[i] = q.Name
	}
	if err != nil || !slices.Contains(names, topic) {
		t.Errorf("queues %v, %v; want the topic's queue %s", names, err, topic)
	}
}

// testLogger returns a logger that writes to t's log until t's cleanups
// run.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}
