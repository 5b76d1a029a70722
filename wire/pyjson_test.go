package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-oslo/messaging/internal/pyinterop"
)

// pythonStyleCases map JSON to what Python's json.dumps(json.loads(x))
// gives for it. TestInteropPythonStyle checks them with Python.
var pythonStyleCases = []struct{ in, want string }{
	{`{"a":1,"b":[1,2,{"c":null}]}`, `{"a": 1, "b": [1, 2, {"c": null}]}`},
	{` { "a" : [ 1 , 2 ] , "b" : { } , "c" : [ ] } `, `{"a": [1, 2], "b": {}, "c": []}`},
	{`"é✓😀"`, `"\u00e9\u2713\ud83d\ude00"`},
	{`"\u00E9\u2713\uD83D\uDE00"`, `"\u00e9\u2713\ud83d\ude00"`},
	{`"\/\u0041\u007e\u0020"`, `"/A~ "`},
	{`"\u0000\u0001\u001f\u007f\u0080\u00a0"`, `"\u0000\u0001\u001f\u007f\u0080\u00a0"`},
	{"\"\x7f\"", `"\u007f"`},
	{`"\b\f\n\r\t\u0008\u000c\u000a\u000d\u0009"`, `"\b\f\n\r\t\b\f\n\r\t"`},
	{`"\"\\\u0022\u005c"`, `"\"\\\"\\"`},
	{`"<>&'\u003c\u003e\u0026"`, `"<>&'<>&"`},
	{"\"\u2028\u2029\"", `"\u2028\u2029"`},
	{`"\ud800"`, `"\ud800"`},
	{`"\udc00\ud800"`, `"\udc00\ud800"`},
	{`"\ud800\u0041"`, `"\ud800A"`},
	{`"\ud800\ud800\udc00"`, `"\ud800\ud800\udc00"`},
	{`"\uDBFF\uDFFF"`, `"\udbff\udfff"`},
	{`"a,b:c"`, `"a,b:c"`},
	{`{"k,:":"v,:"}`, `{"k,:": "v,:"}`},
	{`[true,false,null,-1.5e+300,0,-0.0,123456789012345678901234567890]`, `[true, false, null, -1.5e+300, 0, -0.0, 123456789012345678901234567890]`},
	{`""`, `""`},
	{`[]`, `[]`},
}

