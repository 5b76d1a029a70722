// Package brokertest gives tests a RabbitMQ virtual host of their own on
// the broker named by MESSAGING_RABBIT_URL, so that they never touch
// what other tests or users created.
package brokertest

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

// EnvURL names the environment variable with the broker's URL; make test
// sets it.
const EnvURL = "MESSAGING_RABBIT_URL"

// Ctl runs rabbitmqctl with args, bounded to a minute, and fails t with
// its output if it fails. It returns the output.
func Ctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Vhost creates a virtual host named prefix-<random hex> with all
// permissions for the URL's user (guest), deletes it when the test ends,
// and returns a transport URL to it and its name. It skips the test,
// loudly, when MESSAGING_RABBIT_URL is not set.
func Vhost(t testing.TB, prefix string) (url, vhost string) {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skip(EnvURL + " not set: skipping this RabbitMQ test (make test sets it)")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	vhost = prefix + "-" + hex.EncodeToString(b[:])
	Ctl(t, "add_vhost", vhost)
	t.Cleanup(func() { Ctl(t, "delete_vhost", vhost) })
	Ctl(t, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	return strings.TrimSuffix(base, "/") + "/" + vhost, vhost
}
