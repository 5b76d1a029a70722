package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/drivertest"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	b := memory.NewBroker()
	drivertest.Run(t, drivertest.Config{
		Open:     func(*testing.T) driver.RPCConn { return b.Conn() },
		Features: drivertest.Features{Heartbeat: true, Mandatory: true, Persistent: true},
	})
}

// Helpers. They are meant for synctest bubbles, where waiting for
// something that does not happen takes no real time.

const exchange = "openstack"

func addr(topic, server string) driver.Address {
	return driver.Address{Exchange: exchange, Topic: topic, Server: server}
}

func fanout(topic string) driver.Address {
	return driver.Address{Exchange: exchange, Topic: topic, Fanout: true}
}

func castReq(n int) *driver.Request {
	return &driver.Request{Method: "m", Args: json.RawMessage(fmt.Sprintf(`{"seq": %d}`, n)), UniqueID: wire.NewID()}
}

func callReq(n int) *driver.Request {
	r := castReq(n)
	r.MsgID = wire.NewID()
	return r
}

func seqOf(t *testing.T, d driver.Delivery) int {
	t.Helper()
	var a struct {
		Seq int `json:"seq"`
	}
	if err := json.Unmarshal(d.Request().Args, &a); err != nil {
		t.Fatalf("args %s: %v", d.Request().Args, err)
	}
	return a.Seq
}

func conn(t *testing.T, b *memory.Broker) *memory.Conn {
	t.Helper()
	c := b.Conn()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func listen(t *testing.T, c driver.RPCConn, a driver.Address, prefetch int) driver.Listener {
	t.Helper()
	l, err := c.Listen(t.Context(), a, driver.ListenOptions{Prefetch: prefetch})
	if err != nil {
		t.Fatalf("Listen(%+v) = %v", a, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func cast(t *testing.T, c driver.RPCConn, a driver.Address, n int) {
	t.Helper()
	if err := c.Cast(t.Context(), a, castReq(n), driver.SendOptions{}); err != nil {
		t.Fatalf("Cast(%+v, %d) = %v", a, n, err)
	}
}

// drain returns the seqs of the requests l holds, in order, waiting a
// second (of bubble time, outside) for each.
func drain(t *testing.T, l driver.Listener) []int {
	t.Helper()
	var out []int
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		d, err := l.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		out = append(out, seqOf(t, d))
	}
}

func seqs(ns ...int) []int { return ns }

func TestOpen(t *testing.T) {
	if !slices.Contains(messaging.Drivers(), "memory") || !slices.Contains(messaging.Drivers(), "fake") {
		t.Fatalf("messaging.Drivers() = %v, want memory and fake", messaging.Drivers())
	}
	for _, u := range []string{"memory://", "fake://", "fake:/", "memory://host:1234/vh"} {
		tr, err := messaging.Open(u)
		if err != nil {
			t.Errorf("messaging.Open(%q) = %v", u, err)
			continue
		}
		if _, ok := tr.Conn().(driver.RPCConn); !ok {
			t.Errorf("messaging.Open(%q): %T is not a driver.RPCConn", u, tr.Conn())
		}
		if err := tr.Ping(t.Context()); err != nil {
			t.Errorf("Ping() = %v", err)
		}
		if err := tr.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	}

	_, err := messaging.Open("memory:///?b=1&a=2")
	if !errors.Is(err, messaging.ErrInvalidOption) || !strings.Contains(err.Error(), `"a", "b"`) {
		t.Errorf(`messaging.Open("memory:///?b=1&a=2") = %v, want an error wrapping %v that names "a" and "b"`, err, messaging.ErrInvalidOption)
	}
	if _, err := (memory.Driver{}).Open(nil); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("Open(nil) = %v, want %v", err, messaging.ErrInvalidOption)
	}
}

// TestOpenVirtualHosts checks that connections to one virtual host share
// a broker, and that virtual hosts are isolated.
func TestOpenVirtualHosts(t *testing.T) {
	vh := "test-" + wire.NewID()
	open := func(vhost string) driver.RPCConn {
		t.Helper()
		c, err := memory.Driver{}.Open(&driver.URL{Scheme: "memory", VirtualHost: vhost})
		if err != nil {
			t.Fatalf("Open(%q) = %v", vhost, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.(driver.RPCConn)
	}
	server, client, other := open(vh), open(vh), open(vh+"-other")
	l := listen(t, server, addr("topic", "s"), 0)
	mandatory := driver.SendOptions{Mandatory: true}
	if err := client.Cast(t.Context(), addr("topic", "s"), castReq(1), mandatory); err != nil {
		t.Errorf("Cast on the same virtual host = %v", err)
	}
	if err := other.Cast(t.Context(), addr("topic", "s"), castReq(2), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Cast on another virtual host = %v, want %v", err, driver.ErrUndeliverable)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := l.Next(ctx)
	if err != nil || seqOf(t, d) != 1 {
		t.Fatalf("Next() = %v, %v; want cast 1", d, err)
	}
}

func TestRoundRobin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		l1 := listen(t, conn(t, b), addr("t", "s1"), 0)
		l2 := listen(t, conn(t, b), addr("t", "s2"), 0)
		c := conn(t, b)
		for i := range 10 {
			cast(t, c, addr("t", ""), i)
		}
		if got := drain(t, l1); !slices.Equal(got, seqs(0, 2, 4, 6, 8)) {
			t.Errorf("server 1 got %v, want [0 2 4 6 8]", got)
		}
		if got := drain(t, l2); !slices.Equal(got, seqs(1, 3, 5, 7, 9)) {
			t.Errorf("server 2 got %v, want [1 3 5 7 9]", got)
		}
	})
}

// TestRequeueOnClose checks where the messages pushed to a listener and
// not taken go when it closes.
func TestRequeueOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l1 := listen(t, conn(t, b), addr("t", "s1"), 0)
		l2 := listen(t, conn(t, b), addr("t", "s2"), 0)
		for i := range 4 {
			cast(t, c, addr("t", ""), i) // 0, 2 to l1; 1, 3 to l2
		}
		cast(t, c, addr("t", "s1"), 10)
		cast(t, c, fanout("t"), 20)
		if err := l1.Close(); err != nil {
			t.Fatal(err)
		}
		// The topic queue's messages go to the other server, after those
		// it already had; the server queue keeps its message; the fanout
		// copy is gone with l1's fanout queue.
		if got := drain(t, l2); !slices.Equal(got, seqs(1, 3, 20, 0, 2)) {
			t.Errorf("server 2 got %v, want [1 3 20 0 2]", got)
		}
		l3 := listen(t, conn(t, b), addr("t", "s1"), 0)
		if got := drain(t, l3); !slices.Equal(got, seqs(10)) {
			t.Errorf("new server 1 got %v, want [10]", got)
		}
	})
}

func TestFanoutQueueDeletedOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		l1 := listen(t, conn(t, b), addr("t", "s1"), 0)
		if err := c.Cast(t.Context(), fanout("t"), castReq(1), driver.SendOptions{Mandatory: true}); err != nil {
			t.Fatalf("mandatory fanout Cast() with a listener = %v", err)
		}
		if got := drain(t, l1); !slices.Equal(got, seqs(1)) {
			t.Errorf("listener got %v, want [1]", got)
		}
		_ = l1.Close()
		// As in oslo, mandatory does not apply to fanout: the cast is
		// dropped without an error.
		if err := c.Cast(t.Context(), fanout("t"), castReq(2), driver.SendOptions{Mandatory: true}); err != nil {
			t.Errorf("mandatory fanout Cast() without listeners = %v, want nil (dropped)", err)
		}
		cast(t, c, fanout("t"), 3) // dropped
		l2 := listen(t, conn(t, b), addr("t", "s1"), 0)
		if got := drain(t, l2); len(got) != 0 {
			t.Errorf("new listener got %v, want nothing", got)
		}
	})
}

func TestPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		slow := listen(t, conn(t, b), addr("t", "s1"), 1)
		fast := listen(t, conn(t, b), addr("t", "s2"), 1)
		for i := range 4 {
			cast(t, c, addr("t", ""), i)
		}
		if got := drain(t, fast); !slices.Equal(got, seqs(1, 2, 3)) {
			t.Errorf("fast server got %v, want [1 2 3]", got)
		}
		cast(t, c, addr("t", ""), 4) // slow is full: to fast
		if got := drain(t, fast); !slices.Equal(got, seqs(4)) {
			t.Errorf("fast server got %v, want [4]", got)
		}
		if got := drain(t, slow); !slices.Equal(got, seqs(0)) {
			t.Errorf("slow server got %v, want [0]", got)
		}
	})
}

