package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// RPCServer runs the simulator's rpc-server: an RPC server on the
// target cfg.Topic, cfg.Server of the transport cfg.URL whose endpoint
// has the method info(message), which returns the message, the
// simulator's [seq, cargo, client_ts, server_ts, return_ts], with
// server_ts set to the time it was received; after cfg.WaitBefore, when
// positive. Every info received is recorded as a Received sample.
//
// A control endpoint serves sync_start(message) and sync_done(message),
// whose message is {"id": ...}: once every client that started has
// said it is done, the server stops a second later (the simulator's
// --sync). It also stops after cfg.Duration, when positive, counted
// from ready, and when ctx is done. It stops gracefully: it stops
// consuming and lets running methods reply, for up to 10 seconds.
//
// ready, unless nil, is called once the server consumes. The run is
// finished (see Stats.Finish) when the server has stopped.
//
// It returns nil when the server ran and stopped, also when ctx ended
// before it could listen; an error wrapping ErrInvalidConfig for a
// Config without topic or server or with a bad URL, ErrUnreachable when
// the broker cannot be reached within 10 seconds, and the library's
// error when it cannot listen or stops serving.
func RPCServer(ctx context.Context, cfg *Config, ready func(), rec Recorder) error {
	switch {
	case cfg == nil || rec == nil:
		return fmt.Errorf("%w: no configuration or recorder", ErrInvalidConfig)
	case cfg.Topic == "":
		return fmt.Errorf("%w: no topic (-tp)", ErrInvalidConfig)
	case cfg.Server == "":
		return fmt.Errorf("%w: no server (-s)", ErrInvalidConfig)
	}
	tr, err := connect(ctx, cfg, reachTimeout)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrInvalidConfig) {
			return nil
		}
		return err
	}
	defer tr.Close()

	ctl := newSyncControl()
	defer ctl.close()
	info := &rpc.Endpoint{}
	info.Register("info", &infoHandler{rec: rec, wait: cfg.WaitBefore})
	control := &rpc.Endpoint{}
	rpc.Handle(control, "sync_start", ctl.syncStart)
	rpc.Handle(control, "sync_done", ctl.syncDone)
	target := messaging.Target{Topic: cfg.Topic, Server: cfg.Server}
	srv, err := rpc.NewServer(tr, target, []*rpc.Endpoint{info, control}, rpc.WithLogger(loggerFrom(ctx)))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return serveUntil(ctx, cfg, srv, ready, rec, ctl.stop)
}

// server is the lifecycle shared by rpc.Server and notify.Listener.
type server interface {
	Listen(ctx context.Context) error
	Serve(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Close() error
}

// serveUntil listens, calls ready, and serves until ctx is done,
// cfg.Duration has passed or stop is closed; then it stops srv
// gracefully and finishes the run of rec.
func serveUntil(ctx context.Context, cfg *Config, srv server, ready func(), rec Recorder, stop <-chan struct{}) error {
	lctx, cancel := context.WithTimeout(ctx, listenTimeout)
	err := srv.Listen(lctx)
	cancel()
	if err != nil {
		_ = srv.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("bench: listening: %w", err)
	}
	if ctx.Err() != nil {
		_ = srv.Close()
		return nil
	}
	if ready != nil {
		ready()
	}

	// Serve on a context that ctx does not cancel: ctx ending starts a
	// graceful shutdown instead, which lets running methods reply.
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.WithoutCancel(ctx)) }()
	var limit <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		limit = t.C
	}
	var serveErr error
	done := false
	select {
	case <-ctx.Done():
	case <-limit:
	case <-stop:
	case serveErr = <-served:
		done = true
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	_ = srv.Shutdown(dctx)
	_ = srv.Close()
	if !done {
		serveErr = <-served
	}
	finish(rec)
	if serveErr != nil && !errors.Is(serveErr, rpc.ErrServerClosed) && !errors.Is(serveErr, notify.ErrListenerClosed) {
		return fmt.Errorf("bench: serving: %w", serveErr)
	}
	return nil
}

// infoHandler serves the simulator's info(message).
type infoHandler struct {
	rec  Recorder
	wait time.Duration
}

// ServeRPC records the message and returns it with server_ts set.
func (h *infoHandler) ServeRPC(ctx context.Context, req *rpc.Request) (any, error) {
	serverTS := Now()
	raw, ok, err := field(req.Args, "message")
	if err != nil || !ok {
		return nil, rpc.Expected(rpc.NewRemoteError("builtins.TypeError",
			"info() missing 1 required positional argument: 'message'"))
	}
	m, err := parseMessage(raw)
	if err != nil {
		return nil, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", err.Error()))
	}
	h.rec.Record(Sample{Kind: Received, Seq: m.seq, Size: m.size, ClientTS: m.clientTS, ServerTS: serverTS})
	if h.wait > 0 && !Sleep(ctx, h.wait) {
		return nil, ctx.Err()
	}
	if !req.IsCall() {
		return nil, nil
	}
	return json.RawMessage(m.withServerTS(raw, serverTS)), nil
}

// syncArgs are the arguments of sync_start and sync_done.
type syncArgs struct {
	Message struct {
		ID string `json:"id"`
	} `json:"message"`
}

// syncControl is the simulator's ServerControlEndpoint: it closes stop
// a second after the last client that started is done. Since the
// server runs requests concurrently, a client's sync_done (a cast with
// --sync fanout) may be handled before its sync_start: a client counts
// as running from the first of its two reports until both came.
type syncControl struct {
	stop chan struct{}

	mu      sync.Mutex // guards the fields below
	started map[string]bool
	done    map[string]bool
	timer   *time.Timer // the pending stop; nil if none
	closed  bool
}

