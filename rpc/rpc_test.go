package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

type echoArgs struct {
	Arg string `json:"arg"`
}

// recorder is an endpoint that records which server handled what.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]string // server -> methods/args
	wg   *sync.WaitGroup     // done once per cast handled, if set
}

func (r *recorder) add(server, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string][]string{}
	}
	r.seen[server] = append(r.seen[server], what)
	if r.wg != nil {
		r.wg.Done()
	}
}

func (r *recorder) count(server string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[server])
}

func testEndpoints(server string, rec *recorder) []*rpc.Endpoint {
	test := &rpc.Endpoint{}
	rpc.Handle(test, "test", func(ctx context.Context, a echoArgs) (string, error) {
		rec.add(server, "test:"+a.Arg)
		return server + ":" + a.Arg, nil
	})
	control := &rpc.Endpoint{Namespace: "control", Version: "2.0"}
	rpc.Handle(control, "stop", func(ctx context.Context, _ struct{}) (any, error) {
		rec.add(server, "stop")
		return nil, nil
	})
	return []*rpc.Endpoint{control, test}
}

func TestCallAndCastRouting(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	rec := &recorder{}
	for _, name := range []string{"server1", "server2"} {
		serve(t, newServer(t, tr, messaging.Target{Topic: "test", Server: name}, testEndpoints(name, rec)))
	}
	ctx := testContext(t)
	client := newClient(t, tr, messaging.Target{Topic: "test"})

	// A call to the topic is answered by exactly one server.
	got, err := rpc.Call[string](ctx, client, "test", echoArgs{"hello"})
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got != "server1:hello" && got != "server2:hello" {
		t.Fatalf("Call = %q, want an answer from server1 or server2", got)
	}
	// A call to server2 is answered by server2.
	for range 5 {
		got, err = rpc.Call[string](ctx, client.Prepare(rpc.ToServer("server2")), "test", echoArgs{"direct"})
		if err != nil || got != "server2:direct" {
			t.Fatalf("Call to server2 = %q, %v; want server2:direct", got, err)
		}
	}
	// A fanout cast reaches both.
	before1, before2 := rec.count("server1"), rec.count("server2")
	var wg sync.WaitGroup
	wg.Add(2)
	rec.mu.Lock()
	rec.wg = &wg
	rec.mu.Unlock()
	cctx := client.Prepare(rpc.Namespace("control"), rpc.Version("2.0"), rpc.Fanout(true))
	if err := cctx.Cast(ctx, "stop", nil); err != nil {
		t.Fatalf("fanout Cast: %v", err)
	}
	waitGroup(t, &wg)
	if rec.count("server1") != before1+1 || rec.count("server2") != before2+1 {
		t.Fatalf("fanout reached server1 %d and server2 %d times, want once each",
			rec.count("server1")-before1, rec.count("server2")-before2)
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-testContext(t).Done():
		t.Fatal("timed out waiting for handlers")
	}
}

func TestServersShareTopic(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	const n = 30
	var (
		mu   sync.Mutex
		byID = map[int][]string{}
		wg   sync.WaitGroup
	)
	wg.Add(n)
	for _, name := range []string{"a", "b", "c"} {
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "work", func(ctx context.Context, a struct{ ID int }) (int, error) {
			mu.Lock()
			byID[a.ID] = append(byID[a.ID], name)
			mu.Unlock()
			wg.Done()
			return a.ID, nil
		})
		serve(t, newServer(t, tr, messaging.Target{Topic: "share", Server: name}, []*rpc.Endpoint{ep}))
	}
	client := newClient(t, tr, messaging.Target{Topic: "share"})
	ctx := testContext(t)
	for i := range n {
		var err error
		if i%2 == 0 {
			err = client.Cast(ctx, "work", map[string]int{"ID": i})
		} else {
			_, err = rpc.Call[int](ctx, client, "work", map[string]int{"ID": i})
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	waitGroup(t, &wg)
	per := map[string]int{}
	for i := range n {
		if len(byID[i]) != 1 {
			t.Errorf("request %d handled %d times (%v), want once", i, len(byID[i]), byID[i])
			continue
		}
		per[byID[i][0]]++
	}
	for _, name := range []string{"a", "b", "c"} {
		if per[name] == 0 {
			t.Errorf("server %s got no request; distribution %v", name, per)
		}
	}
}

func TestExchangesAreIsolated(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	for _, ex := range []string{"", "a", "b"} {
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "which", func(context.Context, struct{}) (string, error) { return "exchange " + ex, nil })
		serve(t, newServer(t, tr, messaging.Target{Exchange: ex, Topic: "iso", Server: "s"}, []*rpc.Endpoint{ep}))
	}
	ctx := testContext(t)
	for _, ex := range []string{"", "a", "b"} {
		c := newClient(t, tr, messaging.Target{Exchange: ex, Topic: "iso"})
		for range 3 {
			got, err := rpc.Call[string](ctx, c, "which", nil)
			if err != nil || got != "exchange "+ex {
				t.Errorf("call on exchange %q = %q, %v", ex, got, err)
			}
		}
	}
}

