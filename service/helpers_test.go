package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// logBuffer collects log output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// bubbleTransport returns a transport on a broker of its own, for use
// in a synctest bubble.
func bubbleTransport(t *testing.T) *messaging.Transport {
	t.Helper()
	tr := messaging.NewTransport(memory.NewBroker().Conn())
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// harness is a service under test, with its signal channel and logs.
type harness struct {
	svc  *service.Service
	sigs chan os.Signal
	logs *logBuffer
	tr   *messaging.Transport
	done chan error // Run's result
}

// newHarness makes a service "nova-compute" on topic "compute", host
// "host1", with injected signals and captured logs.
func newHarness(t *testing.T, tr *messaging.Transport, eps []*rpc.Endpoint, opts ...service.Option) *harness {
	t.Helper()
	log, logs := newLogger()
	h := &harness{sigs: make(chan os.Signal), logs: logs, tr: tr, done: make(chan error, 1)}
	opts = append([]service.Option{service.WithSignals(h.sigs), service.WithLogger(log)}, opts...)
	svc, err := service.New(tr, "nova-compute", "compute", "host1", eps, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	return h
}

// run starts Run and waits until the service serves.
func (h *harness) run(t *testing.T, ctx context.Context) {
	t.Helper()
	go func() { h.done <- h.svc.Run(ctx) }()
	select {
	case <-h.svc.Ready():
	case err := <-h.done:
		t.Fatalf("Run = %v before the service was ready\nlogs:\n%s", err, h.logs)
	}
}

// client returns a client of the service's topic that sends
// RequestContexts.
func (h *harness) client(t *testing.T) *rpc.Client {
	t.Helper()
	c, err := rpc.NewClient(h.tr, messaging.Target{Topic: "compute"}, rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// callResult is the outcome of an asynchronous call.
type callResult struct {
	reply string
	err   error
}

// goCall calls method in the background.
func goCall(ctx context.Context, c *rpc.Client, method string, args any) <-chan callResult {
	res := make(chan callResult, 1)
	go func() {
		r, err := rpc.Call[string](ctx, c, method, args)
		res <- callResult{r, err}
	}()
	return res
}
