package rabbit

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/wire"
)

// Benchmarks of RPC through a real RabbitMQ: an rpc.Client and an
// rpc.Server on one transport each, in the run's test virtual host. They
// need MESSAGING_RABBIT_URL, as the integration tests do, and do not run
// with the tests; run them with
//
//	MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/ \
//	  go test -run '^$' -bench . -benchmem -benchtime 2s ./driver/rabbit

// benchTimeout bounds each benchmark's calls and its setup.
const benchTimeout = 2 * time.Minute

type rabbitBenchArgs struct {
	InstanceUUID string `json:"instance_uuid"`
	Data         string `json:"data"`
}

// rabbitBenchEnv is a client and an echo server on the broker.
type rabbitBenchEnv struct {
	client *rpc.Client
	casts  atomic.Int64
}

// rabbitBenchURL returns the transport URL of the run's test virtual
// host, creating it at the first call, or skips.
func rabbitBenchURL(b *testing.B) string {
	b.Helper()
	raw := os.Getenv("MESSAGING_RABBIT_URL")
	if raw == "" {
		b.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this RabbitMQ benchmark " +
			"(set e.g. MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/)")
	}
	u, err := driver.ParseURL(raw)
	if err != nil {
		b.Fatalf("MESSAGING_RABBIT_URL: %v", err)
	}
	if len(u.Hosts) == 0 {
		u.Hosts = []driver.Host{{Hostname: "localhost", Port: 5672}}
	}
	vhost.once.Do(func() {
		name := "omsg-rabbit-test-" + wire.NewID()[:12]
		if _, err := ctlErr("add_vhost", name); err != nil {
			vhost.err = err
			return
		}
		vhost.name = name
		user := u.Hosts[0].Username
		if user == "" {
			user = DefaultUser
		}
		_, vhost.err = ctlErr("set_permissions", "-p", name, user, ".*", ".*", ".*")
	})
	if vhost.err != nil {
		b.Fatalf("cannot make the test virtual host: %v", vhost.err)
	}
	e := &env{base: u, vhost: vhost.name}
	return e.url()
}

func newRabbitBenchEnv(b *testing.B) *rabbitBenchEnv {
	b.Helper()
	raw := rabbitBenchURL(b)
	open := func() *messaging.Transport {
		tr, err := messaging.Open(raw)
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		b.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	topic := "bench-" + wire.NewID()[:10]
	e := &rabbitBenchEnv{}
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "echo", func(_ context.Context, a rabbitBenchArgs) (rabbitBenchArgs, error) { return a, nil })
	rpc.Handle(ep, "note", func(context.Context, rabbitBenchArgs) (any, error) {
		e.casts.Add(1)
		return nil, nil
	})
	srv, err := rpc.NewServer(open(), messaging.Target{Topic: topic, Server: "host1"}, []*rpc.Endpoint{ep})
	if err != nil {
		b.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	if err := srv.Listen(ctx); err != nil {
		b.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			b.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	e.client, err = rpc.NewClient(open(), messaging.Target{Topic: topic})
	if err != nil {
		b.Fatalf("NewClient: %v", err)
	}
	// One call outside the timing connects both ends and declares the
	// reply queue.
	if err := e.client.Call(ctx, "echo", rabbitBenchArgs{}, nil); err != nil {
		b.Fatalf("first Call: %v", err)
	}
	return e
}

func rabbitBenchPayload() rabbitBenchArgs {
	return rabbitBenchArgs{
		InstanceUUID: "0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20",
		Data:         strings.Repeat("x", 1024-len(`{"instance_uuid":"0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20","data":""}`)),
	}
}

func rabbitBenchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	b.Cleanup(cancel)
	return messaging.NewOutgoingContext(ctx, messaging.Metadata{
		"user_id":    "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e",
		"project_id": "8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b",
		"roles":      []any{"admin", "member", "reader"},
		"auth_token": "gAAAAAB" + strings.Repeat("Ab3_", 45),
		"request_id": "req-3b2f6a1e-9c4d-4e7a-8b5f-1d2c3e4f5a6b",
		"is_admin":   true,
	})
}

// BenchmarkRabbitCall is one 1 KB call (1 KB result) at a time.
func BenchmarkRabbitCall(b *testing.B) {
	e := newRabbitBenchEnv(b)
	ctx := rabbitBenchCtx(b)
	args := rabbitBenchPayload()
	b.ReportAllocs()
	for b.Loop() {
		var got rabbitBenchArgs
		if err := e.client.Call(ctx, "echo", args, &got); err != nil {
			b.Fatalf("Call: %v", err)
		}
	}
}

// BenchmarkRabbitCallParallel keeps 16 calls per GOMAXPROCS in flight
// on one client.
func BenchmarkRabbitCallParallel(b *testing.B) {
	e := newRabbitBenchEnv(b)
	ctx := rabbitBenchCtx(b)
	args := rabbitBenchPayload()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var got rabbitBenchArgs
			if err := e.client.Call(ctx, "echo", args, &got); err != nil {
				b.Errorf("Call: %v", err)
				return
			}
		}
	})
}

// BenchmarkRabbitCast is one 1 KB cast at a time, each returning once
// the broker has accepted it; the server consumes concurrently and the
// casts still queued when the loop ends are drained outside the timing.
func BenchmarkRabbitCast(b *testing.B) {
	e := newRabbitBenchEnv(b)
	ctx := rabbitBenchCtx(b)
	args := rabbitBenchPayload()
	var sent int64
	b.ReportAllocs()
	for b.Loop() {
		if err := e.client.Cast(ctx, "note", args); err != nil {
			b.Fatalf("Cast: %v", err)
		}
		sent++
	}
	deadline := time.Now().Add(benchTimeout)
	for e.casts.Load() < sent {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d casts handled in %v", e.casts.Load(), sent, benchTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
