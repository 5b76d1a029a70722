package raw

import (
	"crypto/rand"
	"encoding/hex"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The broker objects of the raw benchmark, shaped as oslo's and named so
// that they never mix with them:
//
//	RPC exchange        omsg_raw                               topic, not durable
//	topic queue         omsg_raw.<topic>                       bound with key <topic>
//	server queue        omsg_raw.<topic>.<server>              bound with key <topic>.<server>
//	fanout exchange     omsg_raw.<topic>_fanout                fanout, not durable, auto-delete
//	fanout queue        omsg_raw.<topic>_fanout_<32 hex>       one per server, x-expires
//	reply queue         omsg_raw.reply_<32 hex>                one per client, x-expires, default exchange
//	notify exchange     omsg_raw_notify                        topic, not durable
//	notification queue  omsg_raw_notify.<topic>.info           bound with key <topic>.info
//
// Queues are not durable and not auto-delete, as oslo's by default;
// x-expires is oslo's default rabbit_transient_queues_ttl.
const (
	rpcExchange    = "omsg_raw"
	notifyExchange = "omsg_raw_notify"
	transientTTL   = int32(1800 * 1000) // ms
)

// Message properties, as the rabbit driver sets them: the messages are
// marked persistent, but no queue is durable, so the broker keeps them in
// memory only.
const (
	contentType  = "application/json"
	deliveryMode = amqp.Persistent
)

func topicQueueName(key string) string { return rpcExchange + "." + key }

func fanoutExchangeName(topic string) string { return rpcExchange + "." + topic + "_fanout" }

func newFanoutQueueName(topic string) string { return fanoutExchangeName(topic) + "_" + newID() }

func newReplyQueueName() string { return rpcExchange + ".reply_" + newID() }

func notifyKey(topic string) string { return topic + ".info" }

func notifyQueueName(topic string) string { return notifyExchange + "." + notifyKey(topic) }

// newID returns 32 random hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func transientArgs() amqp.Table { return amqp.Table{"x-expires": transientTTL} }

// declareRPCExchange declares the topic exchange of calls and casts.
func declareRPCExchange(ch *amqp.Channel) error {
	return ch.ExchangeDeclare(rpcExchange, amqp.ExchangeTopic, false, false, false, false, nil)
}

// declareFanoutExchange declares the fanout exchange of topic.
func declareFanoutExchange(ch *amqp.Channel, topic string) error {
	return ch.ExchangeDeclare(fanoutExchangeName(topic), amqp.ExchangeFanout, false, true, false, false, nil)
}

// declareNotify declares the notification exchange and the queue of
// topic bound to it, as oslo's notifier and listener both do.
func declareNotify(ch *amqp.Channel, topic string) error {
	if err := ch.ExchangeDeclare(notifyExchange, amqp.ExchangeTopic, false, false, false, false, nil); err != nil {
		return err
	}
	return declareBound(ch, notifyQueueName(topic), nil, notifyExchange, notifyKey(topic))
}

// declareBound declares a queue, not durable and not auto-delete, and
// binds it to exchange with key.
func declareBound(ch *amqp.Channel, name string, args amqp.Table, exchange, key string) error {
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		return err
	}
	return ch.QueueBind(name, key, exchange, false, nil)
}
