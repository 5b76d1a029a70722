package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// WithHTTP serves its handler, on loopback, for as long as the service
// runs, and not after.
func TestWithHTTP(t *testing.T) {
	tr, err := messaging.Open("memory:///service-http-test")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	h := newHarness(t, tr, []*rpc.Endpoint{whoami()}, service.WithHTTP("127.0.0.1:0", mux))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.run(t, ctx)
	addr := h.svc.HTTPAddr()
	if addr == "" {
		t.Fatal("HTTPAddr is empty while the service runs")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "up 1\n" {
		t.Errorf("GET /metrics = %d %q", resp.StatusCode, body)
	}
	client.CloseIdleConnections()
	h.svc.Stop()
	if err := <-h.done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
		_ = c.Close()
		t.Errorf("%s still accepts connections after the service stopped", addr)
	}
}

// Run fails at once when the HTTP address cannot be used.
func TestWithHTTPListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tr, err := messaging.Open("memory:///service-http-fail")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	h := newHarness(t, tr, []*rpc.Endpoint{whoami()}, service.WithHTTP(ln.Addr().String(), http.NotFoundHandler()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.svc.Run(ctx); err == nil || !strings.Contains(err.Error(), "HTTP") {
		t.Errorf("Run with a busy address = %v, want an HTTP listen error", err)
	}
	if _, err := service.New(tr, "b", "t", "h", nil, service.WithHTTP("", nil)); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("WithHTTP without address = %v, want ErrInvalidOption", err)
	}
}
