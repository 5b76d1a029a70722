package rpc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/rpc"
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

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
