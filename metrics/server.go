package metrics

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/go-oslo/messaging/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

// UnknownMethod is the method label of the requests that no endpoint
// serves: their error matches rpc.ErrNoSuchMethod or
// rpc.ErrUnsupportedVersion, and their method name, chosen by the
// caller, is not recorded.
const UnknownMethod = "_unknown"

// The exception classes of oslo's dispatcher errors, and of any other
// error, as a caller receives them.
const (
	classNoSuchMethod       = "oslo_messaging.rpc.dispatcher.NoSuchMethod"
	classUnsupportedVersion = "oslo_messaging.rpc.dispatcher.UnsupportedVersion"
	classException          = "builtins.Exception"
)

// serverMetrics are the metrics of ServerMiddleware.
type serverMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	inFlight *prometheus.GaugeVec
}

func newServerMetrics(reg prometheus.Registerer, c *config) (*serverMetrics, error) {
	reg = registerer(reg)
	m := &serverMetrics{}
	var err error
	if m.handled, err = register(reg, c.counter("rpc_server", "handled_total",
		"RPC requests run by the server's handlers, by topic, method, kind (call or cast) and outcome (ok, error or panic).",
		"topic", "method", "kind", "outcome")); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, c.histogram("rpc_server", "handler_duration_seconds",
		"Time the server's handlers took to run an RPC request, middleware and dispatch included, by topic, method, kind and outcome.",
		"topic", "method", "kind", "outcome")); err != nil {
		return nil, err
	}
	if m.failures, err = register(reg, c.counter("rpc_server", "handler_failures_total",
		"RPC requests whose handler failed, by topic, method and the exception class the caller receives.",
		"topic", "method", "class")); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, c.gauge("rpc_server", "handlers_in_flight",
		"RPC requests being run by the server's handlers, by topic.",
		"topic")); err != nil {
		return nil, err
	}
	return m, nil
}

// ServerMiddleware returns an rpc.Middleware that records the requests
// of an RPC server of the given topic, to be installed with
// rpc.WithMiddleware (or, for a service, service.WithServerOptions):
//
//	mw, err := metrics.ServerMiddleware(reg, "compute")
//	srv, err := rpc.NewServer(tr, target, endpoints, rpc.WithMiddleware(mw))
//
// Install it first, so that it is the outermost middleware and its
// durations include the others'. It records, for every request but
// those in rpc.IntrospectionNamespace (as [rpc.Server.Stats] does):
// the request by kind and outcome, its duration, its failure by
// exception class, and the requests in flight. A panicking handler is
// recorded with the outcome "panic" and the class builtins.Exception;
// the panic goes on to the server, which recovers it as usual.
//
// The class is the one the caller receives, as far as a middleware can
// tell it: that of a *rpc.RemoteError in the error's chain, oslo's
// dispatcher classes for errors matching rpc.ErrNoSuchMethod and
// rpc.ErrUnsupportedVersion, and builtins.Exception for any other
// error. The server reports arguments that do not decode as
// builtins.TypeError, which the middleware cannot tell apart: it
// records them as builtins.Exception. Work done by the server after
// the middleware returns (encoding the result, sending the reply) is
// not measured; see [NewServerCollector] for the server's own counts.
//
// It fails if the metrics cannot be registered on reg (nil means
// prometheus.DefaultRegisterer) or an option is invalid.
func ServerMiddleware(reg prometheus.Registerer, topic string, opts ...Option) (rpc.Middleware, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m, err := newServerMetrics(reg, c)
	if err != nil {
		return nil, err
	}
	inFlight := m.inFlight.WithLabelValues(topic)
	return func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) (res any, err error) {
			if req.Namespace == rpc.IntrospectionNamespace {
				return next.ServeRPC(ctx, req)
			}
			inFlight.Inc()
			start := time.Now()
			panicked := true
			defer func() {
				inFlight.Dec()
				m.observe(topic, req, time.Since(start), err, panicked)
			}()
			res, err = next.ServeRPC(ctx, req)
			panicked = false
			return res, err
		})
	}, nil
}

