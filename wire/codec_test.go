package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/go-oslo/messaging/driver"
)

// The codec is checked against the reference implementation in
// reference_test.go, which is built on encoding/json: for any input the
// decoders must give the same values and fail on the same inputs with the
// same sentinel, and the encoders must give the same bytes, or the same
// error text.

// codecSeeds returns the golden bodies and JSON texts with the edge cases
// of the scanner: escapes, surrogates, invalid UTF-8, numbers, nesting.
func codecSeeds(t testing.TB) [][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, s := range []string{
		``, ` `, `{}`, `{ }`, `[]`, `null`, `nul`, `true`, `0`, `-0.5e+3`, `"x"`, `{} {}`, `{}x`, `{"a":1,}`, `{,}`,
		`{"a" 1}`, `{"a":}`, `{"a":1 "b":2}`, `[1,]`, `[1 2]`, `{"a":[1,{"b":null}],"c":"d"}`,
		`{"method": "m", "args": {"a": [1, 2.5, -3e10, "s\u00e9\ud83d\ude00"]}, "_context_x": {"k": [true, null]}}`,
		`{"_context_\u0061": 1, "_cont\u0065xt_b": "\ud800", "_context_c": "\udc00\ud800x", "_context_\u00e9": "\u00e9"}`,
		"{\"_context_k\xff\": \"v\xff\xfe\", \"method\": \"\xe2\x82\"}",
		`{"method": "a", "method": "b", "_context_x": 1, "_context_x": [2]}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"m\"}", "oslo.version": "2.1"}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"m\"}"} `,
		`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"m\"}", "x": 1}`,
		`{"oslo.message": "{}", "oslo.version": "2.0"}`,
		`{"oslo.version": null, "oslo.message": "{}"}`,
		`{"oslo.version": "2.0", "oslo.message": null}`,
		`{"oslo\u002eversion": "2.0", "oslo.message": "{\"_timeout\": 1e-400}"}`,
		`{"oslo.version": "\u0032.0", "oslo.message": "{\"_timeout\": 1.5}"}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"_timeout\": 1e400}"}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"x\": \"\\u00"}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"x\": 1}\u0000"}`,
		"{\"oslo.version\": \"2.0\", \"oslo.message\": \"{\\\"x\\\": \\\"\xff\\\"}\"}",
		`{"result": 1, "failure": "{\"class\": \"E\", \"tb\": [\"a\", null], \"args\": [1], \"kwargs\": {\"k\": 1}}", "ending": 1}`,
		`{"failure": {"class": "E", "tb": "one", "args": null}, "ending": [0]}`,
		`{"failure": "{\"tb\": [1]}"}`, `{"failure": "{\"tb\": {}}"}`, `{"failure": " {} "}`, `{"failure": "[]"}`,
		`{"failure": "{\"class\": \"\\u00e9\", \"tb\": []}"}`,
		`{"class": "E", "module": "m", "message": "x", "tb": ["l1\n", "l2"], "args": ["a"], "kwargs": {}}`,
		`{"payload": {"deep": [[[[]]]]}, "priority": "INFO", "_context_n": 12345678901234567890}`,
		`{"a": "\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u0080\u2028\uffff"}`,
		`{"a": "\ud83d\ude00\ud83d\u0041\ude00\ud83d"}`,
		`{"a": "\uD83D\uDE00\uDBFF\uDFFF"}`,
		`{"a": "bad \x escape"}`, `{"a": "\u12"}`, `{"a": "\u12G4"}`, "{\"a\": \"ctl \x01\"}", `{"a": "unterminated`,
		`[-]`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[1e+]`, `[-0.0e-0]`, `[1E5]`, `[tru]`, `[nulL]`, `{"a":falsey}`,
		`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"m\", \"args\": [1]}"}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	seeds = append(seeds, []byte(strings.Repeat("[", maxDepth)+strings.Repeat("]", maxDepth)))
	seeds = append(seeds, []byte(strings.Repeat("[", maxDepth+1)+strings.Repeat("]", maxDepth+1)))
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	seeds = append(seeds, []byte(`{"_context_d": `+deep(maxDepth-1)+`}`))
	seeds = append(seeds, []byte(`{"_context_d": `+deep(maxDepth)+`}`))
	for _, n := range []int{MaxDecodeDepth - 1, MaxDecodeDepth, MaxDecodeDepth + 1} {
		seeds = append(seeds, []byte(`{"_context_d": `+deep(n)+`}`))
		seeds = append(seeds, Envelope([]byte(`{"method": "m", "args": {"a": `+deep(n)+`}}`)))
	}
	return seeds
}

