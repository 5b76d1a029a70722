package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// A Sink delivers the notifications of a [Notifier]: oslo's
// notification driver. The package provides [MessagingV2], [Messaging],
// [Log], [Noop], [Routing] and [Recorder]; any type with a Send method
// can be one.
//
// Send is called once per notification, by the goroutine calling
// [Notifier.Notify], possibly from many goroutines at once: a Sink must
// be safe for concurrent use. It must not modify m or keep it after
// returning, since m is shared by the notifier's sinks; it may keep
// copies of m's fields.
type Sink interface {
	Send(ctx context.Context, m *Message) error
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(ctx context.Context, m *Message) error

// Send calls f(ctx, m).
func (f SinkFunc) Send(ctx context.Context, m *Message) error { return f(ctx, m) }

// Message is one notification on its way to the sinks of a Notifier,
// with what the messaging sinks need to publish it.
type Message struct {
	// Notification is the message and its sanitised, serialized context.
	Notification
	// Topics are the notifier's topics (see [WithTopics]).
	Topics []string
	// Exchange is the exchange to publish to; "" is the transport's
	// control exchange (see [WithExchange]).
	Exchange string
	// Retry bounds the connection-level retries of each publish:
	// negative retries until the context is done (the default), 0 not
	// at all, n n times. ResendUnconfirmed is true when the retries were
	// chosen with [WithRetry] or [Retry], which also allows publishing
	// again a message whose confirm was lost (see [WithRetry]).
	Retry             int
	ResendUnconfirmed bool
	// Transport is the notifier's transport; nil for a notifier made
	// without one.
	Transport *messaging.Transport
	// Logger is the notifier's logger, never nil.
	Logger *slog.Logger
}

// transportUser is implemented by sinks that publish through the
// notifier's transport, so that NewNotifier can check the transport.
type transportUser interface {
	usesTransport() bool
}

func usesTransport(s Sink) bool {
	u, ok := s.(transportUser)
	return ok && u.usesTransport()
}

// messagingSink publishes through the transport's NotifyConn.
type messagingSink struct{ envelope bool }

// MessagingV2 returns the sink that publishes notifications on the
// notifier's transport in oslo's 2.0 envelope: oslo's messagingv2
// driver, the one to use. Each notification is published to every
// topic of the notifier, as "<topic>.<priority>" on the notifier's
// exchange (by default the transport's control exchange), with the
// same message_id and a new _unique_id each time. Send returns once the
// broker has accepted every copy; its errors, joined over the topics,
// are the driver's (messaging.ErrDeliveryFailure,
// messaging.ErrUnconfirmed, messaging.ErrClosed, ctx.Err()).
func MessagingV2() Sink { return messagingSink{envelope: true} }

// Messaging returns the sink that publishes as [MessagingV2] does but
// without the envelope, as the bare message dictionary: oslo's
// messaging (1.0) driver, for consumers too old to read the envelope.
func Messaging() Sink { return messagingSink{envelope: false} }

func (messagingSink) usesTransport() bool { return true }

// Send publishes m to every topic.
func (s messagingSink) Send(ctx context.Context, m *Message) error {
	if m.Transport == nil {
		return errors.New("notify: messaging sink without a transport")
	}
	conn, ok := m.Transport.Conn().(driver.NotifyConn)
	if !ok {
		return fmt.Errorf("notify: the %T driver does not support notifications", m.Transport.Conn())
	}
	exchange := m.Exchange
	if exchange == "" {
		exchange = m.Transport.ControlExchange()
	}
	opts := driver.NotifyOptions{Envelope: s.envelope, Retry: m.Retry, ResendUnconfirmed: m.ResendUnconfirmed}
	var errs []error
	for _, topic := range m.Topics {
		n := &driver.Notification{
			MessageID:   m.MessageID,
			PublisherID: m.PublisherID,
			EventType:   m.EventType,
			Priority:    m.Priority.wire(),
			Payload:     m.Payload,
			Timestamp:   m.Timestamp,
			Context:     m.Context,
			UniqueID:    wire.NewID(),
		}
		addr := driver.Address{Exchange: exchange, Topic: topic}
		if err := conn.Notify(ctx, addr, n, opts); err != nil {
			errs = append(errs, fmt.Errorf("notify: sending %s to %s.%s on exchange %s: %w", m.EventType, topic, m.Priority, exchange, err))
		}
	}
	return errors.Join(errs...)
}

type noopSink struct{}

// Noop returns the sink that drops every notification: oslo's noop
// driver. A notifier whose only sinks are Noop sinks reports false
// from [Notifier.Enabled].
func Noop() Sink { return noopSink{} }

// Send does nothing and returns nil.
func (noopSink) Send(context.Context, *Message) error { return nil }

type logErrors struct {
	s Sink
}

// LogErrors returns a Sink that sends with s and, instead of returning
// s's errors, logs them at error level on the notifier's logger and
// returns nil: oslo's behaviour, where a failed notification never
// fails the caller. Wrap every sink of a notifier for oslo's
// semantics:
//
//	notify.WithSinks(notify.LogErrors(notify.MessagingV2()))
func LogErrors(s Sink) Sink { return logErrors{s: s} }

func (l logErrors) usesTransport() bool { return usesTransport(l.s) }

// Send sends m with the wrapped sink and logs its error.
func (l logErrors) Send(ctx context.Context, m *Message) error {
	if err := l.s.Send(ctx, m); err != nil {
		log := m.Logger
		if log == nil {
			log = slog.Default()
		}
		log.LogAttrs(ctx, slog.LevelError, "notify: problem attempting to send to notification system",
			slog.String("event_type", m.EventType), slog.String("priority", string(m.Priority)),
			slog.String("publisher_id", m.PublisherID), slog.String("message_id", m.MessageID),
			slog.Any("error", err))
	}
	return nil
}

// Recorder is a Sink that keeps the notifications it is given in
// memory, for tests: oslo's test driver. The zero value is ready to
// use; a Recorder is safe for concurrent use and must not be copied
// after first use.
type Recorder struct {
	mu   sync.Mutex // guards msgs
	msgs []Message
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Send records a copy of m and returns nil.
func (r *Recorder) Send(_ context.Context, m *Message) error {
	c := *m
	c.Payload = slices.Clone(m.Payload)
	c.Context = maps.Clone(m.Context)
	c.Topics = slices.Clone(m.Topics)
	r.mu.Lock()
	r.msgs = append(r.msgs, c)
	r.mu.Unlock()
	return nil
}

// Messages returns copies of the recorded messages, oldest first. The
// caller owns the returned slice.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Message, len(r.msgs))
	for i, m := range r.msgs {
		m.Payload = slices.Clone(m.Payload)
		m.Context = maps.Clone(m.Context)
		m.Topics = slices.Clone(m.Topics)
		out[i] = m
	}
	return out
}

// Reset forgets the recorded messages.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}
