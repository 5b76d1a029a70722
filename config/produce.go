package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// RPCURL returns the transport URL for RPC: TransportURL, with the
// [oslo_messaging_rabbit] options of m.Rabbit added to its query when
// its driver is rabbit or kombu. Options the URL's query already sets,
// under their current or an older name, keep the URL's value: as in
// oslo, the URL overrides the configuration file. A URL that needs no
// addition is returned as written.
//
// The error, for an empty URL or one that does not parse, never
// contains the URL's passwords.
func (m *Messaging) RPCURL() (URL, error) { return m.withDriverOptions(m.TransportURL) }

// NotificationURL returns the transport URL for notifications:
// Notifications.TransportURL, or TransportURL when it is empty, as in
// oslo, with the rabbit options added as [Messaging.RPCURL] does.
func (m *Messaging) NotificationURL() (URL, error) {
	u := m.Notifications.TransportURL
	if u == "" {
		u = m.TransportURL
	}
	return m.withDriverOptions(u)
}

func (m *Messaging) withDriverOptions(raw URL) (URL, error) {
	if raw == "" {
		return "", errors.New("config: empty transport URL")
	}
	u, err := driver.ParseURL(string(raw))
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	name, _, _ := strings.Cut(u.Scheme, "+")
	if name != "rabbit" && name != "kombu" {
		return raw, nil
	}
	added := false
	for _, k := range slices.Sorted(maps.Keys(m.Rabbit)) {
		v := m.Rabbit[k]
		if v == "" || queryHas(u.Query, k) {
			continue
		}
		if u.Query == nil {
			u.Query = map[string]string{}
		}
		u.Query[k] = v
		added = true
	}
	if !added {
		return raw, nil
	}
	return URL(u.Unredacted()), nil
}

// queryHas reports whether a URL query sets the rabbit option name,
// under its name or an older one.
func queryHas(q map[string]string, name string) bool {
	if _, ok := q[name]; ok {
		return true
	}
	for _, a := range rabbitAliases(name) {
		if _, ok := q[a]; ok {
			return true
		}
	}
	return false
}

// TransportOptions returns the options of messaging.Open:
// WithControlExchange(ControlExchange).
func (m *Messaging) TransportOptions() []messaging.Option {
	return []messaging.Option{messaging.WithControlExchange(m.ControlExchange)}
}

// ClientOptions returns the options of rpc.NewClient:
// WithTimeout(RPCResponseTimeout), unless it is zero.
func (m *Messaging) ClientOptions() []rpc.ClientOption {
	var opts []rpc.ClientOption
	if m.RPCResponseTimeout != 0 {
		opts = append(opts, rpc.WithTimeout(m.RPCResponseTimeout))
	}
	return opts
}

// ServerOptions returns the options of rpc.NewServer:
// WithMaxConcurrency(ExecutorThreadPoolSize), unless it is zero, and
// WithPing(RPCPingEnabled).
func (m *Messaging) ServerOptions() []rpc.ServerOption {
	var opts []rpc.ServerOption
	if m.ExecutorThreadPoolSize != 0 {
		opts = append(opts, rpc.WithMaxConcurrency(m.ExecutorThreadPoolSize))
	}
	return append(opts, rpc.WithPing(m.RPCPingEnabled))
}

// ListenerOptions returns the options of notify.NewListener and
// notify.NewBatchListener: WithMaxConcurrency(ExecutorThreadPoolSize),
// unless it is zero.
func (m *Messaging) ListenerOptions() []notify.ListenerOption {
	var opts []notify.ListenerOption
	if m.ExecutorThreadPoolSize != 0 {
		opts = append(opts, notify.WithMaxConcurrency(m.ExecutorThreadPoolSize))
	}
	return opts
}

// NotifierOptions returns the options of notify.NewNotifier: the sinks
// of the drivers (see [Messaging.Sinks], which sinks is passed to), the
// topics unless Topics is nil, and the retries when Retry is set.
func (m *Messaging) NotifierOptions(sinks map[string]notify.Sink) ([]notify.NotifierOption, error) {
	ss, err := m.Sinks(sinks)
	if err != nil {
		return nil, err
	}
	opts := []notify.NotifierOption{notify.WithSinks(ss...)}
	if m.Notifications.Topics != nil {
		opts = append(opts, notify.WithTopics(m.Notifications.Topics...))
	}
	if m.Notifications.Retry != nil {
		opts = append(opts, notify.WithRetry(*m.Notifications.Retry))
	}
	return opts, nil
}

