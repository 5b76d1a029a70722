// Package driver defines the interface that message-broker drivers
// implement to plug into package messaging, after the model of
// database/sql/driver.
//
// Application code does not use this package directly: it opens a
// [messaging.Transport] from a URL and builds rpc clients and servers on
// it. Driver authors implement [Driver] and [Conn], and the optional
// capability interfaces such as [RPCConn], and register the driver with
// messaging.Register from an init function.
//
// This package imports only the standard library.
//
// # Messages
//
// Drivers receive structured messages ([Request], [Reply]) rather than
// bytes, so that every driver speaking oslo.messaging's wire format can
// reuse package wire for the envelope and keys instead of reinventing
// it. A driver that speaks another format is free to encode the same
// fields differently.
//
// # Concurrency
//
// A [Conn] and every value it returns must be safe for concurrent use.
package driver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
)

// Errors that drivers return and that callers match with errors.Is.
// Package messaging re-exports them.
var (
	// ErrClosed is returned by operations on a closed Conn or Listener.
	ErrClosed = errors.New("messaging: closed")
	// ErrUndeliverable is returned when the broker reports that a
	// message could not be routed to any queue, for sends made with
	// [SendOptions.Mandatory] set (oslo's MessageUndeliverable).
	ErrUndeliverable = errors.New("messaging: message undeliverable")
	// ErrDeliveryFailure is returned when a message could not be
	// delivered to the broker within the allowed retries (oslo's
	// MessageDeliveryFailure).
	ErrDeliveryFailure = errors.New("messaging: message delivery failed")
	// ErrUnconfirmed is returned when the connection was lost after a
	// message was published but before the broker confirmed it: the
	// message may or may not have been delivered. Drivers return it
	// unless [SendOptions.ResendUnconfirmed] allows sending the message
	// again.
	ErrUnconfirmed = errors.New("messaging: connection lost before the broker confirmed the message; it may or may not have been delivered")
	// ErrHeartbeatTimeout is returned by [RPCConn.Call] when the call
	// monitor saw no reply or heartbeat within
	// [SendOptions.MonitorTimeout]. It matches context.DeadlineExceeded
	// with errors.Is, as oslo raises MessagingTimeout in both cases.
	ErrHeartbeatTimeout error = heartbeatTimeoutError{}
)

type heartbeatTimeoutError struct{}

func (heartbeatTimeoutError) Error() string {
	return "messaging: call monitor timeout: no reply or heartbeat from the server"
}

