package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// DefaultTransportURL is oslo's default [DEFAULT] transport_url: the
// rabbit driver on localhost, as guest.
const DefaultTransportURL = "rabbit://"

// Messaging is the configuration of oslo.messaging that go-oslo/messaging
// uses, as a service's configuration file sets it. [FromFile] fills it
// from a [File]; [Default] returns oslo's defaults. The methods turn it
// into transport URLs and into the options of packages messaging, rpc
// and notify.
//
// Printing a Messaging, with any verb, or encoding it as JSON never
// shows the passwords of its transport URLs (see [URL]).
type Messaging struct {
	// TransportURL is [DEFAULT] transport_url, the broker of RPC, and of
	// notifications unless Notifications.TransportURL is set. Default:
	// "rabbit://".
	TransportURL URL
	// ControlExchange is [DEFAULT] control_exchange, the exchange of
	// targets that name none. Default: "openstack".
	ControlExchange string
	// RPCResponseTimeout is [DEFAULT] rpc_response_timeout, how long a
	// call waits for its reply when its context has no deadline.
	// Default: 60s.
	RPCResponseTimeout time.Duration
	// ExecutorThreadPoolSize is [DEFAULT] executor_thread_pool_size,
	// the number of handlers a server or listener runs at once.
	// Default: 64.
	ExecutorThreadPoolSize int
	// RPCPingEnabled is [DEFAULT] rpc_ping_enabled: servers answer
	// oslo_rpc_server_ping. Default: false.
	RPCPingEnabled bool

	// Notifications is [oslo_messaging_notifications].
	Notifications Notifications

	// Rabbit holds the [oslo_messaging_rabbit] options that the
	// configuration sets, by their current names (see [RabbitOptions]),
	// as text the rabbit driver reads: booleans "true" or "false",
	// integers in decimal. They are added to the query of rabbit:// and
	// kombu:// transport URLs that do not set them already (see
	// [Messaging.RPCURL]); the rabbit driver applies its defaults to the
	// others.
	Rabbit map[string]string
}

// Notifications is the [oslo_messaging_notifications] group.
type Notifications struct {
	// Drivers is driver, oslo's notification drivers: "messagingv2",
	// "messaging", "log", "noop", "routing", "test" (see
	// [Messaging.Sinks]). A service's notifier sends nothing without
	// any. Repeated names count once. Default: none.
	Drivers []string
	// TransportURL is transport_url, the broker of notifications; ""
	// means [DEFAULT] transport_url, as in oslo. Default: "".
	TransportURL URL
	// Topics is topics, the topics notifications are sent to. Nil means
	// the default, an empty list no topic. Default: ["notifications"].
	Topics []string
	// Retry is retry, the connection-level retries of each
	// notification: -1 without limit, 0 none, n at most n. Nil, when
	// the configuration does not set it, keeps the behaviour of package
	// notify (see notify.WithRetry), which differs from oslo's -1 only
	// for messages whose broker confirmation was lost.
	Retry *int
	// RoutingConfig is routing_config, the file of the routing driver's
	// rules. Default: "".
	RoutingConfig string
}

// Default returns oslo's defaults.
func Default() *Messaging {
	return &Messaging{
		TransportURL:           DefaultTransportURL,
		ControlExchange:        messaging.DefaultExchange,
		RPCResponseTimeout:     rpc.DefaultTimeout,
		ExecutorThreadPoolSize: rpc.DefaultMaxConcurrency,
		Notifications: Notifications{
			Drivers: []string{},
			Topics:  []string{notify.DefaultTopic},
		},
		Rabbit: map[string]string{},
	}
}

// Option configures [FromFile].
type Option func(*fromFileOptions)

type fromFileOptions struct {
	strict bool
}

// Strict makes [FromFile] fail on unknown options, with an error
// wrapping [ErrUnknownOption] for each, instead of only reporting them.
func Strict() Option {
	return func(o *fromFileOptions) { o.strict = true }
}

