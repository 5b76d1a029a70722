package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

type demoConfig struct {
	URL      string
	Topic    string
	Exchange string
	Log      *slog.Logger
}

// demoEvent is one request a demo server handled.
type demoEvent struct {
	server string
	line   string
}

// testArgs is the keyword arguments of the demonstration's TestEndpoint.test(ctx,
// arg); a missing arg is reported as Python would.
type testArgs struct {
	Arg *json.RawMessage `json:"arg"`
}

// demoEndpoints builds the endpoints of the demonstration's server.py: a control
// endpoint (namespace "control", version "2.0") with stop, and a test
// endpoint with test(arg) returning arg.
func demoEndpoints(name string, events chan<- demoEvent) []*rpc.Endpoint {
	control := &rpc.Endpoint{Namespace: "control", Version: "2.0"}
	rpc.Handle(control, "stop", func(ctx context.Context, _ struct{}) (any, error) {
		events <- demoEvent{name, "stop()" + describe(ctx)}
		return nil, nil
	})
	test := &rpc.Endpoint{}
	rpc.Handle(test, "test", func(ctx context.Context, a testArgs) (json.RawMessage, error) {
		if a.Arg == nil {
			events <- demoEvent{name, "test() without arg" + describe(ctx)}
			return nil, rpc.NewRemoteError("builtins.TypeError", "TestEndpoint.test() missing 1 required positional argument: 'arg'")
		}
		events <- demoEvent{name, "test(arg=" + string(*a.Arg) + ")" + describe(ctx)}
		return *a.Arg, nil
	})
	return []*rpc.Endpoint{control, test}
}