func (heartbeatTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// A Driver opens connections to one kind of broker.
type Driver interface {
	// Open returns a connection configured by u. Open must not block on
	// network I/O: drivers connect lazily, on first use, and reconnect on
	// their own. It returns an error for a URL or option it cannot accept.
	Open(u *URL) (Conn, error)
}

// Conn is a connection to a broker, shared by every client and server of
// one messaging.Transport. It must be safe for concurrent use.
//
// Capabilities beyond this minimum are optional interfaces that a Conn
// may implement, found by type assertion: [RPCConn] for request/reply,
// [NotifyConn] for notifications.
type Conn interface {
	// Ping checks that the broker can be reached, connecting if needed.
	// It blocks until it knows or ctx is done.
	Ping(ctx context.Context) error
	// Close releases the connection and everything created through it.
	// Calls in progress, the Next of its listeners and every later
	// operation fail with ErrClosed. Close is idempotent.
	Close() error
}

// LoggerSetter is implemented by connections that log. A
// messaging.Transport given a logger (messaging.WithLogger) calls
// SetLogger once, right after the connection is opened and before any
// other method, so that the driver logs where the application asked.
type LoggerSetter interface {
	SetLogger(l *slog.Logger)
}

// Address is the routing part of a target: where a message goes or what
// a server consumes. Exchange is never empty when a driver sees it: the
// transport has already applied its default (oslo's control_exchange).
type Address struct {
	Exchange string
	Topic    string
	Server   string // empty: any server of Topic
	// Fanout sends to every server of Topic (casts only). On RabbitMQ
	// oslo's fanout exchange is named after the topic alone
	// ("<topic>_fanout"), so fanouts are not scoped by Exchange there;
	// whether another driver scopes them is its own choice.
	Fanout bool
}

// SendOptions tune one call or cast.
type SendOptions struct {
	// Mandatory asks the broker to refuse, rather than drop, a message
	// that no queue would receive: the send then fails with
	// ErrUndeliverable (oslo's TransportOptions(at_least_once=True)).
	// As in oslo, it does not apply to fanout casts.
	Mandatory bool
	// Retry bounds the connection-level retries of the publish: a
	// negative value retries until the context is done, 0 does not
	// retry, n retries n times. Drivers without connection failures
	// ignore it.
	Retry int
	// ResendUnconfirmed allows the retries to send again a message whose
	// confirm was lost with the connection, with the same UniqueID, so
	// that the receiver's duplicate filter can drop a second copy.
	// Without it such a send fails with ErrUnconfirmed, so that a
	// message is never silently sent twice.
	ResendUnconfirmed bool
	// MonitorTimeout, when positive, is oslo's call_monitor_timeout: it
	// is sent to the server as _timeout, the server sends heartbeats
	// while the method runs, and Call fails with ErrHeartbeatTimeout if
	// neither a reply nor a heartbeat arrives for this long.
	MonitorTimeout time.Duration
}

// RPCConn is implemented by connections whose broker supports oslo's
// request/reply pattern.
type RPCConn interface {
	Conn
	// Call publishes req to addr and blocks until the final reply
	// arrives, the call monitor expires (ErrHeartbeatTimeout) or ctx is
	// done, in which case the error wraps ctx.Err(). The ctx deadline is
	// the call's timeout; drivers may pass it on to the broker as the
	// request's time to live. req.MsgID must be set; the driver sets
	// req.ReplyTo. addr.Fanout must be false.
	Call(ctx context.Context, addr Address, req *Request, opts SendOptions) (*Reply, error)
	// Cast publishes req to addr and returns once the broker has
	// accepted it (or, for drivers without acknowledgements, once it is
	// queued). It does not wait for the method to run. req.MsgID must be
	// empty.
	Cast(ctx context.Context, addr Address, req *Request, opts SendOptions) error
	// Listen starts consuming the requests addressed to a server:
	// addr.Topic (shared with the other servers of the topic),
	// addr.Topic + "." + addr.Server, and the topic's fanout. It
	// declares what it needs and returns once consuming has started.
	// addr.Server must not be empty; a negative opts.Prefetch is an
	// error.
	Listen(ctx context.Context, addr Address, opts ListenOptions) (Listener, error)
}

// ListenOptions tune a Listener.
type ListenOptions struct {
	// Prefetch bounds the deliveries that the broker hands to the
	// listener before they are taken with Next; 0 lets the driver
	// choose.
	Prefetch int
}

// A Listener yields the requests that reach one server.
type Listener interface {
	// Next blocks until a request arrives and returns it. It returns
	// ErrClosed once the Listener is closed, and ctx.Err() if ctx is done
	// first. Deliveries are acknowledged to the broker before Next
	// returns them (at most once, as oslo does).
	Next(ctx context.Context) (Delivery, error)
	// Close stops consuming. Next calls in progress return ErrClosed.
	// Deliveries already returned by Next stay valid: their replies can
	// still be sent. Close is idempotent and does not block on the
	// network for longer than the driver's own bounded teardown.
	Close() error
}

// A Delivery is one received request.
type Delivery interface {
	// Request returns the decoded request. The caller may modify it.
	Request() *Request
	// Reply sends the final reply of a call. It is a no-op that returns
	// nil for casts, and it may be called once: a second call returns
	// an error. It returns nil when the reply reached the caller's reply
	// queue, even if the caller has stopped waiting, and an error
	// wrapping ErrUndeliverable when that queue no longer exists.
	Reply(ctx context.Context, r *Reply) error
	// Heartbeat tells the caller that the call is still running (oslo's
	// call-monitor heartbeat). It is a no-op for casts and after the
	// final reply; its errors are those of Reply.
	Heartbeat(ctx context.Context) error
}

// Request is an RPC request: oslo's message dictionary without the
// envelope.
type Request struct {
	Method string
	// Args is the JSON object of keyword arguments. Nil means {}.
	Args json.RawMessage
	// Namespace and Version are sent only when not empty; a receiver
	// treats an empty Version as "1.0".
	Namespace string
	Version   string
	// Context is oslo's context dictionary, flattened on the wire into
	// _context_<key> fields. Values must be JSON-encodable. Decoders
	// produce numbers as json.Number so that they travel unchanged.
	Context map[string]any
	// MsgID is set for calls and empty for casts (oslo's _msg_id, 32 hex
	// digits).
	MsgID string
	// ReplyTo names where the reply goes (oslo's _reply_q). Drivers set
	// it on calls.
	ReplyTo string
	// MonitorTimeout is oslo's _timeout: the call-monitor interval
	// requested by the caller, or nil.
	MonitorTimeout *float64
	// UniqueID identifies the message for duplicate detection (oslo's
	// _unique_id). Senders set it once per logical message, so that a
	// re-sent copy carries the same id.
	UniqueID string
	// SenderUserID is, on a received request, the broker-validated
	// identity of its sender when the transport provides one (RabbitMQ's
	// user_id property, set by senders with rabbit.Config.StampUserID),
	// or "". Senders leave it empty; it is not part of oslo's message.
	SenderUserID string
}

// IsCall reports whether the request expects a reply.
func (r *Request) IsCall() bool { return r.MsgID != "" }

// Reply is the answer to a call.
type Reply struct {
	// Result is the JSON encoding of the method's return value. Nil
	// means null.
	Result json.RawMessage
	// Failure, when not nil, is the exception the method raised, and
	// Result is then ignored.
	Failure *Failure
}

// Failure is oslo's serialized exception.
type Failure struct {
	Class     string          // exception class name, e.g. "ValueError"
	Module    string          // defining module, e.g. "builtins"
	Message   string          // str(exception)
	Traceback []string        // lines, each ending in "\n"
	Args      json.RawMessage // JSON array of constructor arguments; nil means []
	Kwargs    json.RawMessage // JSON object of keyword arguments; nil means {}
}
