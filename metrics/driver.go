package metrics

import (
	"maps"

	"github.com/go-oslo/messaging/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// EventHandler returns a handler of driver events, for
// messaging.WithEventHandler, that counts them by kind (connected,
// disconnected, reconnected, reply_dropped, late_reply: see
// driver.EventKind). It fails if the counter cannot be registered on reg
// (nil means prometheus.DefaultRegisterer) or an option is invalid.
// Several transports may share one handler or one registry.
func EventHandler(reg prometheus.Registerer, opts ...Option) (func(driver.Event), error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	events, err := register(registerer(reg), c.counter("driver", "events_total",
		"Events of the driver's connections, by kind (connected, disconnected, reconnected, reply_dropped, late_reply).",
		"kind"))
	if err != nil {
		return nil, err
	}
	return func(ev driver.Event) { events.WithLabelValues(string(ev.Kind)).Inc() }, nil
}

// An UnackedCounter reports how many deliveries a driver connection
// holds unacknowledged, as (*rabbit.Conn).Unacked does.
type UnackedCounter interface {
	Unacked() int
}

// NewUnackedCollector returns a gauge of src.Unacked(), read at each
// scrape, to be registered on a prometheus.Registerer:
//
//	oslo_messaging_driver_unacked_deliveries
//
// Its constant labels are those of [WithConstLabels] and labels; give
// each connection of a registry different labels. Of the options, only
// [WithNamespace] and [WithConstLabels] apply.
func NewUnackedCollector(src UnackedCounter, labels prometheus.Labels, opts ...Option) prometheus.Collector {
	c := &config{namespace: DefaultNamespace}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	cl := prometheus.Labels{}
	maps.Copy(cl, c.constLabels)
	maps.Copy(cl, labels)
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: c.namespace, Subsystem: "driver", Name: "unacked_deliveries", ConstLabels: cl,
		Help: "Deliveries that the driver's listeners hold unacknowledged: waiting for the application, or handed to it and not yet settled.",
	}, func() float64 { return float64(src.Unacked()) })
}
