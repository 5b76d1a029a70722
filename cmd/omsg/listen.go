package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

const listenSummary = "Listen for notifications and print each one received as one line of JSON."

const listenDetails = `Every notification is printed on stdout as
  {"priority": ..., "publisher_id": ..., "event_type": ..., "payload": ...,
   "metadata": {"message_id": ..., "timestamp": ...}, "context": {...}}
with the priority in lower case and the context's secrets redacted, one
line at a time, in the order received.

It consumes "<topic>.<priority>" of every --topic (default notifications;
repeat the flag or separate topics with commas) on --exchange, for every
priority of --priority (comma-separated or repeated; default all seven:
audit, debug, info, warn, error, critical, sample).

Without --pool it consumes the queues "<topic>.<priority>" themselves,
which oslo's notifier fills and which the services' own listeners share:
it TAKES the notifications it prints away from them. To watch a live
bus, use --pool: each pool gets its own copy of every notification sent
once the pool exists, in a queue named after the pool, shared by the
listeners of the pool. As in oslo, that queue outlives omsg listen and
collects every later notification until it is deleted (on RabbitMQ:
rabbitmqctl delete_queue -p VHOST POOL), unless the URL sets
amqp_auto_delete=true: reuse the pool's name, or delete its queue when
done.

--event-type keeps the notifications whose event type matches a
shell-style glob, with the syntax of Go's path.Match: * matches any run
of characters but "/", ? one character, [a-z] and [^a-z] classes, \ quotes
the next character; the glob must match the whole event type. The other
notifications are acknowledged without being printed: without --pool,
they are consumed all the same.

Once it consumes, "omsg listen: listening on <topic>.{<priorities>} ...
via URL" is printed on stderr. SIGINT or SIGTERM stops it: it stops
consuming, finishes the line being printed and exits 0; the
notifications it had not printed stay in their queue. Exit status 1 when
stdout cannot be written (the notification is returned to its queue), 2
when it cannot listen or the broker fails for good, 64 for a usage
error.`

const listenExample = `omsg listen --pool omsg-tail
omsg listen --url rabbit://user:pass@rabbit1:5672/ --exchange nova --pool omsg-tail --priority warn,error,critical --event-type 'compute.instance.*'`

// prioritiesFlag is a flag of priorities that may be repeated, each
// value holding one priority or several separated by commas.
type prioritiesFlag struct {
	chosen []notify.Priority // without duplicates
}

// String returns the priorities given, comma-separated, in oslo's order.
func (f *prioritiesFlag) String() string {
	if len(f.chosen) == 0 {
		return ""
	}
	names := make([]string, 0, len(f.chosen))
	for _, p := range f.list() {
		names = append(names, string(p))
	}
	return strings.Join(names, ",")
}

// Type names the flag's value in help.
func (f *prioritiesFlag) Type() string { return "priorities" }

// Set adds the comma-separated priorities of s.
func (f *prioritiesFlag) Set(s string) error {
	for name := range strings.SplitSeq(s, ",") {
		p, err := notify.ParsePriority(strings.TrimSpace(name))
		if err != nil {
			return fmt.Errorf("priority %q: want audit, debug, info, warn (or warning), error, critical or sample", name)
		}
		if !slices.Contains(f.chosen, p) {
			f.chosen = append(f.chosen, p)
		}
	}
	return nil
}

// list returns the priorities given, or all of them, in oslo's order.
func (f *prioritiesFlag) list() []notify.Priority {
	all := notify.Priorities()
	if len(f.chosen) == 0 {
		return all
	}
	return slices.DeleteFunc(all, func(p notify.Priority) bool { return !slices.Contains(f.chosen, p) })
}

// listenFlags are the flags of omsg listen.
type listenFlags struct {
	bus        targetFlags // url, exchange and verbose only
	topics     topicsFlag
	pool       string
	priorities prioritiesFlag
	eventType  string
}

func (f *listenFlags) register(cc *cobra.Command) {
	fs := cc.Flags()
	fs.Var(&f.topics, "topic", topicsUsage)
	fs.StringVar(&f.pool, "pool", "", "get a copy of every notification in this `pool`'s own queue, instead of taking them from the shared queues (recommended)")
	fs.Var(&f.priorities, "priority", "`priorities` to consume, repeatable or comma-separated (default: all seven)")
	fs.StringVar(&f.eventType, "event-type", "", "print only the notifications whose event type matches this `glob` (e.g. 'compute.instance.*')")
	f.bus.registerBus(fs)
	markConfigCompletion(cc)
	_ = cc.RegisterFlagCompletionFunc("priority", completePriorities)
}

