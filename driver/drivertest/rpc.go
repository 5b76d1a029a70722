package drivertest

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// testCallResults checks that call results of every JSON kind, null,
// false and 0 included, come back unchanged.
func testCallResults(s *suite) {
	t := s.t
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		req := d.Request()
		var r driver.Reply
		if req.Method != "nil_result" {
			var a struct {
				R json.RawMessage `json:"r"`
			}
			if err := json.Unmarshal(req.Args, &a); err != nil {
				t.Errorf("server: args %s: %v", show(req.Args), err)
			}
			r.Result = a.R
		}
		if err := d.Reply(ctx, &r); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply(%s) = %v", show(r.Result), err)
		}
	})
	c := s.open()
	for _, tc := range []struct{ name, result string }{
		{"null", `null`},
		{"empty list", `[]`},
		{"empty object", `{}`},
		{"false", `false`},
		{"zero", `0`},
		{"true", `true`},
		{"number", `-12.5`},
		{"string", `"a string with \"quotes\", \\ and ✓"`},
		{"empty string", `""`},
		{"list", `[1, "two", null, [3]]`},
		{"nested object", `{"a": [1, 2.5, {"b": null, "c": [true, false]}], "d": {"e": "f", "g": {}}}`},
	} {
		r := s.call(c, s.addr(""), callReq("echo_result", json.RawMessage(`{"r": `+tc.result+`}`)))
		switch {
		case r.Failure != nil:
			t.Errorf("%s: got failure %+v, want result %s", tc.name, r.Failure, tc.result)
		case !jsonEqual(r.Result, []byte(tc.result)):
			t.Errorf("%s: result = %s, want %s", tc.name, show(r.Result), tc.result)
		}
	}
	r := s.call(c, s.addr(""), callReq("nil_result", json.RawMessage(`{}`)))
	if r.Failure != nil || !jsonEqual(r.Result, []byte("null")) {
		t.Errorf("reply with a nil Result: got result %s, failure %+v, want null", show(r.Result), r.Failure)
	}
}