func TestPythonStyle(t *testing.T) {
	for _, c := range pythonStyleCases {
		if got := string(pythonStyle([]byte(c.in))); got != c.want {
			t.Errorf("pythonStyle(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestPythonStyleInvalidUTF8(t *testing.T) {
	// encoding/json decodes each invalid byte as U+FFFD; so does
	// pythonStyle.
	got := string(pythonStyle([]byte("\"a\xffb\xe2\x82c\"")))
	if want := `"a\ufffdb\ufffd\ufffdc"`; got != want {
		t.Errorf("pythonStyle = %s, want %s", got, want)
	}
}

func TestPythonStyleTruncatedInput(t *testing.T) {
	// Invalid input must not panic.
	for _, in := range []string{`"`, `"\`, `"\u12`, `"\ud800\u`, `"\ud800\udc`, `{"a":"\`, "\"\xe2"} {
		_ = pythonStyle([]byte(in))
	}
}

// TestInteropPythonStyle compares pythonStyle with Python's
// json.dumps(json.loads(x)) for the table and for random strings.
func TestInteropPythonStyle(t *testing.T) {
	var corpus []string
	for _, c := range pythonStyleCases {
		corpus = append(corpus, c.in)
	}
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", " ", "\"", "\\", "/", "<", "&", "\x00", "\x1f", "\x7f", "\u0080", "é", "\u2028",
		"\uffff", "😀", `\u00E9`, `\ud800`, `\udc00`, `\uD83D\uDE00`, `\/`, `\b`, `\t`, `\u0000`}
	for range 500 {
		var b strings.Builder
		b.WriteByte('"')
		for range r.IntN(12) {
			p := pieces[r.IntN(len(pieces))]
			switch p {
			case "\"", "\\":
				b.WriteString("\\" + p)
			case "\x00", "\x1f":
				fmt.Fprintf(&b, `\u%04x`, p[0])
			default:
				b.WriteString(p)
			}
		}
		b.WriteByte('"')
		corpus = append(corpus, `{"k`+strconv.Itoa(r.IntN(3))+`":[`+b.String()+`]}`)
	}
	var want []string
	pyinterop.RunJSON(t, `
import json, sys
json.dump([json.dumps(json.loads(x)) for x in json.load(sys.stdin)], sys.stdout)
`, corpus, &want)
	if len(want) != len(corpus) {
		t.Fatalf("python returned %d results for %d inputs", len(want), len(corpus))
	}
	for i, in := range corpus {
		if got := string(pythonStyle([]byte(in))); got != want[i] {
			t.Errorf("pythonStyle(%s)\n  go %s\n  py %s", in, got, want[i])
		}
	}
}

func TestFormatNumber(t *testing.T) {
	cases := []struct {
		f    float64
		want string
	}{
		{10, "10"}, {2.5, "2.5"}, {0.1, "0.1"}, {-3, "-3"}, {math.Copysign(0, -1), "0"},
		{1e-4, "0.0001"}, {1e-5, "1e-05"}, {1.5e-7, "1.5e-07"}, {1234567.5, "1234567.5"},
		{9007199254740993, "9007199254740992"}, {1e15, "1000000000000000"}, {1e16, "1e+16"},
		{1e20, "1e+20"}, {1.5e300, "1.5e+300"}, {math.MaxFloat64, "1.7976931348623157e+308"},
		{math.SmallestNonzeroFloat64, "5e-324"}, {123456789.123, "123456789.123"},
	}
	for _, c := range cases {
		got, err := formatNumber(c.f)
		if err != nil || got != c.want {
			t.Errorf("formatNumber(%v) = %q, %v; want %q", c.f, got, err, c.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := formatNumber(f); err == nil {
			t.Errorf("formatNumber(%v) = %q, want an error", f, got)
		}
	}
}

// TestInteropFormatNumber compares formatNumber with what Python writes
// for the same number given as an int (whole numbers below 1e16) or a
// float (others).
func TestInteropFormatNumber(t *testing.T) {
	nums := []float64{10, 2.5, 0.1, -3, 1e-4, 1e-5, 1.5e-7, 1234567.5, 1e15, 1e16, 1e20, 1.5e300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123, 0.30000000000000004, 1.0 / 3}
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		nums = append(nums, math.Float64frombits(r.Uint64()), float64(r.IntN(1e6))/float64(1+r.IntN(1000)),
			float64(r.Int64N(1<<53)))
	}
	var in []string
	for _, f := range nums {
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			in = append(in, strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	var want []string
	pyinterop.RunJSON(t, `
import json, sys
out = []
for s in json.load(sys.stdin):
    f = float(s)
    out.append(json.dumps(int(f)) if f == int(f) and abs(f) < 1e16 else json.dumps(f))
json.dump(out, sys.stdout)
`, in, &want)
	for i, s := range in {
		f, _ := strconv.ParseFloat(s, 64)
		got, err := formatNumber(f)
		if err != nil || got != want[i] {
			t.Errorf("formatNumber(%s) = %q, %v; python writes %q", s, got, err, want[i])
		}
	}
}

// FuzzPythonStyle checks that pythonStyle keeps the value of any JSON
// document, writes only ASCII, and is idempotent.
func FuzzPythonStyle(f *testing.F) {
	for _, c := range pythonStyleCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			_ = pythonStyle(in) // must not panic
			return
		}
		out := pythonStyle(in)
		if !json.Valid(out) {
			t.Fatalf("pythonStyle(%q) = %q is not valid JSON", in, out)
		}
		for _, c := range out {
			if c >= utf8.RuneSelf || c < 0x20 {
				t.Fatalf("pythonStyle(%q) = %q has a byte outside printable ASCII", in, out)
			}
		}
		var a, b any
		if err := unmarshalNumbers(in, &a); err != nil {
			t.Fatal(err)
		}
		if err := unmarshalNumbers(out, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("pythonStyle(%q) = %q changes the value: %#v != %#v", in, out, a, b)
		}
		if again := pythonStyle(out); !bytes.Equal(again, out) {
			t.Fatalf("pythonStyle is not idempotent: %q -> %q", out, again)
		}
	})
}

func unmarshalNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
