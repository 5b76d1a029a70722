package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
)

// logRecords is a slog.Handler that keeps the records it handles.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

func (h *logRecords) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record{}, h.recs...)
}

func attr(r slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

func fixedClock(n *Notifier, t time.Time) *Notifier {
	n.now = func() time.Time { return t }
	return n
}

func TestLogSink(t *testing.T) {
	t.Parallel()
	h := &logRecords{}
	n := newNotifier(t, nil, "test.localhost", WithSinks(Log(slog.New(h))))
	fixedClock(n, time.Date(2026, 11, 21, 4, 49, 35, 23246000, time.UTC))

	payload := map[string]any{"password": "passw0rd", "name": "vm", "nested": map[string]any{"auth_token": "t"}}
	for _, p := range Priorities() {
		if err := n.Notify(t.Context(), p, "test.notify", payload); err != nil {
			t.Fatalf("Notify(%s): %v", p, err)
		}
	}
	recs := h.records()
	wantLevels := []slog.Level{LevelAudit, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, LevelCritical}
	if len(recs) != len(wantLevels) {
		t.Fatalf("got %d records, want %d (sample is not logged)", len(recs), len(wantLevels))
	}
	for i, r := range recs {
		if r.Level != wantLevels[i] {
			t.Errorf("record %d level %v, want %v", i, r.Level, wantLevels[i])
		}
		if v, ok := attr(r, "logger"); !ok || v.String() != "oslo.messaging.notification.test.notify" {
			t.Errorf("record %d logger = %v", i, v)
		}
	}
	msg := recs[2].Message
	var got map[string]any
	if err := json.Unmarshal([]byte(msg), &got); err != nil {
		t.Fatalf("logged message %q is not JSON: %v", msg, err)
	}
	want := map[string]any{
		"message_id":   got["message_id"],
		"publisher_id": "test.localhost",
		"event_type":   "test.notify",
		"priority":     "INFO",
		"payload":      map[string]any{"name": "vm", "nested": map[string]any{"auth_token": "***"}, "password": "***"},
		"timestamp":    "2026-11-21 04:49:35.023246",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logged %v\nwant %v", got, want)
	}
	// oslo's key order and separators.
	if !strings.HasPrefix(msg, `{"message_id": "`) || !strings.Contains(msg, `", "publisher_id": "test.localhost", "event_type": "test.notify", "priority": "INFO", "payload": {"name": "vm", "nested": {"auth_token": "***"}, "password": "***"}, "timestamp": "2026-11-21 04:49:35.023246"}`) {
		t.Errorf("logged %s", msg)
	}
}

func TestLogSinkUsesNotifierLogger(t *testing.T) {
	t.Parallel()
	h := &logRecords{}
	n := newNotifier(t, nil, "p", WithSinks(Log(nil)), WithLogger(slog.New(h)))
	if err := n.Error(t.Context(), "e", "x"); err != nil {
		t.Fatal(err)
	}
	if recs := h.records(); len(recs) != 1 || recs[0].Level != slog.LevelError {
		t.Errorf("records = %v, want one error record", recs)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	// The first cases are what oslo's mask_dict_password produces.
	in := `{"a": "password=abc def", "b": {"Token": 1}, "d": "\"password\": \"zz\"", "e": "--password xyz",
		"f": "<password>x</password>", "g": 5, "adminPass": 3, "h": "'admin_pass' : 'aaaaa'",
		"i": "nothing to see", "j": {"password": {"user": "u", "key": "k"}},
		"c": [{"password": "x"}, "token=abc", 7], "k": "secret: 'v'", "l": null, "m": true}`
	v, err := decodeOrdered([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeJSON(&b, maskValue("", v))
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", b.String(), err)
	}
	want := map[string]any{
		"a": "password=*** def", "b": map[string]any{"Token": "***"}, "d": `"password": "***"`,
		"e": "--password ***", "f": "<password>***</password>", "g": 5.0, "adminPass": "***",
		"h": "'admin_pass' : '***'", "i": "nothing to see",
		// As in oslo, an object under a secret key is masked member by member.
		"j": map[string]any{"password": map[string]any{"user": "u", "key": "k"}},
		// Unlike oslo, arrays are masked too.
		"c": []any{map[string]any{"password": "***"}, "token=***", 7.0},
		"k": "secret: '***'", "l": nil, "m": true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("masked:\n got %v\nwant %v", got, want)
	}
}

func TestMaskString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"password=abc def":              "password=*** def",
		"PASSWORD = abc":                "PASSWORD = ***",
		`"password" : "aaaaa"`:          `"password" : "***"`,
		`'original_password' : 'aaaaa'`: `'original_password' : '***'`,
		"--password xyz --other 1":      "--password *** --other 1",
		"<Password>x</Password>":        "<Password>***</Password>",
		`token="a b"`:                   `token="***"`,
		"no secrets here":               "no secrets here",
		"password2=x":                   "password2=***",
	} {
		if got := maskString(in); got != want {
			t.Errorf("maskString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNoopAndEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		sinks []Sink
		want  bool
	}{
		{"no sinks", nil, true}, // as oslo's is_enabled with an empty driver list
		{"noop", []Sink{Noop()}, false},
		{"two noops", []Sink{Noop(), Noop()}, false},
		{"noop and recorder", []Sink{Noop(), NewRecorder()}, true},
		{"recorder", []Sink{NewRecorder()}, true},
		{"routing", []Sink{mustRouting(t, "", nil)}, true},
	} {
		n := newNotifier(t, nil, "p", WithSinks(tc.sinks...))
		if got := n.Enabled(); got != tc.want {
			t.Errorf("%s: Enabled() = %v, want %v", tc.name, got, tc.want)
		}
		if got := n.Prepare(PublisherID("q")).Enabled(); got != tc.want {
			t.Errorf("%s: prepared Enabled() = %v, want %v", tc.name, got, tc.want)
		}
		if err := n.Info(t.Context(), "e", nil); err != nil {
			t.Errorf("%s: Info: %v", tc.name, err)
		}
	}
	if err := Noop().Send(t.Context(), &Message{}); err != nil {
		t.Errorf("Noop().Send = %v", err)
	}
}

func TestRecorder(t *testing.T) {
	t.Parallel()
	var rec Recorder // the zero value is ready
	n := newNotifier(t, nil, "p", WithSinks(&rec), WithTopics("a", "b"))
	ctx := messaging.NewOutgoingContext(t.Context(), messaging.Metadata{"user_id": "u"})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := n.Info(ctx, "e", i); err != nil {
				t.Errorf("Info: %v", err)
			}
		})
	}
	wg.Wait()
	msgs := rec.Messages()
	if len(msgs) != 50 {
		t.Fatalf("recorded %d, want 50", len(msgs))
	}
	m := msgs[0]
	if m.PublisherID != "p" || m.EventType != "e" || m.Priority != PriorityInfo || m.Context["user_id"] != "u" ||
		!reflect.DeepEqual(m.Topics, []string{"a", "b"}) || m.Retry != -1 {
		t.Errorf("recorded %+v", m)
	}
	// Messages returns copies.
	msgs[0].Context["user_id"] = "changed"
	msgs[0].Payload[0] = 'X'
	if again := rec.Messages()[0]; again.Context["user_id"] != "u" || again.Payload[0] == 'X' {
		t.Error("Messages shares memory with the recorder")
	}
	rec.Reset()
	if got := rec.Messages(); len(got) != 0 {
		t.Errorf("after Reset: %d messages", len(got))
	}
}