// testCallFailure checks that failures come back with all their fields.
func testCallFailure(s *suite) {
	t := s.t
	full := &driver.Failure{
		Class:   "ValueError",
		Module:  "builtins",
		Message: `bad value: "x" ✓ 日本`,
		Traceback: []string{
			"Traceback (most recent call last):\n",
			"  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 42, in reboot\n",
			"ValueError: bad value\n",
		},
		Args:   json.RawMessage(`["bad value", 3, null, {"k": [1]}]`),
		Kwargs: json.RawMessage(`{"code": 3, "detail": {"k": "v"}, "flag": false}`),
	}
	minimal := &driver.Failure{Class: "KeyError", Module: "builtins", Message: "'k'"}
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		f := full
		if d.Request().Method == "fail_minimal" {
			f = minimal
		}
		// A Result next to a Failure is ignored.
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"ignored"`), Failure: f}); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply(failure) = %v", err)
		}
	})
	c := s.open()

	r := s.call(c, s.addr("srv"), callReq("fail", json.RawMessage(`{}`)))
	if f := r.Failure; f == nil {
		t.Errorf("reply: got result %s, want failure", show(r.Result))
	} else {
		if f.Class != full.Class || f.Module != full.Module || f.Message != full.Message {
			t.Errorf("failure = %s.%s(%q), want %s.%s(%q)", f.Module, f.Class, f.Message, full.Module, full.Class, full.Message)
		}
		if !reflect.DeepEqual(f.Traceback, full.Traceback) {
			t.Errorf("failure traceback = %q, want %q", f.Traceback, full.Traceback)
		}
		if !jsonEqual(f.Args, full.Args) {
			t.Errorf("failure args = %s, want %s", show(f.Args), full.Args)
		}
		if !jsonEqual(f.Kwargs, full.Kwargs) {
			t.Errorf("failure kwargs = %s, want %s", show(f.Kwargs), full.Kwargs)
		}
	}

	r = s.call(c, s.addr("srv"), callReq("fail_minimal", json.RawMessage(`{}`)))
	if f := r.Failure; f == nil {
		t.Errorf("reply: got result %s, want failure", show(r.Result))
	} else {
		if f.Class != minimal.Class || f.Module != minimal.Module || f.Message != minimal.Message {
			t.Errorf("failure = %s.%s(%q), want %s.%s(%q)", f.Module, f.Class, f.Message, minimal.Module, minimal.Class, minimal.Message)
		}
		if len(f.Traceback) != 0 {
			t.Errorf("failure traceback = %q, want none", f.Traceback)
		}
		if len(f.Args) != 0 && !jsonEqual(f.Args, []byte("[]")) {
			t.Errorf("failure args = %s, want [] or nothing", show(f.Args))
		}
		if len(f.Kwargs) != 0 && !jsonEqual(f.Kwargs, []byte("{}")) {
			t.Errorf("failure kwargs = %s, want {} or nothing", show(f.Kwargs))
		}
	}
}

// testRequestFields checks that every field of call and cast requests
// arrives unchanged.
func testRequestFields(s *suite) {
	t := s.t
	got := make(chan *driver.Request, 1)
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		select {
		case got <- d.Request():
		case <-ctx.Done():
			return
		}
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"ok"`)}); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply() = %v", err)
		}
	})
	receive := func(what string) *driver.Request {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-s.ctx(waitTimeout).Done():
			t.Fatalf("%s: no request in %v", what, waitTimeout)
			return nil
		}
	}
	c := s.open()

	call := &driver.Request{
		Method:    "get_info",
		Args:      json.RawMessage(`{"a": 1, "b": "two", "c": [1, 2], "d": {"x": null}, "e": "ü✓"}`),
		Namespace: "ns1",
		Version:   "1.3",
		MsgID:     wire.NewID(),
		UniqueID:  wire.NewID(),
	}
	want := *call
	var opts driver.SendOptions
	if s.cfg.Features.Heartbeat {
		opts.MonitorTimeout = 2500 * time.Millisecond
	}
	r, err := c.Call(s.ctx(waitTimeout), s.addr("srv"), call, opts)
	if err != nil {
		t.Fatalf("Call() = %v", err)
	}
	if !jsonEqual(r.Result, []byte(`"ok"`)) {
		t.Errorf("Call() result = %s, want \"ok\"", show(r.Result))
	}
	g := receive("call")
	checkRequest(s, "call", g, &want)
	if !g.IsCall() {
		t.Errorf("call: IsCall() = false")
	}
	if g.ReplyTo == "" {
		t.Errorf("call: ReplyTo is empty")
	}
	if call.ReplyTo != g.ReplyTo {
		t.Errorf("call: caller's ReplyTo = %q, server's = %q, want the same (the driver sets it)", call.ReplyTo, g.ReplyTo)
	}
	if s.cfg.Features.Heartbeat {
		if g.MonitorTimeout == nil || *g.MonitorTimeout != 2.5 {
			t.Errorf("call: MonitorTimeout = %v, want 2.5", fmtFloatPtr(g.MonitorTimeout))
		}
	}

	// A call with the optional fields empty.
	bare := callReq("bare", json.RawMessage(`{}`))
	want = *bare
	s.call(c, s.addr("srv"), bare)
	g = receive("bare call")
	checkRequest(s, "bare call", g, &want)
	if g.MonitorTimeout != nil {
		t.Errorf("bare call: MonitorTimeout = %v, want nil", *g.MonitorTimeout)
	}

	cast := &driver.Request{
		Method:    "notify_me",
		Args:      json.RawMessage(`{"z": true, "list": ["x", {"y": 1.5}]}`),
		Namespace: "ns2",
		Version:   "2.7",
		UniqueID:  wire.NewID(),
	}
	want = *cast
	s.cast(c, s.addr("srv"), cast)
	g = receive("cast")
	checkRequest(s, "cast", g, &want)
	if g.IsCall() || g.ReplyTo != "" || g.MonitorTimeout != nil {
		t.Errorf("cast: MsgID %q, ReplyTo %q, MonitorTimeout %v, want all empty", g.MsgID, g.ReplyTo, fmtFloatPtr(g.MonitorTimeout))
	}

	// Nil Args means {}.
	s.cast(c, s.addr("srv"), &driver.Request{Method: "no_args", UniqueID: wire.NewID()})
	g = receive("cast without args")
	if g.Method != "no_args" || (len(g.Args) != 0 && !jsonEqual(g.Args, []byte("{}"))) {
		t.Errorf("cast without args: got method %q args %s, want no_args with {}", g.Method, show(g.Args))
	}
}

