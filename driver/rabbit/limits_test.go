package rabbit

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	messaging "github.com/go-oslo/messaging"
)

func TestMaxMessageSizeOption(t *testing.T) {
	s, err := newSettings(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.maxMessage != DefaultMaxMessageSize || DefaultMaxMessageSize != 16<<20 {
		t.Errorf("default max message size = %d, want 16 MiB", s.maxMessage)
	}
	cfg, err := ConfigFromURL(mustParse(t, "rabbit://h/?max_message_size=4096"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err = newSettings(cfg); err != nil || s.maxMessage != 4096 {
		t.Errorf("max_message_size=4096: settings %d, %v", s.maxMessage, err)
	}
	cfg, err = ConfigFromURL(mustParse(t, "rabbit://h/?max_message_size=0"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err = newSettings(cfg); err != nil || s.maxMessage != DefaultMaxMessageSize {
		t.Errorf("max_message_size=0: settings %d, %v; want the default", s.maxMessage, err)
	}
	for _, q := range []string{"max_message_size=-1", "max_message_size=536870913", "max_message_size=16MiB"} {
		if _, err := ConfigFromURL(mustParse(t, "rabbit://h/?"+q)); !errors.Is(err, messaging.ErrInvalidOption) {
			t.Errorf("ConfigFromURL(?%s) = %v, want ErrInvalidOption", q, err)
		}
	}
	if _, err := New(Config{MaxMessageSize: -5}); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("New(MaxMessageSize -5) = %v, want ErrInvalidOption", err)
	}
}

func zlibBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMessageBodyLimit(t *testing.T) {
	const limit = 1000
	gz := amqp.Table{headerCompression: mimeGzip}
	atLimit := []byte(`{"a": "` + strings.Repeat("x", limit-9) + `"}`)
	over := []byte(`{"a": "` + strings.Repeat("x", limit-8) + `"}`)
	if len(atLimit) != limit || len(over) != limit+1 {
		t.Fatalf("test bodies of %d and %d bytes", len(atLimit), len(over))
	}
	for _, tc := range []struct {
		name string
		d    amqp.Delivery
		ok   bool
	}{
		{"plain at the limit", amqp.Delivery{ContentType: contentType, Body: atLimit}, true},
		{"plain over the limit", amqp.Delivery{ContentType: contentType, Body: over}, false},
		{"compressed to the limit", amqp.Delivery{ContentType: contentType, Headers: gz, Body: zlibBytes(t, atLimit)}, true},
		{"compressed beyond the limit", amqp.Delivery{ContentType: contentType, Headers: gz, Body: zlibBytes(t, over)}, false},
		// Before the content type is looked at: a huge body is refused
		// whatever it claims to be.
		{"huge and not JSON", amqp.Delivery{ContentType: "text/plain", Body: bytes.Repeat([]byte{'x'}, limit+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := messageBody(&tc.d, limit)
			if tc.ok {
				if err != nil || len(got) != limit {
					t.Errorf("messageBody = %d bytes, %v; want %d bytes", len(got), err, limit)
				}
				return
			}
			if !errors.Is(err, errMessageTooLarge) || !strings.Contains(err.Error(), "1000") {
				t.Errorf("messageBody = %d bytes, %v; want errMessageTooLarge naming the limit", len(got), err)
			}
		})
	}
}

// TestMessageBodyBomb checks that a small compressed body that expands
// to much more than the limit is refused, having allocated about the
// limit and not what the body expands to.
func TestMessageBodyBomb(t *testing.T) {
	const limit = 1 << 20
	const expanded = 64 << 20
	bomb := zlibBytes(t, bytes.Repeat([]byte{' '}, expanded)) // about 64 KiB compressed
	d := amqp.Delivery{ContentType: contentType, Headers: amqp.Table{headerCompression: mimeGzip}, Body: bomb}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := messageBody(&d, limit)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errMessageTooLarge) {
		t.Errorf("messageBody(bomb) = %v, want errMessageTooLarge", err)
	}
	// io.ReadAll's doubling buffer allocates at most a few times the
	// limit; without it, more than the 64 MiB the body expands to.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16*limit {
		t.Errorf("messageBody of a %d-byte body expanding to %d bytes allocated %d bytes, limit %d", len(bomb), expanded, got, limit)
	} else {
		t.Logf("%d-byte body expanding to %d MiB refused after allocating %d KiB", len(bomb), expanded>>20, got>>10)
	}
}

// TestDedupMemoryBounded checks that a flood of distinct _unique_ids,
// faster than the window expires them, keeps at most dedupMax of them.
func TestDedupMemoryBounded(t *testing.T) {
	d := newDedup(dedupTTL, dedupMax)
	now := time.Unix(1000, 0)
	for i := range 5 * dedupMax {
		if d.duplicate(fmt.Sprintf("id-%d", i), now) {
			t.Fatalf("id-%d reported as a duplicate", i)
		}
	}
	d.mu.Lock()
	seen, order := len(d.seen), len(d.order)-d.head
	capacity := cap(d.order)
	d.mu.Unlock()
	if seen > dedupMax || order > dedupMax || capacity > 4*dedupMax {
		t.Errorf("after %d ids: %d remembered, %d in order, capacity %d; want at most %d", 5*dedupMax, seen, order, capacity, dedupMax)
	}
	// The most recent ones are still caught.
	if !d.duplicate(fmt.Sprintf("id-%d", 5*dedupMax-1), now) {
		t.Error("the last id is no longer remembered")
	}
}
