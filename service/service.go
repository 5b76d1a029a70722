package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// ErrDrainIncomplete is returned by [Service.Run] when the graceful stop
// could not wait for every running request: the drain timeout expired,
// or a second SIGTERM or SIGINT asked to stop at once. The requests
// still running were cancelled; their callers may get no reply.
var ErrDrainIncomplete = errors.New("service: drain incomplete")

// Service states.
const (
	stateNew = iota
	stateRunning
	stateDone
)

// Service is an RPC service: the Go form of the Service of oslo.service
// and of the OpenStack services built on it. It serves its endpoints on
// a topic and host, runs periodic tasks, and handles the signals of the
// process, as described in the package documentation.
//
// A Service runs once. Its methods are safe for concurrent use.
type Service struct {
	binary, topic, host string
	cfg                 config
	log                 *slog.Logger
	srv                 *rpc.Server

	stopOnce sync.Once
	stopc    chan struct{} // closed by Stop
	ready    chan struct{} // closed once serving

	mu       sync.Mutex // guards the fields below
	state    int
	httpAddr string // bound by WithHTTP's server
	tasks    []*task
	names    map[string]bool
}

// New returns a service of the program binary (such as "nova-compute")
// that serves endpoints on the target {Topic: topic, Server: host}: on
// the topic's queue, shared with the other hosts of the topic, on the
// queue "topic.host", and on the topic's fanout. host is usually the
// name of the machine (oslo's CONF.host, os.Hostname()).
//
// The service's RPC server uses the [oslocontext.Serializer], so that
// handlers find the caller's request context with
// oslocontext.FromContext; [WithServerOptions] can override it.
//
// New does no I/O and starts no goroutine; [Service.Run] does. It fails
// with an error wrapping messaging.ErrInvalidOption for an empty binary
// name, a nil or invalid option, a nil endpoint, and
// messaging.ErrInvalidTarget for an empty topic or host; and with the
// error of rpc.NewServer if the transport does not support RPC.
func New(tr *messaging.Transport, binary, topic, host string, endpoints []*rpc.Endpoint, opts ...Option) (*Service, error) {
	if tr == nil {
		return nil, errors.New("service: New with a nil transport")
	}
	if binary == "" {
		return nil, fmt.Errorf("%w: empty binary name", messaging.ErrInvalidOption)
	}
	if topic == "" || host == "" {
		return nil, fmt.Errorf("%w: service %s needs a topic and a host (topic %q, host %q)",
			messaging.ErrInvalidTarget, binary, topic, host)
	}
	cfg := config{logger: tr.Logger(), drainTimeout: DefaultDrainTimeout}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d is nil", messaging.ErrInvalidOption, i)
		}
		if err := o.apply(&cfg); err != nil {
			return nil, fmt.Errorf("service %s: %w", binary, err)
		}
	}
	// The RPC server adds the topic to its own log records.
	srvLog := cfg.logger.With("binary", binary, "host", host)
	sopts := append([]rpc.ServerOption{
		rpc.WithSerializer(oslocontext.Serializer{}),
		rpc.WithLogger(srvLog),
	}, cfg.serverOpts...)
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: topic, Server: host}, endpoints, sopts...)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", binary, err)
	}
	return &Service{
		binary: binary,
		topic:  topic,
		host:   host,
		cfg:    cfg,
		log:    cfg.logger.With("binary", binary, "topic", topic, "host", host),
		srv:    srv,
		stopc:  make(chan struct{}),
		ready:  make(chan struct{}),
		names:  make(map[string]bool),
	}, nil
}

// Binary returns the service's program name.
func (s *Service) Binary() string { return s.binary }

// Topic returns the service's topic.
func (s *Service) Topic() string { return s.topic }

// Host returns the service's host.
func (s *Service) Host() string { return s.host }

// Target returns the target the service serves.
func (s *Service) Target() messaging.Target { return s.srv.Target() }

