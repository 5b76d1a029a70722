package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/ctxutil"
)

// replyTimeout bounds the sending of one reply, so that a broker that
// does not take it cannot hold a handler slot for ever.
const replyTimeout = 30 * time.Second

// Server states.
const (
	stateNew = iota
	stateServing
	stateClosed
)

// Server consumes the requests of a target and dispatches them to
// endpoints: oslo's RPCServer. It listens on the target's topic (shared
// with the other servers of the topic), on topic.server, and on the
// topic's fanout.
//
// Its lifecycle is net/http's: [Server.Listen] starts consuming (oslo's
// start()); [Server.Serve] blocks while serving;
// [Server.Shutdown] stops consuming and waits for running handlers and
// their replies; [Server.Close] stops at once, cancelling handlers. A
// Server serves once. Its methods are safe for concurrent use.
//
// Handlers run on goroutines owned by Serve, at most
// WithMaxConcurrency at a time; Serve returns only after all of them
// have.
type Server struct {
	tr         *messaging.Transport
	conn       driver.RPCConn
	target     messaging.Target
	cfg        serverConfig
	dispatcher dispatcher
	stats      serverStats   // see Stats; always collected
	intro      *introspector // identity; serves introspection if enabled

	mu        sync.Mutex // guards the fields below
	state     int
	listening bool // Listen started
	listener  driver.Listener
	cancel    context.CancelFunc // cancels handler contexts
	quit      chan struct{}      // closed by Shutdown and Close
	done      chan struct{}      // closed when Serve returns
	servedAt  time.Time          // when Serve started
}

// NewServer returns a server for target with the given endpoints,
// searched in order. It does no I/O; call [Server.Serve] to start.
//
// It fails with an error wrapping messaging.ErrInvalidTarget if target
// lacks a topic or a server name, messaging.ErrInvalidOption for an
// invalid option or a nil endpoint, and an error naming the driver if
// the transport does not support RPC.
func NewServer(tr *messaging.Transport, target messaging.Target, endpoints []*Endpoint, opts ...ServerOption) (*Server, error) {
	if tr == nil {
		return nil, errors.New("rpc: NewServer with a nil transport")
	}
	conn, ok := tr.Conn().(driver.RPCConn)
	if !ok {
		return nil, fmt.Errorf("rpc: the %T driver does not support RPC", tr.Conn())
	}
	if target.Topic == "" || target.Server == "" {
		return nil, fmt.Errorf("%w: a server's target must have topic and server names specified: %v", messaging.ErrInvalidTarget, target)
	}
	s := &Server{
		tr:     tr,
		conn:   conn,
		target: target,
		cfg: serverConfig{
			maxConcurrency: DefaultMaxConcurrency,
			serializer:     messaging.NoOpSerializer{},
			logger:         tr.Logger(),
		},
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, o := range opts {
		if err := o.applyServer(&s.cfg); err != nil {
			return nil, err
		}
	}
	eps := make([]*Endpoint, 0, len(endpoints)+1)
	for i, ep := range endpoints {
		if ep == nil {
			return nil, fmt.Errorf("%w: endpoint %d is nil", messaging.ErrInvalidOption, i)
		}
		eps = append(eps, ep)
	}
	if s.cfg.ping {
		defined := false
		for _, ep := range eps {
			if _, ok := ep.methods[PingMethod]; ok {
				defined = true
			}
		}
		if defined {
			s.cfg.logger.Warn("rpc: an endpoint defines the ping method; the built-in ping is not added", "method", PingMethod)
		} else {
			eps = append(eps, pingEndpoint())
		}
	}
	var info ServerInfo
	if s.cfg.introspection != nil {
		info = *s.cfg.introspection
	}
	s.intro = newIntrospector(s, info)
	if s.cfg.introspection != nil {
		// After the endpoints and the ping, as oslo adds its ping
		// endpoint: the dispatcher rules decide, and a user endpoint in
		// the same namespace and version comes first.
		eps = append(eps, s.intro.endpoint())
	}
	s.dispatcher = dispatcher{endpoints: eps}
	return s, nil
}

// Target returns the server's target.
func (s *Server) Target() messaging.Target { return s.target }

// Listen declares the server's queues and starts consuming, and returns
// once the server can receive requests: oslo's start(). Requests that
// arrive before Serve is called wait, within the prefetch bound. Calling
// Listen is optional (Serve listens if needed), but a program that sends
// requests right after starting a server should call Listen first, so
// that no request reaches the topic before the server's queues exist.
//
// It returns ErrServerClosed if the server was shut down, also while
// Listen was still connecting, an error if it is already listening, and
// the driver's error if consuming cannot start.
func (s *Server) Listen(ctx context.Context) error {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listening {
		s.mu.Unlock()
		return errors.New("rpc: server already listening")
	}
	s.listening = true
	quit := s.quit
	s.mu.Unlock()

	// Shutdown and Close end a Listen still connecting.
	ctx, cancel := ctxutil.CancelOn(ctx, quit)
	defer cancel()
	lis, err := s.conn.Listen(ctx, s.tr.Address(s.target), driver.ListenOptions{Prefetch: s.cfg.maxConcurrency})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.listening = false
		if s.closingLocked() {
			return ErrServerClosed
		}
		return fmt.Errorf("rpc: listen %v: %w", s.target, err)
	}
	if s.closingLocked() {
		_ = lis.Close()
		return ErrServerClosed
	}
	s.listener = lis
	return nil
}