// fmtFloatPtr formats an optional number for messages.
func fmtFloatPtr(f *float64) string {
	if f == nil {
		return "nil"
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}

func checkRequest(s *suite, what string, got, want *driver.Request) {
	t := s.t
	t.Helper()
	if got.Method != want.Method || got.Namespace != want.Namespace || got.Version != want.Version {
		t.Errorf("%s: method %q namespace %q version %q, want %q %q %q",
			what, got.Method, got.Namespace, got.Version, want.Method, want.Namespace, want.Version)
	}
	if got.MsgID != want.MsgID {
		t.Errorf("%s: MsgID = %q, want %q", what, got.MsgID, want.MsgID)
	}
	if got.UniqueID != want.UniqueID {
		t.Errorf("%s: UniqueID = %q, want %q", what, got.UniqueID, want.UniqueID)
	}
	if !jsonEqual(got.Args, want.Args) {
		t.Errorf("%s: Args = %s, want %s", what, show(got.Args), show(want.Args))
	}
}

// testContext checks that the context dictionary keeps its JSON types,
// numbers as json.Number, through calls and casts.
func testContext(s *suite) {
	t := s.t
	sent := map[string]any{
		"user_id":      "u1",
		"request_id":   "req-5d1c0d8e-3f5b-4b4f-9d43-7e1f2c0b9a11",
		"unicode":      "héllo ✓ 日本 😀 \"q\" \\ \n",
		"ключ":         "значение",
		"empty":        "",
		"int":          42,
		"negative":     -7,
		"zero":         0,
		"float":        2.5,
		"big":          json.Number("12345678901234567890"),
		"is_admin":     true,
		"show_deleted": false,
		"auth_token":   nil,
		"roles":        []any{"admin", "member"},
		"mixed":        []any{"a", 1, nil, true, []any{}},
		"empty_list":   []any{},
		"empty_map":    map[string]any{},
		"nested": map[string]any{
			"inner": map[string]any{"k": "v", "n": 0, "f": -0.25, "l": []any{map[string]any{"deep": nil}}},
		},
	}
	want := map[string]any{
		"user_id":      "u1",
		"request_id":   "req-5d1c0d8e-3f5b-4b4f-9d43-7e1f2c0b9a11",
		"unicode":      "héllo ✓ 日本 😀 \"q\" \\ \n",
		"ключ":         "значение",
		"empty":        "",
		"int":          json.Number("42"),
		"negative":     json.Number("-7"),
		"zero":         json.Number("0"),
		"float":        json.Number("2.5"),
		"big":          json.Number("12345678901234567890"),
		"is_admin":     true,
		"show_deleted": false,
		"auth_token":   nil,
		"roles":        []any{"admin", "member"},
		"mixed":        []any{"a", json.Number("1"), nil, true, []any{}},
		"empty_list":   []any{},
		"empty_map":    map[string]any{},
		"nested": map[string]any{
			"inner": map[string]any{"k": "v", "n": json.Number("0"), "f": json.Number("-0.25"), "l": []any{map[string]any{"deep": nil}}},
		},
	}
	got := make(chan map[string]any, 1)
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		select {
		case got <- d.Request().Context:
		case <-ctx.Done():
			return
		}
		if err := d.Reply(ctx, &driver.Reply{}); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply() = %v", err)
		}
	})
	c := s.open()
	check := func(what string) {
		t.Helper()
		select {
		case g := <-got:
			if !reflect.DeepEqual(g, want) {
				for k, w := range want {
					if v, ok := g[k]; !ok {
						t.Errorf("%s: context key %q missing", what, k)
					} else if !reflect.DeepEqual(v, w) {
						t.Errorf("%s: context[%q] = %#v, want %#v", what, k, v, w)
					}
				}
				for k, v := range g {
					if _, ok := want[k]; !ok {
						t.Errorf("%s: unexpected context key %q = %#v", what, k, v)
					}
				}
			}
		case <-s.ctx(waitTimeout).Done():
			t.Fatalf("%s: no request in %v", what, waitTimeout)
		}
	}

	req := callReq("with_context", json.RawMessage(`{}`))
	req.Context = sent
	s.call(c, s.addr("srv"), req)
	check("call")

	req = castReq("with_context", json.RawMessage(`{}`))
	req.Context = sent
	s.cast(c, s.addr("srv"), req)
	check("cast")
}

// testLargeUnicode checks a 1 MiB request and reply with non-ASCII text
// in the method name, the arguments and the result.
func testLargeUnicode(s *suite) {
	t := s.t
	const method = "méthode_✓_日本"
	big := bigText(1 << 20)
	s.serve(s.server(s.addr("srv")), func(ctx context.Context, d driver.Delivery) {
		req := d.Request()
		if req.Method != method {
			t.Errorf("server: method = %q, want %q", req.Method, method)
		}
		if err := d.Reply(ctx, &driver.Reply{Result: req.Args}); err != nil && ctx.Err() == nil {
			t.Errorf("server: Reply(%d bytes) = %v", len(req.Args), err)
		}
	})
	c := s.open()
	args := jsonOf(t, map[string]any{"text": big, "ключ": "✓ 😀"})
	r := s.call(c, s.addr("srv"), callReq(method, args))
	if r.Failure != nil {
		t.Fatalf("Call() failure = %+v", r.Failure)
	}
	var res map[string]string
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatalf("result %s: %v", show(r.Result), err)
	}
	if res["text"] != big {
		t.Errorf("result text: %d bytes, want %d bytes identical to those sent", len(res["text"]), len(big))
	}
	if res["ключ"] != "✓ 😀" {
		t.Errorf("result[ключ] = %q, want %q", res["ключ"], "✓ 😀")
	}
}

// bigText returns a text of at least n bytes, mostly ASCII, with
// escapes and characters of every UTF-8 length in every kilobyte.
func bigText(n int) string {
	const (
		special = "héllo wörld ✓ 日本語 😀 \"quoted\" back\\slash tab\t newline\n <html> & "
		filler  = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "
	)
	var b strings.Builder
	b.Grow(n + 1024)
	for b.Len() < n {
		b.WriteString(special)
		for range 12 {
			b.WriteString(filler)
		}
	}
	return b.String()
}