func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	errNotFound := errors.New("instance not found")
	ep := &rpc.Endpoint{Version: "1.5"}
	rpc.Handle(ep, "value_error", func(context.Context, struct{}) (any, error) {
		return nil, rpc.NewRemoteError("builtins.ValueError", "bad value")
	})
	rpc.Handle(ep, "not_found", func(context.Context, struct{}) (any, error) {
		return nil, rpc.Expected(&rpc.RemoteError{Module: "nova.exception", Class: "InstanceNotFound", Message: "Instance x could not be found."})
	})
	rpc.Handle(ep, "plain", func(context.Context, struct{}) (any, error) {
		return nil, errors.New("plain failure")
	})
	rpc.Handle(ep, "panics", func(context.Context, struct{}) (any, error) {
		panic("boom")
	})
	rpc.Handle(ep, "typed", func(context.Context, struct{ N int }) (int, error) { return 0, nil })
	rpc.Handle(ep, "unencodable", func(context.Context, struct{}) (any, error) { return func() {}, nil })
	serve(t, newServer(t, tr, messaging.Target{Topic: "errs", Server: "s"}, []*rpc.Endpoint{ep}))
	client := newClient(t, tr, messaging.Target{Topic: "errs"},
		rpc.WithRemoteErrors(map[string]error{"nova.exception.InstanceNotFound": errNotFound}))
	ctx := testContext(t)

	tests := []struct {
		method  string
		opts    []rpc.CallOption
		args    any
		name    string // module.Class
		message string
		is      error
	}{
		{method: "value_error", name: "builtins.ValueError", message: "bad value"},
		{method: "not_found", name: "nova.exception.InstanceNotFound", message: "Instance x could not be found.", is: errNotFound},
		{method: "plain", name: "builtins.Exception", message: "plain failure"},
		{method: "panics", name: "builtins.Exception", message: "rpc: handler panic: boom"},
		{method: "typed", args: map[string]string{"N": "not a number"}, name: "builtins.TypeError"},
		{method: "unencodable", name: "builtins.Exception"},
		{method: "missing", name: "oslo_messaging.rpc.dispatcher.NoSuchMethod", message: "Endpoint does not support RPC method missing", is: rpc.ErrNoSuchMethod},
		{method: "_private", name: "oslo_messaging.rpc.dispatcher.NoSuchMethod", is: rpc.ErrNoSuchMethod},
		{method: "plain", opts: []rpc.CallOption{rpc.Version("1.6")}, name: "oslo_messaging.rpc.dispatcher.UnsupportedVersion",
			message: "Endpoint does not support RPC version 1.6. Attempted method: plain", is: rpc.ErrUnsupportedVersion},
		{method: "plain", opts: []rpc.CallOption{rpc.Namespace("other")}, name: "oslo_messaging.rpc.dispatcher.UnsupportedVersion",
			message: "Endpoint does not support RPC version 1.0. Attempted method: plain", is: rpc.ErrUnsupportedVersion},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d_%s", i, tc.method), func(t *testing.T) {
			err := client.Call(ctx, tc.method, tc.args, nil, tc.opts...)
			var re *rpc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("Call(%s) error = %v, want a *RemoteError", tc.method, err)
			}
			if re.Name() != tc.name {
				t.Errorf("remote error name = %q, want %q", re.Name(), tc.name)
			}
			if tc.message != "" && re.Message != tc.message {
				t.Errorf("remote error message = %q, want %q", re.Message, tc.message)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if len(re.Traceback) == 0 || !strings.HasSuffix(re.Traceback[len(re.Traceback)-1], "\n") {
				t.Errorf("traceback = %q, want lines ending in newline", re.Traceback)
			}
			var args []any
			if err := json.Unmarshal(re.Args, &args); err != nil || len(args) != 1 {
				t.Errorf("args = %s, want a one-element list", re.Args)
			}
		})
	}
	// The panic's traceback carries the Go stack.
	err := client.Call(ctx, "panics", nil, nil)
	var re *rpc.RemoteError
	if errors.As(err, &re) && !strings.Contains(strings.Join(re.Traceback, ""), "goroutine") {
		t.Errorf("panic traceback has no Go stack: %q", re.Traceback)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	got := make(chan messaging.Metadata, 2)
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "ctx", func(ctx context.Context, _ struct{}) (any, error) {
		md, ok := messaging.FromIncomingContext(ctx)
		if !ok {
			return nil, errors.New("no incoming metadata")
		}
		got <- md
		return nil, nil
	})
	serve(t, newServer(t, tr, messaging.Target{Topic: "md", Server: "s"}, []*rpc.Endpoint{ep}))
	client := newClient(t, tr, messaging.Target{Topic: "md"})
	sent := messaging.Metadata{
		"request_id": "req-1", "user_id": "u1", "is_admin": true, "roles": []any{"admin", "reader"},
		"quota": 12345678901234, "ratio": 0.5, "nothing": nil, "nested": map[string]any{"k": "v"},
		"auth_token": "gAAAAsecret", "unicode": "é✓😀",
	}
	ctx := messaging.NewOutgoingContext(testContext(t), sent)
	if err := client.Call(ctx, "ctx", nil, nil); err != nil {
		t.Fatalf("Call: %v", err)
	}
	md := <-got
	if v, ok := md["client_timeout"]; !ok || v != nil {
		t.Errorf("client_timeout = %v, %v; want present and nil", v, ok)
	}
	delete(md, "client_timeout")
	a, _ := json.Marshal(sent)
	b, _ := json.Marshal(md)
	if string(a) != string(b) {
		t.Errorf("metadata received = %s, want %s", b, a)
	}
	if n, ok := md["quota"].(json.Number); !ok || n.String() != "12345678901234" {
		t.Errorf("quota = %#v, want json.Number 12345678901234", md["quota"])
	}
	for _, s := range []string{fmt.Sprint(md), fmt.Sprintf("%+v", md), fmt.Sprintf("%#v", md), md.String()} {
		if strings.Contains(s, "gAAAAsecret") {
			t.Errorf("printed metadata shows the token: %s", s)
		}
	}

	// With a call monitor, client_timeout is the interval in seconds.
	if err := client.Call(ctx, "ctx", nil, nil, rpc.CallMonitorTimeout(10e9)); err != nil {
		t.Fatalf("Call: %v", err)
	}
	md = <-got
	if v, _ := md["client_timeout"].(float64); v != 10 {
		t.Errorf("client_timeout = %#v, want 10", md["client_timeout"])
	}
}

