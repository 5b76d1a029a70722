// Package messaging is the root of go-oslo/messaging: OpenStack's
// oslo.messaging for Go, wire-compatible with the Python library.
//
// A [Transport] is opened from a URL whose scheme selects a driver, as
// oslo's transport_url does:
//
//	import _ "github.com/go-oslo/messaging/driver/memory"
//
//	tr, err := messaging.Open("memory://")
//
// Package rpc builds clients (call, cast, fanout cast) and servers
// (endpoints, namespaces, versions) on a Transport. A [Target] says where
// a message goes and what a server consumes; [Metadata] is oslo's request
// context dictionary, carried in a context.Context.
//
// # Drivers
//
// Drivers register under URL schemes: "memory" and oslo's "fake" for the
// in-process driver (package driver/memory), "rabbit" and "kombu" for
// RabbitMQ. A driver is made available by importing its package for its
// side effects; [NewTransport] uses a driver connection directly,
// bypassing the registry.
//
// # Delivery semantics
//
// RPC calls and casts are delivered at most once, as in oslo.messaging:
// servers acknowledge a request on receipt, before running the method.
// After a failed or timed-out call the method may or may not have run.
//
// # Concurrency
//
// A Transport, and the clients and servers built on it, are safe for
// concurrent use.
package messaging
