// Package memory is the in-process driver of go-oslo/messaging: a broker
// that lives in the memory of the process, for embedding, examples and
// tests. It registers the URL schemes "memory" and "fake" (the scheme of
// oslo.messaging's fake driver):
//
//	import _ "github.com/go-oslo/messaging/driver/memory"
//
//	tr, err := messaging.Open("memory://")
//
// Every virtual host of the URL is its own broker, created on first use
// and kept for the life of the process, as RabbitMQ keeps its vhosts:
// "memory://" and "memory:///x" do not see each other's messages. Hosts
// in the URL are ignored, and the driver accepts no query options. For
// a broker of its own, isolated from the rest of the process, use
// [NewBroker] and [Broker.Conn].
//
// # Topology
//
// The broker reproduces the queues that oslo.messaging declares on
// RabbitMQ, and their behaviour. For every exchange:
//
//   - the queue "<topic>", shared by all the servers of a topic: its
//     listeners are competing consumers;
//   - the queue "<topic>.<server>", consumed by the listeners of that
//     server;
//   - one fanout queue per listener, which gets a copy of every fanout
//     cast to the listener's topic.
//
// [Conn.Listen] declares the first two queues. They persist after the
// listener closes: messages sent while no listener consumes them wait
// there and go to the next listener. A fanout queue is deleted when its
// listener closes, with the messages it held.
//
// Exchanges are created by the first listener or notification and are
// isolated from one another, fanout included.
//
// Notifications have queues of their own, as oslo.messaging's
// notifier and notification listeners declare them:
//
//   - the queue "<topic>.<priority>" of an exchange, declared by
//     [Conn.Notify] (so that notifications sent before any listener
//     exists wait there) and by the listeners without a pool, which
//     share its messages;
//   - one queue per pool, named after the pool and shared by the whole
//     broker, bound to every "<topic>.<priority>" of its listeners'
//     targets on their exchanges: each pool gets its own copy of every
//     notification, shared by the listeners of the pool.
//
// These queues and bindings persist after their listeners close.
//
// # Delivery semantics
//
// Calls and casts are delivered at most once, as oslo.messaging does:
// [driver.Listener.Next] takes a message out of the broker before
// returning it, and nothing is ever delivered twice.
//
// A queue pushes each message, as soon as it is sent, to the next of its
// listeners in turn (round robin, as RabbitMQ does), skipping those
// whose [driver.ListenOptions.Prefetch] limit is reached: with two
// servers on a topic, the first gets messages 1, 3, 5… and the second
// 2, 4, 6…. Without a Prefetch limit, a slow listener can therefore hold
// messages that an idle one could have taken. Messages that a listener
// was given but had not yet returned from Next when it closed go back to
// the front of their queue. Each queue is first in, first out.
//
// A message sent to a topic or server that no queue is bound to is
// dropped: a cast succeeds, a call waits until its context ends. With
// [driver.SendOptions.Mandatory], such a send fails at once with
// [driver.ErrUndeliverable].
//
// A call request expires at the deadline of the caller's context: an
// expired request still in a queue is dropped instead of delivered, as
// RabbitMQ does with the expiration property of oslo's requests.
//
// Notifications, by contrast, are delivered at least once: Next returns
// them unacknowledged, and they stay the listener's until
// [driver.NotifyDelivery.Ack] (the broker forgets them) or
// [driver.NotifyDelivery.Requeue] (they go back to the front of their
// queue, to be delivered again to the next listener in turn, possibly
// the same one). Those not settled when their listener or connection
// closes go back to the front of their queues, in their order, and
// their deliveries can no longer be settled. A Prefetch limit counts the
// notifications not yet settled, whether Next returned them or not.
// Queues push notifications round robin, as they push requests. There
// is no duplicate filter.
//
// Replies go to the reply queue of the calling connection, which routes
// them to the waiting call by message id. A reply or heartbeat for a
// call that is no longer waiting is dropped; a reply to a closed
// connection fails with [driver.ErrUndeliverable].
//
// # Encoding
//
// Every message, notifications included (with or without the envelope,
// as [driver.NotifyOptions.Envelope] says), is encoded by package wire
// when it is sent and decoded when it is received, as it would be for a
// network broker: what cannot be encoded fails here too, and receivers
// never share memory with senders.
//
// # Differences from RabbitMQ
//
//   - Fanout is scoped by exchange. RabbitMQ's fanout exchanges are
//     named "<topic>_fanout" and shared by every control exchange.
//   - The notification queue "<topic>.<priority>" is scoped by exchange.
//     On RabbitMQ a queue name is unique in its virtual host, so the
//     queue of a topic and priority is shared by every exchange it is
//     bound to; pool queues are shared by the whole broker on both.
//   - Topic, server and notification queues are kept apart: on RabbitMQ
//     the server queue of topic "t" and server "info" would be the
//     notification queue "t.info".
//   - Nothing survives the process, and no queue expires: RabbitMQ
//     deletes unused fanout and reply queues after 30 minutes.
//   - A reply to a connection that is gone fails at once; oslo retries
//     such replies for a minute before giving up.
//   - There is no size limit, no connection failure and therefore no
//     retry: [driver.SendOptions.Retry] and [driver.NotifyOptions.Retry]
//     are ignored, and so is ResendUnconfirmed.
//   - Expired messages are dropped when they reach the front of a queue
//     or a listener takes them, never in the background.
//
// # Concurrency and time
//
// A [Conn] and the listeners and deliveries it returns are safe for
// concurrent use. The driver starts no goroutines: every operation runs
// in the goroutine that calls it, and waits only on channels and timers
// created by that call or by the listener it uses. Timing tests can
// therefore run inside testing/synctest bubbles, with a broker made by
// [NewBroker] inside the bubble. A broker must not be used from two
// bubbles, nor from inside and outside a bubble; the brokers of
// [Driver.Open] are shared by the whole process and are therefore not
// meant for bubbles.
package memory
