package rabbit

import (
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/drivertest"
)

// TestRabbitConformance runs the driver conformance suite, every feature
// declared, in a virtual host of its own.
func TestRabbitConformance(t *testing.T) {
	e := newEnv(t)
	// Replies to a closed caller give up after 1 s instead of 60.
	raw := e.url("kombu_missing_consumer_retry_timeout", "1")
	drivertest.Run(t, drivertest.Config{
		Open: func(t *testing.T) driver.RPCConn {
			// The suite closes the Conn; openURL's Close is a no-op then.
			return openURL(t, raw)
		},
		Features: drivertest.Features{Heartbeat: true, Mandatory: true, Persistent: true},
	})
}
