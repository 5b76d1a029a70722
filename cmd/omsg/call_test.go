package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestCall drives omsg call against omsg serve over memory://.
func TestCall(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	s := startServe(t, "--url", url, "--topic", "diag", "--server", "s1", "--namespace", "omsg", "--version", "1.3")
	base := []string{"call", "--url", url, "--topic", "diag", "--namespace", "omsg", "--version", "1.1"}
	tests := []struct {
		name   string
		args   []string // after base
		code   int
		stdout string
		stderr string // exact
	}{
		{"ping", []string{"ping"}, exitOK, `"pong"` + "\n", ""},
		{"ping to the server", []string{"--server", "s1", "ping"}, exitOK, `"pong"` + "\n", ""},
		{"oslo ping in the default namespace", []string{"--namespace", "", "--version", "", "oslo_rpc_server_ping"}, exitOK, `"pong"` + "\n", ""},
		{"echo with typed values",
			[]string{"echo", "n=5", "s=hello", "l=[1,2]", "b=true", `q="5"`, "f=-2.5e3", `o={"k": null}`, "e=", "z=null", "sp=two words", "eq=a=b"},
			exitOK, `{"b":true,"e":"","eq":"a=b","f":-2.5e3,"l":[1,2],"n":5,"o":{"k":null},"q":"5","s":"hello","sp":"two words","z":null}` + "\n", ""},
		{"echo without arguments", []string{"echo"}, exitOK, "{}\n", ""},
		{"echo non-ASCII", []string{"echo", "u=é✓"}, exitOK, `{"u":"é✓"}` + "\n", ""},
		{"sleep", []string{"sleep", "seconds=0.05"}, exitOK, "0.05\n", ""},
		{"sleep an integer", []string{"sleep", "seconds=0"}, exitOK, "0\n", ""},
		{"sleep without seconds", []string{"sleep"}, exitFailure, "",
			"remote error: builtins.TypeError: sleep() missing 1 required positional argument: 'seconds'\n"},
		{"sleep a negative time", []string{"sleep", "seconds=-1"}, exitFailure, "", "remote error: builtins.ValueError: sleep length must be non-negative\n"},
		{"fail", []string{"fail", "message=bad value"}, exitFailure, "", "remote error: builtins.ValueError: bad value\n"},
		{"fail with a number", []string{"fail", "message=42"}, exitFailure, "", "remote error: builtins.ValueError: 42\n"},
		{"fail without message", []string{"fail"}, exitFailure, "", "remote error: builtins.ValueError: failure requested\n"},
		{"unknown method", []string{"nosuch"}, exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method nosuch\n"},
		{"wrong major version", []string{"--version", "2.0", "ping"}, exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 2.0. Attempted method: ping\n"},
		{"newer minor version", []string{"--version", "1.4", "ping"}, exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 1.4. Attempted method: ping\n"},
		{"wrong namespace", []string{"--namespace", "other", "ping"}, exitFailure, "",
			"remote error: oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 1.1. Attempted method: ping\n"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, append(append([]string(nil), base...), tc.args...)...)
		if code != tc.code || out != tc.stdout || errOut != tc.stderr {
			t.Errorf("%s: omsg call %q = exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q",
				tc.name, tc.args, code, out, errOut, tc.code, tc.stdout, tc.stderr)
		}
	}
	if code, _, errOut := runCmd(t, append(base, "sleep", "seconds=soon")...); code != exitFailure ||
		!strings.HasPrefix(errOut, "remote error: builtins.TypeError: sleep() arguments: ") {
		t.Errorf("sleep seconds=soon = exit %d, stderr %q; want 1 and a TypeError", code, errOut)
	}

	// The request lines: one per request, those that no method serves
	// included.
	for _, r := range s.requests(t) {
		if r.Kind != "call" {
			t.Errorf("unexpected request line %s", r.raw)
		}
	}
	s.waitRequest(t, "the unknown method", func(r reqLine) bool { return r.Method == "nosuch" })
	r := s.waitRequest(t, "typed echo", func(r reqLine) bool { return r.Method == "echo" && len(r.Args) > 3 })
	want := map[string]any{"n": json.Number("5"), "s": "hello", "l": []any{json.Number("1"), json.Number("2")}, "b": true, "q": "5",
		"f": json.Number("-2.5e3"), "o": map[string]any{"k": nil}, "e": "", "z": nil, "sp": "two words", "eq": "a=b"}
	if !reflect.DeepEqual(r.Args, want) {
		t.Errorf("echo args = %#v\nwant %#v", r.Args, want)
	}
}

// TestCallVerboseTraceback checks that --verbose adds the remote
// traceback.
func TestCallVerboseTraceback(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	startServe(t, "--url", url, "--topic", "tb", "--server", "s1")
	code, _, errOut := runCmd(t, "call", "--url", url, "--topic", "tb", "--verbose", "fail", "message=boom")
	if code != exitFailure || !strings.HasPrefix(errOut, "remote error: builtins.ValueError: boom\nremote traceback:\nValueError: boom\n") {
		t.Errorf("verbose fail = exit %d, stderr %q", code, errOut)
	}
}

// TestCallTimeout calls a topic that no server consumes.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	code, out, errOut := runCmd(t, "call", "--url", url, "--topic", "nobody", "--timeout", "200ms", "ping")
	want := "omsg call: timed out after 200ms (--timeout) waiting for a reply to ping from <Target topic=nobody>\n"
	if code != exitUnavailable || out != "" || errOut != want {
		t.Errorf("call to a topic without servers = exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, out, errOut, want)
	}
}

// TestCast casts to one named server, then to every server.
func TestCast(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	s1 := startServe(t, "--url", url, "--topic", "casts", "--server", "s1")
	s2 := startServe(t, "--url", url, "--topic", "casts", "--server", "s2")

	code, out, errOut := runCmd(t, "cast", "--url", url, "--topic", "casts", "--server", "s2", "--context", `{"request_id": "req-7"}`, "echo", "x=1")
	if code != exitOK || out != "" || errOut != "omsg cast: sent echo to <Target topic=casts, server=s2>\n" {
		t.Fatalf("cast = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	r := s2.waitRequest(t, "cast to s2", func(r reqLine) bool { return r.Kind == "cast" })
	if r.Method != "echo" || r.Args["x"] != json.Number("1") || r.Context["request_id"] != "req-7" {
		t.Errorf("s2 got %s, want the cast echo x=1 with request_id req-7", r.raw)
	}

	code, out, errOut = runCmd(t, "cast", "--url", url, "--topic", "casts", "--fanout", "echo", "x=2")
	if code != exitOK || out != "" || errOut != "omsg cast: sent echo to <Target topic=casts, fanout=True>\n" {
		t.Fatalf("fanout cast = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, s := range []*serveCmd{s1, s2} {
		r := s.waitRequest(t, "fanout cast", func(r reqLine) bool { return r.Kind == "cast" && r.Args["x"] == json.Number("2") })
		if r.Method != "echo" {
			t.Errorf("fanout line = %s", r.raw)
		}
	}
	if lines := s1.requests(t); len(lines) != 1 {
		t.Errorf("s1 got %d requests, want only the fanout: %v", len(lines), lines)
	}
}

// TestCommandUsage checks help, usage errors and their exit codes.
func TestCommandUsage(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	tests := []struct {
		args []string
		code int
		in   string // substring of stdout+stderr
	}{
		{[]string{"help"}, exitOK, "\n  serve       Run a diagnostic RPC server"},
		{[]string{"call", "--help"}, exitOK, "Examples:\n  omsg call "},
		{[]string{"cast", "--help"}, exitOK, "Examples:\n  omsg cast "},
		{[]string{"serve", "--help"}, exitOK, "Examples:\n  omsg serve "},
		{[]string{"call", "-h"}, exitOK, "Usage:\n  omsg call --topic T"},
		{[]string{"call"}, exitUsage, "missing METHOD"},
		{[]string{"call", "--topic", "t"}, exitUsage, "missing METHOD"},
		{[]string{"call", "ping"}, exitUsage, "--topic is required"},
		{[]string{"call", "--bogus", "--topic", "t", "ping"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"call", "--fanout", "--topic", "t", "ping"}, exitUsage, "unknown flag: --fanout"},
		{[]string{"call", "--topic", "t", "ping", "novalue"}, exitUsage, `argument "novalue" is not key=value`},
		{[]string{"call", "--topic", "t", "ping", "=5"}, exitUsage, "empty key"},
		{[]string{"call", "--topic", "t", "ping", "a=1", "a=2"}, exitUsage, `argument "a" given twice`},
		{[]string{"call", "--topic", "t", "ping", "--timeout", "1s"}, exitUsage, "flags go before METHOD"},
		{[]string{"call", "--topic", "t", "--", "-x"}, exitUsage, `"-x" is not a method name`},
		{[]string{"call", "--topic", "t", "--context", "{", "ping"}, exitUsage, "--context: invalid JSON"},
		{[]string{"call", "--topic", "t", "--context", "[1]", "ping"}, exitUsage, "--context: want a JSON object, not an array"},
		{[]string{"call", "--topic", "t", "--context", "null", "ping"}, exitUsage, "--context: want a JSON object, not null"},
		{[]string{"call", "--topic", "t", "--context", "{} {}", "ping"}, exitUsage, "--context: invalid JSON: data after the object"},
		{[]string{"call", "--topic", "t", "--timeout", "0s", "ping"}, exitUsage, "--timeout must be positive"},
		{[]string{"call", "--topic", "t", "--timeout", "soon", "ping"}, exitUsage, `invalid argument "soon" for "--timeout" flag`},
		{[]string{"call", "--url", url, "--topic", "t", "--version", "1", "ping"}, exitUsage, "version must contain a major and minor integer"},
		{[]string{"call", "--url", "nosuch://h/", "--topic", "t", "ping"}, exitUsage, "unknown driver"},
		{[]string{"call", "--url", "rabbit://u:SECRETPW@h:bad/", "--topic", "t", "ping"}, exitUsage, "port"},
		{[]string{"cast", "ping"}, exitUsage, "--topic is required"},
		{[]string{"cast", "--topic", "t", "--context", "1", "ping"}, exitUsage, "--context: want a JSON object, not a number"},
		{[]string{"cast", "--url", url, "--topic", "t", "--version", "x.y", "ping"}, exitUsage, "version must contain"},
		{[]string{"serve", "--topic", "t"}, exitUsage, "--server is required"},
		{[]string{"serve", "--server", "s"}, exitUsage, "--topic is required"},
		{[]string{"serve", "--topic", "t", "--server", "s", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{[]string{"serve", "--topic", "t", "--server", "s", "--version", "1.x"}, exitUsage, "--version: version must contain"},
		{[]string{"serve", "--url", "nosuch://h/", "--topic", "t", "--server", "s"}, exitUsage, "unknown driver"},
		{[]string{"serve", "--url", "rabbit://u:SECRETPW@h:bad/", "--topic", "t", "--server", "s"}, exitUsage, "port"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, output %q; want exit %d containing %q", tc.args, code, out+errOut, tc.code, tc.in)
		}
		if code == exitOK && errOut != "" {
			t.Errorf("omsg %q printed %q on stderr", tc.args, errOut)
		}
		if code == exitUsage && out != "" {
			t.Errorf("omsg %q printed %q on stdout", tc.args, out)
		}
		if strings.Contains(out+errOut, "SECRETPW") || strings.Contains(out+errOut, "guest:guest") {
			t.Errorf("omsg %q printed a password: %q", tc.args, out+errOut)
		}
	}
}

// TestDefaultURL checks that call, cast and serve use OMSG_TRANSPORT_URL
// when --url is not given, and oslo's default without it.
func TestDefaultURL(t *testing.T) {
	url := memURL(t)
	t.Setenv(urlEnv, url)
	s := startServe(t, "--topic", "env", "--server", "s1")
	if got := s.stderr.String(); !strings.HasSuffix(got, " via "+url+"\n") {
		t.Errorf("serve readiness line %q does not name %s", got, url)
	}
	if code, out, errOut := runCmd(t, "call", "--topic", "env", "ping"); code != exitOK || out != `"pong"`+"\n" {
		t.Errorf("call with the URL from %s = exit %d, stdout %q, stderr %q", urlEnv, code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "cast", "--topic", "env", "echo", "via=env"); code != exitOK {
		t.Errorf("cast with the URL from %s = exit %d, stderr %q", urlEnv, code, errOut)
	}
	s.waitRequest(t, "cast", func(r reqLine) bool { return r.Kind == "cast" && r.Args["via"] == "env" })
	// --url wins over the environment: another vhost has no server.
	if code, _, _ := runCmd(t, "call", "--url", memURL(t), "--topic", "env", "--timeout", "100ms", "ping"); code != exitUnavailable {
		t.Errorf("call with --url on an empty vhost = exit %d, want 2", code)
	}

	f := targetFlags{url: "memory:///x"}
	if got := f.transportURL(); got != "memory:///x" {
		t.Errorf("transportURL with --url = %q", got)
	}
	t.Setenv(urlEnv, "")
	if got := (&targetFlags{}).transportURL(); got != "rabbit://guest:guest@localhost:5672/" {
		t.Errorf("transportURL without --url or %s = %q, want oslo's default", urlEnv, got)
	}
	if got := redactedDefaultURL(); got != "rabbit://guest:***@localhost:5672/" {
		t.Errorf("redactedDefaultURL() = %q", got)
	}
}

// TestParseKwargs checks how key=value arguments become JSON.
func TestParseKwargs(t *testing.T) {
	t.Parallel()
	got, err := parseKwargs([]string{"n=5", "s=hello", "l=[1,2]", "b=true", `q="5"`, "e=", "x=nul", "k==", "big=123456789012345678901234567890"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n": "5", "s": `"hello"`, "l": "[1,2]", "b": "true", "q": `"5"`, "e": `""`, "x": `"nul"`, "k": `"="`,
		"big": "123456789012345678901234567890"}
	if len(got) != len(want) {
		t.Errorf("parseKwargs = %v, want %v", got, want)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
}

// TestReadableJSON checks which escapes readableJSON replaces.
func TestReadableJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`"\u00e9\u2713"`, `"é✓"`},
		{`{"\u00e9":["\u003c\u0026\u003e",1.5e3]}`, `{"é":["<&>",1.5e3]}`},
		{`"\ud83d\ude00"`, `"😀"`},                                    // a surrogate pair
		{`"\ud83d x"`, `"\ud83d x"`},                                 // a lone high surrogate
		{`"\ude00"`, `"\ude00"`},                                     // a lone low surrogate
		{`"\u0000\u001f\u007f\u200b"`, `"\u0000\u001f\u007f\u200b"`}, // not printable
		{`"\u0022\u005c\u2028"`, `"\u0022\u005c\u2028"`},             // quote, backslash, line separator
		{`"\\u00e9"`, `"\\u00e9"`},                                   // an escaped backslash, then text
		{`"a\"\u00e9"`, `"a\"é"`},
		{`[true,null,"\u00E9"]`, `[true,null,"é"]`},
	}
	for _, tc := range tests {
		if got := string(readableJSON([]byte(tc.in))); got != tc.want {
			t.Errorf("readableJSON(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzReadableJSON checks that readableJSON keeps valid JSON valid and
// its value unchanged.
func FuzzReadableJSON(f *testing.F) {
	for _, s := range []string{`"\u00e9"`, `{"a":"\ud83d\ude00\ud800"}`, `["\\u0041","\u0041\\"]`, `"\u005c\u0075\u0030"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !json.Valid([]byte(in)) {
			return
		}
		out := readableJSON([]byte(in))
		decode := func(b []byte) (any, error) {
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			var v any
			err := dec.Decode(&v)
			return v, err
		}
		a, err := decode([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		b, err := decode(out)
		if err != nil {
			t.Fatalf("readableJSON(%q) = %q, invalid: %v", in, out, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("readableJSON(%q) = %q: value changed from %#v to %#v", in, out, a, b)
		}
	})
}
