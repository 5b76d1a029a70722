package wire_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/wire"
)

// runWire runs testdata/oslo_wire.py, the real oslo.messaging side of
// these tests, with op and cases, and decodes its output into out.
func runWire(t *testing.T, op string, cases, out any) {
	t.Helper()
	pyinterop.Python(t) // skip before reading the script
	script, err := os.ReadFile("testdata/oslo_wire.py")
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{
		"op": op,
		"ids": map[string]string{"msg_id": testMsgID, "unique_id": testUniqueID, "reply_q": testReplyQ,
			"notify_message_id": testNotifyMessageID},
		"fixed_tb": fixedTB,
		"cases":    cases,
	}
	pyinterop.RunJSON(t, string(script), in, out)
}

// orNil returns nil for "", so that Python gets None.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// argsText returns the JSON text of a request's arguments, {} for none.
func argsText(r *driver.Request) string {
	if len(r.Args) == 0 {
		return "{}"
	}
	return string(r.Args)
}

// contextText returns the context as a JSON object with sorted keys,
// the order in which EncodeRequest writes them.
func contextText(t *testing.T, ctx map[string]any) string {
	if ctx == nil {
		return "{}"
	}
	return string(mustJSON(t, ctx))
}

// TestInteropRequestBytes sends every request case with the real RPC
// client and compares the body it publishes with EncodeRequest's, byte
// for byte once ids are fixed. It also decodes oslo's bodies (with and
// without envelope) with DecodeRequest, and EncodeRequest's bodies with
// oslo's deserialize_msg, which must give the dict oslo built.
func TestInteropRequestBytes(t *testing.T) {
	goBodies := map[string][]byte{}
	var in []map[string]any
	for _, c := range requestCases {
		r := c.request()
		body, err := wire.EncodeRequest(r)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		goBodies[c.name] = body
		in = append(in, map[string]any{
			"name": c.name, "method": r.Method, "args": argsText(r),
			"namespace": orNil(r.Namespace), "version": orNil(r.Version),
			"server": orNil(c.server), "fanout": c.fanout, "call": c.call,
			"monitor_timeout": r.MonitorTimeout, "context": contextText(t, r.Context),
			"go_body": string(body),
		})
	}
	var out map[string]struct {
		Body           string `json:"body"`
		Legacy         string `json:"legacy"`
		ContentType    string `json:"content_type"`
		GoDecodedEqual bool   `json:"go_decoded_equal"`
		GoDecoded      any    `json:"go_decoded"`
	}
	runWire(t, "requests", in, &out)

	for _, c := range requestCases {
		t.Run(c.name, func(t *testing.T) {
			py, ok := out[c.name]
			if !ok {
				t.Fatal("no result from python")
			}
			if got := string(goBodies[c.name]); got != py.Body {
				t.Errorf("EncodeRequest differs from oslo\n  go %s\noslo %s", got, py.Body)
			}
			if !py.GoDecodedEqual {
				t.Errorf("oslo's deserialize_msg of EncodeRequest's body gives %v, not the dict oslo built", py.GoDecoded)
			}
			if py.ContentType != "application/json" {
				t.Errorf("oslo published with content type %q", py.ContentType)
			}
			for what, body := range map[string]string{"enveloped": py.Body, "legacy": py.Legacy} {
				r, err := wire.DecodeRequest([]byte(body))
				if err != nil {
					t.Fatalf("DecodeRequest(oslo's %s body): %v", what, err)
				}
				checkRequest(t, "oslo's "+what+" body", r, c.request())
			}
			writeGolden(t, "request_"+c.name, []byte(py.Body))
			writeGolden(t, "legacy_request_"+c.name, []byte(py.Legacy))
		})
	}
}

// pyClientOutcome is what oslo's reply waiter makes of a reply body.
type pyClientOutcome struct {
	Ending        json.RawMessage `json:"ending"`
	EndingIsFalse bool            `json:"ending_is_false"`
	Result        json.RawMessage `json:"result"`
	Exception     *pyExceptionOut `json:"exception"`
}

// pyExceptionOut describes an exception on the Python side.
type pyExceptionOut struct {
	Type        string   `json:"type"`
	MRO         []string `json:"mro"`
	Str         string   `json:"str"`
	Args        []any    `json:"args"`
	RemoteError *struct {
		ExcType   string   `json:"exc_type"`
		Value     string   `json:"value"`
		Traceback []string `json:"traceback"`
	} `json:"remote_error"`
}

// remoteErrorType is oslo's RemoteError, which a caller gets for an
// exception whose module is not allowed.
const remoteErrorType = "oslo_messaging.rpc.client.RemoteError"