func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	const limit, calls = 2, 12
	var cur, peak atomic.Int32
	release := make(chan struct{})
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "hold", func(ctx context.Context, _ struct{}) (any, error) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		cur.Add(-1)
		return nil, nil
	})
	serve(t, newServer(t, tr, messaging.Target{Topic: "conc", Server: "s"}, []*rpc.Endpoint{ep}, rpc.WithMaxConcurrency(limit)))
	client := newClient(t, tr, messaging.Target{Topic: "conc"})
	ctx := testContext(t)
	errc := make(chan error, calls)
	for range calls {
		go func() { errc <- client.Call(ctx, "hold", nil, nil) }()
	}
	close(release)
	for range calls {
		if err := <-errc; err != nil {
			t.Errorf("Call: %v", err)
		}
	}
	if p := peak.Load(); p > limit || p < 1 {
		t.Errorf("peak concurrent handlers = %d, want 1..%d", p, limit)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	serve(t, newServer(t, tr, messaging.Target{Topic: "p", Server: "s"}, nil, rpc.WithPing(true)))
	serve(t, newServer(t, tr, messaging.Target{Topic: "nop", Server: "s"}, nil))
	ctx := testContext(t)
	got, err := rpc.Call[string](ctx, newClient(t, tr, messaging.Target{Topic: "p"}), rpc.PingMethod, nil)
	if err != nil || got != "pong" {
		t.Errorf("ping = %q, %v; want pong", got, err)
	}
	_, err = rpc.Call[string](ctx, newClient(t, tr, messaging.Target{Topic: "nop"}), rpc.PingMethod, nil)
	if !errors.Is(err, rpc.ErrUnsupportedVersion) {
		t.Errorf("ping without WithPing: %v, want ErrUnsupportedVersion (no endpoints)", err)
	}
}

