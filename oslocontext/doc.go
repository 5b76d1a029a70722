// Package oslocontext is the typed request context of OpenStack
// services: the Go form of oslo.context's RequestContext, the Keystone
// identity (user, project, domains, roles, token) and request ids that
// travel with every RPC call as oslo.messaging's context dictionary.
//
// A [RequestContext] converts to and from that dictionary with
// [RequestContext.Metadata] and [FromMetadata], using oslo.context's key
// names (those of to_dict, and the aliases its from_dict and the
// services' subclasses accept), so that it round-trips through Python
// services. Keys it does not know, such as those services add (Nova's
// read_deleted, timestamp, quota_class, ...), are kept in
// [RequestContext.Extra] and sent on.
//
// # Carrying the context
//
// [NewContext] attaches a RequestContext to a context.Context and
// [FromContext] retrieves it. The [Serializer], set on RPC clients and
// servers, turns one into the other at the edges, as Nova's
// RequestContextSerializer does:
//
//	srv, err := rpc.NewServer(tr, target, eps, rpc.WithSerializer(oslocontext.Serializer{}))
//	client, err := rpc.NewClient(tr, target, rpc.WithSerializer(oslocontext.Serializer{}))
//
// A handler then finds the caller's context with FromContext(ctx); calls
// it makes with that ctx carry the same context on, as OpenStack
// services pass their context to every RPC API call. Explicit
// messaging.Metadata set with messaging.NewOutgoingContext takes
// precedence.
//
// # Secrets
//
// A RequestContext carries the caller's Keystone token. Printing it with
// any fmt verb, or logging it with log/slog, never shows the token (nor
// any secret-looking key of Extra); [RequestContext.Metadata] and
// json.Marshal, which produce the wire form, include it.
package oslocontext