// endpointFor returns an endpoint with the handler h for every priority
// in prios.
func endpointFor(prios []notify.Priority, h notify.HandlerFunc) *notify.Endpoint {
	ep := &notify.Endpoint{}
	for _, p := range prios {
		switch p {
		case notify.PriorityAudit:
			ep.Audit = h
		case notify.PriorityDebug:
			ep.Debug = h
		case notify.PriorityInfo:
			ep.Info = h
		case notify.PriorityWarn:
			ep.Warn = h
		case notify.PriorityError:
			ep.Error = h
		case notify.PriorityCritical:
			ep.Critical = h
		case notify.PrioritySample:
			ep.Sample = h
		}
	}
	return ep
}

// subscription describes what a listener consumes, for its readiness
// line: "notifications.{info,error}, audit.{info,error}".
func subscription(topics []string, prios []notify.Priority) string {
	names := make([]string, len(prios))
	for i, p := range prios {
		names[i] = string(p)
	}
	suffix := strings.Join(names, ",")
	if len(names) > 1 {
		suffix = "{" + suffix + "}"
	}
	parts := make([]string, len(topics))
	for i, t := range topics {
		parts[i] = t + "." + suffix
	}
	return strings.Join(parts, ", ")
}

// newListenCommand returns omsg listen, which writes on stdout and
// stderr.
func newListenCommand(stdout, stderr io.Writer) *cobra.Command {
	stdout = &lockedWriter{w: stdout}
	stderr = &lockedWriter{w: stderr}
	cmd := newCommand("listen", "[flags]", listenSummary, listenDetails, listenExample)
	var f listenFlags
	f.register(cmd.cc)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runListenCommand(cc.Context(), cmd, &f, args, stdout, stderr))
	}
	return cmd.cc
}

// runListenCommand runs omsg listen.
func runListenCommand(ctx context.Context, cmd *command, f *listenFlags, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		return cmd.usageError(stderr, "unexpected arguments %q", args)
	}
	if f.eventType != "" {
		if _, err := path.Match(f.eventType, ""); err != nil {
			return cmd.usageError(stderr, "--event-type %q: %v", f.eventType, err)
		}
	}
	b, tr, code, ok := f.bus.setUp(cmd, true, stderr)
	if !ok {
		return code
	}
	defer tr.Close()

	topics := f.topics.listFrom(b)
	prios := f.priorities.list()
	targets := make([]messaging.Target, len(topics))
	for i, t := range topics {
		targets[i] = messaging.Target{Exchange: f.bus.exchange, Topic: t}
	}
	printer := &notificationPrinter{stdout: stdout, stderr: stderr, glob: f.eventType, failed: make(chan struct{})}
	// One notification at a time, so that lines come out in the order
	// received; the handler requeues a notification it could not print.
	opts := []notify.ListenerOption{notify.WithMaxConcurrency(1), notify.WithAllowRequeue(true)}
	if f.pool != "" {
		opts = append(opts, notify.WithPool(f.pool))
	}
	lis, err := notify.NewListener(tr, targets, []*notify.Endpoint{endpointFor(prios, printer.handle)}, opts...)
	if err != nil {
		if isUsageError(err) {
			return cmd.usageError(stderr, "%v", err)
		}
		fmt.Fprintf(stderr, "omsg listen: %v\n", err)
		return exitUnavailable
	}

	exchange := f.bus.exchange
	if exchange == "" {
		exchange = tr.ControlExchange()
	}
	where := subscription(topics, prios)
	details := "exchange " + exchange
	if f.pool != "" {
		details += ", pool " + f.pool
	}
	if f.eventType != "" {
		details += fmt.Sprintf(", event type %q", f.eventType)
	}

	// Listen before announcing readiness, so that a script that waits
	// for the line can send at once: with a pool, notifications sent
	// before its queue is bound never reach it.
	lctx, cancel := context.WithTimeout(ctx, listenTimeout)
	err = lis.Listen(lctx)
	cancel()
	if err != nil {
		_ = lis.Close()
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "omsg listen: interrupted before listening on %s via %s\n", where, tr.URL())
		} else {
			fmt.Fprintf(stderr, "omsg listen: cannot listen on %s (%s) via %s: %v\n", where, details, tr.URL(), err)
		}
		return exitUnavailable
	}
	fmt.Fprintf(stderr, "omsg listen: listening on %s (%s) via %s\n", where, details, tr.URL())

	// Serve runs on a context that signals do not cancel: a signal
	// starts a graceful shutdown instead, which lets the line being
	// printed finish and its notification be acknowledged.
	served := make(chan error, 1)
	go func() { served <- lis.Serve(context.WithoutCancel(ctx)) }()
	code = exitOK
	select {
	case err := <-served:
		_ = lis.Close()
		fmt.Fprintf(stderr, "omsg listen: stopped listening: %v\n", err)
		return exitUnavailable
	case <-ctx.Done():
	case <-printer.failed:
		fmt.Fprintf(stderr, "omsg listen: writing a notification: %v\n", printer.err())
		code = exitFailure
	}

	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := lis.Shutdown(dctx); err != nil {
		fmt.Fprintf(stderr, "omsg listen: still printing after %v: stopping at once\n", drainTimeout)
	}
	_ = lis.Close()
	if err := <-served; err != nil && !errors.Is(err, notify.ErrListenerClosed) {
		fmt.Fprintf(stderr, "omsg listen: %v\n", err)
	}
	fmt.Fprintln(stderr, "omsg listen: stopped")
	return code
}

