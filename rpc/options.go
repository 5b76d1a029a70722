package rpc

import (
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/internal/version"
)

// DefaultTimeout bounds calls whose context has no deadline: oslo's
// rpc_response_timeout.
const DefaultTimeout = 60 * time.Second

// DefaultMaxConcurrency is the default number of handlers a server runs
// at once: oslo's executor_thread_pool_size.
const DefaultMaxConcurrency = 64

// clientConfig is shared, read-only, by a Client and its Prepare'd
// copies.
type clientConfig struct {
	remoteErrors map[string]error
	serializer   messaging.Serializer
	logger       *slog.Logger
}

type serverConfig struct {
	maxConcurrency int
	middleware     []Middleware
	serializer     messaging.Serializer
	logger         *slog.Logger
	ping           bool
	introspection  *ServerInfo // nil: introspection off
}

// ClientOption configures a Client.
type ClientOption interface {
	applyClient(*clientConfig, *callInfo) error
}

// ServerOption configures a Server.
type ServerOption interface {
	applyServer(*serverConfig) error
}

// Option configures both clients and servers.
type Option interface {
	ClientOption
	ServerOption
}

type clientOpt func(*clientConfig, *callInfo) error

func (f clientOpt) applyClient(c *clientConfig, ci *callInfo) error { return f(c, ci) }

type serverOpt func(*serverConfig) error

func (f serverOpt) applyServer(c *serverConfig) error { return f(c) }

type sharedOpt struct {
	client clientOpt
	server serverOpt
}

func (o sharedOpt) applyClient(c *clientConfig, ci *callInfo) error { return o.client(c, ci) }
func (o sharedOpt) applyServer(c *serverConfig) error               { return o.server(c) }

// WithSerializer sets the entity and context serializer of a client or
// server. Default: messaging.NoOpSerializer.
func WithSerializer(s messaging.Serializer) Option {
	return sharedOpt{
		client: func(c *clientConfig, _ *callInfo) error {
			if s == nil {
				return fmt.Errorf("%w: nil serializer", messaging.ErrInvalidOption)
			}
			c.serializer = s
			return nil
		},
		server: func(c *serverConfig) error {
			if s == nil {
				return fmt.Errorf("%w: nil serializer", messaging.ErrInvalidOption)
			}
			c.serializer = s
			return nil
		},
	}
}

// WithLogger sets the logger of a client or server. Default: the
// transport's logger.
func WithLogger(l *slog.Logger) Option {
	return sharedOpt{
		client: func(c *clientConfig, _ *callInfo) error {
			if l != nil {
				c.logger = l
			}
			return nil
		},
		server: func(c *serverConfig) error {
			if l != nil {
				c.logger = l
			}
			return nil
		},
	}
}

// WithRemoteErrors maps remote exception names ("module.Class", e.g.
// "nova.exception.InstanceNotFound") to local errors, so that callers
// can test a [RemoteError] with errors.Is and errors.As: the Go form of
// oslo's allowed_remote_exmods. oslo's dispatcher exceptions always map
// to ErrNoSuchMethod and ErrUnsupportedVersion. The map is copied.
func WithRemoteErrors(m map[string]error) ClientOption {
	return clientOpt(func(c *clientConfig, _ *callInfo) error {
		if c.remoteErrors == nil {
			c.remoteErrors = make(map[string]error, len(m))
		}
		maps.Copy(c.remoteErrors, m)
		return nil
	})
}

// WithTimeout sets the time a call waits for its reply when its context
// has no deadline: oslo's rpc_response_timeout. Deadlines already on the
// context are never extended. Default: 60s.
func WithTimeout(d time.Duration) ClientOption {
	return clientOpt(func(_ *clientConfig, ci *callInfo) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v is not positive", messaging.ErrInvalidOption, d)
		}
		ci.timeout = d
		return nil
	})
}

// WithVersionCap caps the version of the messages the client sends
// (oslo's version_cap): a call or cast whose version is not compatible
// with the cap, or that has no version while a cap is set, fails with
// ErrVersionCap. Default: no cap.
func WithVersionCap(v string) ClientOption {
	return clientOpt(func(_ *clientConfig, ci *callInfo) error {
		return ci.setVersionCap(v)
	})
}

// WithCallOptions applies call options to every call of the client, as
// if given to [Client.Prepare].
func WithCallOptions(opts ...CallOption) ClientOption {
	return clientOpt(func(_ *clientConfig, ci *callInfo) error {
		for _, o := range opts {
			o(ci)
		}
		return ci.err
	})
}

// WithMaxConcurrency bounds the handlers a server runs at once (oslo's
// executor_thread_pool_size); the driver's prefetch follows it, so
// unacknowledged work stays bounded. Default: 64.
func WithMaxConcurrency(n int) ServerOption {
	return serverOpt(func(c *serverConfig) error {
		if n < 1 {
			return fmt.Errorf("%w: max concurrency %d is below 1", messaging.ErrInvalidOption, n)
		}
		c.maxConcurrency = n
		return nil
	})
}

// WithMiddleware adds middleware around every dispatched method, the
// first given outermost.
func WithMiddleware(mw ...Middleware) ServerOption {
	return serverOpt(func(c *serverConfig) error {
		for _, m := range mw {
			if m == nil {
				return fmt.Errorf("%w: nil middleware", messaging.ErrInvalidOption)
			}
		}
		c.middleware = append(c.middleware, mw...)
		return nil
	})
}

