package wire_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// The golden files in testdata/golden are bodies produced by the real
// Python oslo.messaging, with random ids replaced by the fixed ones below
// and tracebacks by fixedTB. Regenerate them with
//
//	OMSG_PYTHON=/usr/bin/python3 go test ./wire -run TestInterop -update
var update = flag.Bool("update", false, "rewrite testdata/golden from the real Python oslo.messaging (needs "+
	"OMSG_PYTHON)")

// Fixed identifiers that replace oslo's random ones in the golden files.
const (
	testMsgID    = "0123456789abcdef0123456789abcdef"
	testUniqueID = "fedcba9876543210fedcba9876543210"
	testReplyQ   = "reply_00112233445566778899aabbccddeeff"
)

// fixedTB replaces the tracebacks of Python failures in the golden files.
var fixedTB = []string{
	"Traceback (most recent call last):\n",
	"  File \"<string>\", line 1, in <module>\n",
	"Error: traceback normalised for the golden files\n",
}

func ptr[T any](v T) *T { return &v }

// requestCase is an RPC request that the real Python client sends with
// the same arguments, context and target.
type requestCase struct {
	name   string
	req    driver.Request // without ids
	call   bool
	server string // routing only: the body does not change
	fanout bool
}

// request returns the case's request with the fixed ids.
func (c *requestCase) request() *driver.Request {
	r := c.req
	if c.call {
		r.MsgID, r.ReplyTo = testMsgID, testReplyQ
	}
	r.UniqueID = testUniqueID
	return &r
}

// requestCases: arguments are written in the form Python's json.dumps
// gives them (see the package documentation about numbers), and context
// dictionaries have a single key or sorted keys, since EncodeRequest
// sorts them.
var requestCases = []requestCase{
	{name: "cast", req: driver.Request{Method: "do_cast",
		Args:    json.RawMessage(`{"a":1,"b":"two","c":[1,2],"d":{"x":null}}`),
		Context: map[string]any{"project_id": "p1", "request_id": "req-123", "user_id": "u1"}}},
	{name: "cast_to_server", server: "srv1", req: driver.Request{Method: "do_cast2",
		Args: json.RawMessage(`{"z":true}`), Namespace: "ns1", Version: "1.3",
		Context: map[string]any{"user_id": "u1"}}},
	{name: "fanout", fanout: true, req: driver.Request{Method: "refresh", Args: json.RawMessage(`{}`)}},
	{name: "call_timeout_null", call: true, req: driver.Request{Method: "do_call",
		Args: json.RawMessage(`{"a":1}`), Context: map[string]any{"user_id": "u1"}}},
	{name: "call_timeout_10", call: true, req: driver.Request{Method: "do_call",
		Args: json.RawMessage(`{"a":1}`), MonitorTimeout: ptr(10.0), Context: map[string]any{"user_id": "u1"}}},
	{name: "call_timeout_fraction", call: true, req: driver.Request{Method: "do_call",
		Args: json.RawMessage(`{}`), MonitorTimeout: ptr(2.5), Namespace: "ns1", Version: "1.3"}},
	{name: "unicode", req: driver.Request{Method: "m\u00e9thode",
		Args:    json.RawMessage(`{"e":"é","check":"✓","emoji":"😀","mixed":"aé✓😀z","ключ":"значение"}`),
		Context: map[string]any{"user_name": "Zoë 😀"}}},
	{name: "nested", call: true, req: driver.Request{Method: "nested",
		Args: json.RawMessage(`{"list":[1,[2,[3,{"k":[true,false,null]}]]],"obj":{"a":{"b":{"c":[]}}},"empty":{}}`)}},
	{name: "context_types", req: driver.Request{Method: "ctx", Args: json.RawMessage(`{}`),
		Context: map[string]any{"a_list": []any{"x", 1}, "b_dict": map[string]any{"k": "v"}, "c_null": nil,
			"d_bool": true, "e_int": 42, "f_float": 1.5, "g_str": "é"}}},
	{name: "html_characters", req: driver.Request{Method: "html",
		Args:    json.RawMessage(`{"html":"<script>alert('x') && \"y\"</script>","amp":"a&b"}`),
		Context: map[string]any{"note": "<b>&amp;</b>"}}},
	{name: "control_characters", req: driver.Request{Method: "ctl",
		Args:    json.RawMessage(`{"ctl":"\u0000\u0001\u001f\u007f\b\f\n\r\t","sep":"\u2028\u2029","bs":"back\\slash \"q\" /","c1":"\u0080\u009f"}`),
		Context: map[string]any{"ctl": "\x00\x7f\u2028"}}},
	{name: "numbers", req: driver.Request{Method: "numbers",
		Args: json.RawMessage(`{"big":123456789012345678901234567890,"neg":-9007199254740993,"f":1.5,"exp":1e+100,"small":1e-07,"zero":0,"negf":-2.25}`)}},
	{name: "empty", req: driver.Request{}},
	{name: "non_canonical_escapes", req: driver.Request{Method: "esc",
		Args: json.RawMessage(`{ "s" : "\u00E9\/\u0041\uD83D\uDE00" , "lone" : "\ud800x\udc00" }`)}},
}