// describe names the kind of request a handler is serving.
func describe(ctx context.Context) string {
	md, _ := messaging.FromIncomingContext(ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		if k != "client_timeout" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return "  context keys " + strings.Join(keys, ",")
}

// runDemo replays the classic oslo.messaging RPC demonstration and writes
// a transcript to out. It returns an error if any step does not behave
// as oslo.messaging does.
func runDemo(ctx context.Context, out io.Writer, cfg demoConfig) error {
	tr, err := messaging.Open(cfg.URL, messaging.WithLogger(cfg.Log))
	if err != nil {
		return err
	}
	defer tr.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = tr.Ping(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("transport %s: %w", tr.URL(), err)
	}
	exchange := cfg.Exchange
	if exchange == "" {
		exchange = tr.ControlExchange()
	}
	p := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	p("go-oslo/messaging demo over %s (exchange %q, topic %q)", tr.URL(), exchange, cfg.Topic)

	stepCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 15*time.Second) }
	tp := newTopology(cfg.URL)
	var before snapshot
	if tp != nil {
		if before, err = tp.snapshot(ctx); err != nil {
			p("(cannot list the broker's topology: %v)", err)
			tp = nil
		}
	}
	events := make(chan demoEvent, 16)
	p("")
	p("== 1. Two RPC servers listen on topic %q", cfg.Topic)
	var stops []func() error
	defer func() {
		for _, stop := range stops {
			_ = stop()
		}
	}()
	for _, name := range []string{"server1", "server2"} {
		target := messaging.Target{Exchange: cfg.Exchange, Topic: cfg.Topic, Server: name}
		srv, err := rpc.NewServer(tr, target, demoEndpoints(name, events))
		if err != nil {
			return err
		}
		lctx, cancel := stepCtx()
		err = srv.Listen(lctx)
		cancel()
		if err != nil {
			return err
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
		stops = append(stops, func() error {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return errors.Join(err, srv.Close())
			}
			if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
				return err
			}
			return nil
		})
		p("%-8s serving %v", name, target)
		p("         endpoints: namespace \"control\" version 2.0 [stop]; default namespace version 1.0 [test]")
	}
	p("         they share queue %q; each also has %q and a fanout queue on exchange %q",
		cfg.Topic, cfg.Topic+".<server>", cfg.Topic+"_fanout")

	client, err := rpc.NewClient(tr, messaging.Target{Exchange: cfg.Exchange, Topic: cfg.Topic})
	if err != nil {
		return err
	}

	// wait collects the events of n handled requests, sorted by server.
	wait := func(n int) ([]demoEvent, error) {
		var got []demoEvent
		timer := time.NewTimer(15 * time.Second)
		defer timer.Stop()
		for len(got) < n {
			select {
			case e := <-events:
				got = append(got, e)
			case <-timer.C:
				return got, fmt.Errorf("only %d of %d expected requests were handled", len(got), n)
			case <-ctx.Done():
				return got, ctx.Err()
			}
		}
		sort.Slice(got, func(i, j int) bool { return got[i].server < got[j].server })
		for _, e := range got {
			p("%-8s <- %s", e.server, e.line)
		}
		return got, nil
	}

	call := func(step, title string, c *rpc.Client, args any) (json.RawMessage, error) {
		p("")
		p("== %s. %s", step, title)
		p("client   -> call test(%s) to %v", kwargs(args), c.Target())
		cctx, cancel := stepCtx()
		defer cancel()
		var res json.RawMessage
		err := c.Call(cctx, "test", args, &res)
		return res, err
	}

	// 2. A call to the topic: one of the servers answers.
	res, err := call("2", "A call to the topic is answered by one server (round robin)", client, map[string]string{"arg": "hello"})
	if err != nil {
		return fmt.Errorf("call test: %w", err)
	}
	got, err := wait(1)
	if err != nil {
		return err
	}
	p("client   <- %s (answered by %s)", res, got[0].server)

	// 3. A call to server2.
	res, err = call("3", "A call to server2 only (routing key "+cfg.Topic+".server2)", client.Prepare(rpc.ToServer("server2")), map[string]string{"arg": "hello"})
	if err != nil {
		return fmt.Errorf("call test on server2: %w", err)
	}
	if got, err = wait(1); err != nil {
		return err
	}
	if got[0].server != "server2" {
		return fmt.Errorf("the call to server2 was handled by %s", got[0].server)
	}
	p("client   <- %s (answered by %s)", res, got[0].server)

	// 4. A fanout cast of stop in namespace control, version 2.0.
	p("")
	p("== 4. A fanout cast reaches every server of the topic")
	fan := client.Prepare(rpc.Namespace("control"), rpc.Version("2.0"), rpc.Fanout(true))
	p("client   -> cast stop() to %v", fan.Target())
	cctx, cancel := stepCtx()
	err = fan.Cast(cctx, "stop", nil)
	cancel()
	if err != nil {
		return fmt.Errorf("fanout cast stop: %w", err)
	}
	p("client   <- cast accepted (no reply: casts are one-way)")
	if got, err = wait(2); err != nil {
		return err
	}
	if got[0].server != "server1" || got[1].server != "server2" {
		return fmt.Errorf("the fanout reached %s and %s, want server1 and server2", got[0].server, got[1].server)
	}
	p("fanout reached server1 and server2")
	if tp != nil {
		p("")
		p("== The broker now holds (the shared topic queue, one queue per server, one fanout")
		p("   queue per server, the client's reply queue, the control and fanout exchanges):")
		if now, err := tp.snapshot(ctx); err != nil {
			p("(cannot list the broker's topology: %v)", err)
		} else {
			tp.print(p, now, before, cfg.Topic, exchange)
		}
	}

	// 5. A version mismatch is rejected by the dispatcher.
	p("")
	p("== 5. A version the servers do not implement is rejected")
	bad := client.Prepare(rpc.Namespace("control"), rpc.Version("3.0"))
	p("client   -> call stop() to %v", bad.Target())
	cctx, cancel = stepCtx()
	err = bad.Call(cctx, "stop", nil, nil)
	cancel()
	var re *rpc.RemoteError
	if !errors.Is(err, rpc.ErrUnsupportedVersion) || !errors.As(err, &re) {
		return fmt.Errorf("call with version 3.0: got %w, want UnsupportedVersion", err)
	}
	p("client   <- remote error %s: %s", re.Name(), re.Message)

	// 6. A remote error comes back.
	_, err = call("6", "An exception raised by the server comes back to the caller", client.Prepare(rpc.ToServer("server1")), nil)
	if !errors.As(err, &re) {
		return fmt.Errorf("call test without arg: got %w, want a remote TypeError", err)
	}
	if _, err := wait(1); err != nil {
		return err
	}
	p("client   <- remote error %s: %s", re.Name(), re.Message)

	// 7. A notification emitted and received.
	if err := demoNotification(ctx, tr, cfg, p); err != nil {
		return err
	}

	p("")
	p("== 8. Servers shut down gracefully")
	for i, stop := range stops {
		if err := stop(); err != nil {
			return fmt.Errorf("server%d shutdown: %w", i+1, err)
		}
		p("server%d  stopped", i+1)
	}
	stops = nil
	if err := tr.Close(); err != nil {
		return fmt.Errorf("closing the transport: %w", err)
	}
	p("client   transport closed")
	if tp != nil {
		p("")
		p("== What remains after a graceful stop (oslo keeps the topic and server queues")
		p("   and the control exchange; fanout and reply queues are gone):")
		if now, err := tp.snapshot(ctx); err != nil {
			p("(cannot list the broker's topology: %v)", err)
		} else {
			tp.print(p, now, before, cfg.Topic, exchange)
		}
	}
	p("")
	p("demo complete")
	return nil
}