// sameError reports whether err and want are both nil, or both wrap the
// same sentinel of the package.
func sameSentinel(err, want error) bool {
	if (err == nil) != (want == nil) {
		return false
	}
	for _, s := range []error{ErrInvalidMessage, ErrUnsupportedEnvelope} {
		if errors.Is(err, s) != errors.Is(want, s) {
			return false
		}
	}
	return true
}

// checkDecoders decodes body with every decoder and its reference.
func checkDecoders(t *testing.T, body []byte) {
	t.Helper()
	orig := bytes.Clone(body)
	check := func(what string, got, want any, err, wantErr error) {
		t.Helper()
		if !sameSentinel(err, wantErr) {
			t.Fatalf("%s(%q): error %v, reference %v", what, body, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s(%q) =\n %#v\nreference\n %#v", what, body, got, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidMessage) && !errors.Is(err, ErrUnsupportedEnvelope) {
			t.Fatalf("%s(%q): error %v wraps no sentinel", what, body, err)
		}
	}
	r, err := DecodeRequest(body)
	wr, werr := refDecodeRequest(body)
	check("DecodeRequest", r, wr, err, werr)
	m, err := DecodeReply(body)
	wm, werr := refDecodeReply(body)
	check("DecodeReply", m, wm, err, werr)
	n, err := DecodeNotification(body)
	wn, werr := refDecodeNotification(body)
	check("DecodeNotification", n, wn, err, werr)
	f, err := DecodeFailure(body)
	wf, werr := refDecodeFailure(body)
	check("DecodeFailure", f, wf, err, werr)
	u, err := Unwrap(body)
	wu, werr := refUnwrap(body)
	check("Unwrap", u, wu, err, werr)
	if !bytes.Equal(body, orig) {
		t.Fatalf("a decoder changed its input %q to %q", orig, body)
	}
}

// sameEncoding fails t unless the two encodings are the same bytes, or
// both failed with the same error text.
func sameEncoding(t *testing.T, what string, got []byte, err error, want []byte, wantErr error) {
	t.Helper()
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("%s: error %v, reference %v (got %q, reference %q)", what, err, wantErr, got, want)
	case err != nil && err.Error() != wantErr.Error():
		t.Fatalf("%s: error %q, reference %q", what, err, wantErr)
	case err == nil && !bytes.Equal(got, want):
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// checkEncoders encodes messages built from data, and the messages that
// the reference decoders make of data, with every encoder and its
// reference.
func checkEncoders(t *testing.T, data []byte) {
	t.Helper()
	s := string(data)
	reqs := []*driver.Request{
		{Method: s, Args: data, Namespace: s, Version: s, UniqueID: s,
			Context: map[string]any{s: s, "raw": json.RawMessage(data), "num": json.Number(s)}},
		{Method: "m", Args: data, MsgID: s, ReplyTo: s, MonitorTimeout: floatPtr(float64(len(data)) / 7),
			Context: map[string]any{"l": []any{s, json.RawMessage(data)}, "m": map[string]any{s: 1.5, "x": []string{s}}}},
	}
	if r, err := refDecodeRequest(data); err == nil {
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		got, err := EncodeRequest(r)
		want, wantErr := refEncodeRequest(r)
		sameEncoding(t, fmt.Sprintf("EncodeRequest(%+v)", r), got, err, want, wantErr)
	}

	failures := []*driver.Failure{{Class: s, Module: s, Message: s, Traceback: []string{s, s}, Args: data, Kwargs: data}}
	if f, err := refDecodeFailure(data); err == nil {
		failures = append(failures, f)
	}
	replies := []*driver.Reply{nil, {Result: data}}
	for _, f := range failures {
		got, err := EncodeFailure(f)
		want, wantErr := refEncodeFailure(f)
		sameEncoding(t, fmt.Sprintf("EncodeFailure(%+v)", f), got, err, want, wantErr)
		replies = append(replies, &driver.Reply{Result: data, Failure: f})
	}
	if m, err := refDecodeReply(data); err == nil {
		replies = append(replies, &driver.Reply{Result: m.Result, Failure: m.Failure})
	}
	for _, r := range replies {
		for _, ending := range []bool{true, false} {
			got, err := EncodeReply(r, s, s, ending)
			want, wantErr := refEncodeReply(r, s, s, ending)
			sameEncoding(t, fmt.Sprintf("EncodeReply(%+v)", r), got, err, want, wantErr)
		}
	}

	notes := []*driver.Notification{{MessageID: s, PublisherID: s, EventType: s, Priority: s, Payload: data,
		Timestamp: s, UniqueID: s, Context: map[string]any{"p": json.RawMessage(data), s: nil}}}
	if n, err := refDecodeNotification(data); err == nil {
		notes = append(notes, n)
	}
	for _, n := range notes {
		for _, env := range []bool{true, false} {
			got, err := EncodeNotification(n, env)
			want, wantErr := refEncodeNotification(n, env)
			sameEncoding(t, fmt.Sprintf("EncodeNotification(%+v, %v)", n, env), got, err, want, wantErr)
		}
	}

	if got, want := Envelope(data), refEnvelope(data); !bytes.Equal(got, want) {
		t.Fatalf("Envelope(%q) = %s, reference %s", data, got, want)
	}
	checkPyJSON(t, data)
}

// checkPyJSON checks that appendPyJSON accepts what json.Valid accepts,
// writes what the reference pythonStyle writes, and writes at the
// escape levels what JSON-quoting that text once or twice gives.
func checkPyJSON(t *testing.T, data []byte) {
	t.Helper()
	got, err := appendPyJSON([]byte("prefix"), data, 0)
	if valid := json.Valid(data); valid != (err == nil) {
		t.Fatalf("appendPyJSON(%q): error %v, json.Valid %v", data, err, valid)
	}
	if err != nil {
		return
	}
	want := refPythonStyle(data)
	if string(got) != "prefix"+string(want) {
		t.Fatalf("appendPyJSON(%q) = %s, reference %s", data, got[len("prefix"):], want)
	}
	quoted := want
	for esc := 1; esc <= 2; esc++ {
		quoted = refPythonStyle(mustMarshal(t, string(quoted)))
		quoted = quoted[1 : len(quoted)-1]
		got, err := appendPyJSON(nil, data, esc)
		if err != nil || !bytes.Equal(got, quoted) {
			t.Fatalf("appendPyJSON(%q) at level %d = %s, %v; want %s", data, esc, got, err, quoted)
		}
	}
}

func floatPtr(f float64) *float64 { return &f }

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := refMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodersMatchReference(t *testing.T) {
	for _, s := range codecSeeds(t) {
		checkDecoders(t, s)
		checkDecoders(t, refEnvelope(s))
	}
}

func TestEncodersMatchReference(t *testing.T) {
	for _, s := range codecSeeds(t) {
		checkEncoders(t, s)
	}
}

// FuzzCodecMatchesReference checks the decoders on data, as a body and
// enveloped, and the encoders on messages built from data, against the
// reference implementation.
func FuzzCodecMatchesReference(f *testing.F) {
	for _, s := range codecSeeds(f) {
		if len(s) < 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoders(t, data)
		checkDecoders(t, refEnvelope(data))
		checkEncoders(t, data)
	})
}

// FuzzUnquote checks appendUnquoteAt against json.Unmarshal into a string.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`""`, `"a"`, `"\u00e9\ud800\udc00\ud800"`, `"\udc00\ud800\u0041"`, "\"\xff\xe2\x82\"", `"\x"`,
		`"\u12"`, "\"\x1f\"", `"a\"b\\c\/d\be\ff\ng\rh\ti"`, `"tail" `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || in[0] != '"' {
			return
		}
		got, end, err := appendUnquoteAt(nil, in, 0)
		ok := err == nil && skipSpace(in, end) == len(in)
		var want string
		wantOK := json.Unmarshal(in, &want) == nil
		if ok != wantOK {
			t.Fatalf("appendUnquoteAt(%q): %v, end %d; json.Unmarshal ok %v", in, err, end, wantOK)
		}
		if ok && string(got) != want {
			t.Fatalf("appendUnquoteAt(%q) = %q, json.Unmarshal %q", in, got, want)
		}
		if ok {
			if _, fl, err := scanString(in, 0); err != nil || string(appendUnquote(nil, in[:end])) != want {
				t.Fatalf("scanString(%q) = %v, %v", in, fl, err)
			}
		}
	})
}

