package rpc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// The introspection API, served by servers created with
// [WithIntrospection].
const (
	// IntrospectionNamespace is the namespace of the introspection
	// methods. It is the project's own: no oslo.messaging endpoint uses
	// it, so the methods never collide with an application's.
	IntrospectionNamespace = "omsg.introspection"
	// IntrospectionVersion is the version of the introspection
	// endpoint. Callers send it so that a later, compatible 1.x server
	// still answers them.
	IntrospectionVersion = "1.0"
	// DescribeMethod is the introspection call that returns the
	// server's [ServerDescription]. It takes no arguments.
	DescribeMethod = "describe"
	// AnnounceMethod is the introspection cast, usually fanout, that
	// [Discover] sends. Its one argument, "nonce", is echoed in the
	// answer: every server of the topic casts its description back
	// (method "discovered" of the introspection namespace, arguments
	// "nonce" and "server") as a fanout cast to [DiscoveryTopic].
	AnnounceMethod = "announce"
	// DiscoveryTopic is the topic on which [Discover] collects the
	// servers' answers, on the exchange of the target discovered.
	DiscoveryTopic = "omsg_discovery"
)

// DefaultDiscoverWait is how long [Discover] collects answers when given
// no positive wait.
const DefaultDiscoverWait = 2 * time.Second

const (
	// discoveryServer is the server name of Discover's listener. It is
	// the same for every Discover, so that the queues that listener
	// declares are reused instead of piling up (see Discover).
	discoveryServer = "replies"
	// discoveredMethod is the method of the servers' answers.
	discoveredMethod = "discovered"
)

// ServerInfo describes the process of a server with introspection (see
// [WithIntrospection]). The zero value takes every default.
type ServerInfo struct {
	// Binary is the program's name, such as "nova-compute". Default: the
	// base name of os.Args[0].
	Binary string
	// Host is the host the process runs on. Default: os.Hostname().
	Host string
	// Metadata are free-form labels (version, zone, ...) returned as
	// they are, to anyone who can send to the server's topic: put no
	// secrets in them. The map is copied. Default: none.
	Metadata map[string]string
}

// EndpointDescription describes one endpoint of a server, in the order
// the dispatcher searches them.
type EndpointDescription struct {
	Namespace        string   `json:"namespace"` // "" is the default namespace
	Version          string   `json:"version"`   // "major.minor"
	LegacyNamespaces []string `json:"legacy_namespaces"`
	Methods          []string `json:"methods"` // sorted
}

