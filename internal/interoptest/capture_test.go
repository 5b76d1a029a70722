package interoptest

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// binding is an exchange and key that a capture queue is bound to. The
// exchange is declared with oslo's flags first, so that the capture can
// be set up before any peer declared it.
type binding struct {
	exchange   string
	kind       string
	autoDelete bool
	key        string
}

// bindControl binds to a control exchange (topic, not durable, not
// auto-delete: oslo's defaults).
func bindControl(exchange, key string) binding {
	return binding{exchange: exchange, kind: amqp.ExchangeTopic, key: key}
}

// bindFanout binds to the fanout exchange of topic (fanout, auto-delete).
func bindFanout(topic string) binding {
	return binding{exchange: topic + "_fanout", kind: amqp.ExchangeFanout, autoDelete: true}
}

// capture is a queue of our own, on a plain AMQP connection, that
// receives a copy of what the peers publish (through its bindings) and
// the replies of requests we publish ourselves (as their reply queue).
type capture struct {
	ch         *amqp.Channel
	queue      string
	deliveries <-chan amqp.Delivery
}

func (e *env) newCapture(binds ...binding) *capture {
	e.t.Helper()
	conn, err := amqp.DialConfig(e.s.amqpURL(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		e.t.Fatalf("capture: dial: %v", err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		e.t.Fatalf("capture: channel: %v", err)
	}
	c := &capture{ch: ch, queue: "capture_" + wire.NewID()}
	// Exclusive: the broker deletes it with the connection.
	if _, err := ch.QueueDeclare(c.queue, false, true, true, false, nil); err != nil {
		e.t.Fatalf("capture: declare: %v", err)
	}
	for _, b := range binds {
		if err := ch.ExchangeDeclare(b.exchange, b.kind, false, b.autoDelete, false, false, nil); err != nil {
			e.t.Fatalf("capture: declare exchange %s: %v", b.exchange, err)
		}
		if err := ch.QueueBind(c.queue, b.key, b.exchange, false, nil); err != nil {
			e.t.Fatalf("capture: bind to %s with %q: %v", b.exchange, b.key, err)
		}
	}
	if c.deliveries, err = ch.Consume(c.queue, "", true, true, false, false, nil); err != nil {
		e.t.Fatalf("capture: consume: %v", err)
	}
	return c
}

// next returns the next captured message, failing t when ctx ends first.
func (c *capture) next(t *testing.T, ctx context.Context) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-c.deliveries:
		if !ok {
			t.Fatal("capture: the consumer stopped")
		}
		return d
	case <-ctx.Done():
		t.Fatalf("capture: nothing arrived: %v", ctx.Err())
	}
	return amqp.Delivery{}
}

// publishRequest publishes req as an oslo request body, with oslo's
// properties, to exchange with routing key key.
func (c *capture) publishRequest(t *testing.T, ctx context.Context, exchange, key string, req *driver.Request) {
	t.Helper()
	body, err := wire.EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp.Persistent, Body: body}
	if err := c.ch.PublishWithContext(ctx, exchange, key, false, false, msg); err != nil {
		t.Fatalf("capture: publish the request: %v", err)
	}
}