// FromFile reads the options of oslo.messaging from f, with oslo's
// defaults for the options f does not set, and checks them.
//
// The notices report the unknown options of the groups that
// oslo.messaging owns, [oslo_messaging_notifications] and
// [oslo_messaging_rabbit] (such as a misspelt amqp_durable_queus, with
// a suggestion), the unknown options of [DEFAULT] that look like
// oslo.messaging's (see [UnknownOption]), the same for the environment,
// and values found under deprecated names. oslo.config ignores unknown
// options; FromFile reports them, and with [Strict] fails on them.
// Options of other groups, such as [database], are never reported.
//
// The error joins every problem found: values that do not convert, as
// *[OptionError] values naming the group, option and file and line,
// transport URLs that do not parse, values out of the range that Go
// accepts (rpc_response_timeout and executor_thread_pool_size must be
// at least 1, control_exchange must not be empty, topics must not be
// empty strings), and with Strict, unknown options. Errors never
// contain the values of secret options. On error the *Messaging is nil.
// A nil f is an empty configuration.
func FromFile(f *File, opts ...Option) (*Messaging, []Notice, error) {
	if f == nil {
		f = &File{}
	}
	var fo fromFileOptions
	for _, o := range opts {
		o(&fo)
	}
	notices := findNotices(f)
	m := Default()
	r := reader{f: f}

	if s, loc, ok := r.str(GroupDefault, "transport_url"); ok {
		m.TransportURL = URL(s)
		r.checkURL(GroupDefault, "transport_url", loc, s, false)
	}
	if s, loc, ok := r.str(GroupDefault, "control_exchange"); ok {
		if s == "" {
			r.fail(GroupDefault, "control_exchange", loc, "must not be empty")
		}
		m.ControlExchange = s
	}
	if n, loc, ok := r.integer(GroupDefault, "rpc_response_timeout"); ok {
		if n < 1 || int64(n) > maxSeconds {
			r.fail(GroupDefault, "rpc_response_timeout", loc, fmt.Sprintf("%d: must be at least 1 (seconds)", n))
		}
		m.RPCResponseTimeout = time.Duration(n) * time.Second
	}
	if n, loc, ok := r.integer(GroupDefault, "executor_thread_pool_size"); ok {
		if n < 1 {
			r.fail(GroupDefault, "executor_thread_pool_size", loc, fmt.Sprintf("%d: must be at least 1", n))
		}
		m.ExecutorThreadPoolSize = n
	}
	if b, _, ok := r.boolean(GroupDefault, "rpc_ping_enabled"); ok {
		m.RPCPingEnabled = b
	}

	ng := GroupNotifications
	if drivers, err := f.MultiStr(ng, "driver", nil); err != nil {
		r.errs = append(r.errs, err)
	} else {
		for _, d := range drivers {
			if d != "" && !slices.Contains(m.Notifications.Drivers, d) {
				m.Notifications.Drivers = append(m.Notifications.Drivers, d)
			}
		}
	}
	if s, loc, ok := r.str(ng, "transport_url"); ok {
		m.Notifications.TransportURL = URL(s)
		r.checkURL(ng, "transport_url", loc, s, true)
	}
	if s, loc, ok := r.str(ng, "topics"); ok {
		m.Notifications.Topics = parseList(s)
		if slices.Contains(m.Notifications.Topics, "") {
			r.fail(ng, "topics", loc, fmt.Sprintf("%q: empty topic name", s))
		}
	}
	if n, _, ok := r.integer(ng, "retry"); ok {
		m.Notifications.Retry = &n
	}
	if s, _, ok := r.str(ng, "routing_config"); ok {
		m.Notifications.RoutingConfig = s
	}

	for _, o := range schema.opts {
		if o.group == GroupRabbit {
			if v, ok := r.rabbit(o); ok {
				m.Rabbit[o.name] = v
			}
		}
	}

	if fo.strict {
		for _, n := range notices {
			if n.Kind == UnknownOption {
				r.errs = append(r.errs, &unknownOptionError{n})
			}
		}
	}
	if len(r.errs) > 0 {
		return nil, notices, errors.Join(r.errs...)
	}
	return m, notices, nil
}

// reader reads options for FromFile, collecting the errors.
type reader struct {
	f    *File
	errs []error
}

func (r *reader) fail(group, option string, loc Location, msg string) {
	r.errs = append(r.errs, &OptionError{Group: group, Option: option, Location: loc,
		Err: &valueError{msg: msg, kind: ErrInvalidValue}})
}

