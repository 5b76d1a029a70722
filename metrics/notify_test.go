package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/metrics"
	"github.com/go-oslo/messaging/notify"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSink(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := notify.NewRecorder()
	ok, err := metrics.NewSink(reg, "recorder", rec)
	if err != nil {
		t.Fatal(err)
	}
	errSend := errors.New("send failed")
	failing, err := metrics.NewSink(reg, "failing", notify.SinkFunc(func(context.Context, *notify.Message) error { return errSend }))
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.NewNotifier(nil, "compute.host1", notify.WithSinks(ok, failing))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	for range 2 {
		if err := n.Info(ctx, "compute.instance.create.end", map[string]string{"id": "1"}); !errors.Is(err, errSend) {
			t.Fatalf("Info: %v, want %v", err, errSend)
		}
	}
	_ = n.Error(ctx, "compute.instance.create.error", nil)
	if got := len(rec.Messages()); got != 3 {
		t.Fatalf("recorder has %d messages, want 3", got)
	}

	const sent = "oslo_messaging_notifications_sent_total"
	checkValue(t, reg, sent, labels("sink", "recorder", "priority", "info", "event_type", "compute.instance.create.end", "outcome", "ok"), 2)
	checkValue(t, reg, sent, labels("sink", "failing", "priority", "info", "event_type", "compute.instance.create.end", "outcome", "error"), 2)
	checkValue(t, reg, sent, labels("sink", "recorder", "priority", "error", "event_type", "compute.instance.create.error", "outcome", "ok"), 1)

	if _, err := metrics.NewSink(reg, "nil", nil); err == nil {
		t.Error("NewSink(nil): no error")
	}
}

func TestNotifyHandler(t *testing.T) {
	tr := newTransport(t)
	reg := prometheus.NewRegistry()
	topic := unique("notifications")

	// The handler asks for one requeue of each notification, then
	// handles it.
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		done = make(chan struct{}, 4)
	)
	h, err := metrics.NotifyHandler(reg, "billing", func(_ context.Context, n *notify.Notification) error {
		mu.Lock()
		first := !seen[n.MessageID]
		seen[n.MessageID] = true
		mu.Unlock()
		if first {
			return notify.ErrRequeue
		}
		done <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: topic}}, []*notify.Endpoint{{Info: h}},
		notify.WithAllowRequeue(true), notify.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if err := lis.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- lis.Serve(context.Background()) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := lis.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, notify.ErrListenerClosed) {
			t.Errorf("Serve = %v, want ErrListenerClosed", err)
		}
	})

	n, err := notify.NewNotifier(tr, "compute.host1", notify.WithSinks(notify.MessagingV2()), notify.WithTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := n.Info(ctx, "compute.instance.create.end", nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("notifications not handled in time")
		}
	}

	const et = "compute.instance.create.end"
	const handled = "oslo_messaging_notifications_handled_total"
	waitValue(t, reg, handled, labels("handler", "billing", "priority", "info", "event_type", et, "outcome", "handled"), 2)
	checkValue(t, reg, handled, labels("handler", "billing", "priority", "info", "event_type", et, "outcome", "requeue"), 2)
	checkValue(t, reg, "oslo_messaging_notifications_received_total", labels("handler", "billing", "priority", "info", "event_type", et), 4)
	checkValue(t, reg, "oslo_messaging_notification_handler_duration_seconds", labels("handler", "billing", "priority", "info", "event_type", et), 4)
}

func TestNotifyHandlerOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	errHandle := errors.New("handler failed")
	h, err := metrics.NotifyHandler(reg, "direct", func(_ context.Context, n *notify.Notification) error {
		switch n.EventType {
		case "fail":
			return errHandle
		case "panic":
			panic("handler panic")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	if err := h(ctx, &notify.Notification{Priority: notify.PriorityWarn, EventType: "fail"}); !errors.Is(err, errHandle) {
		t.Errorf("handler = %v, want %v", err, errHandle)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on")
			}
		}()
		_ = h(ctx, &notify.Notification{Priority: notify.PriorityWarn, EventType: "panic"})
	}()
	const handled = "oslo_messaging_notifications_handled_total"
	checkValue(t, reg, handled, labels("handler", "direct", "priority", "warn", "event_type", "fail", "outcome", "error"), 1)
	checkValue(t, reg, handled, labels("handler", "direct", "priority", "warn", "event_type", "panic", "outcome", "panic"), 1)

	if _, err := metrics.NotifyHandler(reg, "nil", nil); err == nil {
		t.Error("NotifyHandler(nil): no error")
	}
}
