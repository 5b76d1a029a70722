package raw

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/bench"
)

func TestMessageCodec(t *testing.T) {
	m := message{Seq: 42, Cargo: "abc", ClientTS: 1700000000.25, ServerTS: 1700000000.5, ReturnTS: 0}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `[42,"abc",1700000000.25,1700000000.5,0]`; got != want {
		t.Fatalf("encode = %s, want %s", got, want)
	}
	back, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if *back != m {
		t.Fatalf("decode(encode(m)) = %+v, want %+v", *back, m)
	}
	// As Python's json.dumps writes a fresh simulator message.
	py, err := decodeMessage([]byte(`[3, "xyz", 1700000001.123456, 0, 0]`))
	if err != nil {
		t.Fatal(err)
	}
	if py.Seq != 3 || py.Cargo != "xyz" || py.ClientTS != 1700000001.123456 || py.ServerTS != 0 {
		t.Fatalf("decode(python) = %+v", *py)
	}
	for _, bad := range []string{``, `{}`, `null`, `[1, "a", 0, 0]`, `[1, "a", 0, 0, 0, 0]`, `[1, 2, 0, 0, 0]`, `["1", "a", 0, 0, 0]`, `[1, "a", "x", 0, 0]`, `[1, "a"`} {
		if _, err := decodeMessage([]byte(bad)); !errors.Is(err, errNotMessage) {
			t.Errorf("decode(%q) = %v, want errNotMessage", bad, err)
		}
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		url  string
		want []endpoint
	}{
		{"rabbit://u:p@h:1234/v", []endpoint{{addr: "h:1234", user: "u", pass: "p", vhost: "v"}}},
		{"rabbit://h/", []endpoint{{addr: "h:5672", user: "guest", pass: "guest", vhost: "/"}}},
		{"rabbit://", []endpoint{{addr: "localhost:5672", user: "guest", pass: "guest", vhost: "/"}}},
		{"kombu://a:b@h1,c:d@[::1]:5673//", []endpoint{
			{addr: "h1:5672", user: "a", pass: "b", vhost: "/"},
			{addr: "[::1]:5673", user: "c", pass: "d", vhost: "/"},
		}},
		{"rabbit://u:p%40x@h/v%2Fw?ssl=0", []endpoint{{addr: "h:5672", user: "u", pass: "p@x", vhost: "v/w"}}},
		{"amqp://guest:guest@localhost:5672/", []endpoint{{addr: "localhost:5672", user: "guest", pass: "guest", vhost: "/"}}},
		{"amqp://u:p@h/v", []endpoint{{addr: "h:5672", user: "u", pass: "p", vhost: "v"}}},
		{"AMQP://h/%2f", []endpoint{{addr: "h:5672", user: "guest", pass: "guest", vhost: "/"}}},
	}
	for _, tt := range tests {
		got, err := endpoints(tt.url)
		if err != nil {
			t.Errorf("endpoints(%q): %v", tt.url, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("endpoints(%q) = %+v, want %+v", tt.url, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("endpoints(%q)[%d] = %+v, want %+v", tt.url, i, got[i], tt.want[i])
			}
		}
	}
	for _, bad := range []string{"", "localhost:5672", "http://h/", "amqps://h/", "rabbit://h/?ssl=1", "rabbit://h:99999/", "amqp://u:secret@h:x/"} {
		_, err := endpoints(bad)
		if !errors.Is(err, driver.ErrInvalidURL) || !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("endpoints(%q) = %v, want driver.ErrInvalidURL", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("endpoints(%q): the error shows the password: %v", bad, err)
		}
	}
}

type nopRecorder struct{}

func (nopRecorder) Record(bench.Sample) {}

func validClient() *bench.Config {
	return &bench.Config{
		URL:      "rabbit://guest:guest@127.0.0.1:5672/",
		Topic:    "t",
		Server:   "s",
		Threads:  1,
		Messages: 1,
		Payloads: []string{"abc"},
	}
}

// TestInvalidConfig checks that bad configurations fail before any
// network step, with bench.ErrInvalidConfig.
func TestInvalidConfig(t *testing.T) {
	edit := func(f func(c *bench.Config)) *bench.Config {
		c := validClient()
		f(c)
		return c
	}
	clients := map[string]*bench.Config{
		"nil":            nil,
		"no threads":     edit(func(c *bench.Config) { c.Threads = 0 }),
		"negative count": edit(func(c *bench.Config) { c.Messages = -1 }),
		"no payloads":    edit(func(c *bench.Config) { c.Payloads = nil }),
		"negative time":  edit(func(c *bench.Config) { c.Duration = -time.Second }),
		"neg timeout":    edit(func(c *bench.Config) { c.Timeout = -time.Second }),
		"neg wait after": edit(func(c *bench.Config) { c.WaitAfter = -time.Second }),
		"neg exit wait":  edit(func(c *bench.Config) { c.ExitWait = -time.Second }),
		"bad sync":       edit(func(c *bench.Config) { c.Sync = "always" }),
		"empty target":   edit(func(c *bench.Config) { c.Targets = []string{".s"} }),
		"no target":      edit(func(c *bench.Config) { c.Topic, c.Targets = "", nil }),
	}
	ctx := t.Context()
	for name, cfg := range clients {
		if err := RPCClient(ctx, cfg, nopRecorder{}); !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("RPCClient(%s) = %v, want ErrInvalidConfig", name, err)
		}
		if err := NotifyClient(ctx, cfg, nopRecorder{}); !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("NotifyClient(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	fanoutCall := edit(func(c *bench.Config) { c.Fanout = true })
	if err := RPCClient(ctx, fanoutCall, nopRecorder{}); !errors.Is(err, bench.ErrInvalidConfig) {
		t.Errorf("RPCClient(fanout call) = %v, want ErrInvalidConfig", err)
	}
	if err := RPCClient(ctx, validClient(), nil); !errors.Is(err, bench.ErrInvalidConfig) {
		t.Errorf("RPCClient(nil recorder) = %v, want ErrInvalidConfig", err)
	}
	servers := map[string]*bench.Config{
		"nil":         nil,
		"no topic":    edit(func(c *bench.Config) { c.Topic = "" }),
		"neg wait":    edit(func(c *bench.Config) { c.WaitBefore = -time.Second }),
		"neg timeout": edit(func(c *bench.Config) { c.Duration = -time.Second }),
	}
	for name, cfg := range servers {
		if err := RPCServer(ctx, cfg, nil, nopRecorder{}); !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("RPCServer(%s) = %v, want ErrInvalidConfig", name, err)
		}
		if err := NotifyServer(ctx, cfg, nil, nopRecorder{}); !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("NotifyServer(%s) = %v, want ErrInvalidConfig", name, err)
		}
	}
	badURL := edit(func(c *bench.Config) { c.URL = "http://h/" })
	for name, err := range map[string]error{
		"RPCServer":    RPCServer(ctx, badURL, nil, nopRecorder{}),
		"RPCClient":    RPCClient(ctx, badURL, nopRecorder{}),
		"NotifyServer": NotifyServer(ctx, badURL, nil, nopRecorder{}),
		"NotifyClient": NotifyClient(ctx, badURL, nopRecorder{}),
	} {
		if !errors.Is(err, driver.ErrInvalidURL) || !errors.Is(err, bench.ErrInvalidConfig) {
			t.Errorf("%s(bad URL) = %v, want driver.ErrInvalidURL and bench.ErrInvalidConfig", name, err)
		}
	}
}