// str returns the substituted value of an option and whether it is set.
func (r *reader) str(group, option string) (string, Location, bool) {
	s, loc, ok, err := r.f.resolve(group, option)
	if err != nil {
		r.errs = append(r.errs, err)
		return "", loc, false
	}
	return s, loc, ok
}

// integer returns an integer option; a blank value counts as unset.
func (r *reader) integer(group, option string) (int, Location, bool) {
	s, loc, ok := r.str(group, option)
	if !ok {
		return 0, loc, false
	}
	n, empty, err := parseInt(s)
	if err != nil {
		r.errs = append(r.errs, r.f.valueError(group, option, loc, s, err))
		return 0, loc, false
	}
	return n, loc, !empty
}

func (r *reader) boolean(group, option string) (bool, Location, bool) {
	s, loc, ok := r.str(group, option)
	if !ok {
		return false, loc, false
	}
	b, err := parseBool(s)
	if err != nil {
		r.errs = append(r.errs, r.f.valueError(group, option, loc, s, err))
		return false, loc, false
	}
	return b, loc, true
}

// checkURL checks that a transport URL parses; "" is allowed where it
// means a fallback.
func (r *reader) checkURL(group, option string, loc Location, s string, emptyOK bool) {
	if s == "" {
		if !emptyOK {
			r.fail(group, option, loc, "empty transport URL")
		}
		return
	}
	if _, err := driver.ParseURL(s); err != nil {
		// ParseURL's errors never contain credentials.
		r.errs = append(r.errs, &OptionError{Group: group, Option: option, Location: loc, Err: err})
	}
}

// rabbit returns the text of a rabbit option for the URL query, checked
// against the option's type; blank values count as unset.
func (r *reader) rabbit(o *option) (string, bool) {
	s, loc, ok := r.str(o.group, o.name)
	if !ok {
		return "", false
	}
	switch o.kind {
	case kindBool:
		b, err := parseBool(s)
		if err != nil {
			r.errs = append(r.errs, r.f.valueError(o.group, o.name, loc, s, err))
			return "", false
		}
		return strconv.FormatBool(b), true
	case kindInt:
		n, empty, err := parseInt(s)
		if err != nil {
			r.errs = append(r.errs, r.f.valueError(o.group, o.name, loc, s, err))
			return "", false
		}
		return strconv.Itoa(n), !empty
	case kindFloat:
		v, empty, err := parseFloat(s)
		if err != nil {
			r.errs = append(r.errs, r.f.valueError(o.group, o.name, loc, s, err))
			return "", false
		}
		return strconv.FormatFloat(v, 'f', -1, 64), !empty
	}
	return s, s != ""
}

// String returns the configuration in the form of a configuration file,
// with the passwords of transport URLs replaced by "***"; unset options
// with a fallback are comments.
func (m Messaging) String() string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(k + " = " + v + "\n") }
	b.WriteString("[" + GroupDefault + "]\n")
	line("transport_url", m.TransportURL.String())
	line("control_exchange", m.ControlExchange)
	line("rpc_response_timeout", strconv.FormatInt(int64(m.RPCResponseTimeout/time.Second), 10))
	line("executor_thread_pool_size", strconv.Itoa(m.ExecutorThreadPoolSize))
	line("rpc_ping_enabled", strconv.FormatBool(m.RPCPingEnabled))

	n := m.Notifications
	b.WriteString("\n[" + GroupNotifications + "]\n")
	if len(n.Drivers) == 0 {
		b.WriteString("# driver: none, notifications are not sent\n")
	}
	for _, d := range n.Drivers {
		line("driver", d)
	}
	if n.TransportURL == "" {
		b.WriteString("# transport_url: unset, [DEFAULT] transport_url is used\n")
	} else {
		line("transport_url", n.TransportURL.String())
	}
	if n.Topics == nil {
		line("topics", notify.DefaultTopic)
	} else {
		line("topics", strings.Join(n.Topics, ","))
	}
	if n.Retry == nil {
		b.WriteString("# retry: unset\n")
	} else {
		line("retry", strconv.Itoa(*n.Retry))
	}
	if n.RoutingConfig != "" {
		line("routing_config", n.RoutingConfig)
	}

	b.WriteString("\n[" + GroupRabbit + "]\n")
	for _, k := range slices.Sorted(maps.Keys(m.Rabbit)) {
		line(k, m.Rabbit[k])
	}
	return b.String()
}
