package bench

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		in       string
		seq      int64
		size     int
		clientTS float64
		serverTS float64
	}{
		// As Python's json.dumps writes the simulator's namedtuple.
		{`[0, "abcde", 1700000000.1234567, 0, 0]`, 0, 5, 1700000000.1234567, 0},
		// As our clients write it.
		{`[42,"xy",1700000000.5,0,0]`, 42, 2, 1700000000.5, 0},
		{` [ 7 , "a\"b\u00e9" , 1.5 , 2.25 , 3 ] `, 7, 4, 1.5, 2.25},
		{`[1, "\u00e9t\u00e9", 1, 2, 3]`, 1, 3, 1, 2},
		{"[1, \"\u00e9t\u00e9\", 1, 2, 3]", 1, 3, 1, 2},
		{`[3.0, "", 1e9, 0.0, null]`, 3, 0, 1e9, 0},
		{`[5, "c", 1, 0, [1, {"a": "]"}]]`, 5, 1, 1, 0},
	}
	for _, tc := range tests {
		m, err := parseMessage([]byte(tc.in))
		if err != nil {
			t.Errorf("parseMessage(%s): %v", tc.in, err)
			continue
		}
		if m.seq != tc.seq || m.size != tc.size || m.clientTS != tc.clientTS || m.serverTS != tc.serverTS {
			t.Errorf("parseMessage(%s) = seq %d size %d client_ts %v server_ts %v, want %d %d %v %v",
				tc.in, m.seq, m.size, m.clientTS, m.serverTS, tc.seq, tc.size, tc.clientTS, tc.serverTS)
		}
	}
}

func TestParseMessageErrors(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{}`, `"x"`, `[]`, `[1, "a", 1, 0]`, `[1, "a", 1, 0, 0, 0]`, `[1, "a", 1, 0, 0`,
		`[1, "a", 1, 0, 0] x`, `["1", "a", 1, 0, 0]`, `[1, 2, 1, 0, 0]`, `[1, "a", "1", 0, 0]`,
		`[1, "a", 1, null, 0]`, `[1, "a, 1, 0, 0]`, `[1, "a", 1, 0, 0,]`, `[1 "a", 1, 0, 0]`,
		`[1, "a", 1, 0, [0]`, `[,1, "a", 1, 0]`, `[1e400, "a", 1, 0, 0]`, `[1, "a\x", 1, 0, 0]`,
	} {
		if m, err := parseMessage([]byte(in)); err == nil {
			t.Errorf("parseMessage(%s) = %+v, want an error", in, m)
		} else if !errors.Is(err, errNotMessage) {
			t.Errorf("parseMessage(%s) = %v, want an error matching errNotMessage", in, err)
		}
	}
}

func TestWithServerTS(t *testing.T) {
	raw := []byte(`[3, "abc", 1700000000.25, 0, 0]`)
	m, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := m.withServerTS(raw, 1700000000.5)
	var got []any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("reply %s: %v", out, err)
	}
	want := []any{3.0, "abc", 1700000000.25, 1700000000.5, 0.0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reply = %v, want %v", got, want)
	}
	if string(raw) != `[3, "abc", 1700000000.25, 0, 0]` {
		t.Errorf("withServerTS changed its input: %s", raw)
	}
}

func TestAppendMessage(t *testing.T) {
	cargo, _ := json.Marshal("hello")
	b := appendMessage([]byte(`{"message":`), 12, cargo, 1700000000.123456)
	b = append(b, '}')
	var got struct{ Message []any }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := []any{12.0, "hello", 1700000000.123456, 0.0, 0.0}
	if !reflect.DeepEqual(got.Message, want) {
		t.Errorf("appendMessage = %v, want %v", got.Message, want)
	}
	raw, ok, err := field(b, "message")
	if err != nil || !ok {
		t.Fatalf("field(message) = %v, %v", ok, err)
	}
	m, err := parseMessage(raw)
	if err != nil || m.seq != 12 || m.size != 5 || m.clientTS != 1700000000.123456 {
		t.Errorf("parseMessage(%s) = %+v, %v", raw, m, err)
	}
}

func TestField(t *testing.T) {
	tests := []struct {
		in, key, want string
		ok, err       bool
	}{
		{`{"message": [1]}`, "message", `[1]`, true, false},
		{` { "a" : {"message": 1} , "message" : "x" } `, "message", `"x"`, true, false},
		{`{"a": 1}`, "message", "", false, false},
		{`{}`, "message", "", false, false},
		{`[]`, "message", "", false, true},
		{`{"a" 1}`, "message", "", false, true},
		{`{"a": 1`, "message", "", false, true},
		{`{1: 1}`, "message", "", false, true},
		{``, "message", "", false, true},
	}
	for _, tc := range tests {
		got, ok, err := field([]byte(tc.in), tc.key)
		if string(got) != tc.want || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("field(%s, %s) = %s, %v, %v; want %s, %v, error %v", tc.in, tc.key, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{`[0, "abc", 1.5, 0, 0]`, `[1,"",2,3,4]`, `[1, "a\"", 1, [2], {"x": "]"}]`, `{"message": [1]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = field(b, "message")
		m, err := parseMessage(b)
		if err != nil || !json.Valid(b) {
			return
		}
		out := m.withServerTS(b, 1.25)
		if !json.Valid(out) {
			t.Fatalf("withServerTS(%q) = %q: not JSON", b, out)
		}
		m2, err := parseMessage(out)
		if err != nil || m2.serverTS != 1.25 || m2.seq != m.seq || m2.size != m.size || m2.clientTS != m.clientTS {
			t.Fatalf("withServerTS(%q) = %q: reads back as %+v, %v", b, out, m2, err)
		}
	})
}