// Serve dispatches requests until [Server.Shutdown] or [Server.Close]
// is called, when it returns ErrServerClosed, or until ctx is done, when
// it returns ctx.Err(). It calls [Server.Listen] first unless that was
// done. Handler contexts derive from ctx. Serve returns only after every
// handler it started has returned.
//
// It returns ErrServerClosed at once if the server was already shut
// down, an error if Serve was already called or Listen is still in
// progress, and the driver's error if consuming cannot start or stops
// for good.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateServing:
		s.mu.Unlock()
		return errors.New("rpc: Serve called twice")
	case stateClosed:
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listening && s.listener == nil {
		s.mu.Unlock()
		return errors.New("rpc: Serve called while Listen is in progress")
	}
	s.state = stateServing
	s.servedAt = time.Now()
	hctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	needListen := !s.listening
	s.mu.Unlock()
	defer close(s.done)
	defer cancel()

	if needListen {
		if err := s.Listen(ctx); err != nil {
			return err
		}
	}
	s.mu.Lock()
	lis := s.listener
	s.mu.Unlock()

	var wg sync.WaitGroup
	err := s.loop(ctx, hctx, lis, &wg)
	_ = lis.Close()
	wg.Wait()
	return err
}

func (s *Server) loop(ctx, hctx context.Context, lis driver.Listener, wg *sync.WaitGroup) error {
	slots := make(chan struct{}, s.cfg.maxConcurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-s.quit:
			return ErrServerClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		d, err := lis.Next(ctx)
		if err != nil {
			<-slots
			switch {
			case s.closing():
				return ErrServerClosed
			case ctx.Err() != nil:
				return ctx.Err()
			default:
				return fmt.Errorf("rpc: serve %v: %w", s.target, err)
			}
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.handle(hctx, d)
		})
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closingLocked()
}

func (s *Server) closingLocked() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}

// stopLocked moves the server to the closed state and stops consuming.
// It reports whether Serve had been started.
func (s *Server) stopLocked() (started bool) {
	started = s.state == stateServing
	s.state = stateClosed
	if !s.closingLocked() {
		close(s.quit)
	}
	if s.listener != nil {
		_ = s.listener.Close()
	}
	return started
}

