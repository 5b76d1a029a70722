package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/rpc"
)

const inspectSummary = "Show the queues of a topic or an exchange, their depth and consumers, and the live servers of the topic."

const inspectDetails = `For --topic T, the queues are T (shared by the servers of the topic),
T.<server> (one per server), T_fanout_<id> (one per running server) and,
with --replies, every reply_<id> queue of the virtual host (they cannot
be tied to a topic). With --exchange E and no --topic, the queues bound
to E. Each queue shows its messages (ready and unacknowledged), its
consumers, and flags:
  no consumer      messages wait and nothing consumes them, as when the
                   server of T.<server> is stopped
  unacked growing  the unacknowledged count rose between two samples
                   taken --interval apart

The counts come from the RabbitMQ management HTTP API when it answers
(http://<first host of the URL>:15672 with the URL's credentials, or
--management-url); its statistics lag by up to the broker's collection
interval, 5s by default. Without it, AMQP passive declares give the
messages and consumers of T and of T.<server> for the servers named by
--server or found by discovery, but no unacknowledged counts.

The live servers are those of the topic that answer an introspection
announce within --wait: servers run with rpc.WithIntrospection, such as
omsg serve. Stopped servers and Python oslo.messaging servers do not
answer.

--json prints one object: {"source": "management", "amqp" or "none",
"queues": [...], "servers": [...]}.

Exit status: 0 when the queues and servers could be listed, 2 when the
broker could be reached neither over HTTP nor over AMQP, 64 for a usage
error.`

const inspectExample = `omsg inspect --url rabbit://user:pass@rabbit1:5672/ --topic compute
omsg inspect --config-file /etc/nova/nova.conf --topic compute --json
omsg inspect --exchange nova --management-url https://rabbit1:15671`

// defaultManagementPort is the port of RabbitMQ's management HTTP API.
const defaultManagementPort = 15672

// inspectFlags are the flags of omsg inspect.
type inspectFlags struct {
	targetFlags
	mgmtURL  string
	noMgmt   bool
	replies  bool
	asJSON   bool
	interval time.Duration
	wait     time.Duration
	timeout  time.Duration
}

// Sources of the queue counts.
const (
	sourceManagement = "management"
	sourceAMQP       = "amqp"
	sourceNone       = "none"
)

// queueInfo is one queue as inspect reports it.
type queueInfo struct {
	Name       string   `json:"name"`
	Kind       string   `json:"kind"` // topic, server, fanout, reply, bound
	Messages   int64    `json:"messages"`
	Ready      *int64   `json:"messages_ready"`          // nil: unknown (AMQP)
	Unacked    *int64   `json:"messages_unacknowledged"` // nil: unknown (AMQP)
	Consumers  int64    `json:"consumers"`
	Durable    *bool    `json:"durable,omitempty"`
	AutoDelete *bool    `json:"auto_delete,omitempty"`
	Flags      []string `json:"flags"`
}

