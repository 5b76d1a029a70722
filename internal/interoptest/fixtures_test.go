package interoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// event is a request that a Go or Python server received through its
// record or sleep method.
type event struct {
	Key    string         `json:"key"` // "<topic>.<server>"
	Server string         `json:"server"`
	Method string         `json:"method"`
	Args   map[string]any `json:"args"`
	Ctxt   map[string]any `json:"ctxt"`
	Lang   string         `json:"-"` // "go" or "python"
}

// recorder collects the events of a case's servers, Go and Python.
type recorder struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// wait returns the events once cond holds for them, or fails t when ctx
// ends first.
func (r *recorder) wait(t *testing.T, ctx context.Context, what string, cond func([]event) bool) []event {
	t.Helper()
	for {
		r.mu.Lock()
		evs, changed := slices.Clone(r.events), r.changed
		r.mu.Unlock()
		if cond(evs) {
			return evs
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; events so far:\n%s", what, ctx.Err(), describeEvents(evs))
			return nil
		}
	}
}

// waitN waits until n events of method arrived.
func (r *recorder) waitN(t *testing.T, ctx context.Context, method string, n int) []event {
	t.Helper()
	return r.wait(t, ctx, fmt.Sprintf("%d %s events", n, method), func(evs []event) bool {
		return len(filterEvents(evs, method)) >= n
	})
}

func filterEvents(evs []event, method string) []event {
	var out []event
	for _, ev := range evs {
		if ev.Method == method {
			out = append(out, ev)
		}
	}
	return out
}

func describeEvents(evs []event) string {
	var b strings.Builder
	for _, ev := range evs {
		args, _ := json.Marshal(ev.Args)
		fmt.Fprintf(&b, "  %s server %s (%s): %s %s\n", ev.Key, ev.Server, ev.Lang, ev.Method, truncate(string(args), 200))
	}
	return b.String()
}

