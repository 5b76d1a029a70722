package config_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/config"
)

func TestReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "nova.conf")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[DEFAULT]\ntransport_url = rabbit://nova:SECRETPW@h1:5672/\nrpc_response_timeout = 30\n")
	var srcs config.Sources
	srcs.AddFile(path)
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	var got []int
	reload := srcs.Reloader(l, func(_ context.Context, m *config.Messaging) error {
		got = append(got, int(m.RPCResponseTimeout.Seconds()))
		return nil
	}, config.WithEnviron(nil))

	if err := reload(t.Context()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	write("[DEFAULT]\ntransport_url = rabbit://nova:SECRETPW@h1:5672/\nrpc_response_timeout = 90\nrpc_respnse_timeout = 1\n")
	if err := reload(t.Context()); err != nil {
		t.Fatalf("second reload: %v", err)
	}
	if len(got) != 2 || got[0] != 30 || got[1] != 90 {
		t.Errorf("apply saw timeouts %v, want [30 90]", got)
	}
	out := logs.String()
	if !strings.Contains(out, "config: reloaded") || !strings.Contains(out, "rpc_respnse_timeout") {
		t.Errorf("the reload did not log the configuration and its notice:\n%s", out)
	}
	if strings.Contains(out, "SECRETPW") {
		t.Errorf("the reload logged the password:\n%s", out)
	}

	// A broken file, or a failing apply, keeps the previous configuration.
	write("[DEFAULT]\nrpc_response_timeout = soon\n")
	if err := reload(t.Context()); err == nil {
		t.Error("reload of an invalid file succeeded")
	}
	write("[DEFAULT]\n")
	boom := errors.New("cannot change that while running")
	failing := srcs.Reloader(l, func(context.Context, *config.Messaging) error { return boom }, config.WithEnviron(nil))
	if err := failing(t.Context()); !errors.Is(err, boom) {
		t.Errorf("reload with a failing apply = %v", err)
	}
	if len(got) != 2 {
		t.Errorf("apply called for a broken file: %v", got)
	}
}