// serverInfo is one live server as inspect reports it.
type serverInfo struct {
	Server        string  `json:"server"`
	Host          string  `json:"host"`
	Binary        string  `json:"binary"`
	PID           int     `json:"pid"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Received      uint64  `json:"received"`
	InFlight      int64   `json:"in_flight"`
	Failures      uint64  `json:"failures"`
}

// inspectReport is what inspect prints.
type inspectReport struct {
	Source   string       `json:"source"`
	Exchange string       `json:"exchange"`
	Topic    string       `json:"topic,omitempty"`
	Queues   []queueInfo  `json:"queues"`
	Servers  []serverInfo `json:"servers"`
	Notes    []string     `json:"notes,omitempty"`

	discovered bool // servers were looked for
}

// Flags of a queue.
const (
	flagNoConsumer     = "no consumer"
	flagUnackedGrowing = "unacked growing"
)

// newInspectCommand returns omsg inspect, which writes on stdout and
// stderr.
func newInspectCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := newCommand("inspect", "[--topic T] [--exchange E] [flags]", inspectSummary, inspectDetails, inspectExample)
	var f inspectFlags
	fs := cmd.cc.Flags()
	fs.StringVar(&f.topic, "topic", "", "`topic` whose queues and servers to show (required unless --exchange is given)")
	fs.StringVar(&f.server, "server", "", "only this `server` of the topic; its queue is checked even over AMQP")
	f.registerBus(fs)
	fs.StringVar(&f.mgmtURL, "management-url", "", "`URL` of the RabbitMQ management API (default: http://<first host of the transport URL>:15672, with its credentials)")
	fs.BoolVar(&f.noMgmt, "no-management", false, "do not use the management API: AMQP passive declares only")
	fs.BoolVar(&f.replies, "replies", false, "also list the virtual host's reply_<id> queues (management API only)")
	fs.DurationVar(&f.interval, "interval", time.Second, "time between the two samples that detect growing unacknowledged counts; 0 takes one sample")
	fs.DurationVar(&f.wait, "wait", rpc.DefaultDiscoverWait, "how long to collect the answers of live servers; 0 skips discovery")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on each HTTP request and on connecting to the broker")
	fs.BoolVar(&f.asJSON, "json", false, "print one JSON object instead of tables")
	markConfigCompletion(cmd.cc)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runInspectCommand(cc.Context(), cmd, &f, args, stdout, stderr))
	}
	return cmd.cc
}

// runInspectCommand runs omsg inspect.
func runInspectCommand(ctx context.Context, cmd *command, f *inspectFlags, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0:
		return cmd.usageError(stderr, "unexpected arguments %q", args)
	case f.topic == "" && f.exchange == "":
		return cmd.usageError(stderr, "--topic or --exchange is required")
	case f.interval < 0 || f.wait < 0:
		return cmd.usageError(stderr, "--interval and --wait must not be negative")
	case f.timeout <= 0:
		return cmd.usageError(stderr, "--timeout must be positive")
	case f.noMgmt && f.mgmtURL != "":
		return cmd.usageError(stderr, "--no-management and --management-url exclude each other")
	}
	b, err := f.resolve(cmd.name, stderr)
	if err != nil {
		return cmd.usageError(stderr, "configuration: %v", err)
	}
	u, err := driver.ParseURL(string(b.TransportURL))
	if err != nil {
		return cmd.usageError(stderr, "%s: %v", b.urlFrom, err)
	}
	// The transport is opened lazily: Open does no I/O.
	tr, err := f.open(b, false, stderr)
	if err != nil {
		return cmd.usageError(stderr, "%s: %v", b.urlFrom, err)
	}
	defer tr.Close()

	in := &inspector{f: f, u: u, tr: tr, stderr: stderr}
	in.rep.Exchange = tr.Address(messaging.Target{Exchange: f.exchange}).Exchange
	in.rep.Topic = f.topic
	in.rep.Servers = []serverInfo{}
	in.rep.Queues = []queueInfo{}
	if code := in.inspect(ctx); code != exitOK {
		return code
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(in.rep); err != nil {
			fmt.Fprintf(stderr, "omsg inspect: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	if err := writeReport(stdout, &in.rep); err != nil {
		fmt.Fprintf(stderr, "omsg inspect: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// inspector gathers a report.
type inspector struct {
	f      *inspectFlags
	u      *driver.URL
	tr     *messaging.Transport
	stderr io.Writer
	rep    inspectReport
}

// isRabbit reports whether the URL names the RabbitMQ driver.
func (in *inspector) isRabbit() bool {
	scheme, _, _ := strings.Cut(in.u.Scheme, "+")
	return scheme == "rabbit" || scheme == "kombu"
}

// inspect fills the report and returns the exit code.
func (in *inspector) inspect(ctx context.Context) int {
	start := time.Now()
	var m *mgmtClient
	var first []mgmtQueue
	if in.isRabbit() && !in.f.noMgmt {
		var err error
		m, err = newMgmtClient(in.u, in.f.mgmtURL, in.f.timeout)
		if err == nil {
			first, err = in.sample(ctx, m)
		}
		switch {
		case err == nil:
			in.rep.Source = sourceManagement
		case in.f.mgmtURL != "":
			fmt.Fprintf(in.stderr, "omsg inspect: management API: %v\n", err)
			return exitUnavailable
		default:
			m = nil
			in.note("management API unavailable (%v): counts from AMQP passive declares, without unacknowledged counts", err)
		}
	}

	if in.f.topic != "" && in.f.wait > 0 {
		if code := in.discover(ctx); code != exitOK {
			return code
		}
	} else if in.f.topic == "" {
		in.note("no --topic: live servers are not looked for")
	}

	switch {
	case m != nil:
		second := first
		if in.f.interval > 0 {
			if err := sleepCtx(ctx, in.f.interval-time.Since(start)); err != nil {
				fmt.Fprintf(in.stderr, "omsg inspect: interrupted\n")
				return exitUnavailable
			}
			var err error
			if second, err = in.sample(ctx, m); err != nil {
				fmt.Fprintf(in.stderr, "omsg inspect: management API: %v\n", err)
				return exitUnavailable
			}
		}
		in.rep.Queues = mgmtRows(first, second, in.f.topic, in.f.server, in.f.interval > 0)
	case !in.isRabbit():
		in.rep.Source = sourceNone
		in.note("the %s driver has no broker queues to show", in.u.Scheme)
	default:
		if in.f.topic == "" {
			fmt.Fprintf(in.stderr, "omsg inspect: listing the queues bound to an exchange needs the management API\n")
			return exitUnavailable
		}
		in.rep.Source = sourceAMQP
		qs, err := in.passive(ctx)
		if err != nil {
			fmt.Fprintf(in.stderr, "omsg inspect: cannot reach the broker at %s: %v\n", in.tr.URL(), err)
			return exitUnavailable
		}
		in.rep.Queues = qs
	}
	return exitOK
}

// note adds a line to the report's notes.
func (in *inspector) note(format string, args ...any) {
	in.rep.Notes = append(in.rep.Notes, fmt.Sprintf(format, args...))
}

// sample lists the queues of interest once.
func (in *inspector) sample(ctx context.Context, m *mgmtClient) ([]mgmtQueue, error) {
	vh := vhostOf(in.u)
	qs, err := m.queues(ctx, vh)
	if err != nil {
		return nil, err
	}
	if in.f.topic != "" {
		return slices.DeleteFunc(qs, func(q mgmtQueue) bool {
			k := queueKind(q.Name, in.f.topic)
			return k == "" || (k == "reply" && !in.f.replies)
		}), nil
	}
	bound, err := m.boundQueues(ctx, vh, in.rep.Exchange)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(qs, func(q mgmtQueue) bool {
		return !bound[q.Name] && !(in.f.replies && queueKind(q.Name, "") == "reply")
	}), nil
}

// discover fills the live servers.
func (in *inspector) discover(ctx context.Context) int {
	in.rep.discovered = true
	// A fanout to the whole topic, even with --server: an announce sent
	// to the queue of a stopped server would wait there, adding to the
	// very count inspect shows.
	target := messaging.Target{Exchange: in.f.exchange, Topic: in.f.topic}
	dctx, cancel := context.WithTimeout(ctx, in.f.wait+in.f.timeout)
	defer cancel()
	if err := in.tr.Ping(dctx); err != nil {
		fmt.Fprintf(in.stderr, "omsg inspect: cannot reach the broker at %s: %v\n", in.tr.URL(), err)
		return exitUnavailable
	}
	found, err := rpc.Discover(dctx, in.tr, target, in.f.wait)
	if err != nil {
		fmt.Fprintf(in.stderr, "omsg inspect: discovering servers: %v\n", err)
		return exitUnavailable
	}
	for _, d := range found {
		if in.f.server != "" && d.Server != in.f.server {
			continue
		}
		in.rep.Servers = append(in.rep.Servers, serverInfo{
			Server: d.Server, Host: d.Host, Binary: d.Binary, PID: d.PID,
			UptimeSeconds: d.Uptime.Seconds(), Received: d.Stats.Received,
			InFlight: d.Stats.InFlight, Failures: d.Stats.Failures,
		})
	}
	return exitOK
}

// passive reads the topic queue and the server queues of the named and
// discovered servers with AMQP passive declares.
func (in *inspector) passive(ctx context.Context) ([]queueInfo, error) {
	names := []string{in.f.topic}
	servers := []string{}
	if in.f.server != "" {
		servers = append(servers, in.f.server)
	}
	for _, s := range in.rep.Servers {
		servers = append(servers, s.Server)
	}
	slices.Sort(servers)
	for _, s := range slices.Compact(servers) {
		names = append(names, in.f.topic+"."+s)
	}
	counts, err := passiveDeclare(ctx, in.u, in.f.timeout, names)
	if err != nil {
		return nil, err
	}
	in.note("AMQP gives no unacknowledged counts, and only the queues of %s and of the servers named or discovered", in.f.topic)
	rows := []queueInfo{}
	for _, q := range counts {
		r := queueInfo{Name: q.Name, Kind: queueKind(q.Name, in.f.topic), Messages: int64(q.Messages), Consumers: int64(q.Consumers), Flags: []string{}}
		if r.Consumers == 0 && r.Messages > 0 {
			r.Flags = append(r.Flags, flagNoConsumer)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// passiveDeclare returns the state of the queues of names that exist, in
// the order of names, on the first host of u.
func passiveDeclare(ctx context.Context, u *driver.URL, timeout time.Duration, names []string) ([]amqp.Queue, error) {
	host, port, user, pass := "localhost", 5672, "guest", "guest"
	if len(u.Hosts) > 0 {
		h := u.Hosts[0]
		if h.Hostname != "" {
			host = h.Hostname
		}
		if h.Port != 0 {
			port = h.Port
		}
		if h.Username != "" {
			user, pass = h.Username, h.Password
		}
	}
	cfg := amqp.Config{
		SASL:  []amqp.Authentication{&amqp.PlainAuth{Username: user, Password: pass}},
		Vhost: vhostOf(u),
		Dial:  amqp.DefaultDial(timeout),
	}
	type result struct {
		conn *amqp.Connection
		err  error
	}
	// DialConfig takes no context: give up waiting when ctx ends.
	done := make(chan result, 1)
	go func() {
		c, err := amqp.DialConfig("amqp://"+net.JoinHostPort(host, strconv.Itoa(port))+"/", cfg)
		done <- result{c, err}
	}()
	var conn *amqp.Connection
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		conn = r.conn
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
	defer conn.Close()
	var out []amqp.Queue
	var ch *amqp.Channel
	for _, name := range names {
		if ch == nil {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return nil, err
			}
		}
		q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
		var ae *amqp.Error
		switch {
		case err == nil:
			out = append(out, q)
		case errors.As(err, &ae) && ae.Code == amqp.NotFound:
			ch = nil // the broker closed the channel: the queue does not exist
		default:
			return nil, err
		}
	}
	if ch != nil {
		_ = ch.Close()
	}
	return out, nil
}

// vhostOf returns the virtual host of u, "/" for none.
func vhostOf(u *driver.URL) string {
	if u.VirtualHost == "" {
		return "/"
	}
	return u.VirtualHost
}

// idPattern matches the random part of fanout and reply queue names.
const idPattern = `[0-9a-f]{32}`

var (
	replyQueue = regexp.MustCompile(`^reply_` + idPattern + `$`)
	queueID    = regexp.MustCompile(`^` + idPattern + `$`)
)

// queueKind returns the kind of queue name with respect to topic:
// "topic", "server", "fanout", "reply", or "" for another topic's. With
// no topic, queues other than reply queues are "bound".
func queueKind(name, topic string) string {
	switch {
	case replyQueue.MatchString(name):
		return "reply"
	case topic == "":
		return "bound"
	case name == topic:
		return "topic"
	case strings.HasPrefix(name, topic+"_fanout_") && queueID.MatchString(name[len(topic)+len("_fanout_"):]):
		return "fanout"
	case strings.HasPrefix(name, topic+".") && len(name) > len(topic)+1:
		return "server"
	}
	return ""
}

// mgmtRows returns the rows of the queues of second, flagged, with
// first as the earlier sample when sampled is true; with server set,
// other servers' queues are left out.
func mgmtRows(first, second []mgmtQueue, topic, server string, sampled bool) []queueInfo {
	before := map[string]mgmtQueue{}
	for _, q := range first {
		before[q.Name] = q
	}
	rows := []queueInfo{}
	for _, q := range second {
		kind := queueKind(q.Name, topic)
		if server != "" && kind == "server" && q.Name != topic+"."+server {
			continue
		}
		r := queueInfo{Name: q.Name, Kind: kind, Messages: q.Messages, Ready: ptr(q.Ready), Unacked: ptr(q.Unacked),
			Consumers: q.Consumers, Durable: ptr(q.Durable), AutoDelete: ptr(q.AutoDelete), Flags: []string{}}
		if q.Consumers == 0 && q.Messages > 0 {
			r.Flags = append(r.Flags, flagNoConsumer)
		}
		if b, ok := before[q.Name]; ok && sampled && q.Unacked > 0 && q.Unacked > b.Unacked {
			r.Flags = append(r.Flags, flagUnackedGrowing)
		}
		rows = append(rows, r)
	}
	kindOrder := map[string]int{"topic": 0, "server": 1, "fanout": 2, "bound": 3, "reply": 4}
	slices.SortStableFunc(rows, func(a, b queueInfo) int {
		if d := kindOrder[a.Kind] - kindOrder[b.Kind]; d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return rows
}

func ptr[T any](v T) *T { return &v }

// sleepCtx sleeps for d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mgmtClient reads the RabbitMQ management HTTP API.
type mgmtClient struct {
	base       *url.URL // without credentials
	user, pass string
	hc         *http.Client
}

// mgmtQueue is a queue as GET /api/queues/{vhost} returns it.
type mgmtQueue struct {
	Name       string         `json:"name"`
	Messages   int64          `json:"messages"`
	Ready      int64          `json:"messages_ready"`
	Unacked    int64          `json:"messages_unacknowledged"`
	Consumers  int64          `json:"consumers"`
	Arguments  map[string]any `json:"arguments"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
}