// TestUnreachable checks the error of a broker that refuses connections,
// and of a context already done, for each mode.
func TestUnreachable(t *testing.T) {
	cfg := validClient()
	cfg.URL = "rabbit://guest:guest@127.0.0.1:1/"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ready := func() { t.Error("ready called for an unreachable broker") }
	for name, err := range map[string]error{
		"RPCServer":    RPCServer(ctx, cfg, ready, nopRecorder{}),
		"RPCClient":    RPCClient(ctx, cfg, nopRecorder{}),
		"NotifyServer": NotifyServer(ctx, cfg, ready, nopRecorder{}),
		"NotifyClient": NotifyClient(ctx, cfg, nopRecorder{}),
	} {
		if !errors.Is(err, bench.ErrUnreachable) {
			t.Errorf("%s(port 1) = %v, want bench.ErrUnreachable", name, err)
		}
	}
	done, stop := context.WithCancel(t.Context())
	stop()
	cfg.URL = "rabbit://guest:guest@127.0.0.1:5672/"
	for name, err := range map[string]error{
		"RPCServer":    RPCServer(done, cfg, ready, nopRecorder{}),
		"RPCClient":    RPCClient(done, cfg, nopRecorder{}),
		"NotifyServer": NotifyServer(done, cfg, ready, nopRecorder{}),
		"NotifyClient": NotifyClient(done, cfg, nopRecorder{}),
	} {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s(cancelled) = %v, want context.Canceled", name, err)
		}
	}
}
