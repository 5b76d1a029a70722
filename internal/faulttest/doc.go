// Package faulttest is the harness of the reliability suite: it injects
// faults between our RabbitMQ driver and a broker and counts what the
// code under test did about them.
//
// It has three parts:
//
//   - [Node] is a private RabbitMQ node started for one test, on its own
//     ports, data directory, HOME and Erlang cookie, that the test may
//     stop, kill, pause, restart, put under a memory or disk alarm, or
//     cut the connections of. [StartCluster] joins several such nodes.
//     A node can also listen for TLS with certificates made for the test
//     ([TLSOptions]).
//   - [Proxy] is an in-process TCP proxy between clients and a node that
//     can reset every connection, stop forwarding without closing (a
//     half-open link), add latency, limit bandwidth, cut a connection
//     after some bytes, and refuse connections.
//   - [Ledger] counts a scenario's outcomes, keyed by an id of its own
//     carried in each message's arguments (not the library's
//     _unique_id, so that the count does not depend on the code under
//     test): caller outcomes by kind of error, executions per id and per
//     server, duplicates, losses, late executions, hung callers (with a
//     [Watchdog] that dumps goroutine stacks), leaked queues, connections
//     and goroutines, and the time to recover. [Ledger.Report] sums them
//     up in a [Report] whose String is one line of a results table.
//
// # Integration runs only
//
// Starting a node takes several seconds and needs the rabbitmq-server
// package, so [StartNode] and [StartCluster] skip the test, saying so,
// unless MESSAGING_RABBIT_URL is set, as it is in the project's
// integration runs (make test). Tests that start nodes are named
// TestIntegration*. A node never touches the system broker: every
// rabbitmqctl command names the node with -n, with the node's own HOME.
//
// # Concurrency
//
// Node, Proxy, Ledger and Watchdog are safe for concurrent use. Node and
// Proxy stop, and Watchdog's goroutine ends, in the cleanups of the test
// that made them. Methods that wait (for rabbitmqctl, for a node to boot
// or stop) take a context.Context and are also bounded on their own.
package faulttest
