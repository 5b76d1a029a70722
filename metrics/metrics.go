package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultNamespace is the prefix of every metric name, unless
// [WithNamespace] changes it.
const DefaultNamespace = "oslo_messaging"

// DefaultBuckets are the upper bounds, in seconds, of the duration
// histograms: those of the Prometheus client, extended to the default
// call timeout of 60s.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// An Option configures the metrics of a constructor of this package.
type Option func(*config)

type config struct {
	namespace   string
	buckets     []float64
	constLabels prometheus.Labels
}

// WithNamespace sets the prefix of the metric names; "" means none.
// Default: [DefaultNamespace].
func WithNamespace(ns string) Option {
	return func(c *config) { c.namespace = ns }
}

// WithBuckets sets the upper bounds, in seconds and increasing, of the
// duration histograms. Default: [DefaultBuckets].
func WithBuckets(b ...float64) Option {
	return func(c *config) { c.buckets = slices.Clone(b) }
}

// WithConstLabels adds labels of fixed values to every metric, such as
// the name of the service.
func WithConstLabels(l prometheus.Labels) Option {
	return func(c *config) {
		c.constLabels = make(prometheus.Labels, len(l))
		for k, v := range l {
			c.constLabels[k] = v
		}
	}
}

func newConfig(opts []Option) (*config, error) {
	c := &config{namespace: DefaultNamespace, buckets: DefaultBuckets}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("metrics: option %d is nil", i)
		}
		o(c)
	}
	if len(c.buckets) == 0 {
		return nil, errors.New("metrics: no histogram buckets")
	}
	for i := 1; i < len(c.buckets); i++ {
		if c.buckets[i] <= c.buckets[i-1] {
			return nil, fmt.Errorf("metrics: histogram buckets %v are not increasing", c.buckets)
		}
	}
	return c, nil
}

func (c *config) counter(subsystem, name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Subsystem: subsystem, Name: name, Help: help, ConstLabels: c.constLabels,
	}, labels)
}

func (c *config) gauge(subsystem, name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: c.namespace, Subsystem: subsystem, Name: name, Help: help, ConstLabels: c.constLabels,
	}, labels)
}

func (c *config) histogram(subsystem, name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: c.namespace, Subsystem: subsystem, Name: name, Help: help, ConstLabels: c.constLabels,
		Buckets: c.buckets,
	}, labels)
}

// registerer returns reg, or the default registerer for nil.
func registerer(reg prometheus.Registerer) prometheus.Registerer {
	if reg == nil {
		return prometheus.DefaultRegisterer
	}
	return reg
}

// register registers c on reg and returns it, or returns the collector
// of the same description that reg already has.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("metrics: registering metrics: %w", err)
}

// Handler returns an HTTP handler that serves the metrics of g in the
// Prometheus exposition formats; nil means prometheus.DefaultGatherer.
// A *prometheus.Registry is both the Registerer given to the
// constructors of this package and the Gatherer given here.
func Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// MetricsPath is the path at which [Serve] exposes the metrics.
const MetricsPath = "/metrics"

// shutdownTimeout bounds the wait of Serve for the scrapes in progress
// when its context ends.
const shutdownTimeout = 5 * time.Second

// Serve runs an HTTP server on addr ("host:port") that serves the
// metrics of g at [MetricsPath] (and nothing else) until ctx ends; nil
// g means prometheus.DefaultGatherer. It is the opt-in metrics endpoint
// of a program: start it next to service.Service.Run with the same
// context (see the package example).
//
// Serve returns nil once ctx has ended and the server has stopped,
// after waiting a few seconds at most for the scrapes in progress, and
// an error if it cannot listen on addr or the server fails.
func Serve(ctx context.Context, addr string, g prometheus.Gatherer) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return ServeListener(ctx, ln, g)
}

// ServeListener is [Serve] on a listener the caller opened. It closes
// ln when it returns.
func ServeListener(ctx context.Context, ln net.Listener, g prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, Handler(g))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("metrics: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("metrics: stopping the server on %s: %w", ln.Addr(), err)
	}
	return nil
}