// FuzzValue checks the scanner's validation against json.Valid, and the
// values it decodes against a json.Decoder with UseNumber.
func FuzzValue(f *testing.F) {
	for _, s := range codecSeeds(f) {
		if len(s) < 4096 {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		i := skipSpace(in, 0)
		end, _, err := scanValue(in, i, 0)
		ok := err == nil && skipSpace(in, end) == len(in)
		if valid := json.Valid(in); ok != valid {
			t.Fatalf("scanValue(%q): %v, end %d; json.Valid %v", in, err, end, valid)
		}
		if !ok {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		for _, big := range []bool{false, true} {
			d := doc{b: in, big: big}
			got, j := d.value(i)
			if j != end || !reflect.DeepEqual(got, want) {
				t.Fatalf("value(%q) = %#v, %d; want %#v, %d", in, got, j, want, end)
			}
		}
	})
}

// cyclic returns a map that holds itself.
func cyclic() map[string]any {
	m := map[string]any{"a": 1}
	m["self"] = m
	return m
}

type point struct {
	X, Y int
}

type roles []string

// contextValues are context values of every kind that appendValue writes
// directly or hands over to encoding/json.
func contextValues() []any {
	var nested any = "leaf"
	for range 100 {
		nested = []any{nested}
	}
	var deepMap any = 1
	for range maxDepth + 5 {
		deepMap = map[string]any{"k": deepMap}
	}
	var nilMap map[string]any
	var nilList []any
	var nilStrings []string
	var nilRaw json.RawMessage
	var nilPtr *point
	vals := []any{
		nil, "", "s", "é✓😀 \x00\x7f\u2028 <&> \"q\" \\", "bad \xff\xfe utf-8", true, false,
		0, -1, math.MaxInt64, math.MinInt64, int8(-8), int16(16), int32(-32), int64(64),
		uint(1), uint8(8), uint16(16), uint32(32), uint64(math.MaxUint64), uintptr(7),
		0.0, math.Copysign(0, -1), 1.5, -2.25, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 1e-7, 5e-324, math.NaN(), math.Inf(1), math.Inf(-1),
		float32(1.1), float32(1e-7), float32(1e21), float32(3.4e38), float32(math.NaN()),
		json.Number(""), json.Number("12345678901234567890"), json.Number("-1.5e+300"), json.Number("01"), json.Number("x"),
		json.RawMessage(`{"a" : [1, "\u00e9"]}`), json.RawMessage(` 7 `), json.RawMessage(`{`), json.RawMessage{}, nilRaw,
		json.RawMessage(strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)),
		[]string{"a", "é"}, []string{}, nilStrings, roles{"admin"}, []any{}, nilList, []any{1, "x", nil, []any{true}},
		map[string]any{}, nilMap, map[string]any{"b": 1, "a": []any{map[string]any{"z": nil, "é": 2.5}}, "\xff": 1},
		map[string]string{"k": "v", "a": "\x00"}, map[string]int{"x": 1}, map[int]string{2: "b", 1: "a"},
		point{1, 2}, &point{3, 4}, nilPtr, []byte("bytes"), [2]int{1, 2}, cyclic(), nested, deepMap,
		func() {}, make(chan int), map[string]any{"f": func() {}}, []any{math.NaN()}, complex(1, 2),
		struct {
			A string `json:"a,omitempty"`
			B any
		}{B: json.RawMessage(`[1,2]`)},
	}
	for _, v := range []float64{1, 1e-300, 2.5e-5, 7e15, 7.5e15, 1e16} {
		vals = append(vals, v, -v, float32(v))
	}
	return vals
}