// TestInteropReplyBytes has a real RPC server answer calls (results of
// every JSON type, exceptions, a call-monitor heartbeat) and compares its
// replies with EncodeReply's, byte for byte once ids and tracebacks are
// fixed. It decodes oslo's replies with DecodeReply, and has oslo's
// reply waiter process EncodeReply's bodies.
func TestInteropReplyBytes(t *testing.T) {
	// What the Python caller (allowed_remote_exmods empty) gets from
	// the Go failures.
	pyGets := map[string]string{
		"failure_value_error":    "builtins.ValueError",
		"failure_key_error":      "builtins.KeyError",
		"failure_with_kwargs":    remoteErrorType,
		"failure_no_such_method": remoteErrorType,
	}
	goBodies := map[string][]byte{}
	var in []map[string]any
	for _, c := range replyCases {
		body, err := wire.EncodeReply(c.reply, testMsgID, testUniqueID, c.ending)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		goBodies[c.name] = body
		pc := map[string]any{"name": c.name, "result": c.result, "go_bodies": []string{string(body)}}
		if c.raise != nil {
			pc["raise"] = c.raise
		}
		if c.method != "" {
			pc["method"] = c.method
		}
		if c.monitor != 0 {
			pc["monitor"], pc["sleep"] = c.monitor, c.sleep
		}
		in = append(in, pc)
	}
	var out map[string]struct {
		Replies []struct {
			Body   string   `json:"body"`
			TB     []string `json:"tb"`
			Legacy string   `json:"legacy"`
		} `json:"replies"`
		Go []pyClientOutcome `json:"go"`
	}
	runWire(t, "replies", in, &out)

	for _, c := range replyCases {
		t.Run(c.name, func(t *testing.T) {
			py, ok := out[c.name]
			if !ok || len(py.Replies) == 0 {
				t.Fatalf("no reply from the python server: %+v", py)
			}
			// A heartbeat comes before the final reply.
			wantReplies := 1
			if c.reply == nil {
				wantReplies = 2
			}
			if len(py.Replies) != wantReplies {
				t.Fatalf("python server sent %d replies, want %d", len(py.Replies), wantReplies)
			}
			reply := py.Replies[0]
			if got := string(goBodies[c.name]); got != reply.Body {
				t.Errorf("EncodeReply differs from oslo\n  go %s\noslo %s", got, reply.Body)
			}
			if c.reply != nil && c.reply.Failure != nil {
				checkTraceback(t, reply.TB)
			}
			for what, body := range map[string]string{"enveloped": reply.Body, "legacy": reply.Legacy} {
				m, err := wire.DecodeReply([]byte(body))
				if err != nil {
					t.Fatalf("DecodeReply(oslo's %s reply): %v", what, err)
				}
				checkReply(t, "oslo's "+what+" reply", m, c.reply, c.ending)
			}

			if len(py.Go) != 1 {
				t.Fatalf("python processed %d Go bodies", len(py.Go))
			}
			got := py.Go[0]
			switch {
			case c.reply == nil:
				if !got.EndingIsFalse || !jsonEqual(got.Result, []byte("null")) {
					t.Errorf("oslo's client does not take EncodeReply's heartbeat as one: %+v", got)
				}
			case c.reply.Failure != nil:
				if got.Exception == nil || got.Exception.Type != pyGets[c.name] {
					t.Errorf("oslo's client makes %+v of the failure, want a %s", got.Exception, pyGets[c.name])
				}
			default:
				want := c.reply.Result
				if want == nil {
					want = json.RawMessage("null")
				}
				if got.Exception != nil || !jsonEqual(got.Result, want) || !jsonEqual(got.Ending, []byte("true")) {
					t.Errorf("oslo's client makes %+v of EncodeReply's reply, want result %s, ending true", got, want)
				}
			}
			writeGolden(t, "reply_"+c.name, []byte(reply.Body))
			writeGolden(t, "legacy_reply_"+c.name, []byte(reply.Legacy))
		})
	}
}

// checkTraceback checks the shape of a traceback that Python formatted.
func checkTraceback(t *testing.T, tb []string) {
	t.Helper()
	if len(tb) < 2 || tb[0] != "Traceback (most recent call last):\n" {
		t.Errorf("unexpected traceback %q", tb)
	}
	for _, line := range tb {
		if !strings.HasSuffix(line, "\n") {
			t.Errorf("traceback line %q does not end in a newline", line)
		}
	}
}