// AddPeriodicTask adds a task that Run runs every interval while the
// service serves: oslo's periodic_task(spacing=interval). Each task
// runs on a goroutine of its own, started once the service listens.
//
//   - Runs are spaced from the start of the previous run, and never
//     overlap: if a run takes longer than the interval, the runs that
//     fell due meanwhile are skipped (and a warning logged), and the next
//     starts on the schedule, at the first multiple of the interval after
//     the slow run ends.
//   - The first run comes one interval after the start, or at once with
//     RunImmediately(true); InitialDelay(d) shifts the start by d.
//   - Each run's ctx carries a new admin RequestContext
//     (oslocontext.NewAdmin, as OpenStack services give their periodic
//     tasks), so that the calls a task makes carry a request id. ctx is
//     cancelled when the service stops: fn must then return, as Run
//     waits for it.
//   - An error returned by fn is logged, a panic recovered and logged
//     with its stack, and the task keeps its schedule.
//
// An interval of 0 means [DefaultTaskInterval]; a negative interval
// disables the task (it is logged and not added), as in oslo, so that a
// configured interval of -1 turns a task off.
//
// It fails with an error wrapping messaging.ErrInvalidOption for an
// empty or duplicate name, a nil fn or an invalid option, and with an
// error once Run has been called.
func (s *Service) AddPeriodicTask(name string, interval time.Duration, fn func(ctx context.Context) error, opts ...TaskOption) error {
	if name == "" {
		return fmt.Errorf("%w: periodic task with an empty name", messaging.ErrInvalidOption)
	}
	if fn == nil {
		return fmt.Errorf("%w: periodic task %s has a nil function", messaging.ErrInvalidOption, name)
	}
	t := &task{name: name, interval: interval, fn: fn}
	for i, o := range opts {
		if o == nil {
			return fmt.Errorf("%w: periodic task %s: option %d is nil", messaging.ErrInvalidOption, name, i)
		}
		if err := o.applyTask(t); err != nil {
			return fmt.Errorf("service: periodic task %s: %w", name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return fmt.Errorf("service: AddPeriodicTask %s after Run", name)
	}
	if s.names[name] {
		return fmt.Errorf("%w: periodic task %s added twice", messaging.ErrInvalidOption, name)
	}
	if interval < 0 {
		s.log.Info("service: periodic task disabled: its interval is negative", "task", name, "interval", interval)
		return nil
	}
	if t.interval == 0 {
		t.interval = DefaultTaskInterval
	}
	s.names[name] = true
	s.tasks = append(s.tasks, t)
	return nil
}

// Ready returns a channel that is closed once Run serves: the RPC
// server consumes its queues (requests sent from then on are received)
// and the periodic tasks have started. It is never closed if Run fails
// or stops before.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Stop asks Run to stop gracefully, as SIGTERM does, and returns at
// once; Run returns when the stop is complete. Stop is idempotent. If
// called before Run, Run returns nil at once without serving.
func (s *Service) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
}

// Run serves the service until it is asked to stop, and returns when
// everything it started has finished.
//
// It starts by listening: it declares the queues and consumes them,
// returning the error at once if that fails. (A driver may retry
// transient failures first, as the RabbitMQ driver does until the
// broker answers; signals, Stop and ctx stop the service meanwhile.)
// Then it serves requests and runs the periodic tasks, and closes
// [Service.Ready].
//
// SIGHUP runs the reload function ([WithReload]) and the service keeps
// running. SIGTERM, SIGINT, [Service.Stop] or the end of ctx stop it
// gracefully:
//
//  1. the periodic tasks' and the reload's contexts are cancelled;
//  2. the RPC server stops consuming and the requests it is running
//     finish and send their replies (rpc.Server.Shutdown), for at most
//     the drain timeout ([WithDrainTimeout]); a second SIGTERM or SIGINT
//     ends the wait at once;
//  3. the requests still running are cancelled (rpc.Server.Close);
//  4. Run waits for the periodic tasks, the reload and the server's
//     goroutines to return.
//
// Handler contexts derive from ctx without its cancellation: the end of
// ctx starts a graceful stop, not the cancellation of running requests.
//
// Run returns nil after a graceful stop, an error wrapping
// ErrDrainIncomplete if requests had to be cancelled, the error of the
// RPC server if listening failed or serving stopped on its own, and an
// error if Run was called before. It does not close the transport.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateNew {
		s.mu.Unlock()
		return fmt.Errorf("service %s: Run called twice", s.binary)
	}
	s.state = stateRunning
	tasks := s.tasks
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state = stateDone
		s.mu.Unlock()
	}()

	select {
	case <-s.stopc:
		_ = s.srv.Close()
		s.log.Info("service: stopped before it started")
		return nil
	default:
	}

	stopHTTP, err := s.startHTTP()
	if err != nil {
		_ = s.srv.Close()
		return err
	}
	sigs, stopSignals := s.signals()
	defer stopSignals()
	r := &runner{s: s, sigs: sigs}
	runErr := r.run(ctx, tasks)
	return errors.Join(runErr, stopHTTP())
}

