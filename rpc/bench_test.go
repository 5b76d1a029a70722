package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
)

// Benchmarks of the RPC layer end to end on the memory driver (client,
// codec, in-process broker, server dispatch and reply), and of the
// dispatcher alone. They do not run with the tests; run them with
//
//	go test -run '^$' -bench . -benchmem ./rpc

// benchArgs is the argument struct of the benchmarks' method: about
// 1 KB once encoded.
type benchArgs struct {
	InstanceUUID string `json:"instance_uuid"`
	RebootType   string `json:"reboot_type"`
	Data         string `json:"data"`
}

func newBenchArgs() benchArgs {
	return benchArgs{
		InstanceUUID: "0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20",
		RebootType:   "SOFT",
		Data:         strings.Repeat("x", 1024-len(`{"instance_uuid":"0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20","reboot_type":"SOFT","data":""}`)),
	}
}

// benchMetadata is a request context of typical size: ids, roles and a
// Fernet-sized token.
func benchMetadata() messaging.Metadata {
	return messaging.Metadata{
		"user_id":           "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e",
		"project_id":        "8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b",
		"user_domain_id":    "default",
		"project_domain_id": "default",
		"is_admin":          true,
		"read_only":         false,
		"show_deleted":      false,
		"roles":             []any{"admin", "member", "reader"},
		"auth_token":        "gAAAAAB" + strings.Repeat("Ab3_", 45),
		"request_id":        "req-3b2f6a1e-9c4d-4e7a-8b5f-1d2c3e4f5a6b",
		"global_request_id": nil,
		"user_identity":     "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e 8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b - default default",
	}
}

// benchEnv is a memory transport on a virtual host of its own, with a
// server whose endpoint echoes calls (a 1 KB reply) and counts casts.
type benchEnv struct {
	client *Client
	casts  atomic.Int64
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	var id [6]byte
	_, _ = rand.Read(id[:])
	tr, err := messaging.Open("memory:///bench_" + hex.EncodeToString(id[:]))
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { _ = tr.Close() })

	e := &benchEnv{}
	ep := &Endpoint{Namespace: "compute", Version: "6.0"}
	Handle(ep, "echo", func(_ context.Context, a benchArgs) (benchArgs, error) { return a, nil })
	Handle(ep, "note", func(context.Context, benchArgs) (any, error) {
		e.casts.Add(1)
		return nil, nil
	})
	target := messaging.Target{Topic: "bench", Server: "host1", Namespace: "compute", Version: "6.0"}
	srv, err := NewServer(tr, target, []*Endpoint{ep})
	if err != nil {
		b.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Listen(ctx); err != nil {
		b.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			b.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	e.client, err = NewClient(tr, messaging.Target{Topic: "bench", Namespace: "compute", Version: "6.0"})
	if err != nil {
		b.Fatalf("NewClient: %v", err)
	}
	return e
}

// benchCtx is the context of the benchmarks' calls: bounded, carrying
// a typical request context.
func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	b.Cleanup(cancel)
	return messaging.NewOutgoingContext(ctx, benchMetadata())
}

// BenchmarkCall is one call at a time, 1 KB of arguments and 1 KB of
// result.
func BenchmarkCall(b *testing.B) {
	e := newBenchEnv(b)
	ctx := benchCtx(b)
	args := newBenchArgs()
	b.ReportAllocs()
	for b.Loop() {
		var got benchArgs
		if err := e.client.Call(ctx, "echo", args, &got); err != nil {
			b.Fatalf("Call: %v", err)
		}
	}
}

// BenchmarkCallParallel is BenchmarkCall from GOMAXPROCS goroutines
// (times -cpu) sharing one client.
func BenchmarkCallParallel(b *testing.B) {
	e := newBenchEnv(b)
	ctx := benchCtx(b)
	args := newBenchArgs()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var got benchArgs
			if err := e.client.Call(ctx, "echo", args, &got); err != nil {
				b.Errorf("Call: %v", err)
				return
			}
		}
	})
}

// BenchmarkCallParallel16 is BenchmarkCallParallel with 16 goroutines
// per GOMAXPROCS, to keep more calls in flight.
func BenchmarkCallParallel16(b *testing.B) {
	e := newBenchEnv(b)
	ctx := benchCtx(b)
	args := newBenchArgs()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var got benchArgs
			if err := e.client.Call(ctx, "echo", args, &got); err != nil {
				b.Errorf("Call: %v", err)
				return
			}
		}
	})
}

// BenchmarkCast is the sender's cost of a 1 KB cast while the server
// consumes concurrently; the casts still queued when the loop ends are
// drained outside the timing.
func BenchmarkCast(b *testing.B) {
	e := newBenchEnv(b)
	ctx := benchCtx(b)
	args := newBenchArgs()
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if err := e.client.Cast(ctx, "note", args); err != nil {
			b.Fatalf("Cast: %v", err)
		}
		sent++
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.casts.Load() < sent {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d casts handled after 30s", e.casts.Load(), sent)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkDispatcherLookup finds a method on the last of several
// endpoints, as a server with a few versioned interfaces does.
func BenchmarkDispatcherLookup(b *testing.B) {
	noop := HandlerFunc(func(context.Context, *Request) (any, error) { return nil, nil })
	var eps []*Endpoint
	for _, ns := range []string{"baseapi", "control", "conductor", "compute"} {
		ep := &Endpoint{Namespace: ns, Version: "6.2"}
		for _, m := range []string{"build_and_run_instance", "reboot_instance", "terminate_instance", "get_console_output", "attach_volume"} {
			ep.Register(m, noop)
		}
		eps = append(eps, ep)
	}
	eps = append(eps, pingEndpoint())
	d := dispatcher{endpoints: eps}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.lookup("reboot_instance", "compute", "6.0"); err != nil {
			b.Fatal(err)
		}
	}
}
