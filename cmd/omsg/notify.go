package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

const notifySummary = "Send a notification, as oslo's Notifier does, and return once the broker has taken it."

const notifyDetails = `PAYLOAD_JSON is the payload, any JSON value (usually an object); flags
go before it, and -- before a payload that starts with "-". The notification is published to "<topic>.<priority>" of
every --topic (default notifications; repeat the flag or separate topics
with commas) on --exchange, where it waits in the queue of that name,
which the notifier declares, until a listener takes it.

--priority is one of audit, debug, info, warn (or warning), error,
critical, sample. --format v2 (the default) sends the message in oslo's
2.0 envelope, as its messagingv2 driver does; v1 sends the bare message,
as its messaging driver does, for consumers too old to read the
envelope. --context is oslo's request context, a JSON object, of which
only oslo's safe keys (user_id, project_id, request_id, roles,
global_request_id, ...) are sent: as oslo's notifier does, auth_token
and every other key are removed, and named on stderr.

Exit status: 0 when the broker took the notification on every topic (a
confirmation naming its message_id is printed on stderr), 2 when the
broker could not be reached or did not take it within --timeout, 64 for a
usage error.`

const notifyExample = `omsg notify --publisher-id compute.host1 --event-type compute.instance.create.end '{"instance_id": "i-1"}'
omsg notify --url rabbit://user:pass@rabbit1:5672/ --topic notifications,audit --priority error --format v1 --context '{"request_id": "req-1"}' --publisher-id omsg --event-type omsg.test '{"ok": false}'`

// Notification formats: oslo's messaging drivers.
const (
	formatV2 = "v2" // messagingv2: the 2.0 envelope
	formatV1 = "v1" // messaging: the bare message
)

// topicsFlag is a flag of topics that may be repeated, each value
// holding one topic or several separated by commas.
type topicsFlag struct {
	topics []string
}

// String returns the topics, comma-separated.
func (f *topicsFlag) String() string { return strings.Join(f.topics, ",") }

// Type names the flag's value in help.
func (f *topicsFlag) Type() string { return "topics" }

// Set adds the comma-separated topics of s.
func (f *topicsFlag) Set(s string) error {
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			return errors.New("empty topic")
		}
		if slices.Contains(f.topics, t) {
			return fmt.Errorf("topic %q given twice", t)
		}
		f.topics = append(f.topics, t)
	}
	return nil
}

// list returns the topics given, or oslo's default topic.
func (f *topicsFlag) list() []string {
	if len(f.topics) == 0 {
		return []string{notify.DefaultTopic}
	}
	return slices.Clone(f.topics)
}

// listFrom returns the topics given, else those of the configuration
// files, else oslo's default topic.
func (f *topicsFlag) listFrom(b *bus) []string {
	if len(f.topics) == 0 && len(b.Notifications.Topics) > 0 {
		return slices.Clone(b.Notifications.Topics)
	}
	return f.list()
}

// topicsUsage is the help of --topic.
const topicsUsage = "notification `topics`, repeatable or comma-separated: oslo's [oslo_messaging_notifications] topics (default: the configuration files' topics, else \"" + notify.DefaultTopic + "\")"

// notifyFlags are the flags of omsg notify.
type notifyFlags struct {
	bus         targetFlags // url, exchange and verbose only
	topics      topicsFlag
	publisherID string
	eventType   string
	priority    string
	format      string
	context     string
	timeout     time.Duration
}

func (f *notifyFlags) register(cc *cobra.Command) {
	fs := cc.Flags()
	fs.StringVar(&f.publisherID, "publisher-id", "", `publisher id, such as "compute.host1" (required)`)
	fs.StringVar(&f.eventType, "event-type", "", `event type, such as "compute.instance.create.end" (required)`)
	fs.StringVar(&f.priority, "priority", string(notify.PriorityInfo), "priority: audit, debug, info, warn (or warning), error, critical or sample")
	fs.StringVar(&f.format, "format", formatV2, "v2: oslo's messagingv2 driver, the 2.0 envelope; v1: its messaging driver, the bare message")
	fs.StringVar(&f.context, "context", "", `request context, a JSON object of which oslo's safe keys are sent (e.g. '{"request_id": "req-1"}')`)
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "how long to wait for the broker to take the notification")
	fs.Var(&f.topics, "topic", topicsUsage)
	f.bus.registerBus(fs)
	markConfigCompletion(cc)
	_ = cc.RegisterFlagCompletionFunc("priority", completePriorities)
	_ = cc.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(
		[]cobra.Completion{formatV2 + "\toslo's messagingv2 driver", formatV1 + "\toslo's messaging driver"}, cobra.ShellCompDirectiveNoFileComp))
}