func (m *serverMetrics) observe(topic string, req *rpc.Request, d time.Duration, err error, panicked bool) {
	kind := "cast"
	if req.IsCall() {
		kind = "call"
	}
	method := req.Method
	outcome, class := "ok", ""
	switch {
	case panicked:
		outcome, class = "panic", classException
	case err != nil:
		outcome, class = "error", failureClass(err)
		if class == classNoSuchMethod || class == classUnsupportedVersion {
			var re *rpc.RemoteError
			if !errors.As(err, &re) { // a dispatch failure, not a handler's
				method = UnknownMethod
			}
		}
	}
	m.handled.WithLabelValues(topic, method, kind, outcome).Inc()
	m.duration.WithLabelValues(topic, method, kind, outcome).Observe(d.Seconds())
	if class != "" {
		m.failures.WithLabelValues(topic, method, class).Inc()
	}
}

// failureClass returns the exception class, "module.Class", that a
// caller receives for a handler's error.
func failureClass(err error) string {
	var re *rpc.RemoteError
	switch {
	case errors.As(err, &re):
		return remoteClass(re)
	case errors.Is(err, rpc.ErrNoSuchMethod):
		return classNoSuchMethod
	case errors.Is(err, rpc.ErrUnsupportedVersion):
		return classUnsupportedVersion
	default:
		return classException
	}
}

// remoteClass returns the class of a remote error as oslo names it:
// builtins.Exception for empty parts, without "_Remote" suffixes.
func remoteClass(re *rpc.RemoteError) string {
	module, class := re.Module, re.Class
	if module == "" {
		module = "builtins"
	}
	if class == "" {
		class = "Exception"
	}
	return strings.TrimSuffix(module, "_Remote") + "." + strings.TrimSuffix(class, "_Remote")
}

// serverCollector exports the Stats of an RPC server.
type serverCollector struct {
	srv                                   *rpc.Server
	received, inFlight, failures, replies *prometheus.Desc
	procTotal, procMax                    *prometheus.Desc
}

// NewServerCollector returns a collector of the counters of srv
// ([rpc.Server.Stats]), read at each scrape, to be registered on a
// prometheus.Registerer. Its metrics have the constant labels topic and
// server, from srv's target, and labels, which may override them; give
// each server of a registry different labels. Of the options, only
// [WithNamespace] applies.
//
// Unlike [ServerMiddleware], it needs no change to the server, sees the
// failures of every stage of a request (arguments, result encoding)
// with the exact class the caller receives, and counts the replies that
// could not be sent; it has no per-method detail.
func NewServerCollector(srv *rpc.Server, labels prometheus.Labels, opts ...Option) prometheus.Collector {
	c := &config{namespace: DefaultNamespace}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	tgt := srv.Target()
	cl := prometheus.Labels{"topic": tgt.Topic, "server": tgt.Server}
	maps.Copy(cl, labels)
	desc := func(name, help string, variable ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(c.namespace, "rpc_server", name), help, variable, cl)
	}
	return &serverCollector{
		srv:       srv,
		received:  desc("received_total", "RPC requests the server took from the broker, by kind (call or cast).", "kind"),
		inFlight:  desc("in_flight", "RPC requests the server is processing."),
		failures:  desc("failures_total", "RPC requests whose processing failed, by the exception class the caller receives.", "class"),
		replies:   desc("reply_failures_total", "RPC calls whose reply the server could not send."),
		procTotal: desc("processing_seconds_total", "Total time the server spent processing the finished RPC requests, without sending replies."),
		procMax:   desc("processing_seconds_max", "Longest time the server spent processing one RPC request."),
	}
}

// Describe sends the descriptions of the server's metrics.
func (sc *serverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sc.received, sc.inFlight, sc.failures, sc.replies, sc.procTotal, sc.procMax} {
		ch <- d
	}
}

// Collect sends the server's current counters.
func (sc *serverCollector) Collect(ch chan<- prometheus.Metric) {
	st := sc.srv.Stats()
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	send(sc.received, prometheus.CounterValue, float64(st.Calls), "call")
	send(sc.received, prometheus.CounterValue, float64(st.Casts), "cast")
	send(sc.inFlight, prometheus.GaugeValue, float64(st.InFlight))
	for class, n := range st.FailuresByClass {
		send(sc.failures, prometheus.CounterValue, float64(n), class)
	}
	send(sc.replies, prometheus.CounterValue, float64(st.ReplyFailures))
	send(sc.procTotal, prometheus.CounterValue, st.ProcessingTime.Seconds())
	send(sc.procMax, prometheus.GaugeValue, st.MaxProcessingTime.Seconds())
}
