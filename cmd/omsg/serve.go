package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/internal/version"
	"github.com/go-oslo/messaging/rpc"
)

const serveSummary = "Run a diagnostic RPC server on the topic and print every request it serves as one line of JSON."

const serveDetails = `Methods, in --namespace at --version (default 1.0):
  ping             returns "pong"
  echo [k=v ...]   returns its keyword arguments, as an object
  sleep seconds=N  sleeps N seconds (a number), then returns N
  fail message=M   raises builtins.ValueError(M)
and oslo's oslo_rpc_server_ping (default namespace, version 1.0), which
returns "pong".

Every request the server receives is printed on stdout as
  {"method": ..., "args": {...}, "context": {...}, "namespace": ...,
   "version": ..., "kind": "call" or "cast"}
with the context's secrets redacted (namespace and version are null when
the caller sent none). Requests for other methods or versions are
printed too; their callers get NoSuchMethod or UnsupportedVersion.

The server has introspection on (binary "omsg serve"): omsg inspect
lists it among the live servers of its topic, with its statistics.

Once the server consumes, "omsg serve: listening on <Target ...> via URL"
is printed on stderr. SIGINT or SIGTERM stops it: it stops consuming,
waits up to 30s for the running requests, cancels those still running,
and exits 0. Exit status 2 when it cannot listen or the broker fails for
good, 64 for a usage error.`

const serveExample = `omsg serve --url rabbit://user:pass@rabbit1:5672/ --topic omsg --server s1
omsg serve --topic omsg --server s1 --namespace diag --version 1.3 --exchange nova`

// drainTimeout bounds how long a stopping server waits for the requests
// it is running.
const drainTimeout = 30 * time.Second

// listenTimeout bounds how long serve waits until it consumes.
const listenTimeout = 60 * time.Second

// defaultEndpointVersion is the version of an endpoint that sets none.
const defaultEndpointVersion = "1.0"

// newServeCommand returns omsg serve, which writes on stdout and stderr.
func newServeCommand(stdout, stderr io.Writer) *cobra.Command {
	stdout = &lockedWriter{w: stdout}
	stderr = &lockedWriter{w: stderr}
	cmd := newCommand("serve", "--topic T --server S [flags]", serveSummary, serveDetails, serveExample)
	var f targetFlags
	f.register(cmd.cc.Flags(), "this `server`'s name, to which calls and casts can be addressed (required)",
		"`version` of the server's methods, major.minor (default 1.0)")
	markConfigCompletion(cmd.cc)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runServeCommand(cc.Context(), cmd, &f, args, stdout, stderr))
	}
	return cmd.cc
}

// runServeCommand runs omsg serve.
func runServeCommand(ctx context.Context, cmd *command, f *targetFlags, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0:
		return cmd.usageError(stderr, "unexpected arguments %q", args)
	case f.topic == "":
		return cmd.usageError(stderr, "--topic is required")
	case f.server == "":
		return cmd.usageError(stderr, "--server is required")
	}
	if f.version != "" {
		if _, err := version.Parse(f.version); err != nil {
			return cmd.usageError(stderr, "--version: %v", err)
		}
	}
	b, tr, code, ok := f.setUp(cmd, false, stderr)
	if !ok {
		return code
	}
	defer tr.Close()

	printer := &requestPrinter{stdout: stdout, stderr: stderr}
	target := messaging.Target{Exchange: f.exchange, Topic: f.topic, Server: f.server}
	// The files' executor_thread_pool_size applies; ping is always on.
	opts := append(b.ServerOptions(), rpc.WithPing(true), rpc.WithMiddleware(printer.middleware),
		rpc.WithIntrospection(rpc.ServerInfo{Binary: "omsg serve"}))
	srv, err := rpc.NewServer(tr, target, []*rpc.Endpoint{diagEndpoint(f.namespace, f.version)}, opts...)
	if err != nil {
		if isUsageError(err) {
			return cmd.usageError(stderr, "%v", err)
		}
		fmt.Fprintf(stderr, "omsg serve: %v\n", err)
		return exitUnavailable
	}

	// Listen before announcing readiness, so that a script that waits
	// for the line can send at once.
	lctx, cancel := context.WithTimeout(ctx, listenTimeout)
	err = srv.Listen(lctx)
	cancel()
	if err != nil {
		_ = srv.Close()
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "omsg serve: interrupted before listening on %v via %s\n", target, tr.URL())
		} else {
			fmt.Fprintf(stderr, "omsg serve: cannot listen on %v via %s: %v\n", target, tr.URL(), err)
		}
		return exitUnavailable
	}
	shown := target
	if shown.Exchange == "" {
		shown.Exchange = tr.ControlExchange()
	}
	shown.Namespace = f.namespace
	shown.Version = f.version
	if shown.Version == "" {
		shown.Version = defaultEndpointVersion
	}
	fmt.Fprintf(stderr, "omsg serve: listening on %v via %s\n", shown, tr.URL())

	// Serve runs on a context that signals do not cancel: a signal
	// starts a graceful shutdown instead, which lets running requests
	// finish and reply.
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.WithoutCancel(ctx)) }()
	select {
	case err := <-served:
		_ = srv.Close()
		fmt.Fprintf(stderr, "omsg serve: stopped serving: %v\n", err)
		return exitUnavailable
	case <-ctx.Done():
	}

	fmt.Fprintf(stderr, "omsg serve: shutting down, waiting up to %v for running requests\n", drainTimeout)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		fmt.Fprintf(stderr, "omsg serve: requests still running after %v: cancelling them\n", drainTimeout)
	}
	_ = srv.Close()
	if err := <-served; err != nil && !errors.Is(err, rpc.ErrServerClosed) {
		fmt.Fprintf(stderr, "omsg serve: %v\n", err)
	}
	fmt.Fprintln(stderr, "omsg serve: stopped")
	return exitOK
}

