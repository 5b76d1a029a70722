package messaging

import (
	"context"
	"encoding/json"
)

// Serializer converts entities and request contexts between their Go
// and wire forms: oslo.messaging's Serializer. Clients and servers use
// [NoOpSerializer] unless given another.
//
// On a client, SerializeContext turns the outgoing metadata into the
// dictionary that is sent, and SerializeEntity each call's arguments
// value before JSON encoding; DeserializeEntity sees a call's JSON
// result before it is decoded into the caller's type. On a server,
// DeserializeContext sees the received dictionary and returns the
// context the handler runs with (it may attach a typed view, such as a
// Keystone request context), DeserializeEntity sees the JSON object of
// keyword arguments before it is decoded, and SerializeEntity the
// handler's result before JSON encoding.
//
// Unlike oslo, whose hooks run once per keyword argument, the entity
// hooks see the whole arguments value. Implementations must be safe for
// concurrent use.
type Serializer interface {
	SerializeEntity(ctx context.Context, v any) (any, error)
	DeserializeEntity(ctx context.Context, data json.RawMessage) (json.RawMessage, error)
	SerializeContext(ctx context.Context, md Metadata) (Metadata, error)
	DeserializeContext(ctx context.Context, md Metadata) (context.Context, error)
}

// NoOpSerializer passes entities and contexts through unchanged.
type NoOpSerializer struct{}

// SerializeEntity returns v.
func (NoOpSerializer) SerializeEntity(_ context.Context, v any) (any, error) { return v, nil }

// DeserializeEntity returns data.
func (NoOpSerializer) DeserializeEntity(_ context.Context, data json.RawMessage) (json.RawMessage, error) {
	return data, nil
}

// SerializeContext returns md.
func (NoOpSerializer) SerializeContext(_ context.Context, md Metadata) (Metadata, error) {
	return md, nil
}

// DeserializeContext returns ctx.
func (NoOpSerializer) DeserializeContext(ctx context.Context, _ Metadata) (context.Context, error) {
	return ctx, nil
}
