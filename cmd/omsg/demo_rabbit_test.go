package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// rabbitVhost creates a virtual host of the test's own on the broker of
// MESSAGING_RABBIT_URL and returns a URL to it; it deletes the vhost at
// cleanup. It skips loudly when the variable is unset.
func rabbitVhost(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MESSAGING_RABBIT_URL")
	if base == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: skipping this RabbitMQ test (make test sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	vh := "omsg-cmd-test-" + hex.EncodeToString(b[:])
	ctl := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
		}
	}
	ctl("add_vhost", vh)
	t.Cleanup(func() { ctl("delete_vhost", vh) })
	ctl("set_permissions", "-p", vh, "guest", ".*", ".*", ".*")
	return strings.TrimSuffix(base, "/") + "/" + vh
}

func TestRabbitDemo(t *testing.T) {
	url := rabbitVhost(t)
	code, out, errOut := runCmd(t, "demo", "--url", url)
	if code != exitOK {
		t.Fatalf("omsg demo over RabbitMQ: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	running, after, ok := strings.Cut(out, "What remains after a graceful stop")
	if !ok {
		t.Fatalf("transcript has no topology listing\n%s", out)
	}
	for _, want := range []string{"  test\t0\t2", "  test.server1\t0\t1", "  test.server2\t0\t1", "  test_fanout_", "  reply_", "  test_fanout\tfanout", "  openstack\ttopic"} {
		if !strings.Contains(running, want) {
			t.Errorf("topology while running lacks %q\n%s", want, running)
		}
	}
	if strings.Count(running, "  test_fanout_") != 2 {
		t.Errorf("want one fanout queue per server\n%s", running)
	}
	for _, gone := range []string{"test_fanout_", "reply_", "test_fanout\tfanout"} {
		if strings.Contains(after, gone) {
			t.Errorf("%q left behind after a graceful stop\n%s", gone, after)
		}
	}
	for _, kept := range []string{"  test\t0\t0", "  test.server1\t0\t0", "  openstack\ttopic"} {
		if !strings.Contains(after, kept) {
			t.Errorf("after stop, want %q kept as oslo keeps it\n%s", kept, after)
		}
	}
	if strings.Contains(out+errOut, "guest:guest") {
		t.Error("the transcript shows the password")
	}
}