// diagEndpoint returns the endpoint of omsg serve: ping, echo, sleep and
// fail, in namespace at version ver ("" for 1.0).
func diagEndpoint(namespace, ver string) *rpc.Endpoint {
	ep := &rpc.Endpoint{Namespace: namespace, Version: ver}
	rpc.Handle(ep, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	rpc.Handle(ep, "echo", echo)
	rpc.Handle(ep, "sleep", sleep)
	rpc.Handle(ep, "fail", fail)
	return ep
}

// echo returns its keyword arguments.
func echo(_ context.Context, kwargs json.RawMessage) (json.RawMessage, error) {
	if len(kwargs) == 0 {
		return json.RawMessage("{}"), nil
	}
	return kwargs, nil
}

// sleepArgs are the keyword arguments of sleep.
type sleepArgs struct {
	Seconds *float64 `json:"seconds"`
}

// maxSleepSeconds is the longest sleep a time.Duration can hold.
const maxSleepSeconds = float64(math.MaxInt64 / int64(time.Second))

// sleep waits for the given number of seconds and returns it. It fails
// as Python's time.sleep would for a missing or negative number, and
// returns early when the server closes.
func sleep(ctx context.Context, a sleepArgs) (float64, error) {
	switch {
	case a.Seconds == nil:
		return 0, rpc.Expected(rpc.NewRemoteError("builtins.TypeError", "sleep() missing 1 required positional argument: 'seconds'"))
	case *a.Seconds < 0:
		return 0, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", "sleep length must be non-negative"))
	case *a.Seconds > maxSleepSeconds:
		return 0, rpc.Expected(rpc.NewRemoteError("builtins.OverflowError", "sleep length is too large"))
	}
	t := time.NewTimer(time.Duration(*a.Seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return *a.Seconds, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("sleep interrupted: the server is shutting down: %w", ctx.Err())
	}
}

// failArgs are the keyword arguments of fail.
type failArgs struct {
	Message json.RawMessage `json:"message"`
}

// defaultFailMessage is the message of a fail call without one.
const defaultFailMessage = "failure requested"

// fail raises builtins.ValueError with the given message: a string as
// it is, any other JSON value as written.
func fail(_ context.Context, a failArgs) (struct{}, error) {
	msg := defaultFailMessage
	if len(a.Message) > 0 {
		var s string
		if err := json.Unmarshal(a.Message, &s); err == nil {
			msg = s
		} else {
			msg = string(a.Message)
		}
	}
	// Expected: the failure is what the caller asked for, so the server
	// does not log it as an error.
	return struct{}{}, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", msg))
}

// requestLine is the line omsg serve prints for each request.
type requestLine struct {
	Method    string             `json:"method"`
	Args      json.RawMessage    `json:"args"`
	Context   messaging.Metadata `json:"context"`
	Namespace *string            `json:"namespace"` // nil: the default namespace
	Version   *string            `json:"version"`   // nil: none sent
	Kind      string             `json:"kind"`      // "call" or "cast"
}

// requestPrinter prints a JSON line for every request the server
// dispatches.
type requestPrinter struct {
	stdout io.Writer // safe for concurrent use; one Write per line
	stderr io.Writer
}

// middleware prints the request, then runs it.
func (p *requestPrinter) middleware(next rpc.Handler) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) (any, error) {
		p.print(ctx, req)
		return next.ServeRPC(ctx, req)
	})
}

// print writes the line of req, with the secrets of its context
// redacted.
func (p *requestPrinter) print(ctx context.Context, req *rpc.Request) {
	md, _ := messaging.FromIncomingContext(ctx)
	line := requestLine{
		Method:    req.Method,
		Args:      req.Args,
		Context:   md.Redacted(),
		Namespace: optional(req.Namespace),
		Version:   optional(req.Version),
		Kind:      "cast",
	}
	if req.IsCall() {
		line.Kind = "call"
	}
	if line.Context == nil {
		line.Context = messaging.Metadata{}
	}
	if len(line.Args) == 0 {
		line.Args = json.RawMessage("{}")
	} else if !json.Valid(line.Args) {
		s, _ := json.Marshal(string(line.Args))
		line.Args = s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(line); err != nil {
		fmt.Fprintf(p.stderr, "omsg serve: cannot print a request for %s: %v\n", req.Method, err)
		return
	}
	if _, err := p.stdout.Write(b.Bytes()); err != nil {
		fmt.Fprintf(p.stderr, "omsg serve: writing a request line: %v\n", err)
	}
}

// optional returns nil for "" and &s otherwise.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