// newMgmtClient returns a client of the management API of the broker of
// u: raw if set (its credentials, else u's), else http on u's first host
// at port 15672.
func newMgmtClient(u *driver.URL, raw string, timeout time.Duration) (*mgmtClient, error) {
	// No keep-alive: inspect sends a few requests and leaves nothing
	// running behind it.
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}}
	m := &mgmtClient{user: "guest", pass: "guest", hc: hc}
	host := "localhost"
	if len(u.Hosts) > 0 {
		h := u.Hosts[0]
		if h.Hostname != "" {
			host = h.Hostname
		}
		if h.Username != "" {
			m.user, m.pass = h.Username, h.Password
		}
	}
	if raw == "" {
		m.base = &url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(defaultManagementPort))}
		return m, nil
	}
	b, err := url.Parse(raw)
	if err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "" {
		return nil, errors.New("--management-url must be an http:// or https:// URL with a host")
	}
	if b.User != nil {
		m.user = b.User.Username()
		m.pass, _ = b.User.Password()
		b.User = nil
	}
	b.Path = strings.TrimSuffix(b.Path, "/")
	b.RawPath = ""
	m.base = b
	return m, nil
}

// get decodes the JSON answer of GET path, path being already escaped.
func (m *mgmtClient) get(ctx context.Context, path string, v any) error {
	target := m.base.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(m.user, m.pass)
	resp, err := m.hc.Do(req)
	if err != nil {
		// The error names the URL, which carries no credentials.
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("GET %s: %s: the broker refused the credentials of user %q", target, resp.Status, m.user)
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("GET %s: %s: %w", target, resp.Status, errNotFound)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", target, err)
	}
	return nil
}