// notificationLine is the line omsg listen prints for each notification.
type notificationLine struct {
	Priority    notify.Priority      `json:"priority"`
	PublisherID string               `json:"publisher_id"`
	EventType   string               `json:"event_type"`
	Payload     json.RawMessage      `json:"payload"`
	Metadata    notificationMetadata `json:"metadata"`
	Context     messaging.Metadata   `json:"context"`
}

// notificationMetadata is oslo's metadata argument of notification
// endpoints.
type notificationMetadata struct {
	MessageID string `json:"message_id"`
	Timestamp string `json:"timestamp"`
}

// notificationPrinter prints the notifications whose event type matches
// glob. Once writing fails it prints no more, closes failed and makes
// the handler requeue every notification.
type notificationPrinter struct {
	stdout io.Writer // safe for concurrent use; one Write per line
	stderr io.Writer
	glob   string // "" matches every event type

	mu       sync.Mutex
	writeErr error
	failed   chan struct{} // closed at the first write error
}

// errNotPrinted is the handler's error for the notifications that come
// after a write error: the listener requeues them.
var errNotPrinted = errors.New("omsg listen: stdout failed; notification not printed")

// handle is the handler of every priority.
func (p *notificationPrinter) handle(_ context.Context, n *notify.Notification) error {
	if p.glob != "" {
		if ok, _ := path.Match(p.glob, n.EventType); !ok {
			return nil
		}
	}
	if p.err() != nil {
		return errNotPrinted
	}
	line, err := formatNotification(n)
	if err != nil {
		// Not expected: the payload and the context were decoded from
		// JSON. Acknowledged, since printing it again would fail again.
		fmt.Fprintf(p.stderr, "omsg listen: cannot print notification %s: %v\n", n.MessageID, err)
		return nil
	}
	if _, err := p.stdout.Write(line); err != nil {
		p.mu.Lock()
		if p.writeErr == nil {
			p.writeErr = err
			close(p.failed)
		}
		p.mu.Unlock()
		return errNotPrinted
	}
	return nil
}

// err returns the first write error.
func (p *notificationPrinter) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeErr
}

// formatNotification returns the line of n, with the secrets of its
// context redacted and the \u escapes of its text replaced by the
// characters.
func formatNotification(n *notify.Notification) ([]byte, error) {
	line := notificationLine{
		Priority:    n.Priority,
		PublisherID: n.PublisherID,
		EventType:   n.EventType,
		Payload:     n.Payload,
		Metadata:    notificationMetadata{MessageID: n.MessageID, Timestamp: n.Timestamp},
		Context:     n.Context.Redacted(),
	}
	if line.Context == nil {
		line.Context = messaging.Metadata{}
	}
	if len(line.Payload) == 0 {
		line.Payload = json.RawMessage("null")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(line); err != nil {
		return nil, err
	}
	return readableJSON(b.Bytes()), nil
}
