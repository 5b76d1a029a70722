package messaging

import (
	"strings"
)

// DefaultExchange is oslo's default control_exchange.
const DefaultExchange = "openstack"

// Target names where a message is sent and, for a server, what it
// consumes: oslo.messaging's Target. The zero value is an empty target;
// which fields are required depends on the use:
//
//   - sending (rpc.Client, notifications) needs Topic;
//   - an RPC server needs Topic and Server;
//   - a call cannot use Fanout.
type Target struct {
	// Exchange scopes topics. Empty means the transport's control
	// exchange (default "openstack", see WithControlExchange).
	Exchange string
	// Topic names the set of interfaces that servers expose.
	Topic string
	// Namespace identifies an RPC interface on a server. Empty is the
	// default (oslo's None) namespace.
	Namespace string
	// Version is the RPC interface version, "major.minor". Empty is
	// oslo's None: the server then assumes "1.0".
	Version string
	// Server directs a message to one server of Topic.
	Server string
	// Fanout sends a cast to every server of Topic.
	Fanout bool
	// LegacyNamespaces are further namespaces an endpoint accepts
	// (oslo's legacy_namespaces); "" stands for the default namespace.
	LegacyNamespaces []string
}

// String returns the target in oslo's form, listing only the fields
// that are set: <Target topic=compute, server=host1>.
func (t Target) String() string {
	var b strings.Builder
	b.WriteString("<Target ")
	sep := ""
	add := func(k, v string) {
		if v == "" {
			return
		}
		b.WriteString(sep + k + "=" + v)
		sep = ", "
	}
	add("exchange", t.Exchange)
	add("topic", t.Topic)
	add("namespace", t.Namespace)
	add("version", t.Version)
	add("server", t.Server)
	if t.Fanout {
		add("fanout", "True")
	}
	b.WriteString(">")
	return b.String()
}