// ServerDescription describes a running server: what [Server.Description]
// returns, and the introspection method describe answers in JSON:
//
//	{"id": "5f0c…", "binary": "nova-compute", "host": "node1", "pid": 4242,
//	 "exchange": "nova", "topic": "compute", "server": "node1",
//	 "endpoints": [{"namespace": "", "version": "6.2", "legacy_namespaces": [],
//	                "methods": ["reboot_instance", ...]}, ...],
//	 "started_at": "2024-05-01T10:00:00.123456Z", "uptime_seconds": 3600.5,
//	 "stats": {...}, "library": "github.com/go-oslo/messaging v0.4.0",
//	 "go_version": "go1.25.1"}
//
// See [Stats] for the form of "stats".
type ServerDescription struct {
	// ID identifies the Server value: two servers started under the
	// same names, or one restarted, have different IDs.
	ID       string            `json:"id"`
	Binary   string            `json:"binary"`
	Host     string            `json:"host"`
	PID      int               `json:"pid"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Exchange, Topic and Server are the server's target, the exchange
	// being the transport's control exchange when the target has none.
	Exchange string `json:"exchange"`
	Topic    string `json:"topic"`
	Server   string `json:"server"`
	// Endpoints are the server's endpoints in dispatch order, the
	// built-in ping and introspection endpoints included when enabled.
	Endpoints []EndpointDescription `json:"endpoints"`
	// StartedAt is when Serve started, zero before; in JSON, RFC 3339
	// in UTC with microseconds ("started_at", absent when zero).
	StartedAt time.Time `json:"-"`
	// Uptime is the time since StartedAt; in JSON, "uptime_seconds".
	Uptime time.Duration `json:"-"`
	Stats  Stats         `json:"stats"`
	// Library is this module's path and version.
	Library   string `json:"library"`
	GoVersion string `json:"go_version"`
}

// startedAtLayout is RFC 3339 with microseconds, which Python's
// datetime.fromisoformat reads.
const startedAtLayout = "2006-01-02T15:04:05.000000Z07:00"

type descriptionAlias ServerDescription // without its methods

type descriptionJSON struct {
	descriptionAlias
	StartedAt string  `json:"started_at,omitempty"`
	Uptime    float64 `json:"uptime_seconds"`
}

// MarshalJSON encodes d in the form shown on [ServerDescription].
func (d ServerDescription) MarshalJSON() ([]byte, error) {
	j := descriptionJSON{descriptionAlias: descriptionAlias(d), Uptime: d.Uptime.Seconds()}
	if !d.StartedAt.IsZero() {
		j.StartedAt = d.StartedAt.UTC().Format(startedAtLayout)
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (d *ServerDescription) UnmarshalJSON(data []byte) error {
	var j descriptionJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*d = ServerDescription(j.descriptionAlias)
	if j.StartedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, j.StartedAt)
		if err != nil {
			return fmt.Errorf("rpc: server description: started_at: %w", err)
		}
		d.StartedAt = t
	}
	d.Uptime = seconds(j.Uptime)
	return nil
}

// introspector holds what a server says about itself, and serves the
// introspection endpoint when it is enabled.
type introspector struct {
	s    *Server
	id   string
	info ServerInfo // defaults applied
}

func newIntrospector(s *Server, info ServerInfo) *introspector {
	if info.Binary == "" && len(os.Args) > 0 {
		info.Binary = filepath.Base(os.Args[0])
	}
	if info.Host == "" {
		info.Host, _ = os.Hostname()
	}
	return &introspector{s: s, id: wire.NewID(), info: info}
}

// endpoint returns the introspection endpoint.
func (in *introspector) endpoint() *Endpoint {
	ep := &Endpoint{Namespace: IntrospectionNamespace, Version: IntrospectionVersion}
	ep.Register(DescribeMethod, HandlerFunc(func(context.Context, *Request) (any, error) {
		return in.s.Description(), nil
	}))
	Handle(ep, AnnounceMethod, in.announce)
	return ep
}

type announceArgs struct {
	Nonce string `json:"nonce"`
}

type discoveredArgs struct {
	Nonce  string            `json:"nonce"`
	Server ServerDescription `json:"server"`
}

// announce answers a Discover: it casts the server's description to the
// discovery topic of the server's exchange, as a fanout so that it
// reaches the listener of every Discover in progress, which keep the
// answers carrying their nonce. The answer is always this method and
// topic: whoever sends announce cannot make the server cast anything
// else, or anywhere else.
func (in *introspector) announce(ctx context.Context, a announceArgs) (any, error) {
	if a.Nonce == "" {
		return nil, NewRemoteError("builtins.ValueError", "announce: a nonce is required")
	}
	c, err := NewClient(in.s.tr, messaging.Target{Exchange: in.s.target.Exchange, Topic: DiscoveryTopic,
		Namespace: IntrospectionNamespace, Version: IntrospectionVersion, Fanout: true})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	return nil, c.Cast(ctx, discoveredMethod, discoveredArgs{Nonce: a.Nonce, Server: in.s.Description()})
}

// Description returns what the server says about itself: the answer of
// the introspection method describe. It is available whether or not
// introspection is enabled (the process info then takes its defaults),
// does not block, and is safe to call at any time. The returned value
// belongs to the caller.
func (s *Server) Description() ServerDescription {
	in := s.intro
	s.mu.Lock()
	served := s.servedAt
	s.mu.Unlock()
	d := ServerDescription{
		ID:        in.id,
		Binary:    in.info.Binary,
		Host:      in.info.Host,
		PID:       os.Getpid(),
		Metadata:  maps.Clone(in.info.Metadata),
		Exchange:  s.tr.Address(s.target).Exchange,
		Topic:     s.target.Topic,
		Server:    s.target.Server,
		Endpoints: make([]EndpointDescription, 0, len(s.dispatcher.endpoints)),
		Stats:     s.Stats(),
		Library:   libraryVersion(),
		GoVersion: runtime.Version(),
	}
	for _, ep := range s.dispatcher.endpoints {
		d.Endpoints = append(d.Endpoints, EndpointDescription{
			Namespace:        ep.Namespace,
			Version:          ep.version(),
			LegacyNamespaces: append([]string{}, ep.LegacyNamespaces...),
			Methods:          ep.Methods(),
		})
	}
	if !served.IsZero() {
		d.StartedAt = served.Round(0) // without the monotonic reading
		d.Uptime = time.Since(served)
	}
	return d
}

// modulePath is this module's path.
const modulePath = "github.com/go-oslo/messaging"

// libraryVersion returns the module's path and version as the build
// recorded it: the dependency's version in a program that imports the
// module, "(devel)" when built inside the module itself.
var libraryVersion = sync.OnceValue(func() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == modulePath && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, m := range bi.Deps {
			if m.Path == modulePath {
				v = m.Version
				if m.Replace != nil && m.Replace.Version != "" {
					v = m.Replace.Version
				}
			}
		}
	}
	return modulePath + " " + v
})

// Describe calls the introspection method describe on the client's
// target, in [IntrospectionNamespace] at [IntrospectionVersion] whatever
// the client's namespace, version and version cap, and returns the
// answer. Target one server with client.Prepare(ToServer(name)); without
// a server name, one server of the topic answers.
//
// Errors are those of [Client.Call]; a server without introspection
// answers with an error matching ErrUnsupportedVersion (or
// ErrNoSuchMethod, if one of its endpoints uses the namespace).
func Describe(ctx context.Context, c *Client, opts ...CallOption) (ServerDescription, error) {
	opts = append(opts[:len(opts):len(opts)],
		Namespace(IntrospectionNamespace), Version(IntrospectionVersion), VersionCap(""))
	return Call[ServerDescription](ctx, c, DescribeMethod, nil, opts...)
}

// Discover lists the live servers of target's topic, on target's
// exchange (the transport's control exchange if empty), that have
// introspection enabled (see [WithIntrospection]): with target.Server
// set, only that server. It blocks for wait ([DefaultDiscoverWait] if
// not positive), as a fanout cannot know how many servers will answer,
// and returns their descriptions sorted by server name, then host and
// ID. It returns an empty list if none answered. Servers without
// introspection, Python oslo.messaging servers included, do not answer.
//
// Discover listens on [DiscoveryTopic], sends [AnnounceMethod] as a
// fanout cast to the topic, and collects the answers carrying its own
// random nonce, so that Discovers running at the same time, also for
// other topics, do not mix their answers.
//
// What it leaves on the broker: nothing that grows with use. On
// RabbitMQ, its listener declares oslo's three queues of a server, as
// every listener does: the fanout queue "omsg_discovery_fanout_<hex>" is
// deleted when Discover returns (and expires, like oslo's, if the
// process dies first), and the fanout exchange "omsg_discovery_fanout"
// is auto-delete. The two shared queues, "omsg_discovery" and
// "omsg_discovery.replies", stay as oslo's topic and server queues do,
// but every Discover reuses the same two (they receive no messages: the
// answers are fanout casts), so at most two idle queues remain per
// virtual host, and none with amqp_auto_delete. A fanout exchange named
// after the discovered topic is declared by the announce, as by any
// fanout cast, and already exists when servers are listening.
//
// If ctx ends before wait has elapsed, Discover returns what it found so
// far with an error wrapping ctx.Err(). Other errors: an error wrapping
// messaging.ErrInvalidTarget for a target without topic, one naming the
// driver if the transport does not support RPC, and the driver's error
// if listening or sending fails.
func Discover(ctx context.Context, tr *messaging.Transport, target messaging.Target, wait time.Duration) ([]ServerDescription, error) {
	if tr == nil {
		return nil, errors.New("rpc: Discover with a nil transport")
	}
	conn, ok := tr.Conn().(driver.RPCConn)
	if !ok {
		return nil, fmt.Errorf("rpc: the %T driver does not support RPC", tr.Conn())
	}
	if target.Topic == "" {
		return nil, fmt.Errorf("%w: a topic is required to discover servers: %v", messaging.ErrInvalidTarget, target)
	}
	if wait <= 0 {
		wait = DefaultDiscoverWait
	}
	exchange := tr.Address(target).Exchange
	replies := messaging.Target{Exchange: target.Exchange, Topic: DiscoveryTopic, Server: discoveryServer}
	lis, err := conn.Listen(ctx, tr.Address(replies), driver.ListenOptions{})
	if err != nil {
		return nil, fmt.Errorf("rpc: discover %v: %w", target, err)
	}
	defer lis.Close()

	announce := messaging.Target{Exchange: target.Exchange, Topic: target.Topic, Server: target.Server,
		Fanout: target.Server == "", Namespace: IntrospectionNamespace, Version: IntrospectionVersion}
	c, err := NewClient(tr, announce)
	if err != nil {
		return nil, err
	}
	nonce := wire.NewID()
	if err := c.Cast(ctx, AnnounceMethod, announceArgs{Nonce: nonce}); err != nil {
		return nil, fmt.Errorf("rpc: discover %v: %w", target, err)
	}

	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	found := []ServerDescription{}
	seen := map[string]bool{}
	for {
		d, err := lis.Next(wctx)
		if err != nil {
			sortDescriptions(found)
			switch {
			case ctx.Err() != nil:
				return found, fmt.Errorf("rpc: discover %v: %w", target, ctx.Err())
			case wctx.Err() != nil:
				return found, nil
			default:
				return found, fmt.Errorf("rpc: discover %v: %w", target, err)
			}
		}
		desc, ok := answer(d.Request(), nonce)
		if !ok || seen[desc.ID] || desc.Exchange != exchange || desc.Topic != target.Topic ||
			(target.Server != "" && desc.Server != target.Server) {
			continue
		}
		seen[desc.ID] = true
		found = append(found, desc)
	}
}

// answer decodes a server's answer to the announce that carried nonce.
func answer(req *driver.Request, nonce string) (ServerDescription, bool) {
	if req.Method != discoveredMethod || req.Namespace != IntrospectionNamespace {
		return ServerDescription{}, false
	}
	var a discoveredArgs
	if err := json.Unmarshal(req.Args, &a); err != nil || a.Nonce != nonce || a.Server.ID == "" {
		return ServerDescription{}, false
	}
	return a.Server, true
}

func sortDescriptions(ds []ServerDescription) {
	slices.SortFunc(ds, func(a, b ServerDescription) int {
		return cmp.Or(cmp.Compare(a.Server, b.Server), cmp.Compare(a.Host, b.Host), cmp.Compare(a.ID, b.ID))
	})
}