// TestContextValuesMatchReference checks the encoding of every kind of
// context value, and of random floats, against encoding/json's.
func TestContextValuesMatchReference(t *testing.T) {
	vals := contextValues()
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		vals = append(vals, math.Float64frombits(rnd.Uint64()), math.Float32frombits(rnd.Uint32()),
			rnd.NormFloat64()*math.Pow(10, float64(rnd.IntN(60)-30)))
	}
	for i, v := range vals {
		ctx := map[string]any{"v": v, fmt.Sprint("k", i): v}
		r := &driver.Request{Method: "m", Context: ctx}
		got, err := EncodeRequest(r)
		want, wantErr := refEncodeRequest(r)
		sameEncoding(t, fmt.Sprintf("context value %d (%T)", i, v), got, err, want, wantErr)
		n := &driver.Notification{Context: ctx}
		got, err = EncodeNotification(n, false)
		want, wantErr = refEncodeNotification(n, false)
		sameEncoding(t, fmt.Sprintf("notification context value %d (%T)", i, v), got, err, want, wantErr)
	}
	// All of them at once, in a context larger than the sorting buffer.
	ctx := map[string]any{}
	for i, v := range vals[:200] {
		if _, err := refMarshal(v); err == nil {
			ctx[fmt.Sprintf("key%03d", i)] = v
		}
	}
	r := &driver.Request{Method: "m", Context: ctx}
	got, err := EncodeRequest(r)
	want, wantErr := refEncodeRequest(r)
	sameEncoding(t, "large context", got, err, want, wantErr)
}

