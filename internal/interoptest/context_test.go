package interoptest

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// sampleContext is a context dict as services send it, with every JSON
// type: strings, a list, booleans, integers (one beyond float64's exact
// range), a float, Unicode (in a value and in a key), nested dicts and
// None.
func sampleContext() map[string]any {
	return map[string]any{
		"auth_token": "tok-123", // travels in clear text in RPC, as in oslo
		"big":        int64(9007199254740993),
		"count":      42,
		"is_admin":   true,
		"nested":     map[string]any{"a": map[string]any{"b": []any{1, nil, "x"}}, "empty": map[string]any{}},
		"none":       nil,
		"project_id": "p1",
		"ratio":      1.5,
		"read_only":  false,
		"request_id": "req-7f1c9e",
		"roles":      []any{"admin", "member"},
		"unicode":    "héllo ✓ 日本 🎉",
		"user_id":    "u1",
		"ключ_🔑":     "non-ASCII key",
	}
}

// checkContext compares a received context with sampleContext plus the
// client_timeout that the server side adds (nil or a number).
func checkContext(t *testing.T, who string, got map[string]any, clientTimeout any) {
	t.Helper()
	want := sampleContext()
	want["client_timeout"] = clientTimeout
	gotKeys, wantKeys := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("%s received context keys %v, want %v", who, gotKeys, wantKeys)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !jsonEqual(g, w) {
			t.Errorf("%s received context %s = %#v, want %#v", who, k, g, w)
		}
	}
	// Integers keep every digit.
	if n, ok := got["big"].(json.Number); !ok || n.String() != "9007199254740993" {
		t.Errorf("%s received big = %#v, want exactly 9007199254740993", who, got["big"])
	}
}

// TestInteropContext sends the context dict each way, with calls and
// casts, and checks that the other side receives it intact.
func TestInteropContext(t *testing.T) {
	setup(t)
	t.Parallel()

	sampleJSON := func(t *testing.T) json.RawMessage { return mustJSON(t, sampleContext()) }

	runCase(t, "python_client_go_server/call", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("context")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "record", Args: map[string]any{"item": "c"}, Ctxt: sampleJSON(t), Timeout: 30, Monitor: 4})
		ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]
		// The Go handler's view: messaging.FromIncomingContext.
		checkContext(t, "Go handler", ev.Ctxt, 4)
	})
	runCase(t, "python_client_go_server/cast", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("context")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		e.pyOK(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": "c"}, Ctxt: sampleJSON(t)})
		ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]
		checkContext(t, "Go handler", ev.Ctxt, nil)
	})
	runCase(t, "go_client_python_server/call", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("context")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), messaging.Metadata(sampleContext()))
		var raw json.RawMessage
		if err := c.Call(ctx, "echo", nil, &raw, rpc.CallMonitorTimeout(4*time.Second)); err != nil {
			t.Fatalf("Call echo: %v", err)
		}
		var res struct {
			Ctxt map[string]any `json:"ctxt"`
		}
		decode(t, raw, &res)
		// The Python endpoint's ctxt dict, as it returned it.
		checkContext(t, "Python endpoint", res.Ctxt, 4)
		if !strings.Contains(string(raw), `"client_timeout": 4`) {
			t.Errorf("Python endpoint's client_timeout is not the integer 4: %s", raw)
		}
	})
	runCase(t, "go_client_python_server/cast", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("context")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic})
		ctx := messaging.NewOutgoingContext(e.ctx(opTimeout), messaging.Metadata(sampleContext()))
		if err := c.Cast(ctx, "record", map[string]any{"item": "c"}); err != nil {
			t.Fatalf("Cast: %v", err)
		}
		ev := rec.waitN(t, e.ctx(opTimeout), "record", 1)[0]
		checkContext(t, "Python endpoint", ev.Ctxt, nil)
	})
}
