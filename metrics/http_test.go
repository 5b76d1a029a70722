package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// newRegistry returns a registry with one counter, test_total = 3.
func newRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."})
	c.Add(3)
	reg.MustRegister(c)
	return reg
}

// get fetches url without keeping the connection, so that no
// connection goroutine outlives the test.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(metrics.Handler(newRegistry(t)))
	defer srv.Close()
	code, body := get(t, srv.URL)
	if code != http.StatusOK || !strings.Contains(body, "test_total 3") {
		t.Errorf("GET = %d %q, want 200 with test_total 3", code, body)
	}
}

func TestServeListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- metrics.ServeListener(ctx, ln, newRegistry(t)) }()

	base := "http://" + ln.Addr().String()
	code, body := get(t, base+metrics.MetricsPath)
	if code != http.StatusOK || !strings.Contains(body, "test_total 3") {
		t.Errorf("GET /metrics = %d %q, want 200 with test_total 3", code, body)
	}
	if code, _ := get(t, base+"/other"); code != http.StatusNotFound {
		t.Errorf("GET /other = %d, want 404", code)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeListener = %v, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("ServeListener did not return after its context ended")
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, "127.0.0.1:0", prometheus.NewRegistry()) }()
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if err := metrics.Serve(t.Context(), "127.0.0.1:-1", nil); err == nil {
		t.Error("Serve on an invalid address: no error")
	}
	// A listener that fails is reported.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	if err := metrics.ServeListener(t.Context(), ln, nil); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeListener on a closed listener = %v, want an error", err)
	}
}
