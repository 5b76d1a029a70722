package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/metrics"
	"github.com/go-oslo/messaging/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type echoArgs struct {
	Text string `json:"text"`
}

// testEndpoint serves echo, fail (builtins.ValueError), boom (panics)
// and slow (blocks until release is closed).
func testEndpoint(release <-chan struct{}) *rpc.Endpoint {
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "echo", func(_ context.Context, a echoArgs) (string, error) { return a.Text, nil })
	rpc.Handle(ep, "fail", func(context.Context, echoArgs) (string, error) {
		return "", rpc.NewRemoteError("builtins.ValueError", "bad value")
	})
	rpc.Handle(ep, "boom", func(context.Context, echoArgs) (string, error) { panic("boom") })
	rpc.Handle(ep, "slow", func(ctx context.Context, _ echoArgs) (string, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return "done", nil
	})
	return ep
}

func TestServerMiddleware(t *testing.T) {
	tr := newTransport(t)
	reg := prometheus.NewRegistry()
	topic := unique("topic")
	mw, err := metrics.ServerMiddleware(reg, topic)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	target := messaging.Target{Topic: topic, Server: "host1"}
	srv := newServer(t, tr, target, []*rpc.Endpoint{testEndpoint(release)}, rpc.WithMiddleware(mw))
	serve(t, srv)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	c := newClient(t, tr, messaging.Target{Topic: topic})
	ctx := testContext(t)

	for range 2 {
		if _, err := rpc.Call[string](ctx, c, "echo", echoArgs{"hi"}); err != nil {
			t.Fatalf("echo: %v", err)
		}
	}
	var re *rpc.RemoteError
	if err := c.Call(ctx, "fail", nil, nil); !errors.As(err, &re) {
		t.Fatalf("fail: %v, want a remote error", err)
	}
	if err := c.Call(ctx, "boom", nil, nil); !errors.As(err, &re) {
		t.Fatalf("boom: %v, want a remote error", err)
	}
	if err := c.Call(ctx, "no_such_method_"+unique("m"), nil, nil); !errors.Is(err, rpc.ErrNoSuchMethod) {
		t.Fatalf("unknown method: %v, want ErrNoSuchMethod", err)
	}
	if err := c.Cast(ctx, "echo", echoArgs{"cast"}); err != nil {
		t.Fatalf("cast: %v", err)
	}

	const (
		handled  = "oslo_messaging_rpc_server_handled_total"
		duration = "oslo_messaging_rpc_server_handler_duration_seconds"
		failures = "oslo_messaging_rpc_server_handler_failures_total"
		inFlight = "oslo_messaging_rpc_server_handlers_in_flight"
	)
	waitValue(t, reg, handled, labels("topic", topic, "method", "echo", "kind", "cast", "outcome", "ok"), 1)
	checkValue(t, reg, handled, labels("topic", topic, "method", "echo", "kind", "call", "outcome", "ok"), 2)
	checkValue(t, reg, duration, labels("topic", topic, "method", "echo", "kind", "call", "outcome", "ok"), 2)
	checkValue(t, reg, handled, labels("topic", topic, "method", "fail", "kind", "call", "outcome", "error"), 1)
	checkValue(t, reg, handled, labels("topic", topic, "method", "boom", "kind", "call", "outcome", "panic"), 1)
	checkValue(t, reg, handled, labels("topic", topic, "method", metrics.UnknownMethod, "kind", "call", "outcome", "error"), 1)
	checkValue(t, reg, failures, labels("topic", topic, "method", "fail", "class", "builtins.ValueError"), 1)
	checkValue(t, reg, failures, labels("topic", topic, "method", "boom", "class", "builtins.Exception"), 1)
	checkValue(t, reg, failures, labels("topic", topic, "method", metrics.UnknownMethod,
		"class", "oslo_messaging.rpc.dispatcher.NoSuchMethod"), 1)
	checkValue(t, reg, inFlight, labels("topic", topic), 0)

	// A request in flight is counted until its handler returns.
	if err := c.Cast(ctx, "slow", nil); err != nil {
		t.Fatalf("cast slow: %v", err)
	}
	waitValue(t, reg, inFlight, labels("topic", topic), 1)
	close(release)
	waitValue(t, reg, inFlight, labels("topic", topic), 0)
	waitValue(t, reg, handled, labels("topic", topic, "method", "slow", "kind", "cast", "outcome", "ok"), 1)
}

func TestServerMiddlewareSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.ServerMiddleware(reg, "a"); err != nil {
		t.Fatal(err)
	}
	// A second server's middleware reuses the metrics.
	if _, err := metrics.ServerMiddleware(reg, "b"); err != nil {
		t.Fatalf("second middleware: %v", err)
	}
	// A different metric of the same name is a conflict.
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "conflict_rpc_server_handled_total", Help: "other"})
	reg.MustRegister(other)
	if _, err := metrics.ServerMiddleware(reg, "c", metrics.WithNamespace("conflict")); err == nil {
		t.Error("ServerMiddleware over a conflicting metric: no error")
	}
	if _, err := metrics.ServerMiddleware(reg, "d", metrics.WithBuckets(1, 0.5)); err == nil {
		t.Error("ServerMiddleware with decreasing buckets: no error")
	}
	if _, err := metrics.ServerMiddleware(reg, "e", nil); err == nil {
		t.Error("ServerMiddleware with a nil option: no error")
	}
}

func TestServerCollector(t *testing.T) {
	tr := newTransport(t)
	reg := prometheus.NewRegistry()
	topic := unique("topic")
	release := make(chan struct{})
	close(release)
	srv := newServer(t, tr, messaging.Target{Topic: topic, Server: "host1"}, []*rpc.Endpoint{testEndpoint(release)})
	reg.MustRegister(metrics.NewServerCollector(srv, prometheus.Labels{"service": "test"}))
	serve(t, srv)
	c := newClient(t, tr, messaging.Target{Topic: topic})
	ctx := testContext(t)

	if err := c.Call(ctx, "echo", echoArgs{"x"}, nil); err != nil {
		t.Fatal(err)
	}
	_ = c.Call(ctx, "fail", nil, nil)
	_ = c.Call(ctx, "missing", nil, nil)
	if err := c.Cast(ctx, "echo", nil); err != nil {
		t.Fatal(err)
	}
	const received = "oslo_messaging_rpc_server_received_total"
	waitValue(t, reg, received, labels("topic", topic, "server", "host1", "service", "test", "kind", "cast"), 1)
	// The cast may still be in flight: wait for it to finish.
	waitValue(t, reg, "oslo_messaging_rpc_server_in_flight", labels("topic", topic, "server", "host1", "service", "test"), 0)

	want := strings.ReplaceAll(`
# HELP oslo_messaging_rpc_server_failures_total RPC requests whose processing failed, by the exception class the caller receives.
# TYPE oslo_messaging_rpc_server_failures_total counter
oslo_messaging_rpc_server_failures_total{class="builtins.ValueError",server="host1",service="test",topic="TOPIC"} 1
oslo_messaging_rpc_server_failures_total{class="oslo_messaging.rpc.dispatcher.NoSuchMethod",server="host1",service="test",topic="TOPIC"} 1
# HELP oslo_messaging_rpc_server_in_flight RPC requests the server is processing.
# TYPE oslo_messaging_rpc_server_in_flight gauge
oslo_messaging_rpc_server_in_flight{server="host1",service="test",topic="TOPIC"} 0
# HELP oslo_messaging_rpc_server_received_total RPC requests the server took from the broker, by kind (call or cast).
# TYPE oslo_messaging_rpc_server_received_total counter
oslo_messaging_rpc_server_received_total{kind="call",server="host1",service="test",topic="TOPIC"} 3
oslo_messaging_rpc_server_received_total{kind="cast",server="host1",service="test",topic="TOPIC"} 1
# HELP oslo_messaging_rpc_server_reply_failures_total RPC calls whose reply the server could not send.
# TYPE oslo_messaging_rpc_server_reply_failures_total counter
oslo_messaging_rpc_server_reply_failures_total{server="host1",service="test",topic="TOPIC"} 0
`, "TOPIC", topic)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"oslo_messaging_rpc_server_failures_total", "oslo_messaging_rpc_server_in_flight",
		"oslo_messaging_rpc_server_received_total", "oslo_messaging_rpc_server_reply_failures_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(metrics.NewServerCollector(srv, nil), "oslo_messaging_rpc_server_processing_seconds_max"); n != 1 {
		t.Errorf("processing_seconds_max: %d metrics, want 1", n)
	}
	if total := value(t, reg, "oslo_messaging_rpc_server_processing_seconds_total",
		labels("topic", topic, "server", "host1", "service", "test")); total <= 0 {
		t.Errorf("processing_seconds_total = %v, want > 0", total)
	}
}
