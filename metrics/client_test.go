package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/metrics"
	"github.com/go-oslo/messaging/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

func TestClient(t *testing.T) {
	tr := newTransport(t)
	reg := prometheus.NewRegistry()
	topic, other := unique("topic"), unique("other")
	release := make(chan struct{})
	ep := testEndpoint(release)
	serve(t, newServer(t, tr, messaging.Target{Topic: topic, Server: "host1"}, []*rpc.Endpoint{ep}))
	serve(t, newServer(t, tr, messaging.Target{Topic: other, Server: "host1"}, []*rpc.Endpoint{testEndpoint(release)}))
	t.Cleanup(func() { close(release) }) // before the servers shut down

	c, err := metrics.NewClient(newClient(t, tr, messaging.Target{Topic: topic}), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)

	if got, err := metrics.Call[string](ctx, c, "echo", echoArgs{"hi"}); err != nil || got != "hi" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	var reply string
	if err := c.Call(ctx, "echo", echoArgs{"again"}, &reply); err != nil || reply != "again" {
		t.Fatalf("echo = %q, %v", reply, err)
	}
	var re *rpc.RemoteError
	if err := c.Call(ctx, "fail", nil, nil); !errors.As(err, &re) {
		t.Fatalf("fail: %v, want a remote error", err)
	}
	// Timeouts: the ctx deadline, or the client's timeout.
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err = c.Call(tctx, "slow", nil, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow: %v, want a timeout", err)
	}
	// rpc.Timeout applies to a ctx without a deadline.
	if err := c.Call(context.Background(), "slow", nil, nil, rpc.Timeout(20*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow with Timeout: %v, want a timeout", err)
	}
	// A cancelled call.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Call(cctx, "echo", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, want context.Canceled", err)
	}
	// Another topic, per call and prepared.
	if err := c.Call(ctx, "echo", nil, nil, rpc.Topic(other)); err != nil {
		t.Fatal(err)
	}
	if err := c.Prepare(rpc.Topic(other)).Cast(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Cast(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	// A fanout call is refused before it is sent.
	if err := c.Call(ctx, "echo", nil, nil, rpc.Fanout(true)); !errors.Is(err, messaging.ErrInvalidTarget) {
		t.Fatalf("fanout call: %v, want ErrInvalidTarget", err)
	}

	const (
		calls    = "oslo_messaging_rpc_client_calls_total"
		duration = "oslo_messaging_rpc_client_call_duration_seconds"
		remote   = "oslo_messaging_rpc_client_remote_errors_total"
		casts    = "oslo_messaging_rpc_client_casts_total"
	)
	checkValue(t, reg, calls, labels("topic", topic, "method", "echo", "outcome", "ok"), 2)
	checkValue(t, reg, duration, labels("topic", topic, "method", "echo", "outcome", "ok"), 2)
	checkValue(t, reg, calls, labels("topic", topic, "method", "fail", "outcome", "remote_error"), 1)
	checkValue(t, reg, remote, labels("topic", topic, "method", "fail", "class", "builtins.ValueError"), 1)
	checkValue(t, reg, calls, labels("topic", topic, "method", "slow", "outcome", "timeout"), 2)
	checkValue(t, reg, duration, labels("topic", topic, "method", "slow", "outcome", "timeout"), 2)
	checkValue(t, reg, calls, labels("topic", topic, "method", "echo", "outcome", "canceled"), 1)
	checkValue(t, reg, calls, labels("topic", topic, "method", "echo", "outcome", "error"), 1)
	checkValue(t, reg, calls, labels("topic", other, "method", "echo", "outcome", "ok"), 1)
	checkValue(t, reg, casts, labels("topic", other, "method", "echo", "outcome", "ok"), 1)
	checkValue(t, reg, casts, labels("topic", topic, "method", "echo", "outcome", "ok"), 1)

	if c.Unwrap() == nil || c.Target().Topic != topic {
		t.Errorf("Unwrap, Target = %v, %v", c.Unwrap(), c.Target())
	}
	if _, err := metrics.NewClient(nil, reg); err == nil {
		t.Error("NewClient(nil): no error")
	}
}