func newSyncControl() *syncControl {
	return &syncControl{stop: make(chan struct{}), started: map[string]bool{}, done: map[string]bool{}}
}

// syncStart serves sync_start: the client message.id started sending.
func (c *syncControl) syncStart(_ context.Context, a syncArgs) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started[a.Message.ID] = true
	c.checkLocked()
	return nil, nil
}

// syncDone serves sync_done: the client message.id is done.
func (c *syncControl) syncDone(_ context.Context, a syncArgs) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done[a.Message.ID] = true
	c.checkLocked()
	return nil, nil
}

// checkLocked schedules the stop, syncStopDelay from now, when clients
// are done and none is running, and cancels it when one runs again.
func (c *syncControl) checkLocked() {
	running := false
	for id := range c.started {
		if !c.done[id] {
			running = true
			break
		}
	}
	for id := range c.done {
		if !c.started[id] {
			running = true
			break
		}
	}
	switch {
	case running && c.timer != nil:
		if c.timer.Stop() {
			c.timer = nil
		}
	case !running && len(c.done) > 0 && c.timer == nil && !c.closed:
		c.timer = time.AfterFunc(syncStopDelay, c.fire)
	}
}

// fire closes stop, once.
func (c *syncControl) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
}

// close cancels a pending stop.
func (c *syncControl) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.closed = true
}

// RPCClient runs the simulator's rpc-client: cfg.Threads closed-loop
// senders on one rpc.Client of the transport cfg.URL. Sender i sends to
// the target cfg.Targets[i % len(cfg.Targets)] ("topic.server"; with
// cfg.Fanout, a fanout to the topic) the method info(message) with the
// message [seq, cargo, client_ts, 0, 0], as a call that waits for the
// reply, or as a cast with cfg.Cast, each bounded by cfg.Timeout
// (DefaultTimeout if not set), then waits cfg.WaitAfter if positive.
// The senders start together on the next whole second and run for
// cfg.Duration when positive, else for cfg.Messages messages each, or
// until ctx is done. The cargos are cfg.Payloads, from a random
// position per sender; when empty, distributed ones are drawn.
//
// Every message is recorded as Sent, then as Failed when the call or
// cast fails (the run goes on), or as RoundTrip when a call's reply
// comes back. With cfg.Sync ("call" or "fanout"), each sender reports
// to the server with sync_start before its first message (called on
// its target, or cast to the fanout of its topic) and sync_done after
// its last, as the simulator's --sync. The run is finished (see
// Stats.Finish) when the senders are done; the transport then stays
// open for cfg.ExitWait before RPCClient returns.
//
// It returns nil when the senders ran, whatever the outcome of their
// messages; an error wrapping ErrInvalidConfig for an invalid Config,
// and ErrUnreachable when the broker cannot be reached within the
// timeout.
func RPCClient(ctx context.Context, cfg *Config, rec Recorder) error {
	if rec == nil {
		return fmt.Errorf("%w: no recorder", ErrInvalidConfig)
	}
	targets, cargos, sizes, err := clientSetup(cfg, true)
	if err != nil {
		return err
	}
	if cfg.Sync != "" && cfg.Sync != "call" && cfg.Sync != "fanout" {
		return fmt.Errorf("%w: --sync %q, want call or fanout", ErrInvalidConfig, cfg.Sync)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr, err := connect(ctx, cfg, timeout)
	if err != nil {
		return err
	}
	defer tr.Close()
	log := loggerFrom(ctx)
	base, err := rpc.NewClient(tr, messaging.Target{Topic: targets[0].topic}, rpc.WithLogger(log))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	host, _ := os.Hostname()

	start := nextSecond(time.Now())
	var wg sync.WaitGroup
	for i := range cfg.Threads {
		t := targets[i%len(targets)]
		c := base.Prepare(rpc.Topic(t.topic), rpc.ToServer(t.server), rpc.Fanout(cfg.Fanout))
		s := &sender{id: i, cfg: cfg, rec: rec, cargos: cargos, sizes: sizes, prefix: `{"message":`, suffix: "}"}
		if cfg.Cast {
			s.send = func(ctx context.Context, body []byte) (json.RawMessage, error) {
				return nil, c.Cast(ctx, "info", json.RawMessage(body))
			}
		} else {
			s.send = func(ctx context.Context, body []byte) (json.RawMessage, error) {
				var reply json.RawMessage
				if err := c.Call(ctx, "info", json.RawMessage(body), &reply); err != nil {
					return nil, err
				}
				return reply, nil
			}
		}
		if cfg.Sync != "" {
			// The simulator's host_based_id: "<client_id> <salt>@<host>".
			args := syncArgs{}
			args.Message.ID = fmt.Sprintf("%d %x@%s", i, rand.Uint64(), host)
			report := func(ctx context.Context, method string) error { return c.Call(ctx, method, args, nil) }
			if cfg.Sync == "fanout" {
				fc := base.Prepare(rpc.Topic(t.topic), rpc.Fanout(true))
				report = func(ctx context.Context, method string) error { return fc.Cast(ctx, method, args) }
			}
			reportFn := func(method string) func(context.Context) bool {
				return func(ctx context.Context) bool {
					cctx, cancel := context.WithTimeout(ctx, timeout)
					defer cancel()
					if err := report(cctx, method); err != nil {
						log.Warn("bench: the client could not synchronise with the server",
							"client", i, "method", method, "error", err)
						return false
					}
					return true
				}
			}
			s.syncStart, s.syncDone = reportFn("sync_start"), reportFn("sync_done")
		}
		wg.Go(func() { s.run(ctx, start) })
	}
	wg.Wait()
	finish(rec)
	Sleep(ctx, cfg.ExitWait)
	return nil
}