// startHTTP starts the server of WithHTTP, if any, and returns the
// function that shuts it down (within the drain timeout) and waits for
// it.
func (s *Service) startHTTP() (stop func() error, err error) {
	if s.cfg.httpHandler == nil {
		return func() error { return nil }, nil
	}
	ln, err := net.Listen("tcp", s.cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("service %s: HTTP: %w", s.binary, err)
	}
	s.mu.Lock()
	s.httpAddr = ln.Addr().String()
	s.mu.Unlock()
	hs := &http.Server{Handler: s.cfg.httpHandler, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("service: HTTP serving", "addr", ln.Addr().String())
	return func() error {
		ctx := context.Background()
		if s.cfg.drainTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.drainTimeout)
			defer cancel()
		}
		err := hs.Shutdown(ctx)
		if err != nil {
			_ = hs.Close()
		}
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return fmt.Errorf("service %s: HTTP: %w", s.binary, err)
		}
		return nil
	}, nil
}

// HTTPAddr returns the address the server of WithHTTP listens on, once
// Run has started it, else "".
func (s *Service) HTTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpAddr
}

// signals returns the channel Run takes signals from and a function
// that stops their delivery.
func (s *Service) signals() (<-chan os.Signal, func()) {
	if s.cfg.signalsSet {
		return s.cfg.signals, func() {}
	}
	ch := make(chan os.Signal, 4) // signal.Notify does not block: room for a burst
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt, syscall.SIGHUP)
	return ch, func() { signal.Stop(ch) }
}

// runner is the state of one Run.
type runner struct {
	s    *Service
	sigs <-chan os.Signal

	wg sync.WaitGroup // Listen, Serve, Shutdown, the reloader and the periodic tasks
}

func (r *runner) run(ctx context.Context, tasks []*task) error {
	s, log := r.s, r.s.log
	// Run's ctx without its cancellation, for the server and what the
	// stop cancels.
	base := context.WithoutCancel(ctx)

	// Cancelled when the service stops: the periodic tasks, the reload
	// and a Listen still in progress.
	stopCtx, stopAll := context.WithCancel(base)
	defer stopAll()

	listened := make(chan error, 1)
	r.wg.Go(func() { listened <- s.srv.Listen(stopCtx) })

	reloads := make(chan struct{}, 1) // one pending reload at most
	if s.cfg.reload != nil {
		r.wg.Go(func() { r.reloader(stopCtx, reloads) })
	}

	served := make(chan error, 1)
	var serving <-chan error // served, once Serve runs
	var runErr error
	reason := ""
	for reason == "" {
		select {
		case err := <-listened:
			listened = nil
			if err != nil {
				runErr = fmt.Errorf("service %s: %w", s.binary, err)
				reason = "listen failed"
				continue // the loop ends: reason is set
			}
			r.wg.Go(func() { served <- s.srv.Serve(base) })
			serving = served
			for _, t := range tasks {
				r.wg.Go(func() { t.loop(stopCtx, log) })
			}
			close(s.ready)
			log.Info("service: started", "tasks", len(tasks))
		case err := <-serving:
			serving = nil
			runErr = fmt.Errorf("service %s: %w", s.binary, err)
			reason = "the RPC server stopped"
		case <-ctx.Done():
			reason = "context done"
		case <-s.stopc:
			reason = "Stop called"
		case sig, ok := <-r.sigs:
			switch {
			case !ok:
				r.sigs = nil
			case sig == syscall.SIGHUP:
				r.requestReload(reloads)
			case sig == syscall.SIGTERM || sig == os.Interrupt:
				reason = "signal " + sig.String()
			default:
				log.Debug("service: signal ignored", "signal", sig.String())
			}
		}
	}

	log.Info("service: stopping", "reason", reason) // an error is returned, not logged
	stopAll()
	drainErr := r.drain(base)
	_ = s.srv.Close()
	r.wait()
	if serving != nil {
		if err := <-serving; !errors.Is(err, rpc.ErrServerClosed) {
			log.Warn("service: RPC server ended with an error", "error", err)
		}
	}
	if runErr == nil {
		runErr = drainErr
	}
	log.Info("service: stopped")
	return runErr
}

