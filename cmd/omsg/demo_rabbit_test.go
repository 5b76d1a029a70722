package main

import (
	"strings"
	"testing"

	"github.com/go-oslo/messaging/internal/brokertest"
)

// rabbitVhost returns a URL to a virtual host of the test's own (see
// brokertest.Vhost).
func rabbitVhost(t *testing.T) string {
	t.Helper()
	url, _ := brokertest.Vhost(t, "omsg-cmd-test")
	return url
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
