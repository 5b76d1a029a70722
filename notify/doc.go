// Package notify provides oslo.messaging's notifications: a [Notifier]
// that sends event notifications (oslo's Notifier) and a [Listener]
// that consumes them (oslo's notification listener), interoperable with
// Python oslo.messaging processes on the same bus.
//
// # Sending
//
// A Notifier publishes as a publisher id, such as "compute.host1", to
// its sinks, oslo's notification drivers:
//
//	n, err := notify.NewNotifier(tr, "compute.host1", notify.WithSinks(notify.MessagingV2()))
//	ctx = messaging.NewOutgoingContext(ctx, messaging.Metadata{"request_id": "req-1"})
//	err = n.Info(ctx, "compute.instance.create.end", payload)
//
// [MessagingV2] publishes on the transport to "<topic>.<priority>" for
// every topic (default "notifications") in oslo's 2.0 envelope;
// [Messaging] without the envelope (oslo's messaging driver); [Log]
// logs notifications with their secrets masked; [Noop] drops them;
// [Routing] chooses sinks by event type and priority from oslo's
// routing configuration; [Recorder] keeps them in memory for tests.
// Without [WithSinks] a notifier has no sinks and sends nothing, as
// oslo's default configuration.
//
// Each notification is oslo's message: a new message_id (a UUID, the
// same for every topic and sink), the publisher id, the event type, the
// priority in upper case, the payload as JSON and the UTC timestamp in
// Python's str() form. Of the request context only oslo's safe keys are
// sent (user_id, project_id, request_id, roles, global_request_id,
// ...): auth_token and every other key are removed first.
//
// Notify and its shorthands (Info, Error, ...) block until every sink
// has sent, which for the messaging sinks means until the broker has
// accepted the message, and return the errors of the sinks. oslo logs
// them instead, so that a notification never fails its caller; wrap a
// sink with [LogErrors] for that behaviour. Messaging sinks publish
// at most once: after a lost confirm the message is not sent again
// unless the retries were chosen with [WithRetry].
//
// # Receiving
//
// A Listener consumes the notifications of its targets at the
// priorities its endpoints handle, and calls the handler of every
// [Endpoint] that handles the notification's priority and whose
// [Filter] accepts it (oslo's NotificationFilter):
//
//	ep := &notify.Endpoint{
//		Filter: notify.Filter{PublisherID: `^compute\.`},
//		Info: func(ctx context.Context, n *notify.Notification) error { ... },
//	}
//	l, err := notify.NewListener(tr, []messaging.Target{{Topic: "notifications"}}, []*notify.Endpoint{ep})
//	go l.Serve(ctx)
//	defer l.Shutdown(ctx)
//
// Listeners without a pool share the "<topic>.<priority>" queues:
// each notification goes to one of them. Listeners with a pool
// ([WithPool]) each get a copy per pool, shared by the listeners of
// the pool. As oslo warns, the notifier always fills the non-pooled
// queues, so some listener should consume them.
//
// A batch listener ([NewBatchListener]) hands its [BatchEndpoint]
// handlers batches of notifications of one priority, dispatched when
// full or after a timeout.
//
// # Delivery semantics
//
// Listeners deliver notifications at least once: a notification is
// acknowledged after its handlers have returned, so one that was being
// handled when its listener stopped (Close, a crash, a lost connection)
// is delivered again, to this or another listener.
//
// A handler returns nil when it has handled the notification. Returning
// [ErrRequeue] asks for it to be delivered again later, and so does any
// other error, or a panic, which the listener recovers and logs: an
// exception in oslo. The first endpoint asking for a requeue stops the
// later ones for that delivery. Requeues happen only on listeners made
// with WithAllowRequeue(true), as in oslo where allow_requeue defaults
// to False; other listeners acknowledge the notification, which is
// then lost.
//
// Each listener remembers the oslo _unique_id of the notifications it
// acknowledged for 60 seconds (at most 10,000 of them), and
// acknowledges and drops a notification that comes again within that
// window: a broker's redelivery after a lost acknowledgement, or a copy
// published again after a lost confirm. Requeued notifications are not
// remembered, so their redelivery is handled normally. (oslo remembers
// the last 16 ids and leaves duplicates unacknowledged.) A notification
// whose priority is not one of the seven is logged and acknowledged.
//
// Notifications are not ordered: handlers run concurrently, at most
// [WithMaxConcurrency] at once (default 64), and requeued notifications
// come back later.
//
// # Concurrency
//
// Notifiers, listeners and the sinks of this package are safe for
// concurrent use. Sinks run on the goroutine calling Notify; handlers
// run on goroutines owned by [Listener.Serve], which returns after all
// of them.
package notify
