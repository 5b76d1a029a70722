package wire_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

func envelope(version, inner string) string {
	v, _ := json.Marshal(version)
	m, _ := json.Marshal(inner)
	return `{"oslo.version": ` + string(v) + `, "oslo.message": ` + string(m) + `}`
}

// envelopeCases are bodies for Unwrap with the outcome oslo's
// deserialize_msg has (checked by TestInteropEnvelopes): nil for
// accepted, else the error they must wrap.
var envelopeCases = []struct {
	name string
	body string
	err  error
}{
	{"2.0", envelope("2.0", `{"method": "m"}`), nil},
	{"2.0.0", envelope("2.0.0", `{"method": "m"}`), nil},
	{"2.00", envelope("2.00", `{"method": "m"}`), nil},
	{"02.0", envelope("02.0", `{"method": "m"}`), nil},
	{"spaces", envelope(" 2.0 ", `{"method": "m"}`), nil},
	{"sign", envelope("+2.-0", `{"method": "m"}`), nil},
	{"underscore", envelope("2.0_0", `{"method": "m"}`), nil},
	{"fourth part ignored", envelope("2.0.0.1", `{"method": "m"}`), nil},
	{"negative minor", envelope("2.-1", `{"method": "m"}`), nil},
	{"negative minor, bad revision unread", envelope("2.-1.x", `{"method": "m"}`), nil},
	{"negative revision", envelope("2.0.-3", `{"method": "m"}`), nil},
	{"2.1", envelope("2.1", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"3.0", envelope("3.0", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"1.0", envelope("1.0", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"2.0.1", envelope("2.0.1", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"20.0", envelope("2_0.0", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"major only", envelope("2", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"empty version", envelope("", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"letters", envelope("2.x", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"bad revision", envelope("2.0.x", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"double underscore", envelope("2.0__0", `{"method": "m"}`), wire.ErrUnsupportedEnvelope},
	{"version not a string", `{"oslo.version": 2.0, "oslo.message": "{}"}`, wire.ErrInvalidMessage},
	{"message not a string", `{"oslo.version": "2.0", "oslo.message": {}}`, wire.ErrInvalidMessage},
	{"inner not JSON", envelope("2.0", `{"method": `), wire.ErrInvalidMessage},
	{"inner not an object", envelope("2.0", `[1]`), wire.ErrInvalidMessage},
	{"inner null", envelope("2.0", `null`), wire.ErrInvalidMessage},
	{"legacy", `{"method": "m", "args": {"a": 1}}`, nil},
	{"legacy with version only", `{"oslo.version": "9.9", "method": "m"}`, nil},
	{"legacy with message only", `{"oslo.message": 1, "method": "m"}`, nil},
	{"legacy empty", `{}`, nil},
	{"whitespace", " \n{\"method\" : \"m\"}\t", nil},
	{"duplicate keys", `{"method": "a", "method": "b"}`, nil},
	{"not JSON", `nope`, wire.ErrInvalidMessage},
	{"array", `[1, 2]`, wire.ErrInvalidMessage},
	{"string", `"{}"`, wire.ErrInvalidMessage},
	{"null", `null`, wire.ErrInvalidMessage},
	{"empty", ``, wire.ErrInvalidMessage},
	{"trailing data", `{} {}`, wire.ErrInvalidMessage},
}

// goStricterEnvelopes are bodies that oslo accepts and Unwrap rejects:
// Python's json module reads the NaN and Infinity literals, which are not
// JSON, and int() reads non-ASCII digits.
var goStricterEnvelopes = []struct {
	name string
	body string
}{
	{"NaN literal", `{"method": "m", "args": {"x": NaN}}`},
	{"Infinity literal", envelope("2.0", `{"method": "m", "args": {"x": -Infinity}}`)},
	{"non-ASCII digits", envelope("\uff12.0", `{"method": "m"}`)},
}

func TestUnwrap(t *testing.T) {
	for _, c := range envelopeCases {
		m, err := wire.Unwrap([]byte(c.body))
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: Unwrap(%s): %v", c.name, c.body, err)
		case c.err == nil && m == nil:
			t.Errorf("%s: Unwrap(%s) = nil map", c.name, c.body)
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: Unwrap(%s) error %v, want %v", c.name, c.body, err, c.err)
		}
	}
	for _, c := range goStricterEnvelopes {
		if _, err := wire.Unwrap([]byte(c.body)); err == nil {
			t.Errorf("%s: Unwrap(%s) accepted it", c.name, c.body)
		}
	}
}

func TestEnvelope(t *testing.T) {
	cases := []struct{ inner, want string }{
		// What oslo's jsonutils.dumps gives: ASCII already.
		{`{"a": "\u00e9"}`, `{"oslo.version": "2.0", "oslo.message": "{\"a\": \"\\u00e9\"}"}`},
		// Raw non-ASCII still gives an ASCII body, as Python would.
		{"{\"a\": \"\u00e9\x7f\"}", `{"oslo.version": "2.0", "oslo.message": "{\"a\": \"\u00e9\u007f\"}"}`},
		{"", `{"oslo.version": "2.0", "oslo.message": ""}`},
	}
	for _, c := range cases {
		if got := string(wire.Envelope([]byte(c.inner))); got != c.want {
			t.Errorf("Envelope(%q) = %s, want %s", c.inner, got, c.want)
		}
	}
}

func TestDecodeRequestLegacy(t *testing.T) {
	r, err := wire.DecodeRequest([]byte(`{"method": "m", "args": {"a": 1}, "namespace": "ns", "version": "1.2",
		"_msg_id": "id", "_reply_q": "q", "_timeout": 2.5, "_unique_id": "u", "_context_user": "me",
		"_context_": 1, "_context_n": 12345678901234567890, "other": true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsCall() {
		t.Error("IsCall() = false for a request with _msg_id")
	}
	if r.Method != "m" || string(r.Args) != `{"a": 1}` || r.Namespace != "ns" || r.Version != "1.2" ||
		r.MsgID != "id" || r.ReplyTo != "q" || r.MonitorTimeout == nil || *r.MonitorTimeout != 2.5 || r.UniqueID != "u" {
		t.Errorf("DecodeRequest = %+v", r)
	}
	// Context values keep their JSON types, numbers as json.Number.
	want := map[string]any{"user": "me", "": json.Number("1"), "n": json.Number("12345678901234567890")}
	if !reflect.DeepEqual(r.Context, want) {
		t.Errorf("Context = %#v, want %#v", r.Context, want)
	}
}

func TestDecodeRequestNulls(t *testing.T) {
	r, err := wire.DecodeRequest([]byte(`{"method": null, "args": null, "_timeout": null, "_msg_id": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "" || r.Args != nil || r.MonitorTimeout != nil || r.IsCall() || r.Context != nil {
		t.Errorf("DecodeRequest = %+v, want an empty request", r)
	}
}

func TestDecodeInvalid(t *testing.T) {
	requests := []string{
		`nope`, `[]`, `"x"`, `1`, `null`,
		`{"method": 1}`, `{"method": ["m"]}`, `{"method": {}}`,
		`{"args": []}`, `{"args": "x"}`, `{"args": 1}`, `{"args": true}`,
		`{"namespace": 1}`, `{"version": 1.0}`, `{"_msg_id": 1}`, `{"_reply_q": []}`, `{"_unique_id": {}}`,
		`{"_timeout": "10"}`, `{"_timeout": true}`, `{"_timeout": []}`, `{"_timeout": 1e400}`,
		envelope("2.0", `{"args": [1]}`),
		envelope("2.0", `{"method": `),
	}
	for _, b := range requests {
		if _, err := wire.DecodeRequest([]byte(b)); !errors.Is(err, wire.ErrInvalidMessage) {
			t.Errorf("DecodeRequest(%s) error %v, want ErrInvalidMessage", b, err)
		}
	}
	replies := []string{
		`nope`, `[]`,
		`{"failure": "not json"}`, `{"failure": "[1]"}`, `{"failure": 1}`, `{"failure": true}`, `{"failure": [1]}`,
		`{"failure": "{\"class\": 1}"}`, `{"failure": "{\"tb\": [1]}"}`, `{"failure": "{\"args\": {}}"}`,
		`{"failure": "{\"kwargs\": []}"}`,
		`{"_msg_id": 1}`, `{"_unique_id": []}`,
	}
	for _, b := range replies {
		if _, err := wire.DecodeReply([]byte(b)); !errors.Is(err, wire.ErrInvalidMessage) {
			t.Errorf("DecodeReply(%s) error %v, want ErrInvalidMessage", b, err)
		}
	}
	failures := []string{
		`nope`, `[]`, `null`, `"x"`,
		`{"class": 1}`, `{"module": []}`, `{"message": {}}`,
		`{"tb": [1]}`, `{"tb": {}}`, `{"tb": 1}`, `{"args": {}}`, `{"args": "a"}`, `{"kwargs": []}`, `{"kwargs": 1}`,
	}
	for _, b := range failures {
		if _, err := wire.DecodeFailure([]byte(b)); !errors.Is(err, wire.ErrInvalidMessage) {
			t.Errorf("DecodeFailure(%s) error %v, want ErrInvalidMessage", b, err)
		}
	}
}

func TestDecodeFailureLenient(t *testing.T) {
	f, err := wire.DecodeFailure([]byte(`{"class": "E", "tb": "one string", "args": null, "kwargs": null, "extra": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Class != "E" || len(f.Traceback) != 1 || f.Traceback[0] != "one string" || f.Args != nil || f.Kwargs != nil {
		t.Errorf("DecodeFailure = %+v", f)
	}
	// A failure given as an object rather than a JSON string.
	m, err := wire.DecodeReply([]byte(`{"result": null, "failure": {"class": "E", "module": "m"}, "ending": true}`))
	if err != nil || m.Failure == nil || m.Failure.Class != "E" {
		t.Errorf("DecodeReply with a failure object = %+v, %v", m, err)
	}
}

// replyEdgeCases are replies with odd "ending" and "failure" values, and
// how oslo's reply waiter reads them (checked by TestInteropReplyEdgeCases).
var replyEdgeCases = []struct {
	name       string
	body       string
	ending     bool
	failure    bool
	heartbeat  bool
	pyNotFalse bool // oslo does not take it for a heartbeat: "ending" is there and not false
}{
	{"final", `{"result": 1, "failure": null, "ending": true}`, true, false, false, false},
	{"heartbeat", `{"result": null, "failure": null, "ending": false}`, false, false, true, false},
	{"no ending", `{"result": null, "failure": null}`, false, false, true, false},
	{"no ending with result", `{"result": 7, "failure": null}`, false, false, false, false},
	{"ending null", `{"result": null, "failure": null, "ending": null}`, false, false, true, true},
	{"ending 0", `{"result": null, "failure": null, "ending": 0}`, false, false, true, true},
	{"ending 0.0", `{"result": null, "failure": null, "ending": -0.0e5}`, false, false, true, true},
	{"ending underflow", `{"result": null, "failure": null, "ending": 1e-400}`, false, false, true, true},
	{"ending 1", `{"result": null, "failure": null, "ending": 1}`, true, false, false, true},
	{"ending overflow", `{"result": null, "failure": null, "ending": 1e400}`, true, false, false, true},
	{"ending empty string", `{"result": null, "failure": null, "ending": ""}`, false, false, true, true},
	{"ending string", `{"result": null, "failure": null, "ending": "no"}`, true, false, false, true},
	{"ending empty list", `{"result": null, "failure": null, "ending": [ ]}`, false, false, true, true},
	{"ending list", `{"result": null, "failure": null, "ending": [0]}`, true, false, false, true},
	{"ending empty object", `{"result": null, "failure": null, "ending": { }}`, false, false, true, true},
	{"ending object", `{"result": null, "failure": null, "ending": {"a": 0}}`, true, false, false, true},
	{"failure empty string", `{"result": 3, "failure": "", "ending": true}`, true, false, false, false},
	{"failure false", `{"result": null, "failure": false, "ending": false}`, false, false, true, false},
	{"failure 0", `{"result": null, "failure": 0, "ending": true}`, true, false, false, false},
	{"failure empty list", `{"result": null, "failure": [], "ending": true}`, true, false, false, false},
	{"failure empty object", `{"result": null, "failure": {}, "ending": true}`, true, false, false, false},
	{"failure", `{"result": null, "failure": "{\"class\": \"ValueError\", \"module\": \"builtins\", \"message\": \"m\", \"tb\": [], \"args\": [\"m\"], \"kwargs\": {}}", "ending": false}`, false, true, false, false},
	{"failure and result", `{"result": 5, "failure": "{\"class\": \"KeyError\", \"module\": \"builtins\", \"message\": \"'k'\", \"args\": [\"k\"]}", "ending": true}`, true, true, false, false},
}

func TestReplyEndingAndHeartbeat(t *testing.T) {
	for _, c := range replyEdgeCases {
		for _, body := range []string{c.body, envelope("2.0", c.body)} {
			m, err := wire.DecodeReply([]byte(body))
			if err != nil {
				t.Errorf("%s: DecodeReply(%s): %v", c.name, body, err)
				continue
			}
			if m.Ending != c.ending || (m.Failure != nil) != c.failure || m.IsHeartbeat() != c.heartbeat {
				t.Errorf("%s: Ending=%v Failure=%v IsHeartbeat=%v, want %v %v %v", c.name, m.Ending, m.Failure != nil,
					m.IsHeartbeat(), c.ending, c.failure, c.heartbeat)
			}
		}
	}
}

func TestIsHeartbeat(t *testing.T) {
	cases := []struct {
		m    wire.ReplyMessage
		want bool
	}{
		{wire.ReplyMessage{}, true},
		{wire.ReplyMessage{Ending: true}, false},
		{wire.ReplyMessage{Result: json.RawMessage(`0`)}, false},
		{wire.ReplyMessage{Failure: &driver.Failure{}}, false},
	}
	for _, c := range cases {
		if got := c.m.IsHeartbeat(); got != c.want {
			t.Errorf("%+v.IsHeartbeat() = %v", c.m, got)
		}
	}
	b, err := wire.EncodeReply(nil, "m", "u", false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.DecodeReply(b)
	if err != nil || !m.IsHeartbeat() {
		t.Errorf("EncodeReply(nil) decodes as %+v, %v; want a heartbeat", m, err)
	}
}

func TestEncodeRequestTimeoutNotFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := &driver.Request{Method: "m", MsgID: "id", MonitorTimeout: &f}
		if b, err := wire.EncodeRequest(r); err == nil {
			t.Errorf("EncodeRequest with _timeout %v = %s, want an error", f, b)
		}
	}
}

func TestEncodeRequestErrors(t *testing.T) {
	bad := []*driver.Request{
		{Args: json.RawMessage(`[1]`)},
		{Args: json.RawMessage(`"x"`)},
		{Args: json.RawMessage(`{"a":`)},
		{Args: json.RawMessage(`{} {}`)},
		{Context: map[string]any{"f": func() {}}},
		{Context: map[string]any{"ch": make(chan int)}},
		{Context: map[string]any{"nan": math.NaN()}},
		{Context: map[string]any{"raw": json.RawMessage(`{`)}},
	}
	for _, r := range bad {
		if b, err := wire.EncodeRequest(r); err == nil {
			t.Errorf("EncodeRequest(%+v) = %s, want an error", r, b)
		}
	}
	if _, err := wire.EncodeReply(&driver.Reply{Result: json.RawMessage(`{`)}, "m", "u", true); err == nil {
		t.Error("EncodeReply with invalid result JSON succeeded")
	}
	for _, f := range []*driver.Failure{{Args: json.RawMessage(`{}`)}, {Args: json.RawMessage(`[`)}, {Kwargs: json.RawMessage(`[]`)}} {
		if b, err := wire.EncodeFailure(f); err == nil {
			t.Errorf("EncodeFailure(%+v) = %s, want an error", f, b)
		}
	}
}

func TestEncodeRequestInvalidUTF8(t *testing.T) {
	r := &driver.Request{Method: "m\xff", Args: json.RawMessage("{\"a\":\"\xfe\"}"),
		Context: map[string]any{"k\xff": "v\xff"}}
	b, err := wire.EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) || strings.ContainsFunc(string(b), func(r rune) bool { return r > 0x7e }) {
		t.Fatalf("EncodeRequest = %q, want ASCII JSON", b)
	}
	got, err := wire.DecodeRequest(b)
	if err != nil || got.Method != "m\uFFFD" || string(got.Args) != `{"a": "\ufffd"}` || got.Context["k\uFFFD"] != "v\uFFFD" {
		t.Errorf("round trip = %+v, %v", got, err)
	}
}

func TestIDs(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := wire.NewID()
		if !hex32.MatchString(id) || seen[id] {
			t.Fatalf("NewID() = %q: not a fresh uuid4().hex", id)
		}
		seen[id] = true
		if u := wire.NewUUID(); !uuid.MatchString(u) {
			t.Fatalf("NewUUID() = %q: not a str(uuid4())", u)
		}
	}
}