// pyException is an exception the Python side raises.
type pyException struct {
	Class  string         `json:"class"`
	Args   []any          `json:"args"`
	Kwargs map[string]any `json:"kwargs,omitempty"`
}

// replyCase is a reply that a real Python server sends: its endpoint
// returns result or raises, or the client calls method.
type replyCase struct {
	name   string
	reply  *driver.Reply // nil: a heartbeat
	ending bool

	result  string       // JSON the endpoint returns
	raise   *pyException // or the exception it raises
	method  string       // or the method called instead
	monitor float64      // call_monitor_timeout of the call
	sleep   float64      // seconds the endpoint sleeps
}

func failure(class, module, message string, args string, kwargs string) *driver.Failure {
	f := &driver.Failure{Class: class, Module: module, Message: message, Traceback: fixedTB,
		Args: json.RawMessage(args)}
	if kwargs != "" {
		f.Kwargs = json.RawMessage(kwargs)
	}
	return f
}

var replyCases = []replyCase{
	{name: "dict", result: `{"a": [1, "b"]}`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`{"a":[1,"b"]}`)}},
	{name: "list", result: `[1, 2, 3]`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`[1,2,3]`)}},
	{name: "string", result: `"é✓😀 <&> \"q\"\n"`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`"é✓😀 <&> \"q\"\n"`)}},
	{name: "int", result: `42`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`42`)}},
	{name: "float", result: `2.5`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`2.5`)}},
	{name: "true", result: `true`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`true`)}},
	{name: "false", result: `false`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`false`)}},
	{name: "zero", result: `0`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`0`)}},
	{name: "empty_list", result: `[]`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`[]`)}},
	{name: "empty_dict", result: `{}`, ending: true, reply: &driver.Reply{Result: json.RawMessage(`{}`)}},
	{name: "null", result: `null`, ending: true, reply: &driver.Reply{}},
	{name: "heartbeat", result: `"done"`, monitor: 2, sleep: 1.5, ending: false},
	{name: "failure_value_error", ending: true,
		raise: &pyException{Class: "ValueError", Args: []any{"bad value é"}},
		reply: &driver.Reply{Failure: failure("ValueError", "builtins", "bad value é", `["bad value é"]`, "")}},
	{name: "failure_key_error", ending: true,
		raise: &pyException{Class: "KeyError", Args: []any{"k"}},
		reply: &driver.Reply{Failure: failure("KeyError", "builtins", "'k'", `["k"]`, "")}},
	{name: "failure_with_kwargs", ending: true,
		raise: &pyException{Class: "MyError", Args: []any{"custom"}, Kwargs: map[string]any{"code": 42}},
		reply: &driver.Reply{Failure: failure("MyError", "__main__", "custom", `["custom"]`, `{"code":42}`)}},
	{name: "failure_no_such_method", ending: true, method: "nosuch",
		reply: &driver.Reply{Failure: failure("NoSuchMethod", "oslo_messaging.rpc.dispatcher",
			"Endpoint does not support RPC method nosuch", `["Endpoint does not support RPC method nosuch"]`, "")}},
}

// failureCase is an exception that Python raises and serializes with
// serialize_remote_exception.
type failureCase struct {
	name    string
	raise   pyException
	failure *driver.Failure
}

var failureCases = []failureCase{
	{"value_error", pyException{Class: "ValueError", Args: []any{"bad value"}},
		failure("ValueError", "builtins", "bad value", `["bad value"]`, "")},
	{"key_error", pyException{Class: "KeyError", Args: []any{"k"}},
		failure("KeyError", "builtins", "'k'", `["k"]`, "")},
	{"with_kwargs", pyException{Class: "MyError", Args: []any{"custom é"}, Kwargs: map[string]any{"code": 42}},
		failure("MyError", "__main__", "custom é", `["custom é"]`, `{"code":42}`)},
	{"special_characters", pyException{Class: "ValueError", Args: []any{"line1\nline2 \"q\" \\ <&> 😀 \x7f"}},
		failure("ValueError", "builtins", "line1\nline2 \"q\" \\ <&> 😀 \x7f", `["line1\nline2 \"q\" \\ <&> 😀 \u007f"]`, "")},
	{"several_args", pyException{Class: "ValueError", Args: []any{"a", 1, nil, []any{true}}},
		failure("ValueError", "builtins", "('a', 1, None, [True])", `["a",1,null,[true]]`, "")},
}