// upper is a serializer that marks what passes through each hook.
type upper struct{ messaging.NoOpSerializer }

func (upper) SerializeContext(_ context.Context, md messaging.Metadata) (messaging.Metadata, error) {
	out := md.Copy()
	out["serialized"] = true
	return out, nil
}

type ctxKey struct{}

func (upper) DeserializeContext(ctx context.Context, md messaging.Metadata) (context.Context, error) {
	return context.WithValue(ctx, ctxKey{}, md["user"]), nil
}

func (upper) SerializeEntity(_ context.Context, v any) (any, error) {
	if s, ok := v.(string); ok {
		return strings.ToUpper(s), nil
	}
	return v, nil
}

func (upper) DeserializeEntity(_ context.Context, data json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(strings.ReplaceAll(string(data), "x", "y")), nil
}

func TestSerializerHooks(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "hook", func(ctx context.Context, a echoArgs) (string, error) {
		md, _ := messaging.FromIncomingContext(ctx)
		return fmt.Sprintf("%s/%v/%v", a.Arg, ctx.Value(ctxKey{}), md["serialized"]), nil
	})
	serve(t, newServer(t, tr, messaging.Target{Topic: "ser", Server: "s"}, []*rpc.Endpoint{ep}, rpc.WithSerializer(upper{})))
	client := newClient(t, tr, messaging.Target{Topic: "ser"}, rpc.WithSerializer(upper{}))
	ctx := messaging.NewOutgoingContext(testContext(t), messaging.Metadata{"user": "bob"})
	got, err := rpc.Call[string](ctx, client, "hook", echoArgs{"x"})
	// Client args pass SerializeEntity (struct: unchanged); server
	// DeserializeEntity turns x into y; server SerializeEntity upper-cases
	// the result; client DeserializeEntity maps x to y once more.
	if err != nil || got != "Y/BOB/TRUE" {
		t.Errorf("Call = %q, %v; want Y/BOB/TRUE", got, err)
	}
}