// TestConcurrentNext checks that listeners wake every Next waiting on
// them, one per message.
func TestConcurrentNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		l := listen(t, conn(t, b), addr("t", "s"), 0)
		got := make(chan int, 3)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				d, err := l.Next(t.Context())
				if err != nil {
					got <- -1
					return
				}
				got <- seqOf(t, d)
			})
		}
		synctest.Wait() // all three are blocked
		c := conn(t, b)
		for i := range 3 {
			cast(t, c, addr("t", ""), i)
		}
		wg.Wait()
		close(got)
		var all []int
		for n := range got {
			all = append(all, n)
		}
		slices.Sort(all)
		if !slices.Equal(all, seqs(0, 1, 2)) {
			t.Errorf("concurrent Next calls got %v, want [0 1 2]", all)
		}
	})
}

func TestCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		listen(t, conn(t, b), addr("busy", "s"), 0) // takes requests, never answers
		for _, topic := range []string{"nobody", "busy"} {
			start := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			_, err := c.Call(ctx, addr(topic, ""), callReq(1), driver.SendOptions{})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: Call() = %v, want %v", topic, err, context.DeadlineExceeded)
			}
			if e := time.Since(start); e != 5*time.Second {
				t.Errorf("%s: Call() returned after %v, want 5s", topic, e)
			}
		}
	})
}

