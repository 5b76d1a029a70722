package config

import (
	"slices"
	"sort"

	"github.com/go-oslo/messaging"
)

// The groups of oslo.messaging's options that this package reads.
const (
	GroupDefault       = "DEFAULT"
	GroupNotifications = "oslo_messaging_notifications"
	GroupRabbit        = "oslo_messaging_rabbit"
)

// kind is the oslo.config type of an option.
type kind int

const (
	kindString kind = iota // StrOpt
	kindBool               // BoolOpt
	kindInt                // IntOpt
	kindFloat              // FloatOpt
	kindList               // ListOpt
	kindMulti              // MultiStrOpt
)

func (k kind) String() string {
	switch k {
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindFloat:
		return "float"
	case kindList:
		return "list"
	case kindMulti:
		return "multi"
	}
	return "string"
}

// optName is an option's place: its group and name.
type optName struct {
	group, name string
}

func (n optName) String() string { return "[" + n.group + "] " + n.name }

// option describes one option that oslo.messaging registers, as this
// package knows it.
type option struct {
	optName
	kind kind
	// def is the default as oslo.config prints it when it substitutes
	// the option into another value ("True", "60", "['notifications']");
	// "" for options without a default (None).
	def    string
	secret bool
	// deprecated lists the older places of the option, in oslo's order:
	// a value found there is used, with a DeprecatedOption notice unless
	// quiet is set.
	deprecated []optName
	quiet      bool
}

// schema lists the options of [DEFAULT], [oslo_messaging_notifications]
// and [oslo_messaging_rabbit] that go-oslo/messaging uses. The rabbit
// options are those that the rabbit driver accepts in the transport
// URL's query, with their current names.
var schema = buildSchema()

type schemaIndex struct {
	opts  []*option
	byKey map[optName]*option
	// deprecatedOf maps an older place to the option that reads it.
	deprecatedOf map[optName]*option
}

func (s *schemaIndex) lookup(group, name string) *option {
	return s.byKey[optName{normalizeGroup(group), name}]
}

func buildSchema() *schemaIndex {
	d := func(group, name string) optName { return optName{group, name} }
	var opts []*option
	add := func(group string, list ...option) {
		for i := range list {
			o := list[i]
			o.group = group
			opts = append(opts, &o)
		}
	}
	str := func(name, def string, deprecated ...optName) option {
		return option{optName: optName{name: name}, kind: kindString, def: def, deprecated: deprecated}
	}
	boolean := func(name string, def bool, deprecated ...optName) option {
		s := "False"
		if def {
			s = "True"
		}
		return option{optName: optName{name: name}, kind: kindBool, def: s, deprecated: deprecated}
	}
	integer := func(name, def string, deprecated ...optName) option {
		return option{optName: optName{name: name}, kind: kindInt, def: def, deprecated: deprecated}
	}
	float := func(name, def string, deprecated ...optName) option {
		return option{optName: optName{name: name}, kind: kindFloat, def: def, deprecated: deprecated}
	}
	secret := func(o option) option { o.secret = true; return o }
	quiet := func(o option) option { o.quiet = true; return o }

	add(GroupDefault,
		secret(str("transport_url", DefaultTransportURL)),
		str("control_exchange", messaging.DefaultExchange),
		integer("rpc_response_timeout", "60"),
		integer("executor_thread_pool_size", "64", d(GroupDefault, "rpc_thread_pool_size")),
		boolean("rpc_ping_enabled", false),
	)
	add(GroupNotifications,
		option{optName: optName{name: "driver"}, kind: kindMulti, def: "[]",
			deprecated: []optName{d(GroupDefault, "notification_driver")}},
		secret(str("transport_url", "", d(GroupDefault, "notification_transport_url"))),
		option{optName: optName{name: "topics"}, kind: kindList, def: "['notifications']",
			deprecated: []optName{d("rpc_notifier2", "topics"), d(GroupDefault, "notification_topics")}},
		integer("retry", "-1"),
		str("routing_config", "", d(GroupDefault, "routing_notifier_config")),
	)
	r := GroupRabbit
	add(GroupRabbit,
		boolean("amqp_durable_queues", false),
		boolean("amqp_auto_delete", false, d(GroupDefault, "amqp_auto_delete")),
		boolean("rabbit_quorum_queue", false),
		integer("rabbit_quorum_delivery_limit", "0"),
		integer("rabbit_quorum_max_memory_length", "0", d(r, "rabbit_quroum_max_memory_length")),
		integer("rabbit_quorum_max_memory_bytes", "0", d(r, "rabbit_quroum_max_memory_bytes")),
		boolean("rabbit_ha_queues", false, d(GroupDefault, "rabbit_ha_queues")),
		boolean("rabbit_transient_quorum_queue", false),
		boolean("rabbit_stream_fanout", false),
		integer("rabbit_transient_queues_ttl", "1800"),
		integer("rabbit_qos_prefetch_count", "0"),
		integer("heartbeat_timeout_threshold", "60"),
		integer("heartbeat_rate", "3"),
		boolean("heartbeat_in_pthread", false),
		boolean("direct_mandatory_flag", true),
		boolean("enable_cancel_on_failover", false),
		boolean("ssl", false, d(r, "rabbit_use_ssl")),
		str("ssl_version", "", d(r, "kombu_ssl_version")),
		str("ssl_key_file", "", d(r, "kombu_ssl_keyfile")),
		str("ssl_cert_file", "", d(r, "kombu_ssl_certfile")),
		str("ssl_ca_file", "", d(r, "kombu_ssl_ca_certs")),
		boolean("ssl_enforce_hostname_verification", true),
		boolean("ssl_enforce_fips_mode", false),
		float("kombu_reconnect_delay", "1.0", d(GroupDefault, "kombu_reconnect_delay")),
		float("kombu_reconnect_splay", "0.0"),
		str("kombu_compression", ""),
		integer("kombu_missing_consumer_retry_timeout", "60", d(r, "kombu_reconnect_timeout")),
		str("kombu_failover_strategy", "round-robin"),
		str("rabbit_login_method", "AMQPLAIN", d(GroupDefault, "rabbit_login_method")),
		integer("rabbit_retry_interval", "1"),
		integer("rabbit_retry_backoff", "2", d(GroupDefault, "rabbit_retry_backoff")),
		integer("rabbit_interval_max", "30"),
		// oslo.messaging 14 registers the pool options in [DEFAULT],
		// later versions in [oslo_messaging_rabbit]: both are current.
		quiet(integer("rpc_conn_pool_size", "30", d(GroupDefault, "rpc_conn_pool_size"))),
		quiet(integer("conn_pool_min_size", "2", d(GroupDefault, "conn_pool_min_size"))),
		quiet(integer("conn_pool_ttl", "1200", d(GroupDefault, "conn_pool_ttl"))),
		boolean("use_queue_manager", false),
		str("hostname", ""),
		str("processname", ""),
	)

	s := &schemaIndex{opts: opts, byKey: map[optName]*option{}, deprecatedOf: map[optName]*option{}}
	for _, o := range opts {
		s.byKey[o.optName] = o
		for _, dn := range o.deprecated {
			s.deprecatedOf[dn] = o
		}
	}
	return s
}