// WithPing makes the server answer oslo's ping method,
// oslo_rpc_server_ping, with "pong" (oslo's rpc_ping_enabled). It is
// served in the default namespace at version 1.0, after the endpoints; an
// endpoint defining the method itself takes precedence. Default: off.
func WithPing(on bool) ServerOption {
	return serverOpt(func(c *serverConfig) error {
		c.ping = on
		return nil
	})
}

// WithIntrospection makes the server answer the methods of
// [IntrospectionNamespace] at [IntrospectionVersion]: describe, which
// returns the server's [ServerDescription] (info, target, endpoints,
// uptime and [Stats]), and announce, the fanout cast through which
// [Discover] lists the servers of a topic. The endpoint is served after
// the server's endpoints and the ping, so the dispatcher's rules apply
// as to any endpoint: a user endpoint of that namespace and a
// compatible version comes first, and a method named describe in any
// other namespace is unaffected. Requests in the namespace pass through
// the server's middleware, so access policies apply to them too.
//
// info names the process; its empty fields take defaults (see
// [ServerInfo]). Default: off. Python oslo.messaging servers do not
// answer these methods.
func WithIntrospection(info ServerInfo) ServerOption {
	return serverOpt(func(c *serverConfig) error {
		info.Metadata = maps.Clone(info.Metadata)
		c.introspection = &info
		return nil
	})
}

// callInfo is the target and behaviour of a call: client defaults, then
// Prepare'd options, then per-call options.
type callInfo struct {
	target     messaging.Target
	timeout    time.Duration
	versionCap string
	monitor    time.Duration
	retry      int
	retrySet   bool // the caller opted into retries
	mandatory  bool
	err        error // the first invalid option
}

func (ci *callInfo) setVersionCap(v string) error {
	if v != "" {
		if _, err := version.Parse(v); err != nil {
			return fmt.Errorf("%w: version cap: %w", messaging.ErrInvalidOption, err)
		}
	}
	ci.versionCap = v
	return nil
}

func (ci *callInfo) fail(err error) {
	if ci.err == nil {
		ci.err = err
	}
}

// CallOption overrides the target or behaviour of calls and casts, per
// call or through [Client.Prepare] (oslo's prepare()).
type CallOption func(*callInfo)

// ToServer sends to the named server of the topic only.
func ToServer(server string) CallOption {
	return func(ci *callInfo) { ci.target.Server = server }
}

// Fanout sends a cast to every server of the topic. A call with fanout
// fails with messaging.ErrInvalidTarget.
func Fanout(on bool) CallOption {
	return func(ci *callInfo) { ci.target.Fanout = on }
}

// Topic overrides the target's topic.
func Topic(topic string) CallOption {
	return func(ci *callInfo) { ci.target.Topic = topic }
}

// Exchange overrides the target's exchange.
func Exchange(exchange string) CallOption {
	return func(ci *callInfo) { ci.target.Exchange = exchange }
}

// Namespace sets the namespace of the method; "" is the default.
func Namespace(ns string) CallOption {
	return func(ci *callInfo) { ci.target.Namespace = ns }
}

// Version sets the API version the call requires, "major.minor"; ""
// sends none. An invalid version makes the call fail with
// messaging.ErrInvalidOption (oslo: "Version must contain a major and
// minor integer").
func Version(v string) CallOption {
	return func(ci *callInfo) {
		if v != "" {
			if _, err := version.Parse(v); err != nil {
				ci.fail(fmt.Errorf("%w: %w", messaging.ErrInvalidOption, err))
				return
			}
		}
		ci.target.Version = v
	}
}

// VersionCap sets the version cap, as [WithVersionCap]; "" removes it.
func VersionCap(v string) CallOption {
	return func(ci *callInfo) {
		if err := ci.setVersionCap(v); err != nil {
			ci.fail(err)
		}
	}
}

// Timeout sets how long a call waits for its reply when its context has
// no deadline, as [WithTimeout].
func Timeout(d time.Duration) CallOption {
	return func(ci *callInfo) {
		if d <= 0 {
			ci.fail(fmt.Errorf("%w: timeout %v is not positive", messaging.ErrInvalidOption, d))
			return
		}
		ci.timeout = d
	}
}

// CallMonitorTimeout enables oslo's call monitor: the server sends
// heartbeats every d/2 while the method runs (d of at least 2s), and the
// call fails with messaging.ErrHeartbeatTimeout when neither a reply nor
// a heartbeat came for d, even if the call's deadline is further away.
// Zero disables it. Default: off.
func CallMonitorTimeout(d time.Duration) CallOption {
	return func(ci *callInfo) {
		if d < 0 {
			ci.fail(fmt.Errorf("%w: call monitor timeout %v is negative", messaging.ErrInvalidOption, d))
			return
		}
		ci.monitor = d
	}
}

// Retry bounds the driver's connection-level retries of the publish:
// negative retries until the context is done, 0 does not retry, n
// retries n times (oslo's retry).
//
// Without this option a publish that never reached the broker is
// retried until the context is done, but a message whose confirm was
// lost with the connection (it may or may not have been delivered) is
// not sent again: the call or cast fails with an error matching
// messaging.ErrUnconfirmed. Giving Retry opts into sending such a
// message again, with the same _unique_id, so that the server's
// duplicate filter drops a second copy.
func Retry(n int) CallOption {
	return func(ci *callInfo) { ci.retry, ci.retrySet = n, true }
}

// Mandatory makes a call or cast that no queue would receive fail at once
// with messaging.ErrUndeliverable, instead of a cast being dropped and a
// call timing out: oslo's TransportOptions(at_least_once=True). As in
// oslo, it does not apply to fanout casts.
func Mandatory(on bool) CallOption {
	return func(ci *callInfo) { ci.mandatory = on }
}
