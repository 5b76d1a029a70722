package rabbit

import (
	"math"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// The broker objects of oslo's rabbit driver:
//
//	control exchange    <exchange>                topic, durable/auto_delete per options
//	topic queue         <topic>                   bound with key <topic>
//	server queue        <topic>.<server>          bound with key <topic>.<server>
//	fanout exchange     <topic>_fanout            fanout, not durable, auto_delete
//	fanout queue        <topic>_fanout_<32 hex>   one per listener, x-expires, key <topic>
//	reply queue         reply_<32 hex>            one per Conn, x-expires, default exchange
//	notification queue  <topic>.<priority>        as a topic queue, bound with key <topic>.<priority>
//	pool queue          <pool>                    as a topic queue, bound with every <topic>.<priority> of its listeners

// exchange describes an exchange declaration.
type exchange struct {
	name       string
	kind       string
	durable    bool
	autoDelete bool
}

// queue describes a queue declaration and its binding.
type queue struct {
	name       string
	durable    bool
	autoDelete bool
	args       amqp.Table
	bind       *exchange // nil: only the default exchange's implicit binding
	key        string
}

// routingKey is the key of a call or cast to addr on the control exchange.
func routingKey(addr driver.Address) string {
	if addr.Server != "" {
		return addr.Topic + "." + addr.Server
	}
	return addr.Topic
}

func fanoutExchangeName(topic string) string { return topic + "_fanout" }

func newFanoutQueueName(topic string) string { return topic + "_fanout_" + wire.NewID() }

func newReplyQueueName() string { return "reply_" + wire.NewID() }

// controlExchange is the topic exchange named name.
func (s *settings) controlExchange(name string) *exchange {
	return &exchange{name: name, kind: amqp.ExchangeTopic, durable: s.durable, autoDelete: s.autoDelete}
}

// fanoutExchange is the fanout exchange of topic.
func fanoutExchange(topic string) *exchange {
	return &exchange{name: fanoutExchangeName(topic), kind: amqp.ExchangeFanout, autoDelete: true}
}

// topicQueue is a queue shared by the servers of a topic, or a server's
// own queue, bound to the control exchange with its own name as key.
// Notification queues "<topic>.<priority>" are declared the same way.
func (s *settings) topicQueue(ex *exchange, name string) *queue {
	return s.sharedQueue(ex, name, name)
}

// sharedQueue is a queue declared as oslo's topic consumers declare
// theirs (flags and arguments from the options, no x-expires), bound to
// ex with key. Pool queues of notification listeners are bound so to
// every key they listen to.
func (s *settings) sharedQueue(ex *exchange, name, key string) *queue {
	args := amqp.Table{}
	if s.ha {
		args["x-ha-policy"] = "all"
	}
	if s.quorum {
		args["x-queue-type"] = "quorum"
		if s.deliveryLimit > 0 {
			args["x-delivery-limit"] = intArg(s.deliveryLimit)
		}
		if s.maxMemoryLength > 0 {
			args["x-max-in-memory-length"] = intArg(s.maxMemoryLength)
		}
		if s.maxMemoryBytes > 0 {
			args["x-max-in-memory-bytes"] = intArg(s.maxMemoryBytes)
		}
	}
	return &queue{name: name, durable: s.durable, autoDelete: s.autoDelete, args: args, bind: ex, key: key}
}

// transientArgs are the arguments of reply and fanout queues.
func (s *settings) transientArgs() amqp.Table {
	args := amqp.Table{}
	if s.ha {
		args["x-ha-policy"] = "all"
	}
	if s.ttl > 0 {
		args["x-expires"] = intArg(int(s.ttl.Milliseconds()))
	}
	return args
}

// fanoutQueue is a listener's private queue on the topic's fanout
// exchange, bound with the topic as key as oslo does.
func (s *settings) fanoutQueue(topic, name string) *queue {
	return &queue{name: name, args: s.transientArgs(), bind: fanoutExchange(topic), key: topic}
}

// replyQueue is a Conn's reply queue.
func (s *settings) replyQueue(name string) *queue {
	return &queue{name: name, args: s.transientArgs()}
}

// consumerArgs are the arguments of every basic.consume.
func (s *settings) consumerArgs() amqp.Table {
	if s.cancelOnFailover {
		return amqp.Table{"x-cancel-on-ha-failover": true}
	}
	return nil
}

// intArg encodes n as Python's AMQP client does: a 32-bit signed integer
// when it fits, else 64 bits. The broker compares argument types when a
// queue is declared again, so they must match the Python peers'.
func intArg(n int) any {
	if n >= -math.MaxInt32 && n <= math.MaxInt32 {
		return int32(n)
	}
	return int64(n)
}

// declareExchange declares ex on ch; the default exchange is never
// declared.
func declareExchange(ch *amqp.Channel, ex *exchange) error {
	if ex == nil || ex.name == "" {
		return nil
	}
	return ch.ExchangeDeclare(ex.name, ex.kind, ex.durable, ex.autoDelete, false, false, nil)
}

// declareQueue declares q's exchange, q, and the binding, in kombu's
// order.
func declareQueue(ch *amqp.Channel, q *queue) error {
	if err := declareExchange(ch, q.bind); err != nil {
		return err
	}
	return declareBoundQueue(ch, q)
}

// declareBoundQueue declares q and its binding, its exchange being
// declared already.
func declareBoundQueue(ch *amqp.Channel, q *queue) error {
	if _, err := ch.QueueDeclare(q.name, q.durable, q.autoDelete, false, false, q.args); err != nil {
		return err
	}
	if q.bind == nil || q.bind.name == "" {
		return nil
	}
	return ch.QueueBind(q.name, q.key, q.bind.name, false, nil)
}
