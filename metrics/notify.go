package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/go-oslo/messaging/notify"
	"github.com/prometheus/client_golang/prometheus"
)

// NewSink returns a notify.Sink that sends with s and counts the
// notifications it is given by priority, event type and outcome (ok,
// or error when s returns an error), under the label sink=name, such as
// "messagingv2". It fails if the metrics cannot be registered on reg
// (nil means prometheus.DefaultRegisterer) or an option is invalid.
//
// The returned sink hides what notify knows of s: a notifier whose
// sinks publish through the transport checks the transport when it is
// made (notify.NewNotifier), and one with only Noop sinks reports
// itself disabled. Behind NewSink, a missing transport is reported by
// each Send instead, and a Noop sink counts as enabled.
func NewSink(reg prometheus.Registerer, name string, s notify.Sink, opts ...Option) (notify.Sink, error) {
	if s == nil {
		return nil, errors.New("metrics: NewSink with a nil sink")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	sent, err := register(registerer(reg), c.counter("", "notifications_sent_total",
		"Notifications given to a sink, by sink, priority, event type and outcome (ok or error).",
		"sink", "priority", "event_type", "outcome"))
	if err != nil {
		return nil, err
	}
	return notify.SinkFunc(func(ctx context.Context, m *notify.Message) error {
		err := s.Send(ctx, m)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		sent.WithLabelValues(name, string(m.Priority), m.EventType, outcome).Inc()
		return err
	}), nil
}

// NotifyHandler returns a notify.HandlerFunc that runs h and records
// each notification it is given, under the label handler=name: received
// at the start, handled with its outcome and duration at the end. The
// outcome is "handled" when h returns nil, "requeue" when its error
// matches notify.ErrRequeue, "error" for any other error and "panic"
// when it panics (the panic goes on to the listener, which recovers it).
// Whether a requeue is honoured depends on the listener
// (notify.WithAllowRequeue). A notification given to several handlers
// is recorded by each.
//
// It fails if the metrics cannot be registered on reg (nil means
// prometheus.DefaultRegisterer) or an option is invalid.
func NotifyHandler(reg prometheus.Registerer, name string, h notify.HandlerFunc, opts ...Option) (notify.HandlerFunc, error) {
	if h == nil {
		return nil, errors.New("metrics: NotifyHandler with a nil handler")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	reg = registerer(reg)
	received, err := register(reg, c.counter("", "notifications_received_total",
		"Notifications given to a handler, by handler, priority and event type.",
		"handler", "priority", "event_type"))
	if err != nil {
		return nil, err
	}
	handled, err := register(reg, c.counter("", "notifications_handled_total",
		"Notifications a handler finished, by handler, priority, event type and outcome (handled, requeue, error or panic).",
		"handler", "priority", "event_type", "outcome"))
	if err != nil {
		return nil, err
	}
	duration, err := register(reg, c.histogram("", "notification_handler_duration_seconds",
		"Time a handler took for a notification, by handler, priority and event type.",
		"handler", "priority", "event_type"))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, n *notify.Notification) (err error) {
		p, et := string(n.Priority), n.EventType
		received.WithLabelValues(name, p, et).Inc()
		start := time.Now()
		panicked := true
		defer func() {
			duration.WithLabelValues(name, p, et).Observe(time.Since(start).Seconds())
			outcome := "handled"
			switch {
			case panicked:
				outcome = "panic"
			case errors.Is(err, notify.ErrRequeue):
				outcome = "requeue"
			case err != nil:
				outcome = "error"
			}
			handled.WithLabelValues(name, p, et, outcome).Inc()
		}()
		err = h(ctx, n)
		panicked = false
		return err
	}, nil
}
