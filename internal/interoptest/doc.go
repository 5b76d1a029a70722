// Package interoptest holds the RPC-level and notification
// interoperability suite: Go clients and servers built with package rpc,
// and Go notifiers and listeners built with package notify, on the
// RabbitMQ driver, talking over a real broker to real Python
// oslo.messaging clients, servers, notifiers and notification listeners
// (Debian's python3-oslo.messaging, run with /usr/bin/python3).
//
// The package has no API; everything is in its tests. They are named
// TestInterop... and need two environment variables:
//
//	MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/
//	OMSG_PYTHON=/usr/bin/python3
//
// Without either they skip, saying which is missing; with both set, a
// broker that cannot be reached or a Python that cannot import
// oslo_messaging fails them. rabbitmqctl must work: the suite makes a
// private virtual host for each run (omsg-interop-<hex>) and deletes it
// at the end.
//
// The Python side is testdata/peer.py, one long-lived process that hosts
// oslo.messaging RPC servers and notification listeners, and makes
// calls, casts and notifications on commands given as JSON lines; a few
// cases start peers of their own. The RPC cases cover
// calls and casts in both directions, to a topic, to a server and
// fanout; round-robin across mixed Go and Python servers; namespaces and
// versions; remote exceptions; the context dict; the call monitor;
// timeouts and expired requests; the mandatory flag; results of every
// JSON kind, Unicode and 1 MiB payloads; compression on one side; oslo's
// ping; graceful stops; ports of oslo's functional CallTestCase and
// CastTestCase; byte-for-byte comparisons of what both sides publish
// (testdata/golden, rewritten with -update); and the broker topology
// both leave behind.
//
// The notification cases (TestInteropNotify...) send with oslo's
// Notifier (drivers messaging and messagingv2) to Go listeners, and with
// Go notifiers (sinks Messaging and MessagingV2) to oslo's listeners:
// every priority with its publisher id, event type, payload, metadata
// and sanitised context; several topics; pools, and listeners sharing a
// pool; filters; requeues allowed or not; batch listeners (oslo's
// test_simple_batch); compression; and byte-for-byte comparisons of
// what both notifiers publish (testdata/golden/notify_*.json).
//
// At the end of a run the suite prints two lines for CI logs: the
// notification cases, then every case, notification cases included:
//
//	notification interop cases run: N passed, M failed
//	interop cases run: N passed, M failed
package interoptest
