package notify

import (
	"fmt"
	"log/slog"

	"github.com/go-oslo/messaging"
)

// DefaultTopic is the topic notifications are sent to by default: oslo's
// [oslo_messaging_notifications] topics.
const DefaultTopic = "notifications"

// DefaultMaxConcurrency is the default number of handlers (or batches)
// a listener runs at once: oslo's executor_thread_pool_size.
const DefaultMaxConcurrency = 64

// notifierConfig is shared, read-only, by a Notifier and its Prepare'd
// copies.
type notifierConfig struct {
	topics     []string
	sinks      []Sink
	exchange   string
	serializer messaging.Serializer
	logger     *slog.Logger
}

// notifierInfo is what Prepare may change.
type notifierInfo struct {
	publisherID string
	retry       int
	retrySet    bool // the caller chose the retries
}

type listenerConfig struct {
	pool           string
	allowRequeue   bool
	maxConcurrency int
	serializer     messaging.Serializer
	logger         *slog.Logger
}

// NotifierOption configures a Notifier.
type NotifierOption interface {
	applyNotifier(*notifierConfig, *notifierInfo) error
}

// ListenerOption configures a Listener.
type ListenerOption interface {
	applyListener(*listenerConfig) error
}

// Option configures both notifiers and listeners.
type Option interface {
	NotifierOption
	ListenerOption
}

type notifierOpt func(*notifierConfig, *notifierInfo) error

func (f notifierOpt) applyNotifier(c *notifierConfig, i *notifierInfo) error { return f(c, i) }

type listenerOpt func(*listenerConfig) error

func (f listenerOpt) applyListener(c *listenerConfig) error { return f(c) }

type sharedOpt struct {
	notifier notifierOpt
	listener listenerOpt
}

func (o sharedOpt) applyNotifier(c *notifierConfig, i *notifierInfo) error { return o.notifier(c, i) }
func (o sharedOpt) applyListener(c *listenerConfig) error                  { return o.listener(c) }

// WithSerializer sets the entity and context serializer. A Notifier
// passes each payload through SerializeEntity before encoding it as
// JSON, and the sanitised context through SerializeContext; a Listener
// runs DeserializeContext on the received context to make the
// handler's context, and DeserializeEntity on the payload. Default:
// messaging.NoOpSerializer.
func WithSerializer(s messaging.Serializer) Option {
	check := func() error {
		if s == nil {
			return fmt.Errorf("%w: nil serializer", messaging.ErrInvalidOption)
		}
		return nil
	}
	return sharedOpt{
		notifier: func(c *notifierConfig, _ *notifierInfo) error {
			c.serializer = s
			return check()
		},
		listener: func(c *listenerConfig) error {
			c.serializer = s
			return check()
		},
	}
}

// WithLogger sets the logger of a notifier (used by [LogErrors] and by
// the [Log] sink given no logger of its own) or of a listener.
// Default: the transport's logger, or slog.Default() for a notifier
// without a transport. A nil logger keeps the default.
func WithLogger(l *slog.Logger) Option {
	return sharedOpt{
		notifier: func(c *notifierConfig, _ *notifierInfo) error {
			if l != nil {
				c.logger = l
			}
			return nil
		},
		listener: func(c *listenerConfig) error {
			if l != nil {
				c.logger = l
			}
			return nil
		},
	}
}

// WithTopics sets the topics that the messaging sinks publish every
// notification to, each as "<topic>.<priority>": oslo's topics. With no
// topics, messaging sinks send nothing. Empty topic names are an error.
// Default: "notifications".
func WithTopics(topics ...string) NotifierOption {
	return notifierOpt(func(c *notifierConfig, _ *notifierInfo) error {
		for _, t := range topics {
			if t == "" {
				return fmt.Errorf("%w: empty topic", messaging.ErrInvalidOption)
			}
		}
		c.topics = append([]string{}, topics...)
		return nil
	})
}