// TestInteropFailure compares EncodeFailure with oslo's
// serialize_remote_exception for raised exceptions, byte for byte with
// the real traceback; decodes oslo's failures with DecodeFailure; and
// has oslo's deserialize_remote_exception rebuild EncodeFailure's
// failures into Python exceptions.
func TestInteropFailure(t *testing.T) {
	pyinterop.Python(t) // skip the whole test, not only its subtests
	t.Run("serialize", func(t *testing.T) {
		var in []map[string]any
		for _, c := range failureCases {
			in = append(in, map[string]any{"name": c.name, "raise": c.raise})
		}
		var out map[string]struct {
			Failure    string   `json:"failure"`
			Normalized string   `json:"normalized"`
			TB         []string `json:"tb"`
		}
		runWire(t, "failures", in, &out)
		for _, c := range failureCases {
			t.Run(c.name, func(t *testing.T) {
				py := out[c.name]
				checkTraceback(t, py.TB)
				real := *c.failure
				real.Traceback = py.TB
				got, err := wire.EncodeFailure(&real)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != py.Failure {
					t.Errorf("EncodeFailure differs from oslo\n  go %s\noslo %s", got, py.Failure)
				}
				got, err = wire.EncodeFailure(c.failure)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != py.Normalized {
					t.Errorf("EncodeFailure differs from oslo (fixed traceback)\n  go %s\noslo %s", got, py.Normalized)
				}
				f, err := wire.DecodeFailure([]byte(py.Failure))
				if err != nil {
					t.Fatal(err)
				}
				checkFailure(t, "oslo's failure", f, &real)
				writeGolden(t, "failure_"+c.name, []byte(py.Normalized))
			})
		}
	})

	t.Run("deserialize", func(t *testing.T) {
		goTB := []string{"Traceback (most recent call last):\n", "  File \"server.go\", line 42, in handler\n",
			"ValueError: from Go\n"}
		const dispatcher = "oslo_messaging.rpc.dispatcher"
		cases := []struct {
			name    string
			failure driver.Failure
			allowed []string
			check   func(t *testing.T, e *pyExceptionOut)
		}{
			{"builtin", driver.Failure{Class: "ValueError", Module: "builtins", Message: "bad value",
				Traceback: goTB, Args: json.RawMessage(`["bad value"]`)}, nil,
				wantType("builtins.ValueError", "bad value")},
			{"python2 module name", driver.Failure{Class: "KeyError", Module: "exceptions", Message: "'k'",
				Args: json.RawMessage(`["k"]`)}, nil,
				wantType("builtins.KeyError", "")},
			{"unicode message", driver.Failure{Class: "ValueError", Module: "builtins", Message: "é✓😀\n\"q\" <&>",
				Traceback: goTB, Args: json.RawMessage(`["é✓😀\n\"q\" <&>"]`)}, nil,
				wantType("builtins.ValueError", "é✓😀\n\"q\" <&>")},
			{"no args or traceback", driver.Failure{Class: "RuntimeError", Module: "builtins", Message: "plain"}, nil,
				wantType("builtins.RuntimeError", "plain")},
			{"module not allowed", driver.Failure{Class: "InstanceNotFound", Module: "nova.exception",
				Message: "Instance x could not be found.", Traceback: goTB,
				Args: json.RawMessage(`["Instance x could not be found."]`), Kwargs: json.RawMessage(`{"instance_id":"x"}`)}, nil,
				wantRemoteError("InstanceNotFound", "Instance x could not be found.", goTB)},
			{"NoSuchMethod allowed", driver.Failure{Class: "NoSuchMethod", Module: dispatcher,
				Message: "Endpoint does not support RPC method nosuch", Traceback: goTB,
				Args: json.RawMessage(`["nosuch"]`)}, []string{dispatcher},
				wantSubclass(dispatcher+".NoSuchMethod", "Endpoint does not support RPC method nosuch")},
			{"NoSuchMethod not allowed", driver.Failure{Class: "NoSuchMethod", Module: dispatcher,
				Message: "Endpoint does not support RPC method nosuch", Traceback: goTB,
				Args: json.RawMessage(`["nosuch"]`)}, nil,
				wantRemoteError("NoSuchMethod", "Endpoint does not support RPC method nosuch", goTB)},
			{"UnsupportedVersion allowed", driver.Failure{Class: "UnsupportedVersion", Module: dispatcher,
				Message: "Endpoint does not support RPC version 2.0. Attempted method: echo", Traceback: goTB,
				Args: json.RawMessage(`["2.0"]`), Kwargs: json.RawMessage(`{"method":"echo"}`)}, []string{dispatcher},
				wantSubclass(dispatcher+".UnsupportedVersion", "Endpoint does not support RPC version 2.0. Attempted method: echo")},
			{"unknown class in allowed module", driver.Failure{Class: "Nope", Module: dispatcher, Message: "m",
				Traceback: goTB}, []string{dispatcher},
				wantRemoteError("Nope", "m", goTB)},
			{"kwargs the class does not take", driver.Failure{Class: "ValueError", Module: "builtins", Message: "m",
				Traceback: goTB, Args: json.RawMessage(`["m"]`), Kwargs: json.RawMessage(`{"bogus":1}`)}, nil,
				wantRemoteError("ValueError", "m", goTB)},
		}
		var in []map[string]any
		for _, c := range cases {
			b, err := wire.EncodeFailure(&c.failure)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			in = append(in, map[string]any{"name": c.name, "go_failure": string(b), "allowed": c.allowed})
		}
		var out map[string]*pyExceptionOut
		runWire(t, "deserialize_failures", in, &out)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := out[c.name]
				if e == nil {
					t.Fatal("no result from python")
				}
				c.check(t, e)
			})
		}
	})
}