// TestAppendFunctions checks that the Append functions append what the
// Encode functions return, and leave dst as it was on error.
func TestAppendFunctions(t *testing.T) {
	prefix := []byte("prefix:")
	r := &driver.Request{Method: "m", Args: json.RawMessage(`{"a": 1}`), MsgID: "id", Context: map[string]any{"u": "x"}}
	want, err := EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendRequest(bytes.Clone(prefix), r)
	if err != nil || string(got) != string(prefix)+string(want) {
		t.Errorf("AppendRequest = %s, %v; want %s%s", got, err, prefix, want)
	}
	rep := &driver.Reply{Failure: &driver.Failure{Class: "E", Traceback: []string{"t\n"}}}
	want, err = EncodeReply(rep, "m", "u", true)
	if err != nil {
		t.Fatal(err)
	}
	got, err = AppendReply(bytes.Clone(prefix), rep, "m", "u", true)
	if err != nil || string(got) != string(prefix)+string(want) {
		t.Errorf("AppendReply = %s, %v; want %s%s", got, err, prefix, want)
	}
	n := &driver.Notification{Priority: "INFO", Payload: json.RawMessage(`[1]`), Context: map[string]any{"u": "x"}}
	for _, env := range []bool{true, false} {
		want, err = EncodeNotification(n, env)
		if err != nil {
			t.Fatal(err)
		}
		got, err = AppendNotification(bytes.Clone(prefix), n, env)
		if err != nil || string(got) != string(prefix)+string(want) {
			t.Errorf("AppendNotification(%v) = %s, %v; want %s%s", env, got, err, prefix, want)
		}
	}

	bad := []func([]byte) ([]byte, error){
		func(b []byte) ([]byte, error) { return AppendRequest(b, &driver.Request{Args: json.RawMessage(`[]`)}) },
		func(b []byte) ([]byte, error) {
			return AppendRequest(b, &driver.Request{Context: map[string]any{"f": func() {}}})
		},
		func(b []byte) ([]byte, error) {
			return AppendReply(b, &driver.Reply{Result: json.RawMessage(`{`)}, "m", "u", true)
		},
		func(b []byte) ([]byte, error) {
			return AppendReply(b, &driver.Reply{Failure: &driver.Failure{Kwargs: json.RawMessage(`1`)}}, "m", "u", true)
		},
		func(b []byte) ([]byte, error) { return AppendNotification(b, nil, true) },
		func(b []byte) ([]byte, error) {
			return AppendNotification(b, &driver.Notification{Payload: json.RawMessage(`{`)}, true)
		},
		func(b []byte) ([]byte, error) {
			return AppendNotification(b, &driver.Notification{Context: map[string]any{"n": math.NaN()}}, false)
		},
	}
	for i, fn := range bad {
		got, err := fn(bytes.Clone(prefix))
		if err == nil || string(got) != string(prefix) {
			t.Errorf("bad case %d: got %q, %v; want %q and an error", i, got, err, prefix)
		}
	}
}

