package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// TestAllocations bounds the allocations of the codec on the benchmark
// messages (a 28-key context, 1 KB of arguments or payload), so that it
// stays allocation-light. The bounds leave room for scratch buffers that
// sync.Pool drops (the race detector makes it drop some on purpose).
func TestAllocations(t *testing.T) {
	req, note := benchRequest(), benchNotification()
	reqBody, err := wire.EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	noteBody, err := wire.EncodeNotification(note, true)
	if err != nil {
		t.Fatal(err)
	}
	reply := &driver.Reply{Result: benchPayload(1024)}
	failure := &driver.Reply{Failure: benchFailure()}
	msgID, uid := wire.NewID(), wire.NewID()
	replyBody, err := wire.EncodeReply(reply, msgID, uid, true)
	if err != nil {
		t.Fatal(err)
	}
	failureBody, err := wire.EncodeReply(failure, msgID, uid, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64<<10)

	cases := []struct {
		name string
		max  float64
		run  func() error
	}{
		{"EncodeRequest", 3, func() error { _, err := wire.EncodeRequest(req); return err }},
		{"AppendRequest", 0, func() error { _, err := wire.AppendRequest(buf[:0], req); return err }},
		// The request, one string for all strings, the arguments, the
		// context map, and the boxing of its values.
		{"DecodeRequest", 40, func() error { _, err := wire.DecodeRequest(reqBody); return err }},
		{"EncodeReply", 3, func() error { _, err := wire.EncodeReply(reply, msgID, uid, true); return err }},
		{"AppendReply", 0, func() error { _, err := wire.AppendReply(buf[:0], failure, msgID, uid, true); return err }},
		{"DecodeReply", 8, func() error { _, err := wire.DecodeReply(replyBody); return err }},
		{"DecodeReply failure", 25, func() error { _, err := wire.DecodeReply(failureBody); return err }},
		{"EncodeNotification", 3, func() error { _, err := wire.EncodeNotification(note, true); return err }},
		{"AppendNotification", 0, func() error { _, err := wire.AppendNotification(buf[:0], note, false); return err }},
		{"DecodeNotification", 40, func() error { _, err := wire.DecodeNotification(noteBody); return err }},
	}
	for _, c := range cases {
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		n := testing.AllocsPerRun(50, func() { _ = c.run() })
		if n > c.max {
			t.Errorf("%s: %.1f allocations per call, want at most %.0f", c.name, n, c.max)
		}
	}
}

// TestAllocationsContextTypes checks that the context values that
// applications commonly send are written without allocating.
func TestAllocationsContextTypes(t *testing.T) {
	req := &driver.Request{Method: "m", Args: json.RawMessage(`{"a": 1}`), UniqueID: wire.NewID(),
		Context: map[string]any{
			"s": "text", "b": true, "n": nil, "i": 42, "i64": int64(-7), "f": 2.5, "big": 1e300,
			"num": json.Number("12"), "raw": json.RawMessage(`{"k": [1, 2]}`), "strs": []string{"a", "b"},
			"list": []any{"x", 1.5, false}, "map": map[string]any{"z": 1, "a": "é"}, "smap": map[string]string{"k": "v"},
		}}
	buf := make([]byte, 0, 4096)
	if _, err := wire.AppendRequest(buf[:0], req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { _, _ = wire.AppendRequest(buf[:0], req) }); n > 1 {
		t.Errorf("AppendRequest: %.1f allocations per call, want at most 1", n)
	}
}