// wantType checks that Python rebuilt an exception of type typ whose
// str() starts with message.
func wantType(typ, message string) func(*testing.T, *pyExceptionOut) {
	return func(t *testing.T, e *pyExceptionOut) {
		t.Helper()
		if e.Type != typ || !strings.HasPrefix(e.Str, message) {
			t.Errorf("python got %s %q, want a %s starting with %q", e.Type, e.Str, typ, message)
		}
	}
}

// wantSubclass checks that Python rebuilt an exception that is an
// instance of class (oslo makes a "<Class>_Remote" subclass) and whose
// str() starts with message.
func wantSubclass(class, message string) func(*testing.T, *pyExceptionOut) {
	return func(t *testing.T, e *pyExceptionOut) {
		t.Helper()
		if !slices.Contains(e.MRO, class) || !strings.HasPrefix(e.Str, message) {
			t.Errorf("python got %s (mro %v) %q, want an instance of %s starting with %q", e.Type, e.MRO, e.Str, class, message)
		}
	}
}

// wantRemoteError checks that Python made an oslo RemoteError carrying
// the class, message and traceback.
func wantRemoteError(class, message string, tb []string) func(*testing.T, *pyExceptionOut) {
	return func(t *testing.T, e *pyExceptionOut) {
		t.Helper()
		if e.Type != remoteErrorType || e.RemoteError == nil {
			t.Fatalf("python got %s %q, want a RemoteError", e.Type, e.Str)
		}
		re := e.RemoteError
		if re.ExcType != class || re.Value != message || !slices.Equal(re.Traceback, tb) {
			t.Errorf("RemoteError(%q, %q, %q), want (%q, %q, %q)", re.ExcType, re.Value, re.Traceback, class, message, tb)
		}
	}
}

// TestInteropServerReceivesGoRequests publishes EncodeRequest's bodies,
// as they are, to a real Python RPC server, and checks what its endpoint
// receives and the reply it sends, decoded with DecodeReply.
func TestInteropServerReceivesGoRequests(t *testing.T) {
	names := []string{"cast", "call_timeout_null", "call_timeout_fraction", "unicode", "nested",
		"context_types", "control_characters", "numbers", "non_canonical_escapes"}
	type serverCase struct {
		name string
		req  *driver.Request
		call bool
	}
	var cases []serverCase
	var in []map[string]any
	for _, c := range requestCases {
		if !slices.Contains(names, c.name) {
			continue
		}
		r := c.request()
		r.UniqueID = wire.NewID() // the server drops repeated unique ids
		body, err := wire.EncodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, serverCase{c.name, r, c.call})
		in = append(in, map[string]any{"name": c.name, "go_body": string(body), "call": c.call})
	}
	if len(cases) != len(names) {
		t.Fatalf("found %d of the %d request cases", len(cases), len(names))
	}
	var out map[string]struct {
		Calls []struct {
			Method string          `json:"method"`
			Ctxt   json.RawMessage `json:"ctxt"`
			Kwargs json.RawMessage `json:"kwargs"`
		} `json:"calls"`
		Replies []string `json:"replies"`
	}
	runWire(t, "server", in, &out)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			py := out[c.name]
			if len(py.Calls) != 1 {
				t.Fatalf("the python endpoint was called %d times", len(py.Calls))
			}
			call := py.Calls[0]
			if call.Method != c.req.Method {
				t.Errorf("python endpoint method %q, want %q", call.Method, c.req.Method)
			}
			if !jsonEqual(call.Kwargs, c.req.Args) {
				t.Errorf("python endpoint kwargs %s, want %s", call.Kwargs, c.req.Args)
			}
			// oslo adds the call-monitor timeout to the context.
			wantCtx := map[string]any{"client_timeout": c.req.MonitorTimeout}
			for k, v := range c.req.Context {
				wantCtx[k] = v
			}
			if !jsonEqual(call.Ctxt, mustJSON(t, wantCtx)) {
				t.Errorf("python endpoint context %s, want %s", call.Ctxt, mustJSON(t, wantCtx))
			}
			if !c.call {
				if len(py.Replies) != 0 {
					t.Errorf("python server replied to a cast: %q", py.Replies)
				}
				return
			}
			if len(py.Replies) != 1 {
				t.Fatalf("python server sent %d replies", len(py.Replies))
			}
			m, err := wire.DecodeReply([]byte(py.Replies[0]))
			if err != nil {
				t.Fatal(err)
			}
			checkReply(t, "python server's reply", m, &driver.Reply{Result: c.req.Args}, true)
		})
	}
}

