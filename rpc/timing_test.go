package rpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/rpc"
)

// bubbleTransport returns a transport on a broker private to the
// current synctest bubble.
func bubbleTransport() *messaging.Transport {
	return messaging.NewTransport(memory.NewBroker().Conn())
}

// run serves srv in the bubble and returns a function that shuts it down
// and reports Serve's result.
func run(t *testing.T, srv *rpc.Server) (shutdown func(context.Context) error, served <-chan error) {
	if err := srv.Listen(context.Background()); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background()) }()
	synctest.Wait()
	return srv.Shutdown, errc
}

func TestCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		c := newClient(t, tr, messaging.Target{Topic: "nobody"}, rpc.WithTimeout(3*time.Second))

		start := time.Now()
		err := c.Call(context.Background(), "ping", nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Call = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("default timeout took %v, want 3s", d)
		}
		for _, want := range []string{"nobody", "ping", "message ID "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}

		// A deadline on the context wins over the client default, and is
		// never extended.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start = time.Now()
		err = c.Call(ctx, "ping", nil, nil, rpc.Timeout(time.Hour))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 500*time.Millisecond {
			t.Errorf("Call with ctx deadline = %v after %v, want DeadlineExceeded after 500ms", err, time.Since(start))
		}
	})
}

func TestCallMonitorKeepsLongCallAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "long_running_task", func(ctx context.Context, a struct{ Seconds int }) (int, error) {
			time.Sleep(time.Duration(a.Seconds) * time.Second)
			return a.Seconds, nil
		})
		shutdown, served := run(t, newServer(t, tr, messaging.Target{Topic: "mon", Server: "s"}, []*rpc.Endpoint{ep}))
		c := newClient(t, tr, messaging.Target{Topic: "mon"})

		// oslo's test_monitor_long_call: a 4s method with a 2s monitor
		// interval completes thanks to heartbeats...
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		got, err := rpc.Call[int](ctx, c, "long_running_task", map[string]int{"Seconds": 4}, rpc.CallMonitorTimeout(2*time.Second))
		if err != nil || got != 4 {
			t.Errorf("monitored long call = %d, %v; want 4", got, err)
		}
		// ...and a 10s method under a 4s monitor too.
		got, err = rpc.Call[int](ctx, c, "long_running_task", map[string]int{"Seconds": 10}, rpc.CallMonitorTimeout(4*time.Second))
		if err != nil || got != 10 {
			t.Errorf("monitored long call = %d, %v; want 10", got, err)
		}
		// Without the monitor, a 1s timeout fails it.
		ctx1, cancel1 := context.WithTimeout(context.Background(), time.Second)
		defer cancel1()
		if _, err := rpc.Call[int](ctx1, c, "long_running_task", map[string]int{"Seconds": 4}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("unmonitored call with 1s timeout = %v, want DeadlineExceeded", err)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
}

func TestCallMonitorFailsWhenHeartbeatsStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		conn := tr.Conn().(driver.RPCConn)
		// A server that takes the request and then says nothing, as a
		// crashed server would.
		lis, err := conn.Listen(context.Background(), tr.Address(messaging.Target{Topic: "mute", Server: "s"}), driver.ListenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		c := newClient(t, tr, messaging.Target{Topic: "mute"})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		err = c.Call(ctx, "m", nil, nil, rpc.CallMonitorTimeout(4*time.Second))
		if !errors.Is(err, messaging.ErrHeartbeatTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Call = %v, want ErrHeartbeatTimeout matching DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 4*time.Second {
			t.Errorf("monitor fired after %v, want 4s", d)
		}
	})
}

func TestShutdownDrainsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "slow", func(ctx context.Context, _ struct{}) (string, error) {
			time.Sleep(5 * time.Second)
			return "done", nil
		})
		srv := newServer(t, tr, messaging.Target{Topic: "drain", Server: "s"}, []*rpc.Endpoint{ep})
		shutdown, served := run(t, srv)
		c := newClient(t, tr, messaging.Target{Topic: "drain"})
		res := make(chan error, 1)
		go func() {
			got, err := rpc.Call[string](context.Background(), c, "slow", nil)
			if err == nil && got != "done" {
				err = errors.New("wrong result " + got)
			}
			res <- err
		}()
		synctest.Wait() // the handler is running
		start := time.Now()
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("Shutdown returned after %v, want 5s (the handler's time)", d)
		}
		if err := <-res; err != nil {
			t.Errorf("in-flight call: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
		// New calls are no longer served.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Call(ctx, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call after shutdown = %v, want DeadlineExceeded", err)
		}
	})
}

func TestShutdownDeadlineThenClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "stuck", func(ctx context.Context, _ struct{}) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		srv := newServer(t, tr, messaging.Target{Topic: "stuck", Server: "s"}, []*rpc.Endpoint{ep})
		_, served := run(t, srv)
		c := newClient(t, tr, messaging.Target{Topic: "stuck"})
		if err := c.Cast(context.Background(), "stuck", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown with a stuck handler = %v, want DeadlineExceeded", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
}
