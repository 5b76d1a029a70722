package interoptest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// TestInteropCast covers casts between Go and Python, including ports of
// oslo's functional CastTestCase.
func TestInteropCast(t *testing.T) {
	setup(t)
	t.Parallel()

	ctxt := map[string]any{"request_id": "req-cast", "user_id": "u1"}
	runCase(t, "topic/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_topic")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		e.pyOK(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": "x", "n": 7}, Ctxt: ctxt})
		ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]
		if ev.Server != "g1" || !jsonEqual(ev.Args, map[string]any{"item": "x", "n": 7}) || ev.Ctxt["user_id"] != "u1" || ev.Ctxt["request_id"] != "req-cast" {
			t.Errorf("Go server got %+v", ev)
		}
	})
	runCase(t, "topic/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_topic")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), messaging.Metadata(ctxt))
		if err := c.Cast(ctx, "record", map[string]any{"item": "x", "n": 7}); err != nil {
			t.Fatalf("Cast: %v", err)
		}
		ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]
		if ev.Server != "p1" || !jsonEqual(ev.Args, map[string]any{"item": "x", "n": 7}) || ev.Ctxt["user_id"] != "u1" || ev.Ctxt["request_id"] != "req-cast" {
			t.Errorf("Python server got %+v", ev)
		}
	})

	// test_specific_server: casts to one server reach it alone.
	for _, client := range []string{"python", "go"} {
		runCase(t, "specific_server/"+client+"_client_mixed_servers", func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("cast_specific")
			g := e.startGroup(tr, p, "", topic, []string{"g1", "g2"}, []string{"p1"}, rec)
			c := e.client(tr, messaging.Target{Topic: topic})
			n := 0
			for _, server := range g.names() {
				for i := range 2 {
					item := fmt.Sprintf("%s-%d", server, i)
					n++
					if client == "python" {
						e.pyOK(p, pyReq{Op: "cast", Topic: topic, Server: server, Method: "record", Args: map[string]any{"item": item}})
					} else if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": item}, rpc.ToServer(server)); err != nil {
						t.Fatalf("Cast to %s: %v", server, err)
					}
				}
			}
			rec.waitN(t, e.ctx(opTimeout), "record", n)
			g.stop(e) // nothing more can arrive
			evs := rec.all()
			if len(evs) != n {
				t.Errorf("servers recorded %d casts, want %d:\n%s", len(evs), n, describeEvents(evs))
			}
			for _, ev := range evs {
				if item, _ := ev.Args["item"].(string); !strings.HasPrefix(item, ev.Server+"-") {
					t.Errorf("server %s received %q, meant for another server", ev.Server, item)
				}
			}
		})
	}

	// test_server_in_group: 20 casts to the topic are spread over the
	// mixed group: every server gets some, none gets all, each cast is
	// handled once.
	for _, client := range []string{"python", "go"} {
		runCase(t, "server_in_group/"+client+"_client_mixed_servers", func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("cast_group")
			g := e.startGroup(tr, p, "", topic, []string{"g1", "g2"}, []string{"p1", "p2"}, rec)
			c := e.client(tr, messaging.Target{Topic: topic})
			var sent []string
			for i := range 20 {
				item := fmt.Sprintf("c%02d", i)
				sent = append(sent, item)
				if client == "python" {
					e.pyOK(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": item}})
				} else if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": item}); err != nil {
					t.Fatalf("Cast: %v", err)
				}
			}
			rec.waitN(t, e.ctx(opTimeout), "record", len(sent))
			g.stop(e)
			evs := rec.all()
			// Casts are not ordered, even per server (handlers run
			// concurrently).
			checkDistribution(t, sent, evs, g.names(), false)
			perServer := map[string]int{}
			for _, ev := range evs {
				perServer[ev.Server]++
			}
			for server, k := range perServer {
				if k >= len(sent) {
					t.Errorf("server %s handled all %d casts", server, k)
				}
			}
		})
	}

	// test_fanout: every server of the mixed group (2 Go, 1 Python) gets
	// every fanout cast, once.
	for _, client := range []string{"python", "go"} {
		runCase(t, "fanout/"+client+"_client_mixed_servers", func(t *testing.T) {
			e, p, rec := newCase(t)
			tr := e.transport()
			topic := e.name("cast_fanout")
			g := e.startGroup(tr, p, "", topic, []string{"g1", "g2"}, []string{"p1"}, rec)
			c := e.client(tr, messaging.Target{Topic: topic, Fanout: true})
			items := []string{"open", "stack", "add2", "add10"}
			for _, item := range items {
				if client == "python" {
					e.pyOK(p, pyReq{Op: "cast", Topic: topic, Fanout: true, Method: "record", Args: map[string]any{"item": item}})
				} else if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": item}); err != nil {
					t.Fatalf("fanout Cast: %v", err)
				}
			}
			names := g.names()
			rec.waitN(t, e.ctx(opTimeout), "record", len(items)*len(names))
			g.stop(e)
			got := map[string]map[string]int{}
			for _, ev := range rec.all() {
				if got[ev.Server] == nil {
					got[ev.Server] = map[string]int{}
				}
				item, _ := ev.Args["item"].(string)
				got[ev.Server][item]++
			}
			for _, server := range names {
				for _, item := range items {
					if got[server][item] != 1 {
						t.Errorf("server %s received fanout %q %d times, want once; all: %v", server, item, got[server][item], got)
					}
				}
			}
			if len(got) != len(names) {
				t.Errorf("fanout reached servers %v, want %v", got, names)
			}
		})
	}

	// The mandatory flag does not apply to fanout casts: oslo's
	// fanout_send publishes without it whatever the transport options,
	// so a fanout cast to a topic without servers is dropped quietly,
	// and one to a topic with servers reaches them.
	runCase(t, "mandatory_fanout/python_client", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_mandatory_fanout")
		if out := e.py(p, pyReq{Op: "cast", Topic: topic, Fanout: true, Method: "record", Args: map[string]any{"item": "dropped"}, AtLeastOnce: true}); !out.OK {
			t.Errorf("fanout cast with at_least_once to a topic without servers %s, want it dropped quietly", out)
		}
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		e.pyOK(p, pyReq{Op: "cast", Topic: topic, Fanout: true, Method: "record", Args: map[string]any{"item": "kept"}, AtLeastOnce: true})
		if ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]; ev.Args["item"] != "kept" {
			t.Errorf("Go server got %+v", ev)
		}
	})
	runCase(t, "mandatory_fanout/go_client", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_mandatory_fanout")
		c := e.client(e.transport(), messaging.Target{Topic: topic, Fanout: true}, rpc.WithCallOptions(rpc.Mandatory(true)))
		if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "dropped"}); err != nil {
			t.Errorf("fanout Cast with Mandatory to a topic without servers = %v; want nil, as oslo (its fanout casts ignore at_least_once)", err)
		}
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "kept"}); err != nil {
			t.Fatalf("fanout Cast with Mandatory to the Python server: %v", err)
		}
		if ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]; ev.Args["item"] != "kept" {
			t.Errorf("Python server got %+v", ev)
		}
	})

	// The mandatory flag on casts: a cast no queue receives fails at
	// once; to an existing server of the other language it works.
	runCase(t, "mandatory/python_client_go_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_mandatory")
		out := e.py(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": "lost"}, AtLeastOnce: true})
		if out.OK || !out.Error.is(pyUndeliverable) {
			t.Errorf("cast with at_least_once to a missing queue %s, want MessageUndeliverable", out)
		}
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		e.pyOK(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": "kept"}, AtLeastOnce: true})
		if ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]; ev.Args["item"] != "kept" {
			t.Errorf("Go server got %+v", ev)
		}
	})
	runCase(t, "mandatory/go_client_python_server", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("cast_mandatory")
		c := e.client(e.transport(), messaging.Target{Topic: topic}, rpc.WithCallOptions(rpc.Mandatory(true)))
		if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "lost"}); !errors.Is(err, messaging.ErrUndeliverable) {
			t.Errorf("Cast with Mandatory to a missing queue = %v, want messaging.ErrUndeliverable", err)
		}
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "kept"}); err != nil {
			t.Fatalf("Cast with Mandatory to the Python server: %v", err)
		}
		if ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]; ev.Args["item"] != "kept" {
			t.Errorf("Python server got %+v", ev)
		}
	})
}