// completePriorities completes a priority.
func completePriorities(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, p := range notify.Priorities() {
		out = append(out, string(p))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// notifyRequest is a notification as given on the command line.
type notifyRequest struct {
	flags    *notifyFlags
	priority notify.Priority
	payload  json.RawMessage
	md       messaging.Metadata
	sink     notify.Sink
}

// parseNotify checks the flags and parses the arguments of omsg
// notify. When ok is false the command must exit with code.
func parseNotify(cmd *command, f *notifyFlags, rest []string, stderr io.Writer) (req *notifyRequest, code int, ok bool) {
	switch {
	case len(rest) == 0:
		return nil, cmd.usageError(stderr, "missing PAYLOAD_JSON"), false
	case len(rest) > 1 && strings.HasPrefix(rest[1], "-"):
		return nil, cmd.usageError(stderr, "unexpected %q after PAYLOAD_JSON: flags go before PAYLOAD_JSON", rest[1]), false
	case len(rest) > 1:
		return nil, cmd.usageError(stderr, "unexpected arguments %q after PAYLOAD_JSON (quote the payload for the shell)", rest[1:]), false
	case f.publisherID == "":
		return nil, cmd.usageError(stderr, "--publisher-id is required"), false
	case f.eventType == "":
		return nil, cmd.usageError(stderr, "--event-type is required"), false
	case f.timeout <= 0:
		return nil, cmd.usageError(stderr, "--timeout must be positive, not %v", f.timeout), false
	}
	req = &notifyRequest{flags: f, payload: json.RawMessage(rest[0])}
	var v any
	if err := json.Unmarshal(req.payload, &v); err != nil {
		return nil, cmd.usageError(stderr, "PAYLOAD_JSON is not valid JSON: %v", err), false
	}
	p, err := notify.ParsePriority(f.priority)
	if err != nil {
		return nil, cmd.usageError(stderr, "--priority %q: want audit, debug, info, warn (or warning), error, critical or sample", f.priority), false
	}
	req.priority = p
	switch f.format {
	case formatV2:
		req.sink = notify.MessagingV2()
	case formatV1:
		req.sink = notify.Messaging()
	default:
		return nil, cmd.usageError(stderr, "--format %q: want v2 (oslo's messagingv2 driver) or v1 (its messaging driver)", f.format), false
	}
	if f.context != "" {
		md, err := parseContext(f.context)
		if err != nil {
			return nil, cmd.usageError(stderr, "--context: %v", err), false
		}
		req.md = md
	}
	return req, exitOK, true
}

// sentNotification is what the notifier built: the message id and the
// sanitised context.
type sentNotification struct {
	messageID string
	context   messaging.Metadata
}

// capture returns a sink that records, into s, the message that the
// notifier gives its sinks.
func (s *sentNotification) capture() notify.Sink {
	return notify.SinkFunc(func(_ context.Context, m *notify.Message) error {
		s.messageID = m.MessageID
		s.context = maps.Clone(m.Context)
		return nil
	})
}

// droppedKeys returns, sorted, the keys of md that the notifier did not
// send.
func (s *sentNotification) droppedKeys(md messaging.Metadata) []string {
	var out []string
	for k := range md {
		if _, ok := s.context[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// queueNames returns "<topic>.<priority>" for every topic.
func queueNames(topics []string, p notify.Priority) string {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t + "." + string(p)
	}
	return strings.Join(names, ", ")
}

// newNotifyCommand returns omsg notify, which writes on stderr.
func newNotifyCommand(stderr io.Writer) *cobra.Command {
	stderr = &lockedWriter{w: stderr}
	cmd := newCommand("notify", "--publisher-id P --event-type E [flags] PAYLOAD_JSON", notifySummary, notifyDetails, notifyExample)
	var f notifyFlags
	f.register(cmd.cc)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runNotifyCommand(cc.Context(), cmd, &f, args, stderr))
	}
	return cmd.cc
}

// runNotifyCommand runs omsg notify.
func runNotifyCommand(ctx context.Context, cmd *command, f *notifyFlags, args []string, stderr io.Writer) int {
	req, code, ok := parseNotify(cmd, f, args, stderr)
	if !ok {
		return code
	}
	b, tr, code, ok := f.bus.setUp(cmd, true, stderr)
	if !ok {
		return code
	}
	defer tr.Close()

	topics := f.topics.listFrom(b)
	var sent sentNotification
	notifier, err := notify.NewNotifier(tr, f.publisherID,
		notify.WithSinks(sent.capture(), req.sink),
		notify.WithTopics(topics...),
		notify.WithExchange(f.bus.exchange))
	if err != nil {
		if isUsageError(err) {
			return cmd.usageError(stderr, "%v", err)
		}
		fmt.Fprintf(stderr, "omsg notify: %v\n", err)
		return exitUnavailable
	}
	exchange := f.bus.exchange
	if exchange == "" {
		exchange = tr.ControlExchange()
	}
	what := fmt.Sprintf("%s %s to %s on exchange %s", req.priority, f.eventType, queueNames(topics, req.priority), exchange)

	// The deadline bounds the whole command: connecting and publishing
	// to every topic, each confirmed by the broker.
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if req.md != nil {
		ctx = messaging.NewOutgoingContext(ctx, req.md)
	}
	if code, ok := reach(ctx, cmd.name, tr, f.timeout, stderr); !ok {
		return code
	}
	err = notifier.Notify(ctx, req.priority, f.eventType, req.payload)
	if dropped := sent.droppedKeys(req.md); len(dropped) > 0 {
		fmt.Fprintf(stderr, "omsg notify: context keys not sent, as oslo's notifier sends only its safe keys: %s\n", strings.Join(dropped, ", "))
	}
	if err != nil {
		return notifyFailed(cmd, f, what, err, stderr)
	}
	fmt.Fprintf(stderr, "omsg notify: sent %s (message_id %s)\n", what, sent.messageID)
	return exitOK
}

// notifyFailed reports the error of sending the notification described
// by what and returns the exit code: exitUsage for an invalid request,
// exitUnavailable otherwise. With --verbose it adds the full error.
func notifyFailed(cmd *command, f *notifyFlags, what string, err error, stderr io.Writer) int {
	switch {
	case isUsageError(err):
		return cmd.usageError(stderr, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "omsg notify: timed out after %v (--timeout) sending %s\n", f.timeout, what)
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "omsg notify: interrupted while sending %s\n", what)
	default:
		fmt.Fprintf(stderr, "omsg notify: %v\n", err)
		return exitUnavailable
	}
	if f.bus.verbose {
		fmt.Fprintf(stderr, "omsg notify: %v\n", err)
	}
	return exitUnavailable
}
