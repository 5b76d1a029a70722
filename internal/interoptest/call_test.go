package interoptest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// Python exception classes, as the peer reports them.
const (
	pyMessagingTimeout = "oslo_messaging.exceptions.MessagingTimeout"
	pyUndeliverable    = "oslo_messaging.exceptions.MessageUndeliverable"
	pyRemoteError      = "oslo_messaging.rpc.client.RemoteError"
	pyValueError       = "builtins.ValueError"
)

// TestInteropCall covers calls between Go and Python, including ports of
// oslo's functional CallTestCase (oslo_messaging/tests/functional).
func TestInteropCall(t *testing.T) {
	setup(t)
	t.Parallel()

	// A call to the topic, answered by the only server.
	runCase(t, "topic/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_topic")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		out := e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "echo", Args: map[string]any{"a": 1, "b": "two"}, Timeout: 30})
		var res struct {
			Args   map[string]any `json:"args"`
			Server string         `json:"server"`
		}
		decode(t, out.Result, &res)
		if res.Server != "g1" || !jsonEqual(res.Args, map[string]any{"a": 1, "b": "two"}) {
			t.Errorf("echo = %s, want the arguments back from g1", out.Result)
		}
	})
	runCase(t, "topic/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_topic")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		var res struct {
			Args   map[string]any `json:"args"`
			Server string         `json:"server"`
		}
		if err := c.Call(e.ctx(opTimeout), "echo", map[string]any{"a": 1, "b": "two"}, &res); err != nil {
			t.Fatalf("Call echo: %v", err)
		}
		if res.Server != "p1" || !jsonEqual(res.Args, map[string]any{"a": 1, "b": "two"}) {
			t.Errorf("echo = %+v, want the arguments back from p1", res)
		}
	})

	// The Go transport opened with oslo's kombu:// alias.
	runCase(t, "topic/go_client_python_server_kombu_url", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_topic")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		tr, err := messaging.Open(e.s.urlScheme("kombu"), messaging.WithLogger(e.log))
		if err != nil {
			t.Fatalf("messaging.Open(kombu://...): %v", err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		var who string
		if err := e.client(tr, messaging.Target{Topic: topic}).Call(e.ctx(opTimeout), "whoami", nil, &who); err != nil || who != "p1" {
			t.Errorf("Call over kombu:// = %q, %v; want p1", who, err)
		}
	})

	// oslo's server ping, oslo_rpc_server_ping: Go servers answer it
	// with WithPing(true) only; Python servers with rpc_ping_enabled.
	runCase(t, "ping/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_ping")
		tr := e.transport()
		e.startGoServerWith(tr, messaging.Target{Topic: topic, Server: "on"}, rec, []rpc.ServerOption{rpc.WithPing(true)})
		e.startGoServer(tr, messaging.Target{Topic: topic, Server: "off"}, rec)
		if out := e.py(p, pyReq{Op: "call", Topic: topic, Server: "on", Method: rpc.PingMethod, Timeout: 30}); !out.OK || string(out.Result) != `"pong"` {
			t.Errorf("ping of a Go server with WithPing(true) %s, want \"pong\"", out)
		}
		out := e.py(p, pyReq{Op: "call", Topic: topic, Server: "off", Method: rpc.PingMethod, Timeout: 30})
		if out.OK || !out.Error.is(pyRemoteError) || out.Error.ExcType == nil || *out.Error.ExcType != "NoSuchMethod" {
			t.Errorf("ping of a Go server without WithPing %s, want a RemoteError of NoSuchMethod", out)
		}
	})
	runCase(t, "ping/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_ping")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		var pong string
		if err := e.client(e.transport(), messaging.Target{Topic: topic}).Call(e.ctx(opTimeout), rpc.PingMethod, nil, &pong); err != nil || pong != "pong" {
			t.Errorf("ping of a Python server = %q, %v; want pong", pong, err)
		}
	})

	// Results of every JSON kind, the falsy ones in particular, come
	// back as they were returned.
	resultKinds := []string{`null`, `[]`, `{}`, `false`, `0`, `""`, `0.5`, `[null, {"a": []}]`, `"\u00e9"`}
	runCase(t, "results/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_results")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		for _, kind := range resultKinds {
			out := e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "result", Args: map[string]any{"kind": kind}, Timeout: 30})
			if !jsonEqual(out.Result, json.RawMessage(kind)) {
				t.Errorf("Go method returning %s: Python caller got %s", kind, out.Result)
			}
		}
	})
	runCase(t, "results/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_results")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		for _, kind := range resultKinds {
			var got json.RawMessage
			if err := c.Call(e.ctx(opTimeout), "result", map[string]any{"kind": kind}, &got); err != nil {
				t.Errorf("Python method returning %s: %v", kind, err)
			} else if !jsonEqual(got, json.RawMessage(kind)) {
				t.Errorf("Python method returning %s: Go caller got %s", kind, got)
			}
		}
	})

	// A server stopping gracefully (Go: Shutdown; oslo: stop() and
	// wait()) finishes the call in progress and sends its reply.
	runCase(t, "graceful_stop_drains/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_drain")
		g := e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		done := make(chan *pyOutcome, 1)
		ctx := e.waitCtx(30)
		go func() {
			out, err := p.do(ctx, pyReq{Op: "call", URL: e.s.url(), Topic: topic, Method: "sleep", Args: map[string]any{"seconds": 2}, Timeout: 30})
			if err != nil {
				out = &pyOutcome{Error: &pyError{Message: err.Error()}}
			}
			done <- out
		}()
		rec.waitN(t, e.ctx(opTimeout), "sleep", 1)
		e.stopGoServer(g)
		if out := <-done; !out.OK || string(out.Result) != "2" {
			t.Errorf("call in progress during Shutdown %s, want 2", out)
		}
	})
	runCase(t, "graceful_stop_drains/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_drain")
		ps := e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		done := make(chan error, 1)
		var got json.Number
		ctx := e.ctx(opTimeout)
		go func() { done <- c.Call(ctx, "sleep", map[string]any{"seconds": 2}, &got) }()
		rec.waitN(t, e.ctx(opTimeout), "sleep", 1)
		e.stopPyServers(ps)
		if err := <-done; err != nil || got != "2" {
			t.Errorf("call in progress during oslo's stop() = %v, %v; want 2", got, err)
		}
	})

	// test_specific_server: calls to one server of a group reach it
	// alone. The group mixes Go and Python servers.
	for _, client := range []string{"python", "go"} {
		runCase(t, "specific_server/"+client+"_client_mixed_servers", func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("call_specific")
			g := e.startGroup(tr, p, "", topic, []string{"g1", "g2"}, []string{"p1"}, rec)
			c := e.client(tr, messaging.Target{Topic: topic})
			var sent []string
			for _, server := range g.names() {
				for i := range 2 {
					item := fmt.Sprintf("%s-%d", server, i)
					sent = append(sent, item)
					var who string
					if client == "python" {
						out := e.pyOK(p, pyReq{Op: "call", Topic: topic, Server: server, Method: "record", Args: map[string]any{"item": item}, Timeout: 30})
						decode(t, out.Result, &who)
					} else if err := c.Call(e.ctx(opTimeout), "record", map[string]any{"item": item}, &who, rpc.ToServer(server)); err != nil {
						t.Fatalf("Call record to %s: %v", server, err)
					}
					if who != server {
						t.Errorf("call to server %s answered by %q", server, who)
					}
				}
			}
			g.stop(e)
			evs := rec.all()
			if len(evs) != len(sent) {
				t.Errorf("servers recorded %d requests, want %d:\n%s", len(evs), len(sent), describeEvents(evs))
			}
			for _, ev := range evs {
				if item, _ := ev.Args["item"].(string); !strings.HasPrefix(item, ev.Server+"-") {
					t.Errorf("server %s received %q, meant for another server", ev.Server, item)
				}
			}
		})
	}

	// test_server_in_group: calls to the topic are spread round-robin
	// over the mixed group, each handled once, in order per server.
	for _, client := range []string{"python", "go"} {
		runCase(t, "server_in_group/"+client+"_client_mixed_servers", func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("call_group")
			g := e.startGroup(tr, p, "", topic, []string{"g1", "g2"}, []string{"p1", "p2"}, rec)
			c := e.client(tr, messaging.Target{Topic: topic})
			sent := strings.Split("abcdefghijklmn", "")
			for _, item := range sent {
				if client == "python" {
					e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "record", Args: map[string]any{"item": item}, Timeout: 30})
				} else if err := c.Call(e.ctx(opTimeout), "record", map[string]any{"item": item}, nil); err != nil {
					t.Fatalf("Call record: %v", err)
				}
			}
			g.stop(e)
			checkDistribution(t, sent, rec.all(), g.names(), true)
		})
	}

	// test_different_exchanges: three groups, each on a topic of its own
	// and on its own exchange (the control exchange, a and b); calls
	// reach only the group of their exchange. Queues are named after the
	// topic alone, as in oslo, so exchanges separate only different
	// topics: a mandatory call naming the wrong exchange for a topic
	// finds no queue.
	for _, dir := range []struct{ name, client string }{{"python_client_go_server", "python"}, {"go_client_python_server", "go"}} {
		runCase(t, "different_exchanges/"+dir.name, func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			exA, exB := e.name("exchange_a"), e.name("exchange_b")
			topic1, topic2, topic3 := e.name("call_exchanges_1"), e.name("call_exchanges_2"), e.name("call_exchanges_3")
			start := func(exchange, topic string, names []string) *group {
				if dir.client == "python" {
					return e.startGroup(tr, p, exchange, topic, names, nil, rec)
				}
				return e.startGroup(tr, p, exchange, topic, nil, names, rec)
			}
			groups := []*group{start("", topic1, []string{"d1", "d2"}), start(exA, topic2, []string{"a1", "a2"}), start(exB, topic3, []string{"b1", "b2"})}
			c := e.client(tr, messaging.Target{Topic: topic1})
			call := func(exchange, topic, server, item string, mandatory bool) error {
				if dir.client == "python" {
					out := e.py(p, pyReq{Op: "call", Exchange: exchange, Topic: topic, Server: server, Method: "record",
						Args: map[string]any{"item": item}, Timeout: 30, AtLeastOnce: mandatory})
					if !out.OK {
						if out.Error.is(pyUndeliverable) {
							return messaging.ErrUndeliverable
						}
						return fmt.Errorf("python call %s", out)
					}
					return nil
				}
				return c.Call(e.ctx(opTimeout), "record", map[string]any{"item": item}, nil,
					rpc.Exchange(exchange), rpc.Topic(topic), rpc.ToServer(server), rpc.Mandatory(mandatory))
			}
			data1 := strings.Split("abcdefghijklmn", "")
			for _, item := range data1 {
				if err := call("", topic1, "d2", item, false); err != nil { // one server
					t.Fatal(err)
				}
			}
			data2 := strings.Split("opqrstuvwxyz", "")
			for _, item := range data2 {
				if err := call(exA, topic2, "", item, false); err != nil { // the whole group
					t.Fatal(err)
				}
			}
			for _, wrong := range []struct{ exchange, topic string }{{exB, topic2}, {exA, topic1}, {"", topic3}} {
				if err := call(wrong.exchange, wrong.topic, "", "lost", true); !errors.Is(err, messaging.ErrUndeliverable) {
					t.Errorf("mandatory call to topic %s on exchange %q = %v, want undeliverable", wrong.topic, wrong.exchange, err)
				}
			}
			for _, g := range groups {
				g.stop(e)
			}
			byServer := func(names ...string) []event {
				var out []event
				for _, ev := range rec.all() {
					if slices.Contains(names, ev.Server) {
						out = append(out, ev)
					}
				}
				return out
			}
			checkDistribution(t, data1, byServer("d1", "d2"), []string{"d2"}, true)
			checkDistribution(t, data2, byServer("a1", "a2"), []string{"a1", "a2"}, true)
			if evs := byServer("b1", "b2"); len(evs) > 0 {
				t.Errorf("the servers of exchange b received calls of other exchanges:\n%s", describeEvents(evs))
			}
		})
	}

	// test_timeout: a call to a topic without servers times out in
	// about its timeout.
	runCase(t, "timeout/python_client", func(t *testing.T) {
		e, p, _ := newCase(t)
		out := e.py(p, pyReq{Op: "call", Topic: e.name("no_such_topic"), Method: "whoami", Timeout: 1})
		if out.OK || !out.Error.is(pyMessagingTimeout) {
			t.Fatalf("call to a topic without server %s, want MessagingTimeout", out)
		}
		if !within(out.elapsed(), time.Second, 10*time.Second) {
			t.Errorf("MessagingTimeout after %v, want about 1s", out.elapsed())
		}
	})
	runCase(t, "timeout/go_client", func(t *testing.T) {
		e, _, _ := newCase(t)
		c := e.client(e.transport(), messaging.Target{Topic: e.name("no_such_topic")})
		ctx, cancel := context.WithTimeout(e.ctx(opTimeout), time.Second)
		defer cancel()
		start := time.Now()
		err := c.Call(ctx, "whoami", nil, nil)
		elapsed := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, messaging.ErrHeartbeatTimeout) {
			t.Fatalf("Call to a topic without server = %v, want context.DeadlineExceeded", err)
		}
		if !within(elapsed, 900*time.Millisecond, 10*time.Second) {
			t.Errorf("timed out after %v, want about 1s", elapsed)
		}
	})

	// test_exception: a remote ValueError is raised again.
	runCase(t, "exception/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_exception")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		out := e.py(p, pyReq{Op: "call", Topic: topic, Method: "fail", Args: map[string]any{"exc": "ValueError", "message": "bad value"}, Timeout: 30})
		if out.OK || !out.Error.is(pyValueError) || out.Error.firstLine() != "bad value" {
			t.Errorf("call of a failing Go method %s, want ValueError('bad value')", out)
		}
	})
	runCase(t, "exception/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_exception")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		err := c.Call(e.ctx(opTimeout), "fail", map[string]any{"exc": "ValueError", "message": "bad value"}, nil)
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Module != "builtins" || re.Class != "ValueError" || re.Message != "bad value" {
			t.Errorf("Call of a failing Python method = %v, want a RemoteError builtins.ValueError 'bad value'", err)
		}
	})

	// test_timeout_with_concurrently_queues: a long call times out while
	// ten short calls to the same server succeed.
	for _, dir := range []struct{ name, client string }{{"python_client_go_server", "python"}, {"go_client_python_server", "go"}} {
		runCase(t, "timeout_with_concurrently_queues/"+dir.name, func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("call_concurrent")
			if dir.client == "python" {
				e.startGoServer(tr, messaging.Target{Topic: topic, Server: "s1"}, rec)
			} else {
				e.startPyServer(p, e.s.url(), "", topic, "s1", rec)
			}
			c := e.client(tr, messaging.Target{Topic: topic, Server: "s1"})
			long := make(chan error, 1)
			pyCtx, goCtx := e.waitCtx(2), e.ctx(opTimeout) // made here: the goroutine may outlive a failed case
			go func() {
				if dir.client == "python" {
					out, err := p.do(pyCtx, pyReq{Op: "call", URL: e.s.url(), Topic: topic, Server: "s1", Method: "sleep", Args: map[string]any{"seconds": 4}, Timeout: 2})
					switch {
					case err != nil:
						long <- err
					case out.OK || !out.Error.is(pyMessagingTimeout):
						long <- fmt.Errorf("long call %s, want MessagingTimeout", out)
					default:
						long <- nil
					}
					return
				}
				ctx, cancel := context.WithTimeout(goCtx, 2*time.Second)
				defer cancel()
				if err := c.Call(ctx, "sleep", map[string]any{"seconds": 4}, nil); !errors.Is(err, context.DeadlineExceeded) {
					long <- fmt.Errorf("long call = %v, want context.DeadlineExceeded", err)
					return
				}
				long <- nil
			}()
			rec.waitN(t, e.ctx(opTimeout), "sleep", 1) // the long call runs
			for i := range 10 {
				args := map[string]any{"item": strconv.Itoa(i)}
				if dir.client == "python" {
					e.pyOK(p, pyReq{Op: "call", Topic: topic, Server: "s1", Method: "record", Args: args, Timeout: 10})
				} else {
					ctx, cancel := context.WithTimeout(e.ctx(opTimeout), 10*time.Second)
					err := c.Call(ctx, "record", args, nil)
					cancel()
					if err != nil {
						t.Fatalf("short call %d: %v", i, err)
					}
				}
			}
			if err := <-long; err != nil {
				t.Error(err)
			}
			if n := len(filterEvents(rec.all(), "record")); n != 10 {
				t.Errorf("server handled %d short calls, want 10", n)
			}
		})
	}

	// A call request carries its timeout as the AMQP expiration: one
	// that waited in the queue of a stopped server beyond its caller's
	// timeout is discarded by the broker, not served when the server
	// comes back.
	runCase(t, "expired_request_not_served/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_expired")
		tr := e.transport()
		target := messaging.Target{Topic: topic, Server: "g1"}
		e.stopGoServer(e.startGoServer(tr, target, rec)) // leaves its queues
		if out := e.py(p, pyReq{Op: "call", Topic: topic, Server: "g1", Method: "record", Args: map[string]any{"item": "stale"}, Timeout: 1}); out.OK || !out.Error.is(pyMessagingTimeout) {
			t.Fatalf("call to a stopped server %s, want MessagingTimeout", out)
		}
		g := e.startGoServer(tr, target, rec)
		e.pyOK(p, pyReq{Op: "call", Topic: topic, Server: "g1", Method: "record", Args: map[string]any{"item": "fresh"}, Timeout: 30})
		e.stopGoServer(g)
		for _, ev := range rec.all() {
			if ev.Args["item"] != "fresh" {
				t.Errorf("the restarted server served %v", ev.Args)
			}
		}
	})
	runCase(t, "expired_request_not_served/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_expired")
		e.stopPyServers(e.startPyServer(p, e.s.url(), "", topic, "p1", rec)) // leaves its queues
		c := e.client(e.transport(), messaging.Target{Topic: topic, Server: "p1"})
		ctx, cancel := context.WithTimeout(e.ctx(opTimeout), time.Second)
		err := c.Call(ctx, "record", map[string]any{"item": "stale"}, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to a stopped server = %v, want context.DeadlineExceeded", err)
		}
		ps := e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		if err := c.Call(e.ctx(opTimeout), "record", map[string]any{"item": "fresh"}, nil); err != nil {
			t.Fatalf("call to the restarted server: %v", err)
		}
		e.stopPyServers(ps)
		for _, ev := range rec.all() {
			if ev.Args["item"] != "fresh" {
				t.Errorf("the restarted server served %v", ev.Args)
			}
		}
	})

	// test_mandatory_call: without the mandatory flag a call to a
	// missing queue times out; with it, it fails at once; with it, a call
	// to an existing server of the other language works.
	runCase(t, "mandatory_call/python_client", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_mandatory")
		out := e.py(p, pyReq{Op: "call", Topic: topic, Server: "nobody", Method: "whoami", Timeout: 1})
		if out.OK || !out.Error.is(pyMessagingTimeout) {
			t.Errorf("call without at_least_once to a missing queue %s, want MessagingTimeout", out)
		}
		out = e.py(p, pyReq{Op: "call", Topic: topic, Server: "nobody", Method: "whoami", Timeout: 60, AtLeastOnce: true})
		if out.OK || !out.Error.is(pyUndeliverable) {
			t.Errorf("call with at_least_once to a missing queue %s, want MessageUndeliverable", out)
		} else if out.elapsed() > 10*time.Second {
			t.Errorf("MessageUndeliverable after %v, want it at once", out.elapsed())
		}
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		out = e.pyOK(p, pyReq{Op: "call", Topic: topic, Server: "g1", Method: "whoami", Timeout: 30, AtLeastOnce: true})
		if string(out.Result) != `"g1"` {
			t.Errorf("mandatory call to the Go server returned %s", out.Result)
		}
	})
	runCase(t, "mandatory_call/go_client", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_mandatory")
		c := e.client(e.transport(), messaging.Target{Topic: topic, Server: "nobody"})
		ctx, cancel := context.WithTimeout(e.ctx(opTimeout), time.Second)
		err := c.Call(ctx, "whoami", nil, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call without Mandatory to a missing queue = %v, want context.DeadlineExceeded", err)
		}
		start := time.Now()
		err = c.Call(e.ctx(opTimeout+time.Minute), "whoami", nil, nil, rpc.Mandatory(true), rpc.Timeout(time.Minute))
		if !errors.Is(err, messaging.ErrUndeliverable) {
			t.Errorf("call with Mandatory to a missing queue = %v, want messaging.ErrUndeliverable", err)
		} else if d := time.Since(start); d > 10*time.Second {
			t.Errorf("ErrUndeliverable after %v, want it at once", d)
		}
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		var who string
		if err := c.Call(e.ctx(opTimeout), "whoami", nil, &who, rpc.Mandatory(true), rpc.ToServer("p1")); err != nil || who != "p1" {
			t.Errorf("mandatory call to the Python server = %q, %v; want p1", who, err)
		}
	})

	// test_monitor_long_call: a 4s method fails a call with a 2s timeout,
	// and succeeds with a long timeout and a 2s call monitor, kept alive
	// by the server's heartbeats. Both calls run at once.
	runCase(t, "monitor_long_call/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_monitor")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		var short, monitored *pyOutcome
		var wg sync.WaitGroup
		req := pyReq{Op: "call", URL: e.s.url(), Topic: topic, Server: "g1", Method: "sleep", Args: map[string]any{"seconds": 4}}
		shortCtx, monCtx := e.waitCtx(2), e.waitCtx(60)
		var shortErr, monErr error
		wg.Go(func() {
			r := req
			r.Timeout = 2
			short, shortErr = p.do(shortCtx, r)
		})
		wg.Go(func() {
			r := req
			r.Timeout, r.Monitor = 60, 2
			monitored, monErr = p.do(monCtx, r)
		})
		wg.Wait()
		if shortErr != nil || monErr != nil {
			t.Fatal(errors.Join(shortErr, monErr))
		}
		if short.OK || !short.Error.is(pyMessagingTimeout) {
			t.Errorf("4s call with timeout=2 %s, want MessagingTimeout", short)
		}
		if !monitored.OK || string(monitored.Result) != "4" {
			t.Errorf("4s call with timeout=60, call_monitor_timeout=2 %s, want 4", monitored)
		} else if monitored.elapsed() < 4*time.Second {
			t.Errorf("monitored call returned after %v, before the method's 4s", monitored.elapsed())
		}
	})
	runCase(t, "monitor_long_call/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_monitor")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic, Server: "p1"})
		var shortErr, monErr error
		var result json.Number
		var monElapsed time.Duration
		var wg sync.WaitGroup
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(e.ctx(opTimeout), 2*time.Second)
			defer cancel()
			shortErr = c.Call(ctx, "sleep", map[string]any{"seconds": 4}, nil)
		})
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(e.ctx(opTimeout+time.Minute), time.Minute)
			defer cancel()
			start := time.Now()
			monErr = c.Call(ctx, "sleep", map[string]any{"seconds": 4}, &result, rpc.CallMonitorTimeout(2*time.Second))
			monElapsed = time.Since(start)
		})
		wg.Wait()
		if !errors.Is(shortErr, context.DeadlineExceeded) {
			t.Errorf("4s call with a 2s timeout = %v, want context.DeadlineExceeded", shortErr)
		}
		if monErr != nil || result != "4" {
			t.Errorf("4s call with a 60s timeout and a 2s call monitor = %v, %v; want 4", result, monErr)
		} else if monElapsed < 4*time.Second {
			t.Errorf("monitored call returned after %v, before the method's 4s", monElapsed)
		}
	})

	// oslo 14's server keeps sending heartbeats after it answered a
	// monitored call with NoSuchMethod (its watchdog starts before the
	// endpoint lookup and is never stopped). A Go caller gets its
	// failure, ignores the stray heartbeats and goes on calling.
	runCase(t, "monitor_stray_heartbeats/go_client_python_server", func(t *testing.T) {
		e := newEnv(t)
		rec := newRecorder()
		leaky := e.newPeer("leaky")
		topic := e.name("call_stray")
		e.startPyServer(leaky, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic}, rpc.WithCallOptions(rpc.CallMonitorTimeout(2*time.Second)))
		if err := c.Call(e.ctx(opTimeout), "nosuch", nil, nil); !errors.Is(err, rpc.ErrNoSuchMethod) {
			t.Fatalf("monitored call of a missing method = %v, want rpc.ErrNoSuchMethod", err)
		}
		var got json.Number
		if err := c.Call(e.ctx(opTimeout), "sleep", map[string]any{"seconds": 3}, &got); err != nil || got != "3" {
			t.Errorf("monitored call amid stray heartbeats = %v, %v; want 3", got, err)
		}
		// The leaked watchdog would retry its heartbeats against the
		// reply queue once the Go side is gone: end the peer first.
		leaky.kill()
	})

	// The call monitor notices a server that stops answering: with a 2s
	// monitor and a 60s timeout the call fails soon after the server
	// dies, long before its timeout.
	runCase(t, "monitor_server_gone/go_client_python_server", func(t *testing.T) {
		e := newEnv(t)
		rec := newRecorder()
		doomed := e.newPeer("doomed")
		topic := e.name("call_monitor_gone")
		e.startPyServer(doomed, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic, Server: "p1"})
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(e.ctx(opTimeout+time.Minute), time.Minute)
		defer cancel()
		go func() {
			done <- c.Call(ctx, "sleep", map[string]any{"seconds": 30}, nil, rpc.CallMonitorTimeout(2*time.Second))
		}()
		rec.waitN(t, e.ctx(opTimeout), "sleep", 1)
		killed := time.Now()
		doomed.kill()
		select {
		case err := <-done:
			if !errors.Is(err, messaging.ErrHeartbeatTimeout) {
				t.Errorf("call to a server that died = %v, want messaging.ErrHeartbeatTimeout", err)
			}
			if d := time.Since(killed); d > 20*time.Second {
				t.Errorf("call failed %v after the server died, want about 2s", d)
			}
		case <-time.After(opTimeout + time.Minute):
			t.Fatal("the call did not end")
		}
	})
	runCase(t, "monitor_server_gone/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_monitor_gone")
		// The server has a transport of its own, closed abruptly to
		// play a Go process that dies.
		tr, err := messaging.Open(e.s.url(), messaging.WithLogger(e.log))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		srv, err := rpc.NewServer(tr, messaging.Target{Topic: topic, Server: "g1"}, goEndpoints(messaging.Target{Topic: topic, Server: "g1"}, rec), rpc.WithLogger(e.log))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen(e.ctx(opTimeout)); err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background()) }()
		defer func() {
			_ = srv.Close()
			if err := <-served; err == nil {
				t.Error("Serve returned nil after its transport was closed")
			}
		}()
		done := make(chan *pyOutcome, 1)
		callErr := make(chan error, 1)
		ctx := e.waitCtx(60)
		go func() {
			out, err := p.do(ctx, pyReq{Op: "call", URL: e.s.url(), Topic: topic, Server: "g1", Method: "sleep", Args: map[string]any{"seconds": 30}, Timeout: 60, Monitor: 2})
			if err != nil {
				callErr <- err
				return
			}
			done <- out
		}()
		rec.waitN(t, e.ctx(opTimeout), "sleep", 1)
		killed := time.Now()
		_ = tr.Close() // heartbeats and the reply can no longer be sent
		_ = srv.Close()
		select {
		case out := <-done:
			if out.OK || !out.Error.is(pyMessagingTimeout) {
				t.Errorf("call to a server that died %s, want MessagingTimeout", out)
			}
			if d := time.Since(killed); d > 20*time.Second {
				t.Errorf("call failed %v after the server died, want about 2s", d)
			}
		case err := <-callErr:
			t.Fatal(err)
		}
	})

	// test_endpoint_version_namespace: endpoint 7.5 in namespace Name1;
	// 7.5 (and 7.2) are served; 7.6, 8.0 and Name2 are rejected with
	// UnsupportedVersion; an unknown method with NoSuchMethod.
	versionCases := []struct {
		name, namespace, version, method, want string // want: "" ok, else the dispatcher class
	}{
		{"7.5", "Name1", "7.5", "test", ""},
		{"7.2", "Name1", "7.2", "test", ""},
		{"7.6", "Name1", "7.6", "test", "UnsupportedVersion"},
		{"8.0", "Name1", "8.0", "test", "UnsupportedVersion"},
		{"Name2", "Name2", "7.5", "test", "UnsupportedVersion"},
		{"no_such_method", "Name1", "7.5", "nosuch", "NoSuchMethod"},
	}
	runCase(t, "endpoint_version_namespace/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_versions")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		for _, vc := range versionCases {
			out := e.py(p, pyReq{Op: "call", Topic: topic, Server: "g1", Namespace: vc.namespace, Version: vc.version,
				Method: vc.method, Args: map[string]any{"echo": "Hi there"}, Timeout: 30})
			switch {
			case vc.want == "" && (!out.OK || string(out.Result) != `"Hi there"`):
				t.Errorf("%s: call %s, want \"Hi there\"", vc.name, out)
			case vc.want != "" && (out.OK || !out.Error.is(pyRemoteError) || out.Error.ExcType == nil || *out.Error.ExcType != vc.want):
				t.Errorf("%s: call %s, want a RemoteError of %s", vc.name, out, vc.want)
			}
		}
	})
	runCase(t, "endpoint_version_namespace/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("call_versions")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic, Server: "p1"})
		for _, vc := range versionCases {
			var got string
			err := c.Call(e.ctx(opTimeout), vc.method, map[string]any{"echo": "Hi there"}, &got, rpc.Namespace(vc.namespace), rpc.Version(vc.version))
			var re *rpc.RemoteError
			switch vc.want {
			case "":
				if err != nil || got != "Hi there" {
					t.Errorf("%s: Call = %q, %v; want \"Hi there\"", vc.name, got, err)
				}
			case "UnsupportedVersion":
				if !errors.Is(err, rpc.ErrUnsupportedVersion) || !errors.As(err, &re) || re.Module != "oslo_messaging.rpc.dispatcher" {
					t.Errorf("%s: Call = %v, want rpc.ErrUnsupportedVersion from oslo's dispatcher", vc.name, err)
				}
			case "NoSuchMethod":
				if !errors.Is(err, rpc.ErrNoSuchMethod) || !errors.As(err, &re) || re.Module != "oslo_messaging.rpc.dispatcher" {
					t.Errorf("%s: Call = %v, want rpc.ErrNoSuchMethod from oslo's dispatcher", vc.name, err)
				}
			}
		}
	})
}
