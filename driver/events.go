package driver

import "time"

// EventKind names what happened to a connection, for [Event.Kind].
type EventKind string

// The kinds of [Event]. Drivers report those that apply to them; a
// driver without network connections reports none.
const (
	// EventConnected: a connection to the broker was opened for the
	// first time for its purpose (publishing, a reply queue, a
	// listener).
	EventConnected EventKind = "connected"
	// EventDisconnected: a connection was lost, not closed on purpose.
	// Err says why.
	EventDisconnected EventKind = "disconnected"
	// EventReconnected: a connection lost earlier was opened again and
	// its work (publishing, consuming) resumed.
	EventReconnected EventKind = "reconnected"
	// EventReplyDropped: on the server side, the final reply of a call
	// was abandoned because the caller's reply queue is missing or known
	// to be gone. Queue names the reply queue, Err the error that
	// Delivery.Reply returned.
	EventReplyDropped EventKind = "reply_dropped"
	// EventLateReply: on the client side, a reply or heartbeat arrived
	// for a message id that no call waits for any more (the caller timed
	// out or gave up). Queue names the reply queue.
	EventLateReply EventKind = "late_reply"
)

// Event is a change of state of a driver's connections, or a message
// lost between a server and a caller, reported to the handler given to
// [EventNotifier.SetEventHandler].
type Event struct {
	Kind EventKind
	Time time.Time
	// Addr is the broker's host:port, when known; never credentials.
	Addr string
	// Queue is the queue concerned, when there is one.
	Queue string
	// Err is the cause, when there is one.
	Err error
}

// EventNotifier is implemented by connections that report events. A
// messaging.Transport given a handler (messaging.WithEventHandler) calls
// SetEventHandler once, right after the connection is opened and before
// any other method.
//
// The driver calls the handler on a goroutine of its own, one event at a
// time and in order, never on a goroutine doing I/O: a slow handler
// cannot stall the connection. Events wait for the handler in a bounded
// queue; when it is full, new events are dropped and counted (the driver
// logs how many). A panic in the handler is recovered and logged. Close
// returns after the handler's last call: no event is reported after
// Close.
type EventNotifier interface {
	SetEventHandler(h func(Event))
}