// goldenPath returns the path of a golden file.
func goldenPath(name string) string { return filepath.Join("testdata", "golden", name+".json") }

// readGolden returns a golden file, failing t if it is missing.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("%v (regenerate with: OMSG_PYTHON=/usr/bin/python3 go test ./wire -run TestInterop -update)", err)
	}
	return b
}

// writeGolden writes a golden file when -update is set.
func writeGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	if !*update {
		return
	}
	if err := os.MkdirAll(filepath.Dir(goldenPath(name)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath(name), body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// jsonEqual reports whether a and b are JSON texts of the same value,
// numbers compared as written. Empty text stands for {}.
func jsonEqual(a, b []byte) bool {
	va, ea := decodeAny(a)
	vb, eb := decodeAny(b)
	return ea == nil && eb == nil && reflect.DeepEqual(va, vb)
}

func decodeAny(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// mustJSON encodes v or fails t.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkRequest compares a decoded request with the expected one: string
// fields exactly, arguments and context as JSON values.
func checkRequest(t *testing.T, what string, got, want *driver.Request) {
	t.Helper()
	if got.Method != want.Method || got.Namespace != want.Namespace || got.Version != want.Version ||
		got.MsgID != want.MsgID || got.ReplyTo != want.ReplyTo || got.UniqueID != want.UniqueID {
		t.Errorf("%s: decoded %+v, want %+v", what, *got, *want)
	}
	if (got.MonitorTimeout == nil) != (want.MonitorTimeout == nil) ||
		(got.MonitorTimeout != nil && *got.MonitorTimeout != *want.MonitorTimeout) {
		t.Errorf("%s: MonitorTimeout = %v, want %v", what, got.MonitorTimeout, want.MonitorTimeout)
	}
	if !jsonEqual(got.Args, want.Args) {
		t.Errorf("%s: Args = %s, want %s", what, got.Args, want.Args)
	}
	gotCtx, wantCtx := mustJSON(t, got.Context), mustJSON(t, want.Context)
	if len(got.Context) == 0 && len(want.Context) == 0 {
		gotCtx, wantCtx = nil, nil
	}
	if !jsonEqual(gotCtx, wantCtx) {
		t.Errorf("%s: Context = %s, want %s", what, gotCtx, wantCtx)
	}
}

// checkReply compares a decoded reply with the expected one.
func checkReply(t *testing.T, what string, got *wire.ReplyMessage, want *driver.Reply, ending bool) {
	t.Helper()
	if got.Ending != ending || got.MsgID != testMsgID || got.UniqueID != testUniqueID {
		t.Errorf("%s: Ending=%v MsgID=%q UniqueID=%q, want %v %q %q", what, got.Ending, got.MsgID, got.UniqueID,
			ending, testMsgID, testUniqueID)
	}
	if want == nil {
		if !got.IsHeartbeat() {
			t.Errorf("%s: not a heartbeat: %+v", what, got)
		}
		return
	}
	if got.IsHeartbeat() {
		t.Errorf("%s: decoded as a heartbeat", what)
	}
	if want.Failure != nil {
		if got.Failure == nil {
			t.Fatalf("%s: no failure decoded", what)
		}
		checkFailure(t, what, got.Failure, want.Failure)
		if got.Result != nil {
			t.Errorf("%s: Result = %s with a failure", what, got.Result)
		}
		return
	}
	if got.Failure != nil {
		t.Errorf("%s: unexpected failure %+v", what, got.Failure)
	}
	if want.Result == nil {
		if got.Result != nil {
			t.Errorf("%s: Result = %s, want nil", what, got.Result)
		}
		return
	}
	if !jsonEqual(got.Result, want.Result) {
		t.Errorf("%s: Result = %s, want %s", what, got.Result, want.Result)
	}
}

// checkFailure compares a decoded failure with the expected one.
func checkFailure(t *testing.T, what string, got, want *driver.Failure) {
	t.Helper()
	if got.Class != want.Class || got.Module != want.Module || got.Message != want.Message ||
		!slices.Equal(got.Traceback, want.Traceback) {
		t.Errorf("%s: failure %q %q %q %q, want %q %q %q %q", what, got.Class, got.Module, got.Message, got.Traceback,
			want.Class, want.Module, want.Message, want.Traceback)
	}
	wantArgs, wantKwargs := want.Args, want.Kwargs
	if wantArgs == nil {
		wantArgs = json.RawMessage(`[]`)
	}
	if !jsonEqual(got.Args, wantArgs) || !jsonEqual(got.Kwargs, wantKwargs) {
		t.Errorf("%s: failure args %s kwargs %s, want %s %s", what, got.Args, got.Kwargs, wantArgs, wantKwargs)
	}
}
