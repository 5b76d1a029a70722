package wire_test

import (
	"testing"

	"github.com/go-oslo/messaging/wire"
)

// TestGolden checks the encoders byte for byte, and the decoders, against
// bodies that the real Python oslo.messaging produced (see update). It
// needs no Python: TestInteropRequestBytes and its siblings compare the
// same encodings with a live Python and rewrite these files.
func TestGolden(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		for _, c := range requestCases {
			t.Run(c.name, func(t *testing.T) {
				want := readGolden(t, "request_"+c.name)
				got, err := wire.EncodeRequest(c.request())
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("EncodeRequest\n got %s\nwant %s", got, want)
				}
				for _, name := range []string{"request_" + c.name, "legacy_request_" + c.name} {
					r, err := wire.DecodeRequest(readGolden(t, name))
					if err != nil {
						t.Fatalf("DecodeRequest(%s): %v", name, err)
					}
					checkRequest(t, name, r, c.request())
				}
			})
		}
	})
	t.Run("reply", func(t *testing.T) {
		for _, c := range replyCases {
			t.Run(c.name, func(t *testing.T) {
				want := readGolden(t, "reply_"+c.name)
				got, err := wire.EncodeReply(c.reply, testMsgID, testUniqueID, c.ending)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("EncodeReply\n got %s\nwant %s", got, want)
				}
				for _, name := range []string{"reply_" + c.name, "legacy_reply_" + c.name} {
					m, err := wire.DecodeReply(readGolden(t, name))
					if err != nil {
						t.Fatalf("DecodeReply(%s): %v", name, err)
					}
					checkReply(t, name, m, c.reply, c.ending)
				}
			})
		}
	})
	t.Run("failure", func(t *testing.T) {
		for _, c := range failureCases {
			t.Run(c.name, func(t *testing.T) {
				want := readGolden(t, "failure_"+c.name)
				got, err := wire.EncodeFailure(c.failure)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("EncodeFailure\n got %s\nwant %s", got, want)
				}
				f, err := wire.DecodeFailure(want)
				if err != nil {
					t.Fatal(err)
				}
				checkFailure(t, "failure_"+c.name, f, c.failure)
			})
		}
	})
}
