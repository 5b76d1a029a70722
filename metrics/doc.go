// Package metrics exports the activity of go-oslo/messaging to
// Prometheus. It is built on the hooks of the core packages (rpc server
// middleware, notify sinks and handlers, rpc.Server.Stats), so that
// rpc, notify and service do not depend on the Prometheus client: only
// programs that import metrics do.
//
// What it records:
//
//   - RPC servers: [ServerMiddleware] measures every request a server's
//     handlers run: its duration, whether it was a call or a cast, how
//     it ended, the exception class of its failures, and the requests in
//     flight. [NewServerCollector] exports a server's own counters
//     ([rpc.Server.Stats]) at scrape time, middleware or not.
//   - RPC clients: [Client] wraps an *rpc.Client and measures its calls
//     (count, latency, timeouts, remote errors by class) and casts.
//     The rpc package has no client interceptor yet; once it does, the
//     same measurements can be made by one, and the wrapper will no
//     longer be needed.
//   - Notifications: [NewSink] wraps a notify.Sink and counts the
//     notifications it sends; [NotifyHandler] wraps a notify.HandlerFunc
//     and counts the notifications it receives, handles and requeues,
//     with the handler's duration.
//   - Drivers: [EventHandler] counts the events of a transport's driver
//     (connections lost and re-established, replies dropped or late),
//     given with messaging.WithEventHandler; [NewUnackedCollector]
//     exports the deliveries a connection holds unacknowledged, for
//     drivers that count them such as rabbit's.
//   - Exposition: [Handler] serves a registry's metrics over HTTP; a
//     service.Service serves it for as long as it runs with
//     service.WithHTTP(addr, metrics.Handler(reg)), and [Serve] runs a
//     /metrics endpoint until its context ends for programs without a
//     Service.
//
// All metric names start with the namespace "oslo_messaging" (see
// [WithNamespace]); durations are in seconds. The constructors register
// their metrics on the given prometheus.Registerer, nil meaning
// prometheus.DefaultRegisterer. Several constructors may share a
// registerer, for instance a middleware per RPC server: metrics already
// registered with the same name, labels and help are reused, so the
// options of the first registration (its buckets) apply to all.
//
// # Metrics
//
// Server middleware ([ServerMiddleware]):
//
//	oslo_messaging_rpc_server_handled_total{topic,method,kind,outcome}          counter
//	oslo_messaging_rpc_server_handler_duration_seconds{topic,method,kind,outcome} histogram
//	oslo_messaging_rpc_server_handler_failures_total{topic,method,class}        counter
//	oslo_messaging_rpc_server_handlers_in_flight{topic}                         gauge
//
// kind is "call" or "cast"; outcome is "ok", "error" or "panic"; class
// is the exception class a caller receives, "module.Class".
//
// Server statistics ([NewServerCollector]), with the constant labels
// topic and server, and those given:
//
//	oslo_messaging_rpc_server_received_total{kind}        counter
//	oslo_messaging_rpc_server_in_flight                   gauge
//	oslo_messaging_rpc_server_failures_total{class}       counter
//	oslo_messaging_rpc_server_reply_failures_total        counter
//	oslo_messaging_rpc_server_processing_seconds_total    counter
//	oslo_messaging_rpc_server_processing_seconds_max      gauge
//
// Client ([Client]):
//
//	oslo_messaging_rpc_client_calls_total{topic,method,outcome}            counter
//	oslo_messaging_rpc_client_call_duration_seconds{topic,method,outcome}  histogram
//	oslo_messaging_rpc_client_remote_errors_total{topic,method,class}      counter
//	oslo_messaging_rpc_client_casts_total{topic,method,outcome}            counter
//
// A call's outcome is "ok", "remote_error", "timeout" (its deadline or
// its call monitor expired), "canceled" or "error"; a cast's is "ok" or
// "error".
//
// Notifications ([NewSink], [NotifyHandler]):
//
//	oslo_messaging_notifications_sent_total{sink,priority,event_type,outcome}              counter
//	oslo_messaging_notifications_received_total{handler,priority,event_type}               counter
//	oslo_messaging_notifications_handled_total{handler,priority,event_type,outcome}        counter
//	oslo_messaging_notification_handler_duration_seconds{handler,priority,event_type}      histogram
//
// A sent notification's outcome is "ok" or "error"; a handled one's is
// "handled", "requeue" (the handler returned notify.ErrRequeue), "error"
// or "panic".
//
// Drivers ([EventHandler], [NewUnackedCollector]):
//
//	oslo_messaging_driver_events_total{kind}     counter
//	oslo_messaging_driver_unacked_deliveries     gauge
//
// kind is a driver.EventKind: "connected", "disconnected",
// "reconnected", "reply_dropped" or "late_reply".
//
// # Cardinality
//
// Labels take their values from the program (topics, method names,
// exception classes, event types), not from free-form data, with one
// guard: a request that no endpoint serves (its error matches
// rpc.ErrNoSuchMethod or rpc.ErrUnsupportedVersion) is recorded under
// the method "_unknown", since any caller can send any method name. The
// event types of received notifications come from their publishers:
// wrap only the handlers of endpoints whose filter bounds them.
package metrics