// Shutdown stops consuming, then waits until the running handlers have
// returned and their replies are sent, or ctx is done, when it returns
// ctx.Err() and leaves the handlers running (call Close to cancel them).
// Shutdown is idempotent; on a server that never served it only marks
// it closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.stopLocked()
	s.mu.Unlock()
	if !started {
		select {
		case <-s.done:
		default:
			return nil // never served
		}
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops consuming and cancels the contexts of running handlers.
// It does not wait for them: Serve returns once they have. Requests
// received but not yet dispatched are lost, as they were acknowledged
// on receipt. Close is idempotent and returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopLocked()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}

// handle dispatches one delivery and replies to calls.
func (s *Server) handle(ctx context.Context, d driver.Delivery) {
	req := d.Request()
	md := messaging.Metadata{}
	for k, v := range req.Context {
		md[k] = v
	}
	if req.MonitorTimeout != nil {
		md["client_timeout"] = *req.MonitorTimeout
	} else {
		md["client_timeout"] = nil
	}
	log := s.requestLogger(req)

	// Stats: every request is counted but those of the introspection
	// namespace on a server with introspection (see Stats).
	counted := s.cfg.introspection == nil || req.Namespace != IntrospectionNamespace
	if counted {
		s.stats.begin(req.IsCall())
	}
	start := time.Now()

	ctx = messaging.NewIncomingContext(ctx, md)
	result, err := s.invoke(ctx, d, req, md, log)

	if !req.IsCall() {
		if counted {
			s.stats.processed(time.Since(start), err)
		}
		if err != nil {
			s.logFailure(log, req, err)
		}
		return
	}
	reply := &driver.Reply{}
	if err == nil {
		reply.Result, err = s.encodeResult(ctx, result)
	}
	if counted {
		s.stats.processed(time.Since(start), err)
	}
	if err != nil {
		s.logFailure(log, req, err)
		reply.Failure = failureFor(err, stackOf(err))
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
	defer cancel()
	if rerr := d.Reply(rctx, reply); rerr != nil {
		if counted {
			s.stats.replyFailed()
		}
		log.Warn("rpc: reply not sent", "error", rerr)
	}
}

// requestLogger returns the server's logger with the request's topic,
// method and message id. Since most requests log nothing, the attributes
// are only formatted when a record is written.
func (s *Server) requestLogger(req *driver.Request) *slog.Logger {
	attrs := []slog.Attr{slog.String("topic", s.target.Topic), slog.String("method", req.Method)}
	if req.IsCall() {
		attrs = append(attrs, slog.String("msg_id", req.MsgID))
	}
	return slog.New(&lazyAttrs{h: s.cfg.logger.Handler(), attrs: attrs})
}

// lazyAttrs is a slog.Handler that adds attrs to the records of h
// without preformatting them, unlike h.WithAttrs.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(l.attrs...)
	return l.h.Handle(ctx, r)
}

func (l *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.h.WithAttrs(append(append([]slog.Attr(nil), l.attrs...), attrs...))
}

func (l *lazyAttrs) WithGroup(name string) slog.Handler {
	return l.h.WithAttrs(l.attrs).WithGroup(name)
}

// invoke runs the request's handler with heartbeats, middleware and
// panic recovery.
//
// Middleware sees every request, also those that no endpoint serves: the
// endpoint lookup happens inside the chain, and its error (matching
// ErrNoSuchMethod or ErrUnsupportedVersion) comes back through it.
// Heartbeats, when the caller asked for them, run from the start and are
// stopped before invoke returns, so none follows the final reply.
func (s *Server) invoke(ctx context.Context, d driver.Delivery, req *driver.Request, md messaging.Metadata, log *slog.Logger) (any, error) {
	if req.IsCall() && req.MonitorTimeout != nil {
		stop := s.startHeartbeat(ctx, d, *req.MonitorTimeout, log)
		defer stop()
	}
	ctx, err := s.cfg.serializer.DeserializeContext(ctx, md)
	if err != nil {
		return nil, fmt.Errorf("rpc: deserializing context: %w", err)
	}
	args := req.Args
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	args, err = s.cfg.serializer.DeserializeEntity(ctx, args)
	if err != nil {
		return nil, fmt.Errorf("rpc: deserializing arguments: %w", err)
	}
	var h Handler = HandlerFunc(func(ctx context.Context, r *Request) (any, error) {
		eh, err := s.dispatcher.lookup(r.Method, r.Namespace, r.Version)
		if err != nil {
			return nil, err
		}
		return eh.ServeRPC(ctx, r)
	})
	for i := len(s.cfg.middleware) - 1; i >= 0; i-- {
		h = s.cfg.middleware[i](h)
	}
	r := &Request{Method: req.Method, Namespace: req.Namespace, Version: req.Version,
		Args: args, MsgID: req.MsgID, UniqueID: req.UniqueID, SenderUserID: req.SenderUserID}
	return callHandler(ctx, h, r)
}

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack []string
}

