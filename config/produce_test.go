package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

func TestOpenTransports(t *testing.T) {
	m, _ := fromText(t, `[DEFAULT]
transport_url = memory:///config-rpc
control_exchange = nova
[oslo_messaging_notifications]
transport_url = memory:///config-notifications
`)
	rt, nt, err := m.OpenTransports()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	defer nt.Close()
	if rt == nt || rt.URL() != "memory:///config-rpc" || nt.URL() != "memory:///config-notifications" {
		t.Errorf("transports on %q and %q", rt.URL(), nt.URL())
	}
	if rt.ControlExchange() != "nova" || nt.ControlExchange() != "nova" {
		t.Errorf("control exchanges %q, %q; want nova", rt.ControlExchange(), nt.ControlExchange())
	}
	// Options given to OpenTransports come after the configuration's.
	rt2, err := m.OpenRPCTransport(messaging.WithControlExchange("override"))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if rt2.ControlExchange() != "override" {
		t.Errorf("control exchange %q, want the caller's", rt2.ControlExchange())
	}
}

func TestOpenTransportsErrors(t *testing.T) {
	for _, m := range []*Messaging{
		{TransportURL: "nosuch://nova:hunter2@h/"},
		{TransportURL: "memory://", Notifications: Notifications{TransportURL: "nosuch://nova:hunter2@h/"}},
		{TransportURL: "rabbit://nova:hunter2@h:port/"},
		{TransportURL: ""},
	} {
		rt, nt, err := m.OpenTransports()
		if err == nil || rt != nil || nt != nil {
			t.Errorf("OpenTransports(%v) = %v, %v, %v", m.TransportURL, rt, nt, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q shows a password", err)
		}
	}
}

func TestRPCOptions(t *testing.T) {
	m, _ := fromText(t, "[DEFAULT]\ntransport_url = memory:///config-rpc-options\nrpc_response_timeout = 1\nexecutor_thread_pool_size = 2\nrpc_ping_enabled = true\n")
	tr, err := m.OpenRPCTransport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: "svc", Server: "h1"}, []*rpc.Endpoint{{}}, m.ServerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := srv.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Error(err)
		}
	}()

	client, err := rpc.NewClient(tr, messaging.Target{Topic: "svc"}, m.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	// rpc_ping_enabled made the server answer oslo's ping.
	var pong string
	if err := client.Call(ctx, "oslo_rpc_server_ping", nil, &pong); err != nil || pong != "pong" {
		t.Fatalf("ping = %q, %v", pong, err)
	}
	// rpc_response_timeout bounds a call that no server answers.
	start := time.Now()
	err = client.Prepare(rpc.Topic("nobody")).Call(ctx, "x", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 20*time.Second {
		t.Errorf("call to nobody: %v after %v", err, time.Since(start))
	}

	if got := len(m.ListenerOptions()); got != 1 {
		t.Errorf("ListenerOptions() has %d options", got)
	}
	var zero Messaging
	if len(zero.ClientOptions()) != 0 || len(zero.ServerOptions()) != 1 || len(zero.ListenerOptions()) != 0 {
		t.Error("a zero Messaging produces options beyond WithPing(false)")
	}
}

func TestNotifierOptions(t *testing.T) {
	m, _ := fromText(t, `[DEFAULT]
transport_url = memory:///config-notifier
[oslo_messaging_notifications]
driver = test
driver = noop
driver = test
topics = notifications, billing
retry = 3
`)
	tr, err := m.OpenNotificationTransport()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rec := notify.NewRecorder()
	opts, err := m.NotifierOptions(map[string]notify.Sink{"test": rec})
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.NewNotifier(tr, "compute.host1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Info(t.Context(), "compute.instance.create.end", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	msgs := rec.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the test sink got %d messages, want 1 (repeated drivers count once)", len(msgs))
	}
	if got := msgs[0]; !reflect.DeepEqual(got.Topics, []string{"notifications", "billing"}) || got.Retry != 3 || !got.ResendUnconfirmed {
		t.Errorf("message topics %q, retry %d, resend %v", got.Topics, got.Retry, got.ResendUnconfirmed)
	}

	// Without retry in the configuration, notify's default stays.
	m.Notifications.Retry = nil
	opts, _ = m.NotifierOptions(map[string]notify.Sink{"test": rec})
	n, _ = notify.NewNotifier(tr, "compute.host1", opts...)
	rec.Reset()
	_ = n.Info(t.Context(), "x", nil)
	if got := rec.Messages(); len(got) != 1 || got[0].ResendUnconfirmed || got[0].Retry != -1 {
		t.Errorf("default retry: %+v", got)
	}
}

func TestSinks(t *testing.T) {
	dir := t.TempDir()
	routing := filepath.Join(dir, "routing.yaml")
	if err := os.WriteFile(routing, []byte(`group_1:
    messagingv2:
        accepted_priorities: ['info', 'error']
    log:
        accepted_events: ['compute.instance.exists']
`), 0o644); err != nil {
		t.Fatal(err)
	}
	badRouting := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(badRouting, []byte("g:\n    nosuch:\n        accepted_events: ['x']\n"), 0o644)
	selfRouting := filepath.Join(dir, "self.yaml")
	_ = os.WriteFile(selfRouting, []byte("g:\n    routing:\n        accepted_events: ['x']\n"), 0o644)

	custom := notify.NewRecorder()
	for _, tt := range []struct {
		name    string
		drivers []string
		routing string
		custom  map[string]notify.Sink
		want    int
		err     string
	}{
		{"none", nil, "", nil, 0, ""},
		{"all built in", []string{"messagingv2", "messaging", "log", "noop"}, "", nil, 4, ""},
		{"repeated", []string{"messagingv2", "messagingv2", "", "log"}, "", nil, 2, ""},
		{"routing", []string{"routing"}, routing, nil, 1, ""},
		{"custom", []string{"mine", "test"}, "", map[string]notify.Sink{"mine": custom, "test": custom}, 2, ""},
		{"test needs a sink", []string{"test"}, "", nil, 0, "pass a sink"},
		{"unknown", []string{"messagingv3"}, "", nil, 0, `unknown notification driver "messagingv3"`},
		{"routing without config", []string{"routing"}, "", nil, 0, "needs [oslo_messaging_notifications] routing_config"},
		{"routing config missing", []string{"routing"}, filepath.Join(dir, "missing.yaml"), nil, 0, "no such file"},
		{"routing to unknown", []string{"routing"}, badRouting, nil, 0, `unknown notification driver "nosuch"`},
		{"routing to itself", []string{"routing"}, selfRouting, nil, 0, "cannot route to itself"},
	} {
		m := Default()
		m.Notifications.Drivers = tt.drivers
		m.Notifications.RoutingConfig = tt.routing
		sinks, err := m.Sinks(tt.custom)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || len(sinks) != tt.want {
			t.Errorf("%s: %d sinks, %v; want %d", tt.name, len(sinks), err, tt.want)
		}
	}

	// A custom sink replaces the built-in one of its name.
	m := Default()
	m.Notifications.Drivers = []string{"log"}
	m.TransportURL = "memory:///config-sinks"
	opts, err := m.NotifierOptions(map[string]notify.Sink{"log": custom})
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.NewNotifier(nil, "p", opts...)
	if err != nil {
		t.Fatal(err)
	}
	custom.Reset()
	_ = n.Info(t.Context(), "e", nil)
	if len(custom.Messages()) != 1 {
		t.Error("the custom log sink was not used")
	}
}