// Sinks returns a sink for each notification driver of
// Notifications.Drivers, in order, each name once:
//
//   - messagingv2: notify.MessagingV2();
//   - messaging: notify.Messaging();
//   - log: notify.Log(nil), which logs on the notifier's logger;
//   - noop: notify.Noop();
//   - routing: notify.Routing with the rules of the RoutingConfig file
//     (see notify.ParseRoutingConfig), whose driver names are resolved
//     the same way;
//   - test: only from custom, such as a notify.NewRecorder(), since the
//     caller must hold it to read what was sent.
//
// A sink in custom under a driver's name replaces the built-in one, and
// custom may add drivers of other names. An unknown name is an error
// (oslo skips drivers it cannot load, and a misspelt driver then
// silently sends nothing), as is routing without a RoutingConfig file,
// or with rules naming an unknown driver or routing itself.
func (m *Messaging) Sinks(custom map[string]notify.Sink) ([]notify.Sink, error) {
	var out []notify.Sink
	var seen []string
	for _, name := range m.Notifications.Drivers {
		if name == "" || slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		s, err := m.sink(name, custom, true)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// driverNames lists the notification drivers built in.
const driverNames = "messagingv2, messaging, log, noop, routing"

func (m *Messaging) sink(name string, custom map[string]notify.Sink, routing bool) (notify.Sink, error) {
	if s := custom[name]; s != nil {
		return s, nil
	}
	switch name {
	case "messagingv2":
		return notify.MessagingV2(), nil
	case "messaging":
		return notify.Messaging(), nil
	case "log":
		return notify.Log(nil), nil
	case "noop":
		return notify.Noop(), nil
	case "routing":
		if !routing {
			return nil, errors.New("config: the routing notification driver cannot route to itself")
		}
		return m.routingSink(custom)
	case "test":
		return nil, errors.New("config: notification driver test: pass a sink for it, such as notify.NewRecorder()")
	}
	return nil, fmt.Errorf("config: unknown notification driver %q (known: %s, or a sink given by name)", name, driverNames)
}

func (m *Messaging) routingSink(custom map[string]notify.Sink) (notify.Sink, error) {
	path := m.Notifications.RoutingConfig
	if path == "" {
		return nil, fmt.Errorf("config: the routing notification driver needs [%s] routing_config", GroupNotifications)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: routing_config: %w", err)
	}
	rc, err := notify.ParseRoutingConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config: routing_config %s: %w", path, err)
	}
	sinks := map[string]notify.Sink{}
	for _, group := range rc {
		for name := range group {
			if _, done := sinks[name]; done {
				continue
			}
			s, err := m.sink(name, custom, false)
			if err != nil {
				return nil, fmt.Errorf("config: routing_config %s: %w", path, err)
			}
			sinks[name] = s
		}
	}
	return notify.Routing(rc, sinks)
}

// OpenRPCTransport opens the RPC transport: messaging.Open of
// [Messaging.RPCURL] with [Messaging.TransportOptions], then opts. Like
// messaging.Open it does no network I/O, and its errors never contain
// passwords.
func (m *Messaging) OpenRPCTransport(opts ...messaging.Option) (*messaging.Transport, error) {
	u, err := m.RPCURL()
	if err != nil {
		return nil, err
	}
	return messaging.Open(u.Unredacted(), append(m.TransportOptions(), opts...)...)
}

// OpenNotificationTransport opens the notification transport, from
// [Messaging.NotificationURL], as [Messaging.OpenRPCTransport] does.
func (m *Messaging) OpenNotificationTransport(opts ...messaging.Option) (*messaging.Transport, error) {
	u, err := m.NotificationURL()
	if err != nil {
		return nil, err
	}
	return messaging.Open(u.Unredacted(), append(m.TransportOptions(), opts...)...)
}

// OpenTransports opens the RPC and the notification transports, as
// oslo's get_rpc_transport and get_notification_transport do: two
// transports, even on the same URL. On error it closes what it opened.
// The caller closes both.
func (m *Messaging) OpenTransports(opts ...messaging.Option) (rpcTransport, notificationTransport *messaging.Transport, err error) {
	rt, err := m.OpenRPCTransport(opts...)
	if err != nil {
		return nil, nil, err
	}
	nt, err := m.OpenNotificationTransport(opts...)
	if err != nil {
		return nil, nil, errors.Join(err, rt.Close())
	}
	return rt, nt, nil
}
