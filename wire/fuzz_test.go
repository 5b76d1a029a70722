package wire_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// addGoldenSeeds adds the golden files whose names start with prefix,
// and the bodies of the edge-case tables, to the seed corpus.
func addGoldenSeeds(f *testing.F, prefixes ...string) {
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		base := filepath.Base(p)
		for _, prefix := range prefixes {
			if strings.HasPrefix(base, prefix) {
				b, err := os.ReadFile(p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
	for _, c := range envelopeCases {
		f.Add([]byte(c.body))
	}
	for _, c := range replyEdgeCases {
		f.Add([]byte(c.body))
	}
}

// checkDecodeError checks that a decoder error wraps one of the package
// sentinels.
func checkDecodeError(t *testing.T, body []byte, err error) {
	t.Helper()
	if !errors.Is(err, wire.ErrInvalidMessage) && !errors.Is(err, wire.ErrUnsupportedEnvelope) {
		t.Fatalf("decoding %q: error %v wraps no sentinel", body, err)
	}
}

// FuzzDecodeRequest checks that DecodeRequest never panics and that what
// it decodes encodes to valid JSON that decodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	addGoldenSeeds(f, "request_", "legacy_request_")
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := wire.DecodeRequest(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		enc, err := wire.EncodeRequest(r)
		if err != nil {
			// Only a _timeout out of JSON's range can fail: it decoded,
			// so it is finite.
			t.Fatalf("EncodeRequest(DecodeRequest(%q)): %v", body, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("EncodeRequest gave invalid JSON %q", enc)
		}
		again, err := wire.DecodeRequest(enc)
		if err != nil {
			t.Fatalf("DecodeRequest(EncodeRequest(DecodeRequest(%q))) = %v (body %q)", body, err, enc)
		}
		// Only calls carry _reply_q and _timeout.
		want := *r
		if !r.IsCall() {
			want.ReplyTo, want.MonitorTimeout = "", nil
		}
		checkRequest(t, "re-decoded", again, &want)
	})
}

// FuzzDecodeReply checks that DecodeReply never panics and that what it
// decodes encodes to valid JSON that decodes to the same reply.
func FuzzDecodeReply(f *testing.F) {
	addGoldenSeeds(f, "reply_", "legacy_reply_")
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := wire.DecodeReply(body)
		if err != nil {
			checkDecodeError(t, body, err)
			return
		}
		var r *driver.Reply
		if m.Result != nil || m.Failure != nil {
			r = &driver.Reply{Result: m.Result, Failure: m.Failure}
		}
		enc, err := wire.EncodeReply(r, m.MsgID, m.UniqueID, m.Ending)
		if err != nil {
			t.Fatalf("EncodeReply(DecodeReply(%q)): %v", body, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("EncodeReply gave invalid JSON %q", enc)
		}
		again, err := wire.DecodeReply(enc)
		if err != nil {
			t.Fatalf("DecodeReply(EncodeReply(DecodeReply(%q))) = %v (body %q)", body, err, enc)
		}
		if again.Ending != m.Ending || again.MsgID != m.MsgID || again.UniqueID != m.UniqueID ||
			(again.Failure == nil) != (m.Failure == nil) {
			t.Fatalf("reply %q re-decoded as %+v, want %+v", body, again, m)
		}
		if m.Failure != nil {
			checkFailure(t, "re-decoded failure", again.Failure, m.Failure)
			return // a failure replaces the result
		}
		if (again.Result == nil) != (m.Result == nil) || (m.Result != nil && !jsonEqual(again.Result, m.Result)) {
			t.Fatalf("reply %q: result re-decoded as %s, want %s", body, again.Result, m.Result)
		}
	})
}

// FuzzDecodeFailure checks that DecodeFailure never panics and that what
// it decodes encodes to valid JSON that decodes to the same failure.
func FuzzDecodeFailure(f *testing.F) {
	addGoldenSeeds(f, "failure_")
	f.Fuzz(func(t *testing.T, data []byte) {
		fl, err := wire.DecodeFailure(data)
		if err != nil {
			checkDecodeError(t, data, err)
			return
		}
		enc, err := wire.EncodeFailure(fl)
		if err != nil {
			t.Fatalf("EncodeFailure(DecodeFailure(%q)): %v", data, err)
		}
		if !json.Valid(enc) {
			t.Fatalf("EncodeFailure gave invalid JSON %q", enc)
		}
		again, err := wire.DecodeFailure(enc)
		if err != nil {
			t.Fatalf("DecodeFailure(EncodeFailure(DecodeFailure(%q))) = %v (data %q)", data, err, enc)
		}
		checkFailure(t, "re-decoded", again, fl)
	})
}