// TestDecodedValuesOwnTheirMemory checks that decoded messages share no
// memory with the body, nor with the scratch buffers that later decodes
// reuse.
func TestDecodedValuesOwnTheirMemory(t *testing.T) {
	req := &driver.Request{Method: "m", Args: json.RawMessage(`{"a": "b"}`), UniqueID: "u",
		Context: map[string]any{"user": "me", "roles": []any{"r"}}}
	enveloped, err := EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	legacy := []byte(`{"method": "m", "args": {"a": "b"}, "_unique_id": "u", "_context_user": "me", "_context_roles": ["r"]}`)
	for _, body := range [][]byte{enveloped, legacy} {
		r, err := DecodeRequest(body)
		if err != nil {
			t.Fatal(err)
		}
		for i := range body {
			body[i] = 'x'
		}
		other := &driver.Request{Method: "zzzzzz", Args: json.RawMessage(`{"z": "zzzzzzzzz"}`), UniqueID: "z",
			Context: map[string]any{"user": "zz", "roles": []any{"z"}}}
		for range 10 { // reuse the pooled buffers
			b, err := EncodeRequest(other)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeRequest(b); err != nil {
				t.Fatal(err)
			}
		}
		want := *req
		want.Args = json.RawMessage(`{"a": "b"}`)
		if !reflect.DeepEqual(r, &want) {
			t.Errorf("decoded request changed to %+v, want %+v", r, &want)
		}
	}
	body := []byte(`{"k": [1, "x"]}`)
	m, err := Unwrap(body)
	if err != nil {
		t.Fatal(err)
	}
	body[7] = '9'
	if got := m["k"]; string(got) != `[1, "x"]` || cap(got) != len(got) {
		t.Errorf("Unwrap value %q (cap %d) shares memory with the body or the other values", got, cap(got))
	}
}

// TestCodecConcurrent encodes and decodes from several goroutines at
// once, for the race detector and to check the pooled buffers.
func TestCodecConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := &driver.Request{Method: fmt.Sprint("m", g, "-", i),
					Args:    json.RawMessage(fmt.Sprintf(`{"n": %d, "s": %q}`, i, strings.Repeat("y", i*17))),
					Context: map[string]any{"g": json.Number(fmt.Sprint(g)), "i": json.Number(fmt.Sprint(i))}}
				b, err := EncodeRequest(r)
				if err != nil {
					errs <- err
					return
				}
				got, err := DecodeRequest(b)
				if err != nil {
					errs <- err
					return
				}
				want := *r
				want.Args = json.RawMessage(refPythonStyle(r.Args))
				if !reflect.DeepEqual(got, &want) {
					errs <- fmt.Errorf("round trip of %+v gave %+v", r, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
