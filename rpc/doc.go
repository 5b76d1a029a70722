// Package rpc provides oslo.messaging's remote procedure calls: a
// [Client] that calls (and waits for the result) or casts (one-way, to
// one server, one named server, or every server of a topic), and a
// [Server] that dispatches requests to the methods of its endpoints by
// name, namespace and version.
//
// Clients and servers are built on a messaging.Transport and
// interoperate with Python oslo.messaging processes on the same bus.
//
// # Endpoints and dispatch
//
// An [Endpoint] groups methods under a namespace and version. Methods
// are registered explicitly, typed with [Handle]:
//
//	ep := &rpc.Endpoint{Namespace: "compute", Version: "5.13"}
//	rpc.Handle(ep, "reboot_instance", api.RebootInstance)
//
// The server picks the first endpoint whose namespace matches and whose
// version is compatible (same major version, minor not lower than the
// request's) and which has the method. If an endpoint matched but had
// no such method the caller gets ErrNoSuchMethod, otherwise
// ErrUnsupportedVersion, as oslo's dispatcher decides. Only registered
// methods are reachable, and names beginning with "_" cannot be
// registered.
//
// # Errors across the wire
//
// A handler's error reaches the caller as a [RemoteError] carrying
// oslo's exception class and module, message, traceback and arguments.
// A handler chooses what a Python caller re-raises by returning a
// *RemoteError (NewRemoteError("builtins.ValueError", "...")); other
// errors are sent as builtins.Exception, argument decoding errors as
// builtins.TypeError, panics (recovered and logged) as
// builtins.Exception with the Go stack as traceback. Clients map remote
// exception names to local errors with [WithRemoteErrors].
//
// # Delivery semantics
//
// Calls and casts are at most once: the server acknowledges a request
// when it receives it, before running the method. After an error or a
// timeout the method may or may not have run. Casts are never answered;
// their failures are only logged by the server. Requests on one topic
// are not ordered, even from one client, since servers run handlers
// concurrently.
//
// # Timeouts
//
// The context deadline of [Client.Call] is the call's timeout; without
// one the client's default applies (60s, oslo's rpc_response_timeout).
// [CallMonitorTimeout] enables oslo's call monitor for long methods: the
// server sends heartbeats while the method runs, and the call fails as
// soon as they stop.
//
// # Introspection
//
// Beyond oslo, which offers only the ping method ([WithPing], oslo's
// rpc_ping_enabled), a server created with [WithIntrospection] answers
// questions about itself over the bus, on any driver: the method
// describe of [IntrospectionNamespace] returns a [ServerDescription]
// with the process's binary, host and pid, the target, the endpoints
// with their namespaces, versions and methods, the start time and
// uptime, and the server's [Stats]. [Describe] calls it:
//
//	srv, err := rpc.NewServer(tr, target, eps, rpc.WithIntrospection(rpc.ServerInfo{Binary: "nova-compute"}))
//	...
//	d, err := rpc.Describe(ctx, client.Prepare(rpc.ToServer("node1")))
//
// [Discover] lists every live server of a topic: it sends a fanout cast
// to the topic, collects the servers' answers for a bounded time, and
// leaves nothing behind that grows with use (see Discover for what
// stays on RabbitMQ). Servers without introspection, Python ones
// included, do not answer.
//
// The introspection endpoint is an ordinary endpoint added after the
// server's own, so the dispatcher's rules and the server's middleware
// apply to it. Every server counts its requests, whether introspection
// is on or not, with a few atomic operations per request:
// [Server.Stats] and [Server.Description] return them in-process, for
// metrics exporters.
package rpc
