package metrics_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

const testTimeout = 10 * time.Second

func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// newTransport opens a memory transport on a virtual host of its own.
func newTransport(t *testing.T) *messaging.Transport {
	t.Helper()
	tr, err := messaging.Open("memory:///" + unique("vh"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// serve starts srv and shuts it down at cleanup, checking Serve's result.
func serve(t *testing.T, srv *rpc.Server) {
	t.Helper()
	if err := srv.Listen(testContext(t)); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
}

func newServer(t *testing.T, tr *messaging.Transport, target messaging.Target, eps []*rpc.Endpoint, opts ...rpc.ServerOption) *rpc.Server {
	t.Helper()
	// The failures the tests cause are not logged.
	opts = append([]rpc.ServerOption{rpc.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	srv, err := rpc.NewServer(tr, target, eps, opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return srv
}

func newClient(t *testing.T, tr *messaging.Transport, target messaging.Target, opts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	c, err := rpc.NewClient(tr, target, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// value returns the value of the metric name with exactly the given
// labels in g: a counter's or gauge's value, a histogram's sample
// count; -1 if there is no such metric.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// waitValue waits until the metric has the value want.
func waitValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := value(t, g, name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func checkValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := value(t, g, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// labels builds a label map from key, value pairs.
func labels(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
