package memory_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/wire"
)

// Benchmarks of the memory driver alone, below the rpc package: what a
// call and a cast cost in the in-process broker, codec included. They
// do not run with the tests; run them with
//
//	go test -run '^$' -bench . -benchmem ./driver/memory

// benchBody is 1 KB of JSON keyword arguments.
var benchBody = []byte(`{"data": "` + strings.Repeat("x", 1024-len(`{"data": ""}`)) + `"}`)

// benchServe starts an echo server on a fresh broker and returns a
// connection to call it with; it stops when the benchmark ends.
func benchServe(b *testing.B) (*memory.Conn, driver.Address) {
	b.Helper()
	br := memory.NewBroker()
	a := driver.Address{Exchange: "openstack", Topic: "bench", Server: "host1"}
	srv := br.Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := srv.Listen(ctx, a, driver.ListenOptions{})
	if err != nil {
		b.Fatalf("Listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			d, err := l.Next(context.Background())
			if err != nil {
				if !errors.Is(err, driver.ErrClosed) {
					b.Errorf("Next: %v", err)
				}
				return
			}
			if req := d.Request(); req.IsCall() {
				if err := d.Reply(context.Background(), &driver.Reply{Result: req.Args}); err != nil {
					b.Errorf("Reply: %v", err)
				}
			}
		}
	})
	cli := br.Conn()
	b.Cleanup(func() {
		_ = cli.Close()
		_ = l.Close()
		wg.Wait()
		_ = srv.Close()
	})
	return cli, a
}

func benchCallReq() *driver.Request {
	return &driver.Request{Method: "echo", Args: benchBody, Context: map[string]any{"request_id": "req-3b2f6a1e-9c4d-4e7a-8b5f-1d2c3e4f5a6b", "user_id": "u1", "project_id": "p1"}}
}

// BenchmarkConnCall is one 1 KB call at a time through the broker.
func BenchmarkConnCall(b *testing.B) {
	cli, a := benchServe(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		req := benchCallReq()
		req.MsgID, req.UniqueID = wire.NewID(), wire.NewID()
		if _, err := cli.Call(ctx, a, req, driver.SendOptions{}); err != nil {
			b.Fatalf("Call: %v", err)
		}
	}
}

// BenchmarkConnCast is the sender's cost of a 1 KB cast while the
// server consumes concurrently.
func BenchmarkConnCast(b *testing.B) {
	cli, a := benchServe(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		req := benchCallReq()
		req.UniqueID = wire.NewID()
		if err := cli.Cast(ctx, a, req, driver.SendOptions{}); err != nil {
			b.Fatalf("Cast: %v", err)
		}
	}
}
