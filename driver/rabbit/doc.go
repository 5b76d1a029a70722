// Package rabbit is the RabbitMQ (AMQP 0-9-1) driver: it speaks
// oslo.messaging's rabbit protocol, so that Go and Python oslo.messaging
// processes can call and serve each other on the same broker.
//
// Import it for its side effect of registering the schemes "rabbit" and
// "kombu" (oslo's alias):
//
//	import _ "github.com/go-oslo/messaging/driver/rabbit"
//
//	tr, err := messaging.Open("rabbit://user:pass@host1:5672,user:pass@host2:5672/vhost?amqp_durable_queues=true")
//
// or build a [Conn] from a [Config] with [New] and hand it to
// messaging.NewTransport. Opening does no network I/O; the driver
// connects on first use and reconnects on its own.
//
// # Options
//
// The URL's query takes oslo's [oslo_messaging_rabbit] options (see
// [ConfigFromURL] for which ones have an effect). An unknown option or
// a value that does not convert is an error, as in oslo.
//
// # Topology and wire format
//
// The driver declares what oslo declares, with the same names, types,
// flags and arguments, so that Go and Python processes can share
// queues:
//
//	control exchange    <exchange>               topic; durable = amqp_durable_queues or quorum; auto_delete = amqp_auto_delete
//	topic queue         <topic>                  same flags, bound with key <topic>
//	server queue        <topic>.<server>         same flags, bound with key <topic>.<server>
//	fanout exchange     <topic>_fanout           fanout, not durable, auto_delete
//	fanout queue        <topic>_fanout_<32 hex>  one per listener, x-expires, deleted by Listener.Close
//	reply queue         reply_<32 hex>           one per Conn, x-expires, deleted by Conn.Close
//	notification queue  <topic>.<priority>       same flags as topic queues, no x-expires, bound with key <topic>.<priority>
//	pool queue          <pool>                   same flags, bound with every <topic>.<priority> of its listeners
//
// Queue arguments are those of oslo: x-ha-policy with rabbit_ha_queues,
// x-queue-type=quorum and the quorum limits with rabbit_quorum_queue,
// and x-expires (rabbit_transient_queues_ttl) on fanout and reply queues
// only.
//
// Calls and casts go to the control exchange with the routing key
// <topic> or <topic>.<server>; fanout casts to <topic>_fanout with an
// empty key; replies and heartbeats to the default exchange with the
// reply queue's name as key and the mandatory flag; notifications to the
// control exchange with the key <topic>.<priority> (the priority
// lower-cased), without the mandatory flag. Every message has
// content type application/json, encoding utf-8, delivery mode 2 and
// priority 0; call requests add an expiration equal to the call's
// remaining time. Bodies are oslo's "2.0" envelopes made by package
// wire (notifications: enveloped as oslo's messagingv2 driver sends
// them, or bare as its messaging driver does), zlib-compressed with the
// header compression=application/x-gzip when kombu_compression=gzip.
// Received messages must have content type
// application/json; others, and bodies that are not oslo messages, are
// rejected without requeueing and logged, as oslo does.
//
// # Delivery semantics
//
// Publishing uses publisher confirms: Cast returns once the broker has
// taken the message. A server acknowledges each request before Next
// returns it, so a request runs at most once, unless it is published
// twice: a publish whose confirm is lost with its connection fails with
// driver.ErrUnconfirmed, unless the caller set
// SendOptions.ResendUnconfirmed (rpc.Retry); then it is sent again within
// the retries, with the same _unique_id, and listeners drop a _unique_id
// they have seen in the last minute. Replies to a reply queue that does
// not exist are retried for kombu_missing_consumer_retry_timeout and then
// abandoned.
//
// # Notifications
//
// [Conn.Notify] declares, as oslo's notifier does, the control exchange
// and the queue <topic>.<priority> bound to it, once per publishing
// channel, so that notifications sent before any listener exists wait in
// that queue; then it publishes with confirms, as Cast does (Retry and
// ResendUnconfirmed included). [Conn.ListenNotifications] consumes,
// without a pool, the queues <topic>.<priority> of its targets, shared
// with the other listeners without a pool; with a pool, the queue named
// after the pool, bound to every <topic>.<priority> of its targets, so
// that each pool gets its own copy. Each distinct queue has one consumer,
// tagged "1", "2"... as in oslo, with the listener's prefetch (or
// rabbit_qos_prefetch_count) as basic.qos.
//
// Notifications are delivered at least once: Next returns them
// unacknowledged, their Ack is a basic.ack and their Requeue a
// basic.reject with requeue (the broker delivers the message again,
// possibly to another consumer), both on the channel they came on. When
// that channel is lost (a lost connection, Close) the broker requeues
// every notification not acknowledged, and their deliveries' Ack and
// Requeue fail. Nothing filters duplicates of notifications in the
// driver: a notification delivered again is returned again, and the
// caller decides, by _unique_id, what to do with it. Messages that are
// not oslo notifications are rejected without requeueing and logged.
//
// # Connections and concurrency
//
// A [Conn] is safe for concurrent use. It opens one connection for
// publishing (shared, with concurrent publishes pipelined on one
// channel), one for its reply queue at the first Call, and one per
// listener. Each reconnects after a failure, trying the URL's hosts in
// turn with exponential back-off and jitter, declares its topology
// again and resumes consuming; calls wait for the reply queue to be
// consumed again before they are published. Every blocking operation
// returns when its context ends, even when a broker alarm holds a publish
// in the socket; an operation still blocked two seconds later has its
// connection torn down, which frees it and the operations queued behind
// it.
//
// The goroutines the driver starts (one per connection, one per
// publishing channel, one for the reply queue, one per listener,
// notification listeners included, and one for the event handler) are
// all joined by [Conn.Close].
//
// Losses and reconnections are logged, and reported as driver.Event
// values to the handler given with messaging.WithEventHandler (see
// [Conn.SetEventHandler]), with the replies dropped to a missing reply
// queue and those that arrive after their caller gave up.
// [Conn.Unacked] counts the deliveries the listeners hold
// unacknowledged.
//
// # Differences from oslo
//
// amqp091-go omits empty header tables, so messages carry no header
// table where oslo sends an empty one; receivers treat both alike. A
// zero heartbeat_timeout_threshold makes the driver accept the broker's
// heartbeat instead of disabling heartbeats. TLS without ssl_ca_file
// verifies the broker against the system's roots, where oslo verifies
// nothing.
//
// With amqp_auto_delete, the control exchange and the notification queue
// are declared before every notification, where oslo declares them once
// per channel, since the broker may delete them meanwhile. oslo's
// notification listener acknowledges and requeues from its polling
// thread, up to seconds later, and drops duplicate _unique_ids itself
// (leaving them unacknowledged); this driver settles a notification at
// once when asked, and returns duplicates to its caller.
package rabbit
