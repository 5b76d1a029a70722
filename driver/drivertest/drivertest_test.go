package drivertest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/drivertest"
	"github.com/go-oslo/messaging/driver/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun runs the suite against the memory driver, with every feature
// and with none, so that the suite's own code paths are all exercised.
func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features drivertest.Features
	}{
		{"all", drivertest.Features{Heartbeat: true, Mandatory: true, Persistent: true}},
		{"none", drivertest.Features{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := memory.NewBroker()
			drivertest.Run(t, drivertest.Config{
				Open:     func(*testing.T) driver.RPCConn { return b.Conn() },
				Features: tc.features,
			})
		})
	}
}