func TestLogErrors(t *testing.T) {
	t.Parallel()
	h := &logRecords{}
	boom := errors.New("boom")
	failing := SinkFunc(func(context.Context, *Message) error { return boom })
	rec := NewRecorder()
	n := newNotifier(t, nil, "p", WithSinks(LogErrors(failing), rec), WithLogger(slog.New(h)))
	if err := n.Warn(t.Context(), "compute.x", map[string]string{"password": "p"}); err != nil {
		t.Fatalf("Warn with LogErrors = %v, want nil", err)
	}
	if len(rec.Messages()) != 1 {
		t.Error("the sink after the failing one was not called")
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Level != slog.LevelError {
		t.Fatalf("records = %v, want one error", recs)
	}
	if v, _ := attr(recs[0], "error"); v.Any() != boom {
		t.Errorf("logged error = %v", v)
	}
	if v, _ := attr(recs[0], "event_type"); v.String() != "compute.x" {
		t.Errorf("logged event_type = %v", v)
	}
	if _, ok := attr(recs[0], "payload"); ok {
		t.Error("the payload, which may hold secrets, was logged")
	}

	// Without LogErrors the errors of every sink are returned.
	other := errors.New("other")
	n = newNotifier(t, nil, "p", WithSinks(failing, rec, SinkFunc(func(context.Context, *Message) error { return other })))
	err := n.Info(t.Context(), "e", nil)
	if !errors.Is(err, boom) || !errors.Is(err, other) {
		t.Errorf("Info = %v, want both sink errors", err)
	}
	if len(rec.Messages()) != 2 {
		t.Error("a failing sink stopped the others")
	}
}
