package metrics_test

import (
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEventHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h, err := metrics.EventHandler(reg)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := metrics.EventHandler(reg) // a second transport on the same registry
	if err != nil {
		t.Fatal(err)
	}
	h(driver.Event{Kind: driver.EventDisconnected})
	h(driver.Event{Kind: driver.EventReconnected})
	h2(driver.Event{Kind: driver.EventReconnected})
	h(driver.Event{Kind: driver.EventReplyDropped})
	h(driver.Event{Kind: driver.EventLateReply})
	want := `
# HELP oslo_messaging_driver_events_total Events of the driver's connections, by kind (connected, disconnected, reconnected, reply_dropped, late_reply).
# TYPE oslo_messaging_driver_events_total counter
oslo_messaging_driver_events_total{kind="disconnected"} 1
oslo_messaging_driver_events_total{kind="late_reply"} 1
oslo_messaging_driver_events_total{kind="reconnected"} 2
oslo_messaging_driver_events_total{kind="reply_dropped"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oslo_messaging_driver_events_total"); err != nil {
		t.Error(err)
	}
	if _, err := metrics.EventHandler(reg, nil); err == nil {
		t.Error("EventHandler with a nil option succeeded")
	}
}

type unacked int

func (u *unacked) Unacked() int { return int(*u) }

func TestUnackedCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	n := unacked(3)
	reg.MustRegister(metrics.NewUnackedCollector(&n, prometheus.Labels{"conn": "main"}))
	check := func(v string) {
		t.Helper()
		want := `
# HELP oslo_messaging_driver_unacked_deliveries Deliveries that the driver's listeners hold unacknowledged: waiting for the application, or handed to it and not yet settled.
# TYPE oslo_messaging_driver_unacked_deliveries gauge
oslo_messaging_driver_unacked_deliveries{conn="main"} ` + v + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "oslo_messaging_driver_unacked_deliveries"); err != nil {
			t.Error(err)
		}
	}
	check("3")
	n = 1
	check("1")
}
