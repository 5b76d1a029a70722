package rabbit

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// eventLog records the events of a Conn.
type eventLog struct {
	mu  sync.Mutex
	evs []driver.Event
}

func (r *eventLog) handle(ev driver.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *eventLog) snapshot() []driver.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]driver.Event(nil), r.evs...)
}

// wait returns the index of the first event from index from on that
// matches kind and queue, failing the test after 15 s.
func (r *eventLog) wait(t *testing.T, from int, kind driver.EventKind, queue string) (int, driver.Event) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs := r.snapshot()
		for i := from; i < len(evs); i++ {
			if evs[i].Kind == kind && evs[i].Queue == queue {
				return i, evs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for queue %q from #%d; got %+v", kind, queue, from, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openEvents opens a Conn of e reporting its events to the returned log.
func openEvents(e *env, kv ...string) (*Conn, *eventLog) {
	c := e.open(kv...)
	r := &eventLog{}
	c.SetEventHandler(r.handle)
	return c, r
}

// TestRabbitEventsReconnect cuts every connection and checks that each
// reports Connected, then Disconnected, then Reconnected.
func TestRabbitEventsReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("ev")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	opts := fastRetry("rabbit_retry_backoff", "1")
	server, sev := openEvents(viaProxy, opts...)
	client, cev := openEvents(viaProxy, opts...)
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, echo(make(chan *driver.Request, 10)))
	call := func() {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := client.Call(cctx, addr, newCall("echo", `{}`), driver.SendOptions{Retry: -1, ResendUnconfirmed: true}); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	call()
	reply := client.replies.queue
	topicQ := l.(*listener).consume[0]
	type conn struct {
		log   *eventLog
		queue string
	}
	conns := map[string]conn{
		"listener":       {sev, topicQ},
		"reply":          {cev, reply},
		"client publish": {cev, ""},
		"server publish": {sev, ""}, // the echo's reply
	}
	for what, c := range conns {
		_, ev := c.log.wait(t, 0, driver.EventConnected, c.queue)
		if ev.Addr != net.JoinHostPort(viaProxy.base.Hosts[0].Hostname, strconv.Itoa(viaProxy.base.Hosts[0].Port)) || ev.Time.IsZero() {
			t.Errorf("%s: Connected event %+v", what, ev)
		}
	}
	p.cut()
	call()
	for what, c := range conns {
		i, ev := c.log.wait(t, 0, driver.EventDisconnected, c.queue)
		if ev.Err == nil {
			t.Errorf("%s: Disconnected event without a cause: %+v", what, ev)
		}
		c.log.wait(t, i+1, driver.EventReconnected, c.queue)
	}
	// Close joins the handler's goroutine (goleak checks it), after
	// which no event is reported.
	_ = l.Close()
	_ = server.Close()
	_ = client.Close()
	n := len(sev.snapshot()) + len(cev.snapshot())
	time.Sleep(100 * time.Millisecond)
	if m := len(sev.snapshot()) + len(cev.snapshot()); m != n {
		t.Errorf("%d events reported after Close", m-n)
	}
}

// TestRabbitEventsReplyDropped checks that a reply abandoned to a
// missing reply queue, and one dropped because the queue is known to be
// gone, are reported.
func TestRabbitEventsReplyDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("evd")
	ctx := testCtx(t)
	c, r := openEvents(e, "kombu_missing_consumer_retry_timeout", "1")
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: tp, Server: "s"}, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw := e.raw()
	gone := "reply_" + wire.NewID()
	for range 2 {
		inject(t, raw, ex, tp, encodeReq(t, &driver.Request{Method: "m", MsgID: wire.NewID(), ReplyTo: gone, UniqueID: wire.NewID()}), nil)
	}
	from := 0
	for i := range 2 {
		d, err := l.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`1`)}); !errors.Is(err, driver.ErrUndeliverable) {
			t.Fatalf("Reply %d to a missing queue = %v, want ErrUndeliverable", i, err)
		}
		j, ev := r.wait(t, from, driver.EventReplyDropped, gone)
		if !errors.Is(ev.Err, driver.ErrUndeliverable) {
			t.Errorf("ReplyDropped event %d: %+v, want an error wrapping ErrUndeliverable", i, ev)
		}
		from = j + 1
	}
}

// TestRabbitEventsLateReply checks that a reply arriving after its
// caller timed out is reported on the caller's side.
func TestRabbitEventsLateReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("evl")
	ctx := testCtx(t)
	server := e.open()
	client, r := openEvents(e)
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan driver.Delivery, 1)
	go func() {
		if d, err := l.Next(ctx); err == nil {
			got <- d
		}
		close(got)
	}()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = client.Call(cctx, addr, newCall("slow", `{}`), driver.SendOptions{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want DeadlineExceeded", err)
	}
	d, ok := <-got
	if !ok {
		t.Fatal("the server received no request")
	}
	if err := d.Reply(ctx, &driver.Reply{}); err != nil {
		t.Fatalf("late Reply: %v", err)
	}
	r.wait(t, 0, driver.EventLateReply, client.replies.queue)
}

// TestRabbitUnacked checks the count of deliveries held unacknowledged
// by RPC and notification listeners.
func TestRabbitUnacked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("ua")
	ctx := testCtx(t)
	c := e.open()
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: tp, Server: "s"}, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitUnacked := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for c.Unacked() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Unacked = %d, want %d", c.Unacked(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	raw := e.raw()
	for range 3 {
		inject(t, raw, ex, tp, encodeReq(t, &driver.Request{Method: "m", UniqueID: wire.NewID()}), nil)
	}
	waitUnacked(3)
	if _, err := l.Next(ctx); err != nil {
		t.Fatal(err)
	}
	waitUnacked(2)

	nl := listenNotes(t, c, "", driver.ListenOptions{}, driver.NotifyTarget{Exchange: ex, Topic: tp + "_n", Priorities: []string{"info"}})
	if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp + "_n"}, newNote("INFO", `{}`), driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatal(err)
	}
	waitUnacked(3)
	nd := nextNote(t, nl)
	waitUnacked(3) // handed out, not yet acknowledged
	if err := nd.Ack(); err != nil {
		t.Fatal(err)
	}
	waitUnacked(2)
	_ = l.Close()
	waitUnacked(0)
}

// A panicking handler does not end the process: the panic is logged and
// the next events are still delivered.
func TestEventHandlerPanicRecovered(t *testing.T) {
	t.Parallel()
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan driver.EventKind, 2)
	c.SetEventHandler(func(ev driver.Event) {
		if ev.Kind == driver.EventDisconnected {
			panic("handler bug")
		}
		got <- ev.Kind
	})
	c.ev.emit(driver.EventDisconnected, "127.0.0.1:5672", "", nil)
	c.ev.emit(driver.EventReconnected, "127.0.0.1:5672", "", nil)
	select {
	case k := <-got:
		if k != driver.EventReconnected {
			t.Errorf("handler got %s, want reconnected", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the handler's panic")
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
