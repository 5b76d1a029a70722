package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Request is an incoming call or cast as seen by a [Handler].
type Request struct {
	Method    string
	Namespace string // "" is the default namespace
	Version   string // "" when the caller sent none (dispatched as "1.0")
	// Args is the JSON object of keyword arguments, after the server's
	// Serializer.DeserializeEntity.
	Args json.RawMessage
	// MsgID is the call's message id; it is empty for casts.
	MsgID string
	// UniqueID is the message's oslo _unique_id.
	UniqueID string
	// SenderUserID is the sender's identity as the broker validated it,
	// when the transport provides one (for RabbitMQ, the user_id of a
	// sender with rabbit.Config.StampUserID), or "". Only a broker-checked
	// identity lands here: a handler may rely on it to authorise the
	// caller.
	SenderUserID string
}

// IsCall reports whether the caller waits for a reply.
func (r *Request) IsCall() bool { return r.MsgID != "" }

// A Handler serves one method. Its result is encoded as JSON and sent
// as the reply of a call; its error is sent as a failure (see
// [RemoteError] for choosing the exception class). The ctx carries the
// caller's metadata (messaging.FromIncomingContext) and is cancelled
// when the server closes.
type Handler interface {
	ServeRPC(ctx context.Context, req *Request) (any, error)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, req *Request) (any, error)

// ServeRPC calls f(ctx, req).
func (f HandlerFunc) ServeRPC(ctx context.Context, req *Request) (any, error) { return f(ctx, req) }

// Middleware wraps a Handler, for logging, metrics or policy. Server
// middleware sees every request the server receives, outermost first,
// including those no endpoint serves: the endpoint lookup happens at the
// end of the chain, and its ErrNoSuchMethod or ErrUnsupportedVersion
// error comes back through it.
type Middleware func(Handler) Handler

// Endpoint is a set of methods sharing a namespace and a version: an
// oslo endpoint object with its target. The zero value is an endpoint in
// the default namespace at version "1.0", with no methods.
//
// Register methods before the endpoint is given to a server; an
// Endpoint is not safe for concurrent registration.
type Endpoint struct {
	// Namespace is the endpoint's namespace; "" is the default.
	Namespace string
	// Version is the endpoint's version, "major.minor"; "" means "1.0".
	// It serves requests for the same major version and a minor version
	// not above its own.
	Version string
	// LegacyNamespaces are further namespaces the endpoint accepts; ""
	// stands for the default namespace.
	LegacyNamespaces []string

	methods map[string]Handler
}

// Register makes h serve method on ep. It panics if method is empty,
// begins with "_" (such names are never dispatched, as oslo's default
// access policy rules), or is already registered on ep.
func (ep *Endpoint) Register(method string, h Handler) {
	switch {
	case method == "":
		panic("rpc: Register with an empty method name")
	case strings.HasPrefix(method, "_"):
		panic("rpc: Register " + method + ": names beginning with _ are never dispatched")
	case h == nil:
		panic("rpc: Register " + method + ": nil handler")
	}
	if _, dup := ep.methods[method]; dup {
		panic("rpc: Register called twice for method " + method)
	}
	if ep.methods == nil {
		ep.methods = make(map[string]Handler)
	}
	ep.methods[method] = h
}

// Handle registers fn to serve method on ep. The call's keyword
// arguments are decoded into Args, usually a struct whose json tags
// name the arguments (unknown arguments are ignored; use
// json.RawMessage or map[string]any to see them all), and fn's result
// is encoded as the reply. Arguments that do not decode are reported to
// the caller as builtins.TypeError, as Python reports a bad call. Handle
// panics as [Endpoint.Register] does.
func Handle[Args, Reply any](ep *Endpoint, method string, fn func(context.Context, Args) (Reply, error)) {
	ep.Register(method, HandlerFunc(func(ctx context.Context, req *Request) (any, error) {
		var args Args
		if len(req.Args) > 0 {
			if err := json.Unmarshal(req.Args, &args); err != nil {
				return nil, &argsError{method: method, err: err}
			}
		}
		return fn(ctx, args)
	}))
}

// Methods returns the sorted names of the methods registered on ep.
func (ep *Endpoint) Methods() []string {
	out := make([]string, 0, len(ep.methods))
	for m := range ep.methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func (ep *Endpoint) version() string {
	if ep.Version == "" {
		return "1.0"
	}
	return ep.Version
}

func (ep *Endpoint) accepts(namespace string) bool {
	if ep.Namespace == namespace {
		return true
	}
	for _, ns := range ep.LegacyNamespaces {
		if ns == namespace {
			return true
		}
	}
	return false
}

func (ep *Endpoint) String() string {
	return fmt.Sprintf("endpoint(namespace=%q, version=%s)", ep.Namespace, ep.version())
}
