package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// DefaultDrainTimeout bounds the graceful stop of a service: oslo's
// graceful_shutdown_timeout.
const DefaultDrainTimeout = 60 * time.Second

type config struct {
	logger       *slog.Logger
	drainTimeout time.Duration
	reload       func(context.Context) error
	signals      <-chan os.Signal
	signalsSet   bool // WithSignals was given, maybe with nil
	serverOpts   []rpc.ServerOption
	httpAddr     string
	httpHandler  http.Handler
}

// Option configures a Service.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// WithLogger sets the logger of the service, its periodic tasks and its
// RPC server; the service adds the attributes "binary", "topic" and
// "host". Default: the transport's logger. Nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l != nil {
			c.logger = l
		}
		return nil
	})
}

// WithDrainTimeout bounds the graceful stop: how long the RPC server may
// take to finish the requests it is running and send their replies
// before they are cancelled (oslo's graceful_shutdown_timeout). Zero
// waits for them without limit. Default: 60s.
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: drain timeout %v is negative", messaging.ErrInvalidOption, d)
		}
		c.drainTimeout = d
		return nil
	})
}

// WithReload sets the function run when the service receives SIGHUP, to
// reload its configuration (oslo's reset()). It runs on a goroutine of
// Run's, one reload at a time: a SIGHUP that arrives during a reload
// makes one more run after it. Its ctx is cancelled when the service
// stops. Its error, or panic, is logged and the service keeps running.
// Default: none, and SIGHUP is logged and ignored.
func WithReload(fn func(ctx context.Context) error) Option {
	return optionFunc(func(c *config) error {
		c.reload = fn
		return nil
	})
}

// WithSignals makes Run take its signals from ch instead of the
// process's: syscall.SIGTERM and os.Interrupt (SIGINT) stop the service,
// syscall.SIGHUP reloads it, others are ignored. A nil ch disables
// signal handling: stop the service with [Service.Stop] or by cancelling
// Run's context. The channel is never closed by the service; closing it
// ends signal handling. Default: os/signal notifications of SIGTERM,
// SIGINT and SIGHUP for the time of Run.
func WithSignals(ch <-chan os.Signal) Option {
	return optionFunc(func(c *config) error {
		c.signals, c.signalsSet = ch, true
		return nil
	})
}

// WithHTTP makes Run serve h on the TCP address addr (such as
// "127.0.0.1:9090", or ":0" for any free port) for as long as the service
// runs: the opt-in endpoint for /metrics (metrics.Handler) or health
// checks. Run fails at once if it cannot listen on addr, and shuts the
// HTTP server down gracefully, within the drain timeout, when the service
// stops. [Service.HTTPAddr] reports the address bound. Default: no HTTP
// server.
func WithHTTP(addr string, h http.Handler) Option {
	return optionFunc(func(c *config) error {
		if addr == "" || h == nil {
			return fmt.Errorf("%w: WithHTTP needs an address and a handler", messaging.ErrInvalidOption)
		}
		c.httpAddr, c.httpHandler = addr, h
		return nil
	})
}

// WithServerOptions passes options to the service's rpc.Server, such as
// rpc.WithMaxConcurrency, rpc.WithPing or rpc.WithMiddleware. They apply
// after the service's defaults: rpc.WithSerializer(oslocontext.Serializer{})
// and the service's logger.
func WithServerOptions(opts ...rpc.ServerOption) Option {
	return optionFunc(func(c *config) error {
		c.serverOpts = append(c.serverOpts, opts...)
		return nil
	})
}
