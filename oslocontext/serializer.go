package oslocontext

import (
	"context"
	"encoding/json"

	"github.com/go-oslo/messaging"
)

// clientTimeoutKey is the key an RPC server adds to the received
// dictionary (oslo's call-monitor timeout); it belongs to the message,
// not to the request context, so the Serializer does not keep it.
const clientTimeoutKey = "client_timeout"

// Serializer is a messaging.Serializer that carries a [RequestContext]
// across RPC calls, casts and notifications: the counterpart of the
// RequestContextSerializer of OpenStack services. The zero value is
// ready to use; it is safe for concurrent use.
//
// On the sending side, when the ctx of a call or cast carries a
// RequestContext ([NewContext], or the one a server attached) and no
// outgoing messaging.Metadata, the context's dictionary
// ([RequestContext.Metadata]) is sent. Metadata set with
// messaging.NewOutgoingContext is sent as it is and takes precedence.
//
// On the receiving side the received dictionary becomes a
// RequestContext ([FromMetadata]), attached to the handler's ctx
// ([FromContext]); messaging.FromIncomingContext still returns the
// dictionary as received. A dictionary that FromMetadata rejects fails
// the request.
//
// A notify.Notifier hands SerializeContext the dictionary it has already
// reduced to the keys a notification may carry, never nil; a
// RequestContext in the ctx is then not used. To send a context with a
// notification, attach its dictionary with
// messaging.NewOutgoingContext(ctx, rc.Metadata()): the notifier keeps
// its safe keys and drops the token.
type Serializer struct {
	// Base serializes the entities: call arguments, results and
	// notification payloads. Nil means messaging.NoOpSerializer. Its
	// context methods are not used.
	Base messaging.Serializer
}

var _ messaging.Serializer = Serializer{}

func (s Serializer) base() messaging.Serializer {
	if s.Base == nil {
		return messaging.NoOpSerializer{}
	}
	return s.Base
}

// SerializeEntity returns Base's serialization of v.
func (s Serializer) SerializeEntity(ctx context.Context, v any) (any, error) {
	return s.base().SerializeEntity(ctx, v)
}

// DeserializeEntity returns Base's deserialization of data.
func (s Serializer) DeserializeEntity(ctx context.Context, data json.RawMessage) (json.RawMessage, error) {
	return s.base().DeserializeEntity(ctx, data)
}

// SerializeContext returns md if it is not nil, else the dictionary of
// the RequestContext that ctx carries, if any.
func (s Serializer) SerializeContext(ctx context.Context, md messaging.Metadata) (messaging.Metadata, error) {
	if md != nil {
		return md, nil
	}
	if rc, ok := FromContext(ctx); ok {
		return rc.Metadata(), nil
	}
	return nil, nil
}

// DeserializeContext returns ctx with the RequestContext made from md
// attached. The server's "client_timeout" key is left out of Extra. It
// returns FromMetadata's error, wrapping ErrInvalidContext, for an
// invalid dictionary.
func (s Serializer) DeserializeContext(ctx context.Context, md messaging.Metadata) (context.Context, error) {
	if _, ok := md[clientTimeoutKey]; ok {
		md = md.Copy()
		delete(md, clientTimeoutKey)
	}
	rc, err := FromMetadata(md)
	if err != nil {
		return nil, err
	}
	return NewContext(ctx, rc), nil
}