func TestCallMonitor(t *testing.T) {
	const monitor = 2 * time.Second
	for _, tc := range []struct {
		name     string
		interval time.Duration // between heartbeats; 0: none
		beats    int
		wantErr  error
		wantTime time.Duration
	}{
		{"no heartbeat", 0, 0, driver.ErrHeartbeatTimeout, monitor},
		{"heartbeats", time.Second, 10, nil, 10 * time.Second},
		{"heartbeats just in time", monitor - time.Millisecond, 5, nil, 5 * (monitor - time.Millisecond)},
		{"heartbeats too slow", monitor + time.Millisecond, 5, driver.ErrHeartbeatTimeout, monitor},
		{"heartbeats stop", time.Second, 3, driver.ErrHeartbeatTimeout, 3*time.Second + monitor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := memory.NewBroker()
				l := listen(t, conn(t, b), addr("t", "s"), 0)
				var wg sync.WaitGroup
				defer wg.Wait()
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				wg.Go(func() {
					d, err := l.Next(ctx)
					if err != nil {
						t.Errorf("Next() = %v", err)
						return
					}
					if mt := d.Request().MonitorTimeout; mt == nil || *mt != monitor.Seconds() {
						t.Errorf("MonitorTimeout = %v, want %v", mt, monitor.Seconds())
					}
					if tc.interval == 0 {
						return
					}
					for range tc.beats {
						select {
						case <-time.After(tc.interval):
						case <-ctx.Done():
							return
						}
						_ = d.Heartbeat(ctx)
					}
					if tc.wantErr == nil {
						_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"done"`)})
					}
				})
				start := time.Now()
				callCtx, callCancel := context.WithTimeout(t.Context(), time.Hour)
				defer callCancel()
				r, err := conn(t, b).Call(callCtx, addr("t", "s"), callReq(1), driver.SendOptions{MonitorTimeout: monitor})
				cancel()
				if e := time.Since(start); e != tc.wantTime {
					t.Errorf("Call() returned after %v, want %v", e, tc.wantTime)
				}
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) || !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Call() = %v, %v; want an error wrapping %v", r, err, tc.wantErr)
					}
					return
				}
				if err != nil || string(r.Result) != `"done"` {
					t.Errorf("Call() = %v, %v; want result \"done\"", r, err)
				}
			})
		})
	}
}

// TestRequestExpiry checks that call requests still queued at their
// caller's deadline are dropped, in a queue as in a listener's inbox.
func TestRequestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		server := conn(t, b)
		l := listen(t, server, addr("t", "s"), 0)
		if err := l.Close(); err != nil { // the queues stay
			t.Fatal(err)
		}
		call := func(n int, timeout time.Duration) <-chan error {
			errc := make(chan error, 1)
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			go func() {
				defer cancel()
				_, err := c.Call(ctx, addr("t", "s"), callReq(n), driver.SendOptions{})
				errc <- err
			}()
			return errc
		}
		short, long := call(1, time.Second), call(2, time.Minute)
		synctest.Wait() // both requests are queued
		cast(t, c, addr("t", "s"), 3)
		if err := <-short; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("short call = %v, want %v", err, context.DeadlineExceeded)
		}
		// The short call's request expired in the queue.
		l = listen(t, server, addr("t", "s"), 0)
		got := drain(t, l)
		if !slices.Equal(got, seqs(2, 3)) {
			t.Errorf("new listener got %v, want [2 3]: the expired request 1 dropped", got)
		}
		if err := <-long; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("long call = %v, want %v", err, context.DeadlineExceeded)
		}

		// A request expires in the inbox of a listener too.
		short = call(4, time.Second)
		long = call(5, time.Minute)
		synctest.Wait() // both requests are in l's inbox
		time.Sleep(time.Second)
		if err := <-short; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("short call = %v, want %v", err, context.DeadlineExceeded)
		}
		d, err := l.Next(t.Context())
		if err != nil || seqOf(t, d) != 5 {
			t.Fatalf("Next() = %v, %v; want request 5, request 4 expired", d, err)
		}
		if err := d.Reply(t.Context(), &driver.Reply{}); err != nil {
			t.Errorf("Reply() = %v", err)
		}
		if err := <-long; err != nil {
			t.Errorf("long call = %v", err)
		}
	})
}

func TestMandatory(t *testing.T) {
	var b memory.Broker // the zero value is ready to use
	testMandatory(t, &b)
}

func testMandatory(t *testing.T, b *memory.Broker) {
	c := conn(t, b)
	mandatory := driver.SendOptions{Mandatory: true}
	ctx := t.Context()
	if err := c.Cast(ctx, addr("t", ""), castReq(1), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Cast() = %v, want %v", err, driver.ErrUndeliverable)
	}
	if _, err := c.Call(ctx, addr("t", ""), callReq(1), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Call() = %v, want %v", err, driver.ErrUndeliverable)
	}
	// Another exchange's queues do not count.
	listen(t, conn(t, b), driver.Address{Exchange: "other", Topic: "t", Server: "s"}, 0)
	if err := c.Cast(ctx, addr("t", ""), castReq(1), mandatory); !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Cast() = %v, want %v", err, driver.ErrUndeliverable)
	}
	// A declared queue without consumer takes the message.
	l := listen(t, conn(t, b), addr("t", "s"), 0)
	_ = l.Close()
	if err := c.Cast(ctx, addr("t", "s"), castReq(1), mandatory); err != nil {
		t.Errorf("Cast() to a queue without consumer = %v", err)
	}
}

func TestReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		server := conn(t, b)
		l := listen(t, server, addr("t", "s"), 0)

		// callAndTake starts a call from c and returns the server's
		// delivery and the call's outcome.
		callAndTake := func(c driver.RPCConn) (driver.Delivery, <-chan error) {
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(t.Context(), addr("t", "s"), callReq(1), driver.SendOptions{})
				errc <- err
			}()
			d, err := l.Next(t.Context())
			if err != nil {
				t.Fatalf("Next() = %v", err)
			}
			return d, errc
		}

		c := conn(t, b)
		d, errc := callAndTake(c)
		if err := d.Reply(t.Context(), &driver.Reply{Result: json.RawMessage(`{bad json`)}); err == nil {
			t.Errorf("Reply(invalid JSON) = nil")
		}
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		if err := d.Reply(cancelled, &driver.Reply{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Reply(cancelled ctx) = %v, want %v", err, context.Canceled)
		}
		if err := d.Heartbeat(t.Context()); err != nil {
			t.Errorf("Heartbeat() = %v", err)
		}
		if err := d.Reply(t.Context(), nil); err != nil { // a nil reply is a null result
			t.Errorf("Reply(nil) = %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("Call() = %v", err)
		}
		if err := d.Reply(t.Context(), &driver.Reply{}); err == nil {
			t.Errorf("second Reply() = nil, want an error")
		}
		if err := d.Heartbeat(t.Context()); err != nil {
			t.Errorf("Heartbeat() after Reply = %v, want nil", err)
		}

		// The caller's connection closes: replies are undeliverable.
		c2 := b.Conn()
		d, errc = callAndTake(c2)
		_ = c2.Close()
		if err := <-errc; !errors.Is(err, driver.ErrClosed) {
			t.Errorf("Call() on a closed connection = %v, want %v", err, driver.ErrClosed)
		}
		if err := d.Heartbeat(t.Context()); !errors.Is(err, driver.ErrUndeliverable) {
			t.Errorf("Heartbeat() to a closed connection = %v, want %v", err, driver.ErrUndeliverable)
		}
		if err := d.Reply(t.Context(), &driver.Reply{}); !errors.Is(err, driver.ErrUndeliverable) {
			t.Errorf("Reply() to a closed connection = %v, want %v", err, driver.ErrUndeliverable)
		}

		// The server's connection closes: its deliveries cannot reply.
		d, errc = callAndTake(c)
		_ = server.Close()
		if err := d.Reply(t.Context(), &driver.Reply{}); !errors.Is(err, driver.ErrClosed) {
			t.Errorf("Reply() on a closed connection = %v, want %v", err, driver.ErrClosed)
		}
		synctest.Wait()
		select {
		case err := <-errc:
			t.Errorf("Call() = %v, want it still waiting", err)
		default:
		}
		_ = c.Close()
		if err := <-errc; !errors.Is(err, driver.ErrClosed) {
			t.Errorf("Call() = %v, want %v", err, driver.ErrClosed)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	b := memory.NewBroker()
	c := conn(t, b)
	ctx := t.Context()
	opts := driver.SendOptions{}
	noMsgID := castReq(1)
	badArgs := callReq(1)
	badArgs.Args = json.RawMessage(`[1, 2]`)
	badContext := callReq(1)
	badContext.Context = map[string]any{"ch": make(chan int)}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		addr driver.Address
		req  *driver.Request
		want string
	}{
		{"nil request", ctx, addr("t", ""), nil, "nil request"},
		{"no msg id", ctx, addr("t", ""), noMsgID, "no msg id"},
		{"fanout", ctx, fanout("t"), callReq(1), "fanout"},
		{"no exchange", ctx, driver.Address{Topic: "t"}, callReq(1), "no exchange"},
		{"no topic", ctx, driver.Address{Exchange: exchange}, callReq(1), "no topic"},
		{"args not an object", ctx, addr("t", ""), badArgs, "args"},
		{"context not encodable", ctx, addr("t", ""), badContext, `"ch"`},
		{"cancelled", cancelled, addr("t", ""), callReq(1), context.Canceled.Error()},
	} {
		if _, err := c.Call(tc.ctx, tc.addr, tc.req, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Call(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		addr driver.Address
		req  *driver.Request
		want string
	}{
		{"nil request", addr("t", ""), nil, "nil request"},
		{"msg id", addr("t", ""), callReq(1), "msg id"},
		{"no topic", driver.Address{Exchange: exchange, Fanout: true}, castReq(1), "no topic"},
		{"context not encodable", addr("t", ""), &driver.Request{Method: "m", Context: map[string]any{"f": func() {}}}, `"f"`},
	} {
		if err := c.Cast(ctx, tc.addr, tc.req, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Cast(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := c.Listen(ctx, addr("t", "s"), driver.ListenOptions{Prefetch: -1}); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("Listen(Prefetch: -1) = %v, want %v", err, messaging.ErrInvalidOption)
	}
	if _, err := c.Listen(ctx, driver.Address{Exchange: exchange}, driver.ListenOptions{}); err == nil {
		t.Errorf("Listen(no topic) = nil error")
	}
	if _, err := c.Listen(cancelled, addr("t", "s"), driver.ListenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Listen(cancelled) = %v, want %v", err, context.Canceled)
	}
	if err := c.Ping(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping(cancelled) = %v, want %v", err, context.Canceled)
	}
}

func TestCallSetsReplyFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c1, c2 := conn(t, b), conn(t, b)
		listen(t, conn(t, b), addr("t", "s"), 0)
		var replyTos []string
		for _, c := range []*memory.Conn{c1, c1, c2} {
			req := callReq(1)
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, _ = c.Call(ctx, addr("t", "s"), req, driver.SendOptions{MonitorTimeout: 1500 * time.Millisecond})
			cancel()
			if !strings.HasPrefix(req.ReplyTo, "reply_") {
				t.Errorf("ReplyTo = %q, want reply_<id>", req.ReplyTo)
			}
			if req.MonitorTimeout == nil || *req.MonitorTimeout != 1.5 {
				t.Errorf("MonitorTimeout = %v, want 1.5", req.MonitorTimeout)
			}
			replyTos = append(replyTos, req.ReplyTo)
		}
		if replyTos[0] != replyTos[1] || replyTos[0] == replyTos[2] {
			t.Errorf("ReplyTo of two calls on one conn and one on another: %q, want one name per conn", replyTos)
		}
	})
}

func TestDuplicateMsgID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		c := conn(t, b)
		listen(t, conn(t, b), addr("t", "s"), 0)
		req := callReq(1)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			r := *req
			_, err := c.Call(ctx, addr("t", "s"), &r, driver.SendOptions{})
			errc <- err
		}()
		synctest.Wait()
		r := *req
		if _, err := c.Call(t.Context(), addr("t", "s"), &r, driver.SendOptions{}); err == nil || !strings.Contains(err.Error(), "already") {
			t.Errorf("Call() with a msg id in use = %v, want an error", err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Call() = %v, want %v", err, context.Canceled)
		}
	})
}

// TestStress runs calls and casts while listeners come and go, for the
// race detector and to check that nothing is lost on the shared topic.
func TestStress(t *testing.T) {
	b := memory.NewBroker()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// serve answers the requests that reach l until nextCtx ends.
	serve := func(nextCtx, replyCtx context.Context, l driver.Listener) {
		for {
			d, err := l.Next(nextCtx)
			if err != nil {
				return
			}
			if err := d.Reply(replyCtx, &driver.Reply{Result: d.Request().Args}); err != nil {
				t.Errorf("Reply() = %v", err)
			}
		}
	}
	var servers sync.WaitGroup
	serveCtx, stopServers := context.WithCancel(ctx)
	for i := range 3 {
		l := listen(t, conn(t, b), addr("t", fmt.Sprint("s", i)), i) // prefetch 0, 1, 2
		servers.Go(func() { serve(serveCtx, ctx, l) })
	}
	// A server that keeps restarting: what it was given and did not
	// take goes back to the queue.
	servers.Go(func() {
		c := b.Conn()
		defer c.Close()
		for serveCtx.Err() == nil {
			l, err := c.Listen(serveCtx, addr("t", "flaky"), driver.ListenOptions{})
			if err != nil {
				return
			}
			lctx, lcancel := context.WithTimeout(serveCtx, time.Millisecond)
			serve(lctx, ctx, l)
			lcancel()
			_ = l.Close()
		}
	})
	var clients sync.WaitGroup
	for i := range 4 {
		clients.Go(func() {
			c := b.Conn()
			defer c.Close()
			for j := range 100 {
				args := json.RawMessage(fmt.Sprintf(`{"client": %d, "n": %d}`, i, j))
				req := &driver.Request{Method: "echo", Args: args, MsgID: wire.NewID()}
				r, err := c.Call(ctx, addr("t", ""), req, driver.SendOptions{})
				if err != nil {
					t.Errorf("client %d call %d: %v", i, j, err)
					return
				}
				if string(r.Result) != string(args) {
					t.Errorf("client %d call %d: result %s, want %s", i, j, r.Result, args)
				}
				if err := c.Cast(ctx, fanout("t"), castReq(j), driver.SendOptions{}); err != nil {
					t.Errorf("client %d cast %d: %v", i, j, err)
				}
			}
		})
	}
	clients.Wait()
	stopServers()
	servers.Wait()
}