// names returns the places to look for the option group/name, in
// oslo's order: the option itself, then its older places when the
// package knows the option.
func (s *schemaIndex) names(group, name string) []optName {
	n := optName{normalizeGroup(group), name}
	o := s.byKey[n]
	if o == nil {
		return []optName{n}
	}
	return append([]optName{o.optName}, o.deprecated...)
}

// groupOptions returns the current names of the known options of group,
// sorted.
func (s *schemaIndex) groupOptions(group string) []string {
	var out []string
	for _, o := range s.opts {
		if o.group == group {
			out = append(out, o.name)
		}
	}
	sort.Strings(out)
	return out
}

// RabbitOptions returns the names of the [oslo_messaging_rabbit] options
// that this package reads and merges into rabbit:// and kombu://
// transport URLs, sorted: the options that the rabbit driver accepts in
// the URL's query.
func RabbitOptions() []string { return schema.groupOptions(GroupRabbit) }

// rabbitAliases returns the older names of the rabbit option name that
// the driver also accepts in a URL query.
func rabbitAliases(name string) []string {
	o := schema.byKey[optName{GroupRabbit, name}]
	if o == nil {
		return nil
	}
	var out []string
	for _, d := range o.deprecated {
		if d.group == GroupRabbit {
			out = append(out, d.name)
		}
	}
	return out
}

// removedOptions are oslo.messaging options of the past, reported with
// a hint wherever they appear in the groups this package reads.
var removedOptions = map[string]string{
	"rabbit_host":           "removed from oslo.messaging: give the brokers in transport_url",
	"rabbit_hosts":          "removed from oslo.messaging: give the brokers in transport_url",
	"rabbit_port":           "removed from oslo.messaging: give the brokers in transport_url",
	"rabbit_userid":         "removed from oslo.messaging: give the credentials in transport_url",
	"rabbit_password":       "removed from oslo.messaging: give the credentials in transport_url",
	"rabbit_virtual_host":   "removed from oslo.messaging: give the virtual host in transport_url",
	"rabbit_max_retries":    "removed from oslo.messaging",
	"rabbit_durable_queues": "removed from oslo.messaging: use [oslo_messaging_rabbit] amqp_durable_queues",
	"fake_rabbit":           "removed from oslo.messaging: use transport_url = fake://",
	"rpc_backend":           "removed from oslo.messaging: the scheme of transport_url chooses the driver",
}

// isMessagingGroup reports whether this package reports unknown options
// of group.
func isMessagingGroup(group string) bool {
	return slices.Contains([]string{GroupDefault, GroupNotifications, GroupRabbit}, group)
}
