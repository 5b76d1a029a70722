package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are the metrics of Client.
type clientMetrics struct {
	calls        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	remoteErrors *prometheus.CounterVec
	casts        *prometheus.CounterVec
}

func newClientMetrics(reg prometheus.Registerer, c *config) (*clientMetrics, error) {
	reg = registerer(reg)
	m := &clientMetrics{}
	var err error
	if m.calls, err = register(reg, c.counter("rpc_client", "calls_total",
		"RPC calls made, by topic, method and outcome (ok, remote_error, timeout, canceled or error).",
		"topic", "method", "outcome")); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, c.histogram("rpc_client", "call_duration_seconds",
		"Time from sending an RPC call to its result, by topic, method and outcome.",
		"topic", "method", "outcome")); err != nil {
		return nil, err
	}
	if m.remoteErrors, err = register(reg, c.counter("rpc_client", "remote_errors_total",
		"RPC calls that failed on the server, by topic, method and the exception class received.",
		"topic", "method", "class")); err != nil {
		return nil, err
	}
	if m.casts, err = register(reg, c.counter("rpc_client", "casts_total",
		"RPC casts sent, by topic, method and outcome (ok or error).",
		"topic", "method", "outcome")); err != nil {
		return nil, err
	}
	return m, nil
}

// Client is an *rpc.Client whose calls and casts are recorded. Its Call
// and Cast have the signatures of rpc.Client's, so that it replaces the
// client in code that makes calls. It is safe for concurrent use.
//
// The rpc package has no client interceptor yet; Client is the way to
// measure a client until it has one.
type Client struct {
	c *rpc.Client
	m *clientMetrics
}

// NewClient returns a Client that makes its calls and casts with c and
// records them on reg (nil means prometheus.DefaultRegisterer), under
// the topic each is sent to. It fails if the metrics cannot be
// registered or an option is invalid.
func NewClient(c *rpc.Client, reg prometheus.Registerer, opts ...Option) (*Client, error) {
	if c == nil {
		return nil, errors.New("metrics: NewClient with a nil client")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m, err := newClientMetrics(reg, cfg)
	if err != nil {
		return nil, err
	}
	return &Client{c: c, m: m}, nil
}

// Unwrap returns the client that makes the calls.
func (c *Client) Unwrap() *rpc.Client { return c.c }

// Target returns the client's target, as [rpc.Client.Target] does.
func (c *Client) Target() messaging.Target { return c.c.Target() }

// Prepare returns a copy of c whose client is c's prepared with opts
// ([rpc.Client.Prepare]); it records on the same metrics.
func (c *Client) Prepare(opts ...rpc.CallOption) *Client {
	return &Client{c: c.c.Prepare(opts...), m: c.m}
}

// topic returns the topic a call with opts is sent to.
func (c *Client) topic(opts []rpc.CallOption) string {
	if len(opts) == 0 {
		return c.c.Target().Topic
	}
	return c.c.Prepare(opts...).Target().Topic
}

// Call makes the call with [rpc.Client.Call] and records its outcome
// and duration, and the class of a remote error.
func (c *Client) Call(ctx context.Context, method string, args, reply any, opts ...rpc.CallOption) error {
	topic := c.topic(opts)
	start := time.Now()
	err := c.c.Call(ctx, method, args, reply, opts...)
	d := time.Since(start)
	outcome := callOutcome(err)
	c.m.calls.WithLabelValues(topic, method, outcome).Inc()
	c.m.duration.WithLabelValues(topic, method, outcome).Observe(d.Seconds())
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		c.m.remoteErrors.WithLabelValues(topic, method, remoteClass(re)).Inc()
	}
	return err
}

// callOutcome returns the outcome label of a call's error.
func callOutcome(err error) string {
	var re *rpc.RemoteError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &re):
		return "remote_error"
	case errors.Is(err, messaging.ErrHeartbeatTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

// Cast sends the cast with [rpc.Client.Cast] and records its outcome.
func (c *Client) Cast(ctx context.Context, method string, args any, opts ...rpc.CallOption) error {
	topic := c.topic(opts)
	err := c.c.Cast(ctx, method, args, opts...)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	c.m.casts.WithLabelValues(topic, method, outcome).Inc()
	return err
}

// Call is the typed form of [Client.Call], as rpc.Call is of
// rpc.Client.Call: it returns the decoded result.
func Call[Reply any](ctx context.Context, c *Client, method string, args any, opts ...rpc.CallOption) (Reply, error) {
	var r Reply
	err := c.Call(ctx, method, args, &r, opts...)
	return r, err
}