func (e *panicError) Error() string { return fmt.Sprintf("rpc: handler panic: %v", e.value) }

func stackOf(err error) []string {
	var pe *panicError
	if errors.As(err, &pe) {
		return pe.stack
	}
	return nil
}

func callHandler(ctx context.Context, h Handler, r *Request) (res any, err error) {
	defer func() {
		if v := recover(); v != nil {
			lines := strings.SplitAfter(strings.TrimRight(string(debug.Stack()), "\n")+"\n", "\n")
			if n := len(lines); n > 0 && lines[n-1] == "" {
				lines = lines[:n-1]
			}
			res, err = nil, &panicError{value: v, stack: lines}
		}
	}()
	return h.ServeRPC(ctx, r)
}

func (s *Server) encodeResult(ctx context.Context, result any) (json.RawMessage, error) {
	v, err := s.cfg.serializer.SerializeEntity(ctx, result)
	if err != nil {
		return nil, fmt.Errorf("rpc: serializing result: %w", err)
	}
	raw, err := marshalJSON(v)
	if err != nil {
		return nil, fmt.Errorf("rpc: encoding result: %w", err)
	}
	return raw, nil
}

func (s *Server) logFailure(log *slog.Logger, req *driver.Request, err error) {
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		log.Error("rpc: handler panic", "panic", fmt.Sprint(pe.value), "stack", strings.Join(pe.stack, ""))
	case isExpected(err):
		log.Debug("rpc: expected exception", "error", err)
	case errors.Is(err, ErrNoSuchMethod) && strings.HasSuffix(req.Method, "_ignore_errors"):
		log.Debug("rpc: dispatch failed", "error", err)
	case req.Namespace == IntrospectionNamespace && (errors.Is(err, ErrNoSuchMethod) || errors.Is(err, ErrUnsupportedVersion)):
		// A server without introspection receives every Discover's
		// fanout announce: not worth an error each time.
		log.Debug("rpc: dispatch failed", "error", err)
	default:
		log.Error("rpc: method failed", "error", err)
	}
}

// startHeartbeat sends call-monitor heartbeats through d every
// int(timeout)/2 seconds until the returned stop is called, as oslo's
// server does when the caller sent _timeout; below 2 seconds none are
// sent, as in oslo. A failed heartbeat ends the heartbeats. stop waits
// for the heartbeat goroutine, so no heartbeat follows the final reply.
func (s *Server) startHeartbeat(ctx context.Context, d driver.Delivery, timeout float64, log *slog.Logger) (stop func()) {
	whole := int(timeout)
	if whole < 2 {
		log.Warn("rpc: client provided an invalid call monitor timeout; no heartbeats", "timeout", timeout)
		return func() {}
	}
	interval := time.Duration(whole) * time.Second / 2
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			hctx, cancel := context.WithTimeout(ctx, interval)
			err := d.Heartbeat(hctx)
			cancel()
			if err != nil {
				log.Warn("rpc: heartbeat not sent; no more heartbeats for this call", "error", err)
				return
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
	}
}