// goEndpoints are the Go twins of the Python peer's endpoints (see
// testdata/peer.py): the default namespace at 1.0 with echo, record,
// whoami, sleep, fail, result and golden (and panic, Go only), and Name1
// at 7.5 with test.
func goEndpoints(target messaging.Target, rec *recorder) []*rpc.Endpoint {
	key := target.Topic + "." + target.Server
	note := func(ctx context.Context, method string, args json.RawMessage) {
		ev := event{Key: key, Server: target.Server, Method: method, Lang: "go"}
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.UseNumber()
		_ = dec.Decode(&ev.Args)
		md, _ := messaging.FromIncomingContext(ctx)
		ev.Ctxt = md
		if rec != nil {
			rec.add(ev)
		}
	}
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "echo", func(ctx context.Context, args json.RawMessage) (map[string]any, error) {
		md, _ := messaging.FromIncomingContext(ctx)
		return map[string]any{"args": args, "ctxt": md, "server": target.Server}, nil
	})
	rpc.Handle(ep, "record", func(ctx context.Context, args json.RawMessage) (string, error) {
		note(ctx, "record", args)
		return target.Server, nil
	})
	rpc.Handle(ep, "whoami", func(context.Context, struct{}) (string, error) {
		return target.Server, nil
	})
	rpc.Handle(ep, "sleep", func(ctx context.Context, args json.RawMessage) (json.Number, error) {
		note(ctx, "sleep", args)
		var a struct {
			Seconds json.Number `json:"seconds"`
		}
		if err := json.Unmarshal(args, &a); err != nil {
			return "", rpc.NewRemoteError("builtins.TypeError", err.Error())
		}
		f, err := a.Seconds.Float64()
		if err != nil {
			return "", rpc.NewRemoteError("builtins.TypeError", err.Error())
		}
		tm := time.NewTimer(time.Duration(f * float64(time.Second)))
		defer tm.Stop()
		select {
		case <-tm.C:
			return a.Seconds, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	rpc.Handle(ep, "fail", func(_ context.Context, a struct {
		Exc     string `json:"exc"`
		Message string `json:"message"`
		Code    any    `json:"code"`
	}) (any, error) {
		switch a.Exc {
		case "ValueError":
			return nil, rpc.NewRemoteError("builtins.ValueError", a.Message)
		case "Unhappy":
			re := rpc.NewRemoteError(excModule+".Unhappy", a.Message)
			re.Kwargs, _ = json.Marshal(map[string]any{"code": a.Code})
			return nil, re
		default:
			return nil, errors.New(a.Message)
		}
	})
	rpc.Handle(ep, "panic", func(context.Context, struct{}) (any, error) {
		panic("boom")
	})
	rpc.Handle(ep, "result", func(_ context.Context, a struct {
		Kind string `json:"kind"`
	}) (json.RawMessage, error) {
		return json.RawMessage(a.Kind), nil
	})
	rpc.Handle(ep, "golden", func(context.Context, struct{}) (map[string]any, error) {
		return map[string]any{"a": []any{1, "b"}, "n": nil, "u": "é✓ <&>"}, nil
	})
	versioned := &rpc.Endpoint{Namespace: "Name1", Version: "7.5"}
	rpc.Handle(versioned, "test", func(_ context.Context, a struct {
		Echo any `json:"echo"`
	}) (any, error) {
		return a.Echo, nil
	})
	return []*rpc.Endpoint{ep, versioned}
}

// excModule is the Python module of the tests' application exception
// (testdata/pylib/omsg_interop_exc.py).
const excModule = "omsg_interop_exc"

// goServer is a running rpc.Server.
type goServer struct {
	srv  *rpc.Server
	done chan error
}

// startGoServer starts a Go server on target with the Go endpoints (and
// extra ones after them) and returns once it listens. It is shut down
// gracefully when the case ends, unless stopped before.
func (e *env) startGoServer(tr *messaging.Transport, target messaging.Target, rec *recorder, extra ...*rpc.Endpoint) *goServer {
	e.t.Helper()
	return e.startGoServerWith(tr, target, rec, nil, extra...)
}

// startGoServerWith is startGoServer with server options.
func (e *env) startGoServerWith(tr *messaging.Transport, target messaging.Target, rec *recorder, opts []rpc.ServerOption, extra ...*rpc.Endpoint) *goServer {
	e.t.Helper()
	opts = append([]rpc.ServerOption{rpc.WithLogger(e.log)}, opts...)
	srv, err := rpc.NewServer(tr, target, append(goEndpoints(target, rec), extra...), opts...)
	if err != nil {
		e.t.Fatalf("rpc.NewServer: %v", err)
	}
	if err := srv.Listen(e.ctx(opTimeout)); err != nil {
		e.t.Fatalf("Listen %v: %v", target, err)
	}
	g := &goServer{srv: srv, done: make(chan error, 1)}
	go func() { g.done <- srv.Serve(context.Background()) }()
	e.t.Cleanup(func() { e.stopGoServer(g) })
	return g
}

// stopGoServer shuts g down gracefully (closing it if that takes too
// long) and waits for Serve to return. It is idempotent.
func (e *env) stopGoServer(g *goServer) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("Server.Shutdown: %v", err)
		_ = g.srv.Close()
	}
	if g.done == nil {
		return
	}
	select {
	case err := <-g.done:
		if !errors.Is(err, rpc.ErrServerClosed) {
			e.t.Errorf("Server.Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(opTimeout):
		e.t.Errorf("Server.Serve did not return after Shutdown and Close")
	}
	g.done = nil
}

// client returns a Go RPC client.
func (e *env) client(tr *messaging.Transport, target messaging.Target, opts ...rpc.ClientOption) *rpc.Client {
	e.t.Helper()
	c, err := rpc.NewClient(tr, target, opts...)
	if err != nil {
		e.t.Fatalf("rpc.NewClient: %v", err)
	}
	return c
}

// pyServer is a Python server hosted by a peer.
type pyServer struct {
	p       *peer
	req     pyReq
	stopped atomic.Bool
}

// startPyServer starts a Python server on the peer and returns once it
// listens (oslo's start() has declared its queues). It is stopped when
// the case ends.
func (e *env) startPyServer(p *peer, url, exchange, topic, server string, rec *recorder) *pyServer {
	e.t.Helper()
	if rec != nil {
		p.route(topic+"."+server, rec)
	}
	req := pyReq{Op: "start_server", URL: url, Exchange: exchange, Topic: topic, Server: server}
	out := pyDo(e.t, e.ctx(opTimeout), p, req)
	if !out.OK {
		e.t.Fatalf("python start_server %s.%s: %s", topic, server, out.Error)
	}
	ps := &pyServer{p: p, req: req}
	e.trackPy(ps)
	return ps
}

// trackPy has ps stopped when the case ends, with the case's other
// Python servers, all at once: oslo's stop() takes up to 5s on an idle
// server.
func (e *env) trackPy(ps *pyServer) {
	if len(e.pys) == 0 {
		e.t.Cleanup(func() { e.stopPyServers(e.pys...) })
	}
	e.pys = append(e.pys, ps)
}

// stopPyServers stops the servers at once (oslo's stop() and wait()).
// Stopping a server is idempotent.
func (e *env) stopPyServers(servers ...*pyServer) {
	var wg sync.WaitGroup
	for _, ps := range servers {
		if ps == nil || ps.stopped.Swap(true) {
			continue
		}
		select {
		case <-ps.p.exited:
			continue // the peer is gone, and its servers with it
		default:
		}
		wg.Go(func() {
			req := ps.req
			req.Op = "stop_server"
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			out, err := ps.p.do(ctx, req)
			switch {
			case err != nil:
				e.t.Errorf("python stop_server %s.%s: %v", req.Topic, req.Server, err)
			case !out.OK:
				e.t.Errorf("python stop_server %s.%s: %s", req.Topic, req.Server, out.Error)
			}
		})
	}
	wg.Wait()
}

// group is a set of Go and Python servers on one topic.
type group struct {
	exchange, topic string
	goNames         []string
	pyNames         []string
	goServers       []*goServer
	pyServers       []*pyServer
}

func (g *group) names() []string { return append(slices.Clone(g.goNames), g.pyNames...) }

// startGroup starts Go servers named goNames (on tr) and Python servers
// named pyNames (on p) on exchange and topic, all at once.
func (e *env) startGroup(tr *messaging.Transport, p *peer, exchange, topic string, goNames, pyNames []string, rec *recorder) *group {
	e.t.Helper()
	g := &group{exchange: exchange, topic: topic, goNames: goNames, pyNames: pyNames,
		pyServers: make([]*pyServer, len(pyNames))}
	var wg sync.WaitGroup
	failed := make(chan string, len(pyNames))
	ctx := e.ctx(opTimeout)
	for i, name := range pyNames {
		p.route(topic+"."+name, rec)
		wg.Go(func() {
			req := pyReq{Op: "start_server", URL: e.s.url(), Exchange: exchange, Topic: topic, Server: name}
			out, err := p.do(ctx, req)
			switch {
			case err != nil:
				failed <- err.Error()
			case !out.OK:
				failed <- fmt.Sprintf("python start_server %s.%s: %s", topic, name, out.Error)
			default:
				g.pyServers[i] = &pyServer{p: p, req: req}
			}
		})
	}
	for _, name := range goNames {
		g.goServers = append(g.goServers, e.startGoServer(tr, messaging.Target{Exchange: exchange, Topic: topic, Server: name}, rec))
	}
	wg.Wait()
	for _, ps := range g.pyServers {
		if ps != nil {
			e.trackPy(ps)
		}
	}
	close(failed)
	for msg := range failed {
		e.t.Fatal(msg)
	}
	// oslo's start() declares the queues but registers its consumers
	// from the server's polling thread a moment later. A call to each
	// Python server's own queue makes sure they are registered (the
	// topic queue's consumer is registered with the server queue's), so
	// that round-robin on the topic queue includes every server from the
	// first message.
	for _, name := range pyNames {
		out := e.pyOK(p, pyReq{Op: "call", Exchange: exchange, Topic: topic, Server: name, Method: "whoami", Timeout: 30})
		if string(out.Result) != `"`+name+`"` {
			e.t.Fatalf("readiness call to Python server %s answered %s", name, out.Result)
		}
	}
	return g
}

// stop stops every server of the group gracefully, Go and Python at
// once; afterwards no server can record anything more.
func (g *group) stop(e *env) {
	var wg sync.WaitGroup
	for _, s := range g.goServers {
		wg.Go(func() { e.stopGoServer(s) })
	}
	wg.Go(func() { e.stopPyServers(g.pyServers...) })
	wg.Wait()
}

// checkDistribution checks that the items sent, in order, were received
// as oslo's IsValidDistributionOf requires: each item by exactly one
// server, and, when ordered, in the order sent within each server. It
// also checks that every server of names got at least one item, and
// that items went to no other server.
func checkDistribution(t *testing.T, sent []string, evs []event, names []string, ordered bool) {
	t.Helper()
	got := map[string][]string{}
	for _, ev := range evs {
		item, _ := ev.Args["item"].(string)
		got[ev.Server] = append(got[ev.Server], item)
	}
	seen := map[string]string{}
	for server, items := range got {
		if !slices.Contains(names, server) {
			t.Errorf("server %s, not of the group %v, received %v", server, names, items)
		}
		for _, it := range items {
			if prev, dup := seen[it]; dup {
				t.Errorf("item %q received twice (by %s and %s)", it, prev, server)
			}
			seen[it] = server
		}
		if ordered {
			idx := make([]int, len(items))
			for i, it := range items {
				idx[i] = slices.Index(sent, it)
			}
			if !sort.IntsAreSorted(idx) {
				t.Errorf("server %s received %v, not in the order sent", server, items)
			}
		}
	}
	for _, it := range sent {
		if _, ok := seen[it]; !ok {
			t.Errorf("item %q received by no server", it)
		}
	}
	if len(seen) != len(sent) {
		t.Errorf("received %d distinct items, sent %d", len(seen), len(sent))
	}
	for _, n := range names {
		if len(got[n]) == 0 {
			t.Errorf("server %s received none of the %d items; distribution %v", n, len(sent), got)
		}
	}
	t.Logf("distribution over %d servers: %v", len(names), got)
}

// jsonEqual reports whether a and b encode to the same JSON value
// (numbers compared as float64, maps by key).
func jsonEqual(a, b any) bool {
	na, ea := normJSON(a)
	nb, eb := normJSON(b)
	return ea == nil && eb == nil && reflect.DeepEqual(na, nb)
}

func normJSON(v any) (any, error) {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	var out any
	err := json.Unmarshal(raw, &out)
	return out, err
}

// mustJSON encodes v as JSON without escaping <, > and &.
func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes()))
}

// newCase returns what most cases use: their env, the shared Python
// peer and a recorder.
func newCase(t *testing.T) (*env, *peer, *recorder) {
	t.Helper()
	e := newEnv(t)
	return e, e.sharedPeer(), newRecorder()
}

// py runs a call or cast on p; an empty URL means the run's vhost.
func (e *env) py(p *peer, req pyReq) *pyOutcome {
	e.t.Helper()
	if req.URL == "" {
		req.URL = e.s.url()
	}
	return pyDo(e.t, e.waitCtx(req.Timeout+req.Monitor), p, req)
}

// pyOK runs req and fails t unless it succeeded.
func (e *env) pyOK(p *peer, req pyReq) *pyOutcome {
	e.t.Helper()
	out := e.py(p, req)
	if !out.OK {
		e.t.Fatalf("python %s %s on %s.%s: %s", req.Op, req.Method, req.Topic, req.Server, out)
	}
	return out
}

// decode decodes a result into v, failing t.
func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", truncate(string(raw), 300), err)
	}
}
