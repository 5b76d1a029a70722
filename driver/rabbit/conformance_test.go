package rabbit

import (
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/drivertest"
)

// TestRabbitConformance runs the driver conformance suite, every feature
// declared and the notification tests included, in a virtual host of
// its own.
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
		// Messages that are not oslo's, published as oslo publishes.
		Inject: func(t *testing.T, exchange, routingKey string, body []byte) {
			inject(t, e.rawFor(t), exchange, routingKey, body, nil)
		},
	})
}
