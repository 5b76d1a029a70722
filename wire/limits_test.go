package wire

import (
	"errors"
	"strings"
	"testing"
)

// nested returns a JSON object value nested n deep: {"a": {"a": ... 1}}.
func nested(n int) string {
	return strings.Repeat(`{"a": `, n) + "1" + strings.Repeat("}", n)
}

// TestDecodeDepthLimit checks that every decoder accepts a message
// nested exactly MaxDecodeDepth deep and rejects one level more with
// ErrInvalidMessage, in the envelope and in the message inside it.
func TestDecodeDepthLimit(t *testing.T) {
	// The request's dictionary is one level, "args" a second.
	for _, tc := range []struct {
		name  string
		depth int // of the whole text
		body  []byte
	}{
		{"legacy request", MaxDecodeDepth, []byte(`{"method": "m", "args": ` + nested(MaxDecodeDepth-1) + `}`)},
		{"legacy request too deep", MaxDecodeDepth + 1, []byte(`{"method": "m", "args": ` + nested(MaxDecodeDepth) + `}`)},
		{"enveloped request", MaxDecodeDepth, Envelope([]byte(`{"method": "m", "args": ` + nested(MaxDecodeDepth-1) + `}`))},
		{"enveloped request too deep", MaxDecodeDepth + 1, Envelope([]byte(`{"method": "m", "args": ` + nested(MaxDecodeDepth) + `}`))},
		{"envelope too deep", MaxDecodeDepth + 1, []byte(`{"oslo.version": "2.0", "oslo.message": "{}", "x": ` + nested(MaxDecodeDepth) + `}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRequest(tc.body)
			if tc.depth <= MaxDecodeDepth && err != nil {
				t.Fatalf("DecodeRequest at depth %d: %v", tc.depth, err)
			}
			if tc.depth > MaxDecodeDepth {
				if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), "exceeded max depth") {
					t.Fatalf("DecodeRequest at depth %d: %v; want ErrInvalidMessage for its depth", tc.depth, err)
				}
			}
		})
	}
	deep := nested(MaxDecodeDepth)
	for name, decode := range map[string]func([]byte) error{
		"DecodeReply":        func(b []byte) error { _, err := DecodeReply(b); return err },
		"DecodeNotification": func(b []byte) error { _, err := DecodeNotification(b); return err },
		"DecodeFailure":      func(b []byte) error { _, err := DecodeFailure(b); return err },
		"Unwrap":             func(b []byte) error { _, err := Unwrap(b); return err },
	} {
		if err := decode([]byte(`{"x": ` + deep + `}`)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s of a text %d deep: %v; want ErrInvalidMessage", name, MaxDecodeDepth+1, err)
		}
		if err := decode([]byte(`{"x": ` + nested(MaxDecodeDepth-1) + `}`)); err != nil {
			t.Errorf("%s of a text %d deep: %v", name, MaxDecodeDepth, err)
		}
	}
	// A failure is a text of its own inside the reply.
	reply := []byte(`{"failure": "{\"class\": \"E\", \"kwargs\": ` + strings.ReplaceAll(deep, `"`, `\"`) + `}", "ending": true}`)
	if _, err := DecodeReply(reply); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("DecodeReply with a failure %d deep: %v; want ErrInvalidMessage", MaxDecodeDepth+1, err)
	}
}