func TestTargetValidation(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	if _, err := rpc.NewClient(tr, messaging.Target{}); !errors.Is(err, messaging.ErrInvalidTarget) {
		t.Errorf("NewClient without topic: %v, want ErrInvalidTarget", err)
	}
	for _, tg := range []messaging.Target{{}, {Topic: "t"}, {Server: "s"}} {
		if _, err := rpc.NewServer(tr, tg, nil); !errors.Is(err, messaging.ErrInvalidTarget) {
			t.Errorf("NewServer(%v): %v, want ErrInvalidTarget", tg, err)
		}
	}
	c := newClient(t, tr, messaging.Target{Topic: "t"})
	ctx := testContext(t)
	if err := c.Call(ctx, "m", nil, nil, rpc.Fanout(true)); !errors.Is(err, messaging.ErrInvalidTarget) ||
		!strings.Contains(err.Error(), "a call cannot be used with fanout") {
		t.Errorf("Call with fanout: %v", err)
	}
	if err := c.Cast(ctx, "m", nil, rpc.Topic("")); !errors.Is(err, messaging.ErrInvalidTarget) {
		t.Errorf("Cast without topic: %v", err)
	}
	for _, v := range []string{"5", "5.a", "5.5.a"} {
		if err := c.Prepare(rpc.Version(v)).Cast(ctx, "m", nil); !errors.Is(err, messaging.ErrInvalidOption) {
			t.Errorf("Prepare(Version(%q)).Cast: %v, want ErrInvalidOption", v, err)
		}
	}
	if err := c.Cast(ctx, "m", []int{1}); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("Cast with list args: %v, want an error about a JSON object", err)
	}
	if err := c.Cast(ctx, "m", map[string]any{"f": func() {}}); err == nil {
		t.Error("Cast with unencodable args succeeded")
	}
	if _, err := rpc.NewServer(tr, messaging.Target{Topic: "t", Server: "s"}, nil, rpc.WithMaxConcurrency(0)); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("WithMaxConcurrency(0): %v", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "_private", "dup"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", name)
				}
			}()
			ep := &rpc.Endpoint{}
			h := rpc.HandlerFunc(func(context.Context, *rpc.Request) (any, error) { return nil, nil })
			if name == "dup" {
				ep.Register(name, h)
			}
			ep.Register(name, h)
		}()
	}
}

func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	srv := newServer(t, tr, messaging.Target{Topic: "life", Server: "s"}, nil)
	// Shutdown before Serve: Serve then returns ErrServerClosed at once.
	if err := srv.Shutdown(testContext(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := srv.Serve(testContext(t)); !errors.Is(err, rpc.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v", err)
	}
	// Serve returns ctx.Err() when its ctx ends.
	srv2 := newServer(t, tr, messaging.Target{Topic: "life", Server: "s2"}, nil)
	ctx, cancel := context.WithCancel(testContext(t))
	errc := make(chan error, 1)
	go func() { errc <- srv2.Serve(ctx) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Serve after ctx cancel = %v, want context.Canceled", err)
	}
	if err := srv2.Serve(testContext(t)); err == nil {
		t.Error("second Serve succeeded")
	}
	_ = srv2.Close()
	_ = srv2.Close() // idempotent
}

func TestMiddlewareSeesEveryRequest(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	type seen struct {
		method string
		err    error
	}
	got := make(chan seen, 4)
	mw := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, r *rpc.Request) (any, error) {
			res, err := next.ServeRPC(ctx, r)
			got <- seen{r.Method, err}
			return res, err
		})
	}
	order := make(chan string, 4)
	tag := func(name string) rpc.Middleware {
		return func(next rpc.Handler) rpc.Handler {
			return rpc.HandlerFunc(func(ctx context.Context, r *rpc.Request) (any, error) {
				order <- name
				return next.ServeRPC(ctx, r)
			})
		}
	}
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "ok", func(context.Context, struct{}) (string, error) { return "<a&b>", nil })
	serve(t, newServer(t, tr, messaging.Target{Topic: "mw", Server: "s"}, []*rpc.Endpoint{ep},
		rpc.WithMiddleware(tag("outer"), tag("inner")), rpc.WithMiddleware(mw)))
	c := newClient(t, tr, messaging.Target{Topic: "mw"})
	ctx := testContext(t)
	res, err := rpc.Call[string](ctx, c, "ok", nil)
	if err != nil || res != "<a&b>" {
		t.Fatalf("Call(ok) = %q, %v", res, err)
	}
	if s := <-got; s.method != "ok" || s.err != nil {
		t.Errorf("middleware saw %+v", s)
	}
	if a, b := <-order, <-order; a != "outer" || b != "inner" {
		t.Errorf("middleware order %s, %s; want outer, inner", a, b)
	}
	if err := c.Call(ctx, "nosuch", nil, nil); !errors.Is(err, rpc.ErrNoSuchMethod) {
		t.Fatalf("Call(nosuch) = %v", err)
	}
	if s := <-got; s.method != "nosuch" || !errors.Is(s.err, rpc.ErrNoSuchMethod) {
		t.Errorf("middleware saw %+v for an unknown method, want ErrNoSuchMethod", s)
	}
}
