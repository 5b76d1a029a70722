package rpc

import (
	"context"

	"github.com/go-oslo/messaging/internal/version"
)

// PingMethod is oslo's server ping method, answered with "pong" by
// servers created with WithPing(true).
const PingMethod = "oslo_rpc_server_ping"

// pingEndpoint is oslo's PingEndpoint: default namespace, version 1.0.
func pingEndpoint() *Endpoint {
	ep := &Endpoint{}
	ep.Register(PingMethod, HandlerFunc(func(context.Context, *Request) (any, error) { return "pong", nil }))
	return ep
}

// dispatcher finds the handler of a request by oslo's rules.
type dispatcher struct {
	endpoints []*Endpoint
}

// lookup returns the handler of the first endpoint whose namespace
// matches and whose version is compatible and which has the method. If
// some endpoint matched in namespace and version but none had the
// method, the error matches ErrNoSuchMethod; if none matched, it matches
// ErrUnsupportedVersion, as oslo's RPCDispatcher decides.
func (d *dispatcher) lookup(method, namespace, ver string) (Handler, error) {
	if ver == "" {
		ver = "1.0"
	}
	found := false
	for _, ep := range d.endpoints {
		if !ep.accepts(namespace) || !version.Compatible(ep.version(), ver) {
			continue
		}
		if h, ok := ep.methods[method]; ok {
			return h, nil
		}
		found = true
	}
	if found {
		return nil, noSuchMethod(method)
	}
	return nil, unsupportedVersion(ver, method)
}
