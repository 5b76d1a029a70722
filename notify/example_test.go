package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/notify"
)

// A service sends notifications that a listener, here in the same
// process, receives.
func Example() {
	tr, err := messaging.Open("memory:///example-notify")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()

	// The consumer: instance events at info priority.
	received := make(chan string, 1)
	ep := &notify.Endpoint{
		Filter: notify.Filter{EventType: `compute\.instance\.`},
		Info: func(ctx context.Context, n *notify.Notification) error {
			md, _ := messaging.FromIncomingContext(ctx)
			received <- fmt.Sprintf("%s from %s: %s (request %s)", n.EventType, n.PublisherID, n.Payload, md["request_id"])
			return nil
		},
	}
	l, err := notify.NewListener(tr, []messaging.Target{{Topic: "notifications"}}, []*notify.Endpoint{ep})
	if err != nil {
		log.Fatal(err)
	}
	if err := l.Listen(ctx); err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()

	// The producer.
	n, err := notify.NewNotifier(tr, "compute.host1", notify.WithSinks(notify.MessagingV2()))
	if err != nil {
		log.Fatal(err)
	}
	rctx := messaging.NewOutgoingContext(ctx, messaging.Metadata{"request_id": "req-1", "auth_token": "secret"})
	if err := n.Info(rctx, "compute.instance.create.end", map[string]string{"instance_id": "i-1"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-received)

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(errors.Is(<-served, notify.ErrListenerClosed))
	// Output:
	// compute.instance.create.end from compute.host1: {"instance_id": "i-1"} (request req-1)
	// true
}

// A Recorder keeps what a notifier sends, for tests. Only oslo's safe
// context keys are sent: the auth token is dropped.
func ExampleNotifier_Info() {
	tr, err := messaging.Open("memory:///example-info")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	rec := notify.NewRecorder()
	n, err := notify.NewNotifier(tr, "compute.host1", notify.WithSinks(rec))
	if err != nil {
		log.Fatal(err)
	}
	ctx := messaging.NewOutgoingContext(context.Background(),
		messaging.Metadata{"request_id": "req-1", "auth_token": "secret"})
	if err := n.Info(ctx, "compute.instance.create.end", map[string]any{"instance_id": "i-1"}); err != nil {
		log.Fatal(err)
	}
	for _, m := range rec.Messages() {
		fmt.Println(m.Priority, m.PublisherID, m.EventType, string(m.Payload), m.Context)
	}
	// Output: info compute.host1 compute.instance.create.end {"instance_id":"i-1"} map[request_id:req-1]
}

// Routing sends notifications to sinks chosen by event type and
// priority, from oslo's routing configuration file.
func ExampleRouting() {
	cfg, err := notify.ParseRoutingConfig([]byte(`
group_1:
    messaging:
        accepted_priorities: ['info', 'warn', 'error']
    log:
        accepted_events: ['compute.instance.exists']
`))
	if err != nil {
		log.Fatal(err)
	}
	messagingSink, logSink := notify.NewRecorder(), notify.NewRecorder()
	router, err := notify.Routing(cfg, map[string]notify.Sink{"messaging": messagingSink, "log": logSink})
	if err != nil {
		log.Fatal(err)
	}
	n, err := notify.NewNotifier(nil, "compute.host1", notify.WithSinks(router))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	_ = n.Info(ctx, "compute.instance.create.end", nil)
	_ = n.Debug(ctx, "compute.instance.exists", nil)
	_ = n.Error(ctx, "compute.instance.exists", nil)
	_ = n.Debug(ctx, "compute.instance.update", nil)
	for _, m := range messagingSink.Messages() {
		fmt.Println("messaging:", m.Priority, m.EventType)
	}
	for _, m := range logSink.Messages() {
		fmt.Println("log:", m.Priority, m.EventType)
	}
	// Output:
	// messaging: info compute.instance.create.end
	// messaging: error compute.instance.exists
	// log: debug compute.instance.exists
	// log: error compute.instance.exists
}

// LogErrors gives oslo's behaviour, where a notification that cannot
// be sent is logged and never fails the caller.
func ExampleLogErrors() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "message_id" {
				return slog.Attr{}
			}
			return a
		},
	}))
	broken := notify.SinkFunc(func(context.Context, *notify.Message) error {
		return errors.New("broker unreachable")
	})
	n, err := notify.NewNotifier(nil, "compute.host1", notify.WithSinks(notify.LogErrors(broken)), notify.WithLogger(logger))
	if err != nil {
		log.Fatal(err)
	}
	err = n.Error(context.Background(), "compute.instance.delete.error", nil)
	fmt.Println("Error returned", err)
	// Output:
	// level=ERROR msg="notify: problem attempting to send to notification system" event_type=compute.instance.delete.error priority=error publisher_id=compute.host1 error="broker unreachable"
	// Error returned <nil>
}

// A batch listener receives notifications in batches, here of up to 10
// or whatever arrived within 100ms of the first.
func ExampleNewBatchListener() {
	tr, err := messaging.Open("memory:///example-batch")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	sizes := make(chan int, 10)
	ep := &notify.BatchEndpoint{
		Sample: func(ctx context.Context, batch []*notify.Notification) error {
			sizes <- len(batch)
			return nil
		},
	}
	l, err := notify.NewBatchListener(tr, []messaging.Target{{Topic: "metering"}}, []*notify.BatchEndpoint{ep}, 10, 100*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Listen(ctx); err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(ctx) }()
	defer func() {
		if err := l.Shutdown(ctx); err != nil {
			log.Print(err)
		}
		if err := <-served; !errors.Is(err, notify.ErrListenerClosed) {
			log.Print(err)
		}
	}()

	n, err := notify.NewNotifier(tr, "ceilometer", notify.WithSinks(notify.MessagingV2()), notify.WithTopics("metering"))
	if err != nil {
		log.Fatal(err)
	}
	for i := range 23 {
		if err := n.Sample(ctx, "cpu", map[string]int{"percent": i}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(<-sizes, <-sizes, <-sizes)
	// Output: 10 10 3
}