var errNotFound = errors.New("not found")

// queues lists the queues of virtual host vh.
func (m *mgmtClient) queues(ctx context.Context, vh string) ([]mgmtQueue, error) {
	var qs []mgmtQueue
	err := m.get(ctx, "/api/queues/"+url.PathEscape(vh)+
		"?columns=name,messages,messages_ready,messages_unacknowledged,consumers,arguments,durable,auto_delete", &qs)
	return qs, err
}

// boundQueues returns the names of the queues bound to exchange ex of
// virtual host vh.
func (m *mgmtClient) boundQueues(ctx context.Context, vh, ex string) (map[string]bool, error) {
	var bs []struct {
		Destination     string `json:"destination"`
		DestinationType string `json:"destination_type"`
	}
	if err := m.get(ctx, "/api/exchanges/"+url.PathEscape(vh)+"/"+url.PathEscape(ex)+"/bindings/source", &bs); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("exchange %q not found in virtual host %q", ex, vh)
		}
		return nil, err
	}
	out := map[string]bool{}
	for _, b := range bs {
		if b.DestinationType == "queue" {
			out[b.Destination] = true
		}
	}
	return out, nil
}

// writeReport writes rep as tables.
func writeReport(w io.Writer, rep *inspectReport) error {
	var b strings.Builder
	what := fmt.Sprintf("topic %s on exchange %s", rep.Topic, rep.Exchange)
	if rep.Topic == "" {
		what = fmt.Sprintf("exchange %s", rep.Exchange)
	}
	from := map[string]string{sourceManagement: "the management API", sourceAMQP: "AMQP passive declares", sourceNone: "no broker"}[rep.Source]
	fmt.Fprintf(&b, "Queues of %s (from %s):\n", what, from)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(rep.Queues) == 0 {
		fmt.Fprintln(tw, "  (none)")
	} else {
		fmt.Fprintln(tw, "  QUEUE\tKIND\tMESSAGES\tREADY\tUNACKED\tCONSUMERS\tFLAGS")
	}
	for _, q := range rep.Queues {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%d\t%s\n", q.Name, q.Kind, q.Messages, optInt(q.Ready), optInt(q.Unacked),
			q.Consumers, strings.Join(q.Flags, ", "))
	}
	_ = tw.Flush()
	if rep.discovered || len(rep.Servers) > 0 {
		fmt.Fprintf(&b, "\nLive servers of topic %s:\n", rep.Topic)
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if len(rep.Servers) == 0 {
			fmt.Fprintln(tw, "  (none answered; servers need introspection, as omsg serve has)")
		} else {
			fmt.Fprintln(tw, "  SERVER\tHOST\tBINARY\tPID\tUPTIME\tRECEIVED\tIN FLIGHT\tFAILURES")
		}
		for _, s := range rep.Servers {
			up := (time.Duration(s.UptimeSeconds * float64(time.Second))).Round(time.Second)
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%v\t%d\t%d\t%d\n", s.Server, s.Host, s.Binary, s.PID, up, s.Received, s.InFlight, s.Failures)
		}
		_ = tw.Flush()
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// optInt formats an optional count, "-" when unknown.
func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}