// WithSinks sets where notifications go: oslo's notification drivers
// ([MessagingV2], [Messaging], [Log], [Noop], [Routing], a [Recorder]
// or any [Sink]). Every notification is given to every sink, in order.
// Default: none, as oslo's empty driver list: notifications are built
// and go nowhere.
func WithSinks(sinks ...Sink) NotifierOption {
	return notifierOpt(func(c *notifierConfig, _ *notifierInfo) error {
		for i, s := range sinks {
			if s == nil {
				return fmt.Errorf("%w: sink %d is nil", messaging.ErrInvalidOption, i)
			}
		}
		c.sinks = append([]Sink{}, sinks...)
		return nil
	})
}

// WithExchange sets the exchange the messaging sinks publish to.
// Default: the transport's control exchange (see
// messaging.WithControlExchange), as oslo does.
func WithExchange(name string) NotifierOption {
	return notifierOpt(func(c *notifierConfig, _ *notifierInfo) error {
		c.exchange = name
		return nil
	})
}

// WithRetry bounds the connection-level retries of each publish of the
// messaging sinks (oslo's retry): negative retries until the context
// is done, 0 does not retry, n retries n times.
//
// Without this option (or [Retry] in Prepare) a publish is retried
// until the context is done, but a message whose broker confirm was
// lost with the connection is not sent again, and its error matches
// messaging.ErrUnconfirmed. Setting the retries opts into sending such
// a message again, with the same _unique_id, which a listener's
// duplicate filter drops if the first copy arrived.
func WithRetry(n int) NotifierOption {
	return notifierOpt(func(_ *notifierConfig, i *notifierInfo) error {
		i.retry, i.retrySet = n, true
		return nil
	})
}

// PrepareOption overrides the publisher id or the retries of a
// Notifier's copy made by [Notifier.Prepare]: oslo's prepare().
type PrepareOption func(*notifierInfo)

// PublisherID sets the publisher id of the prepared Notifier.
func PublisherID(id string) PrepareOption {
	return func(i *notifierInfo) { i.publisherID = id }
}

// Retry sets the retries of the prepared Notifier, as [WithRetry].
func Retry(n int) PrepareOption {
	return func(i *notifierInfo) { i.retry, i.retrySet = n, true }
}

// WithPool makes a listener consume from the pool queue name: every
// pool gets its own copy of each notification, shared by the listeners
// of the pool; listeners without a pool share the "<topic>.<priority>"
// queues (oslo's pool). Default: no pool.
//
// On RabbitMQ the pool's queue is named after the pool, in the same name
// space as the RPC queues of the virtual host: a pool named like an RPC
// topic or "<topic>.<server>" would share that queue with the RPC server
// (as in oslo). Choose pool names that no RPC topic uses.
func WithPool(name string) ListenerOption {
	return listenerOpt(func(c *listenerConfig) error {
		c.pool = name
		return nil
	})
}

// WithAllowRequeue lets handlers requeue notifications (oslo's
// allow_requeue): a handler returning ErrRequeue, another error, or
// panicking then makes the listener return the notification to its
// queue, to be delivered again, possibly to another listener. Without
// it such notifications are acknowledged, and lost. Default: false, as
// in oslo.
func WithAllowRequeue(on bool) ListenerOption {
	return listenerOpt(func(c *listenerConfig) error {
		c.allowRequeue = on
		return nil
	})
}

// WithMaxConcurrency bounds the handlers (or, for a batch listener, the
// batches) that a listener runs at once: oslo's
// executor_thread_pool_size. The driver's prefetch follows it, so that
// unacknowledged notifications stay bounded. Default: 64.
func WithMaxConcurrency(n int) ListenerOption {
	return listenerOpt(func(c *listenerConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max concurrency %d is below 1", messaging.ErrInvalidOption, n)
		}
		c.maxConcurrency = n
		return nil
	})
}
