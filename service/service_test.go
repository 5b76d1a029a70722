package service_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

func TestNewValidation(t *testing.T) {
	tr, err := messaging.Open("memory:///service-new")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	eps := []*rpc.Endpoint{{}}
	tests := []struct {
		name    string
		tr      *messaging.Transport
		binary  string
		topic   string
		host    string
		eps     []*rpc.Endpoint
		opts    []service.Option
		wantErr error
	}{
		{"nil transport", nil, "b", "t", "h", eps, nil, nil},
		{"no binary", tr, "", "t", "h", eps, nil, messaging.ErrInvalidOption},
		{"no topic", tr, "b", "", "h", eps, nil, messaging.ErrInvalidTarget},
		{"no host", tr, "b", "t", "", eps, nil, messaging.ErrInvalidTarget},
		{"nil endpoint", tr, "b", "t", "h", []*rpc.Endpoint{nil}, nil, messaging.ErrInvalidOption},
		{"nil option", tr, "b", "t", "h", eps, []service.Option{nil}, messaging.ErrInvalidOption},
		{"negative drain timeout", tr, "b", "t", "h", eps, []service.Option{service.WithDrainTimeout(-time.Second)}, messaging.ErrInvalidOption},
		{"invalid server option", tr, "b", "t", "h", eps, []service.Option{service.WithServerOptions(rpc.WithMaxConcurrency(0))}, messaging.ErrInvalidOption},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := service.New(tc.tr, tc.binary, tc.topic, tc.host, tc.eps, tc.opts...)
			if err == nil || svc != nil {
				t.Fatalf("New = %v, %v, want an error", svc, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("New = %v, want an error matching %v", err, tc.wantErr)
			}
		})
	}

	svc, err := service.New(tr, "nova-compute", "compute", "host1", eps, service.WithDrainTimeout(0))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if svc.Binary() != "nova-compute" || svc.Topic() != "compute" || svc.Host() != "host1" ||
		svc.Target().Topic != "compute" || svc.Target().Server != "host1" {
		t.Errorf("service %s %s %s %v", svc.Binary(), svc.Topic(), svc.Host(), svc.Target())
	}
}

func TestAddPeriodicTaskValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, bubbleTransport(t), nil)
		nop := func(context.Context) error { return nil }
		if err := h.svc.AddPeriodicTask("sync_power_states", time.Minute, nop, service.RunImmediately(true)); err != nil {
			t.Fatalf("AddPeriodicTask: %v", err)
		}
		for name, err := range map[string]error{
			"empty name":     h.svc.AddPeriodicTask("", time.Minute, nop),
			"nil function":   h.svc.AddPeriodicTask("x", time.Minute, nil),
			"duplicate":      h.svc.AddPeriodicTask("sync_power_states", time.Minute, nop),
			"negative delay": h.svc.AddPeriodicTask("y", time.Minute, nop, service.InitialDelay(-time.Second)),
			"nil option":     h.svc.AddPeriodicTask("z", time.Minute, nop, nil),
		} {
			if !errors.Is(err, messaging.ErrInvalidOption) {
				t.Errorf("AddPeriodicTask with %s = %v, want ErrInvalidOption", name, err)
			}
		}
		// A negative interval disables the task, as oslo does.
		if err := h.svc.AddPeriodicTask("disabled", -1, nop); err != nil {
			t.Errorf("AddPeriodicTask(negative interval) = %v, want nil", err)
		}
		if !strings.Contains(h.logs.String(), "periodic task disabled") {
			t.Errorf("a disabled task is not logged:\n%s", h.logs)
		}

		h.run(t, t.Context())
		if err := h.svc.AddPeriodicTask("late", time.Minute, nop); err == nil {
			t.Error("AddPeriodicTask after Run succeeded")
		}
		h.svc.Stop()
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// whoami is an endpoint that reports the caller's RequestContext.
func whoami() *rpc.Endpoint {
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "whoami", func(ctx context.Context, _ struct{}) (string, error) {
		rc, ok := oslocontext.FromContext(ctx)
		if !ok {
			return "", errors.New("no request context")
		}
		return rc.UserID + " " + rc.RequestID, nil
	})
	return ep
}

func TestRunServesUntilStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{whoami()})
		h.run(t, t.Context())
		c := h.client(t)

		// The service's default serializer gives handlers the caller's
		// RequestContext, on the topic and on topic.host.
		rc := oslocontext.New()
		rc.UserID = "alice"
		ctx := oslocontext.NewContext(t.Context(), rc)
		for _, c := range []*rpc.Client{c, c.Prepare(rpc.ToServer("host1"))} {
			got, err := rpc.Call[string](ctx, c, "whoami", nil)
			if want := "alice " + rc.RequestID; err != nil || got != want {
				t.Errorf("whoami = %q, %v, want %q", got, err, want)
			}
		}

		h.svc.Stop()
		h.svc.Stop() // idempotent
		if err := <-h.done; err != nil {
			t.Errorf("Run after Stop = %v, want nil", err)
		}
		out := h.logs.String()
		for _, want := range []string{
			`msg="service: started" binary=nova-compute topic=compute host=host1`,
			`msg="service: stopping" binary=nova-compute topic=compute host=host1 reason="Stop called"`,
			`msg="service: stopped"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log does not contain %s:\n%s", want, out)
			}
		}
		if err := h.svc.Run(t.Context()); err == nil {
			t.Error("second Run succeeded")
		}
	})
}

// slowEndpoint's method "slow" sleeps for its argument, then reports
// whether its context was still alive.
func slowEndpoint(entered chan<- struct{}) *rpc.Endpoint {
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "slow", func(ctx context.Context, a struct{ Seconds int }) (string, error) {
		entered <- struct{}{}
		select {
		case <-time.After(time.Duration(a.Seconds) * time.Second):
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	return ep
}

// A stop signal drains the requests in flight: the caller gets its
// reply, and Run returns nil after it.
func TestStopSignalDrainsInFlightCall(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(sig.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				entered := make(chan struct{}, 1)
				h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{slowEndpoint(entered)})
				h.run(t, t.Context())
				c := h.client(t)
				start := time.Now()
				res := goCall(t.Context(), c, "slow", map[string]int{"Seconds": 5})
				<-entered

				h.sigs <- sig
				synctest.Wait()
				select {
				case err := <-h.done:
					t.Fatalf("Run = %v before the call in flight finished", err)
				default:
				}
				// The server no longer consumes: a new call is not served.
				lctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				late := goCall(lctx, c, "slow", map[string]int{"Seconds": 0})

				r := <-res
				if r.err != nil || r.reply != "done" || time.Since(start) != 5*time.Second {
					t.Errorf("call in flight = %q, %v after %v; want done after 5s", r.reply, r.err, time.Since(start))
				}
				if err := <-h.done; err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
				if r := <-late; !errors.Is(r.err, context.DeadlineExceeded) {
					t.Errorf("call after the signal = %q, %v, want a timeout", r.reply, r.err)
				}
				cancel()
				if out := h.logs.String(); !strings.Contains(out, `reason="signal `+sig.String()+`"`) {
					t.Errorf("the stop reason is not logged:\n%s", out)
				}
			})
		})
	}
}

// The end of Run's context stops gracefully too: the handler's context
// is not cancelled.
func TestContextEndDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{}, 1)
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{slowEndpoint(entered)}, service.WithSignals(nil))
		ctx, cancel := context.WithCancel(t.Context())
		h.run(t, ctx)
		res := goCall(t.Context(), h.client(t), "slow", map[string]int{"Seconds": 3})
		<-entered
		cancel()
		if r := <-res; r.err != nil || r.reply != "done" {
			t.Errorf("call in flight = %q, %v, want done", r.reply, r.err)
		}
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

// Requests still running when the drain timeout expires are cancelled,
// and Run says so.
func TestDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{}, 1)
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{slowEndpoint(entered)}, service.WithDrainTimeout(3*time.Second))
		h.run(t, t.Context())
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		res := goCall(ctx, h.client(t), "slow", map[string]int{"Seconds": 3600})
		<-entered
		start := time.Now()
		h.sigs <- syscall.SIGTERM
		err := <-h.done
		if !errors.Is(err, service.ErrDrainIncomplete) || !strings.Contains(err.Error(), "drain timeout 3s expired") {
			t.Errorf("Run = %v, want ErrDrainIncomplete for the timeout", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Run returned %v after the signal, want 3s", d)
		}
		if r := <-res; r.err == nil {
			t.Errorf("the cancelled call succeeded: %q", r.reply)
		}
		if !strings.Contains(h.logs.String(), "drain timeout expired") {
			t.Errorf("the expired drain is not logged:\n%s", h.logs)
		}
	})
}

// A second stop signal ends the drain at once.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{}, 1)
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{slowEndpoint(entered)})
		h.run(t, t.Context())
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		res := goCall(ctx, h.client(t), "slow", map[string]int{"Seconds": 3600})
		<-entered
		h.sigs <- syscall.SIGTERM
		time.Sleep(2 * time.Second)
		h.sigs <- syscall.SIGHUP // ignored while stopping
		start := time.Now()
		h.sigs <- os.Interrupt
		err := <-h.done
		if !errors.Is(err, service.ErrDrainIncomplete) || !strings.Contains(err.Error(), "second signal") {
			t.Errorf("Run = %v, want ErrDrainIncomplete for a second signal", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Run returned %v after the second signal, want at once", d)
		}
		<-res
	})
}

func TestSIGHUPReloads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		gate := make(chan struct{})
		reload := func(ctx context.Context) error {
			switch calls.Add(1) {
			case 1:
				return nil
			case 2:
				return errors.New("bad config")
			case 3:
				panic("reload bug")
			case 4:
				<-gate
			}
			return nil
		}
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{whoami()}, service.WithReload(reload))
		h.run(t, t.Context())
		hup := func() {
			h.sigs <- syscall.SIGHUP
			synctest.Wait()
		}
		hup()
		hup()
		hup()
		if n := calls.Load(); n != 3 {
			t.Fatalf("reload called %d times after 3 SIGHUPs", n)
		}
		// The service still serves.
		if _, err := rpc.Call[string](t.Context(), h.client(t), "whoami", nil); err != nil {
			t.Errorf("whoami after reloads: %v", err)
		}

		// SIGHUPs during a reload make one more reload after it.
		hup() // 4: blocks on gate
		hup()
		hup()
		hup()
		if n := calls.Load(); n != 4 {
			t.Fatalf("reload called %d times, want 4 while one runs", n)
		}
		close(gate)
		synctest.Wait()
		if n := calls.Load(); n != 5 {
			t.Errorf("reload called %d times after the running one, want 5", n)
		}

		h.sigs <- syscall.SIGTERM
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		out := h.logs.String()
		for _, want := range []string{`msg="service: reloaded"`, `msg="service: reload failed"`, `error="bad config"`,
			`msg="service: reload panicked"`, `panic="reload bug"`, "a reload is already pending"} {
			if !strings.Contains(out, want) {
				t.Errorf("log does not contain %s:\n%s", want, out)
			}
		}
	})
}

// A reload in progress when the service stops sees its context
// cancelled, and Run waits for it.
func TestStopCancelsReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		returned := make(chan struct{})
		h := newHarness(t, bubbleTransport(t), nil, service.WithReload(func(ctx context.Context) error {
			defer close(returned)
			<-ctx.Done()
			time.Sleep(time.Second)
			return ctx.Err()
		}))
		h.run(t, t.Context())
		h.sigs <- syscall.SIGHUP
		synctest.Wait() // the reload runs
		h.sigs <- syscall.SIGTERM
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		select {
		case <-returned:
		default:
			t.Error("Run returned before the reload did")
		}
	})
}

func TestSignalsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, bubbleTransport(t), []*rpc.Endpoint{whoami()})
		h.run(t, t.Context())
		h.sigs <- syscall.SIGHUP // no reload function
		h.sigs <- syscall.SIGUSR1
		close(h.sigs) // no more signals
		synctest.Wait()
		if _, err := rpc.Call[string](t.Context(), h.client(t), "whoami", nil); err != nil {
			t.Errorf("whoami after ignored signals: %v", err)
		}
		h.svc.Stop()
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if out := h.logs.String(); !strings.Contains(out, "SIGHUP ignored: no reload function") {
			t.Errorf("the ignored SIGHUP is not logged:\n%s", out)
		}
	})
}

func TestListenFailureFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport(t)
		h := newHarness(t, tr, []*rpc.Endpoint{whoami()})
		var ran atomic.Bool
		if err := h.svc.AddPeriodicTask("never", time.Second, func(context.Context) error { ran.Store(true); return nil },
			service.RunImmediately(true)); err != nil {
			t.Fatal(err)
		}
		_ = tr.Close()
		start := time.Now()
		err := h.svc.Run(t.Context())
		if !errors.Is(err, messaging.ErrClosed) || !strings.Contains(err.Error(), "nova-compute") {
			t.Errorf("Run on a closed transport = %v, want ErrClosed naming the service", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Run failed after %v, want at once", d)
		}
		select {
		case <-h.svc.Ready():
			t.Error("Ready closed although the service never served")
		default:
		}
		if ran.Load() {
			t.Error("a periodic task ran although the service never served")
		}
	})
}

func TestStopBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, bubbleTransport(t), nil)
		h.svc.Stop()
		if err := h.svc.Run(t.Context()); err != nil {
			t.Errorf("Run after Stop = %v, want nil", err)
		}
		select {
		case <-h.svc.Ready():
			t.Error("Ready closed")
		default:
		}
	})
}

func TestPeriodicTasksUnderRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, bubbleTransport(t), nil, service.WithDrainTimeout(10*time.Second))
		var mu sync.Mutex
		var runs []time.Duration
		var start time.Time
		if err := h.svc.AddPeriodicTask("heal_instance_info_cache", 10*time.Second, func(ctx context.Context) error {
			mu.Lock()
			runs = append(runs, time.Since(start))
			mu.Unlock()
			if rc, ok := oslocontext.FromContext(ctx); !ok || !rc.IsAdmin {
				t.Errorf("task context %v, want an admin RequestContext", rc)
			}
			return nil
		}, service.RunImmediately(true)); err != nil {
			t.Fatal(err)
		}
		// A task that ignores its context for a while: Run waits for it.
		stubbornDone := false
		if err := h.svc.AddPeriodicTask("stubborn", time.Hour, func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(15 * time.Second)
			stubbornDone = true
			return nil
		}, service.RunImmediately(true)); err != nil {
			t.Fatal(err)
		}
		// Disabled: never runs.
		if err := h.svc.AddPeriodicTask("disabled", -time.Second, func(context.Context) error {
			t.Error("a disabled task ran")
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		h.run(t, t.Context())
		time.Sleep(25 * time.Second)
		stopped := time.Now()
		h.svc.Stop()
		time.Sleep(12 * time.Second)
		h.sigs <- syscall.SIGTERM // read and ignored while Run waits for the task
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if d := time.Since(stopped); d != 15*time.Second || !stubbornDone {
			t.Errorf("Run returned %v after Stop (stubborn task done: %v), want after the task, 15s", d, stubbornDone)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []time.Duration{0, 10 * time.Second, 20 * time.Second}; len(runs) != 3 || runs[0] != want[0] || runs[1] != want[1] || runs[2] != want[2] {
			t.Errorf("runs at %v, want %v", runs, want)
		}
		if out := h.logs.String(); !strings.Contains(out, "periodic tasks or a reload have not returned") || !strings.Contains(out, "tasks=2") ||
			!strings.Contains(out, "signal ignored while stopping") {
			t.Errorf("log does not warn about the slow task or count the tasks:\n%s", out)
		}
	})
}

func TestServerOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport(t)
		h := newHarness(t, tr, []*rpc.Endpoint{whoami()},
			service.WithServerOptions(rpc.WithPing(true), rpc.WithSerializer(messaging.NoOpSerializer{})))
		h.run(t, t.Context())
		c := h.client(t)
		if got, err := rpc.Call[string](t.Context(), c, rpc.PingMethod, nil); err != nil || got != "pong" {
			t.Errorf("ping = %q, %v, want pong", got, err)
		}
		// The serializer given replaces the service's default.
		ctx := oslocontext.NewContext(t.Context(), oslocontext.New())
		if _, err := rpc.Call[string](ctx, c, "whoami", nil); err == nil || !strings.Contains(err.Error(), "no request context") {
			t.Errorf("whoami with the no-op serializer = %v, want no request context", err)
		}
		h.svc.Stop()
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