// demoNotification emits compute.instance.create.end at priority info
// through a messagingv2 notifier and shows a billing listener receiving
// it. It uses a topic of its own, "<topic>_notifications", so that the
// demo never consumes a real bus's notifications.
func demoNotification(ctx context.Context, tr *messaging.Transport, cfg demoConfig, p func(string, ...any)) error {
	topic := cfg.Topic + "_notifications"
	p("")
	p("== 7. A notification is emitted and a listener receives it")
	got := make(chan *notify.Notification, 1)
	billing := &notify.Endpoint{Info: func(ctx context.Context, n *notify.Notification) error {
		select {
		case got <- n:
		default:
		}
		return nil
	}}
	lis, err := notify.NewListener(tr, []messaging.Target{{Exchange: cfg.Exchange, Topic: topic}}, []*notify.Endpoint{billing})
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := lis.Listen(lctx); err != nil {
		return fmt.Errorf("notification listener: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- lis.Serve(ctx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lis.Shutdown(sctx); err != nil {
			_ = lis.Close()
		}
		if err := <-served; !errors.Is(err, notify.ErrListenerClosed) {
			p("(listener stopped with %v)", err)
		}
	}()
	p("billing  listening on %s.info", topic)

	n, err := notify.NewNotifier(tr, "compute.server1", notify.WithTopics(topic), notify.WithSinks(notify.MessagingV2()),
		notify.WithExchange(cfg.Exchange))
	if err != nil {
		return err
	}
	payload := map[string]any{"instance_id": "i-1", "flavor": "m1.small"}
	nctx := messaging.NewOutgoingContext(lctx, messaging.Metadata{"request_id": "req-1", "auth_token": "not sent"})
	p("server1  -> notify info compute.instance.create.end %s (publisher compute.server1)", mustJSON(payload))
	if err := n.Info(nctx, "compute.instance.create.end", payload); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	select {
	case r := <-got:
		keys := make([]string, 0, len(r.Context))
		for k := range r.Context {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p("billing  <- %s %s from %s: %s (context keys %s: auth_token is never sent)", r.Priority, r.EventType, r.PublisherID,
			r.Payload, strings.Join(keys, ","))
	case <-lctx.Done():
		return errors.New("the notification was not received")
	}
	return nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// kwargs prints keyword arguments as Python would pass them.
func kwargs(args any) string {
	m, ok := args.(map[string]string)
	if !ok || len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return strings.Join(parts, ", ")
}
