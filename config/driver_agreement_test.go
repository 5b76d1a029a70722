package config_test

import (
	"strings"
	"testing"

	"github.com/go-oslo/messaging/config"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/rabbit"
)

// Every [oslo_messaging_rabbit] option this package merges into a
// transport URL must be one the RabbitMQ driver accepts, or opening the
// transport would fail: the two lists are kept apart, so this test keeps
// them in agreement.
func TestRabbitOptionsKnownToDriver(t *testing.T) {
	t.Parallel()
	opts := config.RabbitOptions()
	if len(opts) < 20 {
		t.Fatalf("RabbitOptions() = %d options, want the oslo.messaging rabbit group", len(opts))
	}
	for _, name := range opts {
		u, err := driver.ParseURL("rabbit://guest:guest@127.0.0.1:5672/?" + name + "=x")
		if err != nil {
			t.Fatal(err)
		}
		// "x" is not a valid value for most options: what matters is that
		// the driver knows the name.
		if _, err := rabbit.ConfigFromURL(u); err != nil && strings.Contains(err.Error(), "unknown option") {
			t.Errorf("config merges %s into the URL, but the RabbitMQ driver does not know it: %v", name, err)
		}
	}
}
