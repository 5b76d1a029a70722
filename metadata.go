package messaging

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
)

// Metadata is the request context that travels with a message: the Go
// form of oslo.messaging's context dictionary (request_id, user_id,
// project_id, auth_token, ...). On the wire each key becomes a
// _context_<key> field. Values must be JSON-encodable; received numbers
// are json.Number values, so that they travel on unchanged.
//
// Printing Metadata with any fmt verb, or with String, redacts the
// values of keys that look secret (tokens, passwords, keys, secrets,
// credentials), at any depth.
type Metadata map[string]any

type (
	outgoingKey struct{}
	incomingKey struct{}
)

// NewOutgoingContext returns a copy of ctx carrying md, to be sent with
// every call, cast or notification made with the returned context. md
// is not copied: do not modify it afterwards.
func NewOutgoingContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, outgoingKey{}, md)
}

// FromOutgoingContext returns the metadata that NewOutgoingContext
// attached to ctx.
func FromOutgoingContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(outgoingKey{}).(Metadata)
	return md, ok
}

// NewIncomingContext returns a copy of ctx carrying md as received
// metadata. Servers call it for each request; tests of handlers may too.
func NewIncomingContext(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, incomingKey{}, md)
}

// FromIncomingContext returns the metadata received with the request a
// handler is processing. A server always adds "client_timeout", oslo's
// call-monitor interval or nil.
func FromIncomingContext(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(incomingKey{}).(Metadata)
	return md, ok
}

// ForwardContext returns ctx with its incoming metadata also set as
// outgoing, so that calls made while handling a request carry the
// caller's context, as oslo services routinely do. The received
// "client_timeout" is not forwarded.
func ForwardContext(ctx context.Context) context.Context {
	md, ok := FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	out := md.Copy()
	delete(out, "client_timeout")
	return NewOutgoingContext(ctx, out)
}

// Copy returns a shallow copy of md.
func (md Metadata) Copy() Metadata {
	if md == nil {
		return nil
	}
	return maps.Clone(md)
}

// secretWords mark keys whose values are never printed.
var secretWords = []string{"token", "password", "passwd", "secret", "credential", "auth", "key"}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Redacted returns a deep copy of md for printing, with the values of
// secret-looking keys replaced by "***".
func (md Metadata) Redacted() Metadata {
	if md == nil {
		return nil
	}
	return redactMap(md)
}

func redactMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if isSecretKey(k) {
			out[k] = "***"
			continue
		}
		out[k] = redactValue(v)
	}
	return out
}

func redactValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return redactMap(x)
	case Metadata:
		return redactMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e)
		}
		return out
	default:
		return v
	}
}

// String prints md with secrets redacted, keys sorted:
// map[auth_token:*** request_id:req-1].
func (md Metadata) String() string {
	r := md.Redacted()
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%v", k, r[k])
	}
	b.WriteString("]")
	return b.String()
}

// Format implements fmt.Formatter so that every verb prints the
// redacted form.
func (md Metadata) Format(f fmt.State, verb rune) { fmt.Fprint(f, md.String()) }

// GoString implements fmt.GoStringer with the redacted form.
func (md Metadata) GoString() string { return "messaging.Metadata" + md.String() }