// drain shuts the RPC server down gracefully, within the drain timeout
// and until a second stop signal. base carries the values of Run's ctx.
func (r *runner) drain(base context.Context) error {
	s, log := r.s, r.s.log
	d := s.cfg.drainTimeout
	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	if d > 0 {
		ctx, cancel = context.WithTimeout(base, d)
	} else {
		ctx, cancel = context.WithCancel(base)
	}
	defer cancel()

	done := make(chan error, 1)
	r.wg.Go(func() { done <- s.srv.Shutdown(ctx) })
	forced := false
	for {
		select {
		case err := <-done:
			switch {
			case err == nil:
				return nil
			case forced:
				log.Warn("service: stopping at once: running requests are cancelled")
				return fmt.Errorf("%w: a second signal stopped service %s at once", ErrDrainIncomplete, s.binary)
			default:
				log.Warn("service: drain timeout expired: running requests are cancelled", "drain_timeout", d)
				return fmt.Errorf("%w: service %s: drain timeout %v expired", ErrDrainIncomplete, s.binary, d)
			}
		case sig, ok := <-r.sigs:
			switch {
			case !ok:
				r.sigs = nil
			case sig == syscall.SIGTERM || sig == os.Interrupt:
				forced = true
				cancel()
			default:
				log.Info("service: signal ignored while stopping", "signal", sig.String())
			}
		}
	}
}

// wait waits for the goroutines of the run: the periodic tasks, the
// reload, and the server's Listen, Serve and Shutdown. It warns if they
// take longer than the drain timeout, and logs the signals that arrive
// meanwhile.
func (r *runner) wait() {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	var timeout <-chan time.Time
	if d := r.s.cfg.drainTimeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-done:
			return
		case <-timeout:
			timeout = nil
			r.s.log.Warn("service: periodic tasks or a reload have not returned since the stop; waiting for them",
				"waited", r.s.cfg.drainTimeout)
		case sig, ok := <-r.sigs:
			if !ok {
				r.sigs = nil
				continue
			}
			r.s.log.Info("service: signal ignored while stopping", "signal", sig.String())
		}
	}
}

// requestReload asks the reloader for a reload, unless one is pending.
func (r *runner) requestReload(reloads chan<- struct{}) {
	if r.s.cfg.reload == nil {
		r.s.log.Info("service: SIGHUP ignored: no reload function")
		return
	}
	select {
	case reloads <- struct{}{}:
	default:
		r.s.log.Info("service: SIGHUP: a reload is already pending")
	}
}

// reloader runs the reload function for each request until ctx is done.
func (r *runner) reloader(ctx context.Context, reloads <-chan struct{}) {
	log := r.s.log
	for {
		select {
		case <-ctx.Done():
			return
		case <-reloads:
		}
		if ctx.Err() != nil {
			return // stopping: a pending reload is dropped
		}
		log.Info("service: reloading (SIGHUP)")
		err := callReload(ctx, r.s.cfg.reload)
		var pe *panicError
		switch {
		case err == nil:
			log.Info("service: reloaded")
		case errors.As(err, &pe):
			log.Error("service: reload panicked", "panic", fmt.Sprint(pe.value), "stack", pe.stack)
		default:
			log.Error("service: reload failed", "error", err)
		}
	}
}

func callReload(ctx context.Context, fn func(context.Context) error) error {
	t := task{fn: fn}
	return t.call(ctx)
}