// TestInteropEnvelopes has oslo's deserialize_msg read the bodies of
// envelopeCases and goStricterEnvelopes, and compares its verdict and
// message with Unwrap's.
func TestInteropEnvelopes(t *testing.T) {
	var in []map[string]any
	for _, c := range envelopeCases {
		if c.body == "" {
			continue // kombu does not decode an empty body
		}
		in = append(in, map[string]any{"name": c.name, "body": c.body})
	}
	for _, c := range goStricterEnvelopes {
		in = append(in, map[string]any{"name": c.name, "body": c.body})
	}
	var out map[string]struct {
		Message string `json:"message"` // JSON text, which may hold NaN
		Error   string `json:"error"`
	}
	runWire(t, "envelopes", in, &out)
	for _, c := range envelopeCases {
		py, ok := out[c.name]
		if !ok {
			continue
		}
		m, err := wire.Unwrap([]byte(c.body))
		switch {
		case py.Error != "" && err == nil:
			t.Errorf("%s: oslo rejects %s (%s), Unwrap accepts it", c.name, c.body, py.Error)
		case py.Error == "" && err != nil:
			t.Errorf("%s: oslo accepts %s, Unwrap fails: %v", c.name, c.body, err)
		case err == nil && !jsonEqual(mustJSON(t, m), []byte(py.Message)):
			t.Errorf("%s: Unwrap(%s) = %s, oslo reads %s", c.name, c.body, mustJSON(t, m), py.Message)
		}
	}
	for _, c := range goStricterEnvelopes {
		if py := out[c.name]; py.Error != "" {
			t.Errorf("%s: oslo rejects %s (%s); the documented difference is gone", c.name, c.body, py.Error)
		}
	}
}

// TestInteropReplyEdgeCases has oslo's reply waiter read replies with odd
// "ending" and "failure" values, and compares with DecodeReply.
func TestInteropReplyEdgeCases(t *testing.T) {
	var in []map[string]any
	for _, c := range replyEdgeCases {
		in = append(in, map[string]any{"name": c.name, "body": envelope("2.0", c.body)})
	}
	var out map[string]struct {
		pyClientOutcome
		EndingTruthy bool   `json:"ending_truthy"`
		Error        string `json:"error"`
	}
	runWire(t, "process_replies", in, &out)
	for _, c := range replyEdgeCases {
		py := out[c.name]
		if py.Error != "" {
			t.Errorf("%s: oslo fails on %s: %s", c.name, c.body, py.Error)
			continue
		}
		m, err := wire.DecodeReply([]byte(envelope("2.0", c.body)))
		if err != nil {
			t.Errorf("%s: DecodeReply: %v", c.name, err)
			continue
		}
		if m.Ending != py.EndingTruthy {
			t.Errorf("%s: Ending = %v, oslo's client reads %v", c.name, m.Ending, py.EndingTruthy)
		}
		if (m.Failure != nil) != (py.Exception != nil) {
			t.Errorf("%s: failure decoded = %v, oslo's client raises = %v", c.name, m.Failure != nil, py.Exception != nil)
		}
		// oslo restarts its call monitor for a reply without result or
		// failure whose "ending" is false or absent; IsHeartbeat also
		// counts the other falsy values (documented on IsHeartbeat).
		pyHeartbeat := py.Exception == nil && jsonEqual(py.Result, []byte("null")) && py.EndingIsFalse
		if pyHeartbeat != (m.IsHeartbeat() && !c.pyNotFalse) {
			t.Errorf("%s: IsHeartbeat = %v, oslo's client sees a heartbeat: %v", c.name, m.IsHeartbeat(), pyHeartbeat)
		}
	}
}
