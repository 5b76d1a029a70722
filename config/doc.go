// Package config reads OpenStack service configuration files, such as
// nova.conf, as oslo.config does, and turns the options of oslo.messaging
// into the options of packages messaging, rpc and notify. A Go service can
// thus run next to Python services from the same configuration.
//
// It is an adapter that produces options, never global state: nothing
// in packages messaging, rpc or notify reads a configuration file.
//
//	srcs := config.RegisterFlags(flag.CommandLine) // --config-file, --config-dir
//	flag.Parse()
//	f, err := srcs.Load()
//	m, notices, err := config.FromFile(f)
//	for _, n := range notices {
//		slog.Warn("configuration", "notice", n.String())
//	}
//	rpcTr, notifTr, err := m.OpenTransports()
//	client, err := rpc.NewClient(rpcTr, target, m.ClientOptions()...)
//	srv, err := rpc.NewServer(rpcTr, target, endpoints, m.ServerOptions()...)
//	opts, err := m.NotifierOptions(nil)
//	notifier, err := notify.NewNotifier(notifTr, "compute.host1", opts...)
//
// # Files
//
// [Load] and [Sources] read files as oslo.config's --config-file and
// --config-dir do: every source overrides those before it, and a
// directory stands for its "*.conf" files in sorted order. The syntax
// is oslo.config's own, which is not Python's configparser:
//
//	[DEFAULT]
//	# A comment; ";" starts one too, but only at the start of a line:
//	# there are no inline comments.
//	transport_url = rabbit://nova:secret@rabbit1:5672,nova:secret@rabbit2:5672/nova
//	# "=" or ":" separates key and value, whichever comes first.
//	control_exchange: nova
//	# An indented line continues the value above: "a, b,\nc".
//	my_list = a, b,
//	  c
//
//	[oslo_messaging_notifications]
//	# A repeated key gives a multi-valued option several values.
//	driver = messagingv2
//	driver = log
//
// Group names are matched lower-cased, except DEFAULT ("[default]" is
// another group); option names are case-sensitive. Values keep "#" and
// ";" (there are no inline comments), lose the quotes that enclose them
// entirely, and may refer to other options: "$name" or "${name}" is
// the value of option name of the same group, else of [DEFAULT];
// "$group.name" or "${group.name}" is that of another group; "$$" and
// "\$" are a "$". A "$" in a password must therefore be written "$$",
// as for oslo.config. A reference to an option that is neither one of
// oslo.messaging's nor set anywhere is an error.
//
// # The environment
//
// An environment variable named OS_<GROUP>__<OPTION>, group and option
// in upper case, overrides the files for that option, as oslo.config's
// environment source does: OS_DEFAULT__TRANSPORT_URL,
// OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES,
// OS_OSLO_MESSAGING_NOTIFICATIONS__DRIVER (see [EnvName]). Only the
// current name of an option is read there, not its deprecated names.
// The environment is read once, when the files are; [WithEnviron]
// replaces it, or switches it off.
//
// # Precedence
//
// For each option, the first of these wins:
//
//  1. for the [oslo_messaging_rabbit] options, the query of the
//     transport URL (as in oslo, whose drivers let the URL override
//     their options);
//  2. the environment;
//  3. the last file that sets it, under its name or, failing that, a
//     deprecated name;
//  4. oslo's default (see [Default]).
//
// # Options
//
// [FromFile] reads [DEFAULT] transport_url, control_exchange,
// rpc_response_timeout, executor_thread_pool_size and rpc_ping_enabled;
// [oslo_messaging_notifications] driver, transport_url (which falls
// back to [DEFAULT] transport_url), topics, retry and routing_config;
// and the [oslo_messaging_rabbit] options listed by [RabbitOptions],
// which it adds to the query of rabbit:// and kombu:// URLs so that the
// driver receives them. oslo.config ignores options it does not know;
// FromFile reports those of the groups it reads as [Notice] values,
// with a suggestion for likely typos, and [Strict] makes them errors.
//
// The typed accessors of [File] convert any option with oslo.config's
// rules: [File.Bool] takes true/false, yes/no, on/off and 1/0 in any
// case; [File.Int] and [File.Float] take what Python's int() and float()
// take; [File.List] splits at commas; [File.Seconds] reads whole
// seconds. Their errors are *[OptionError] values naming the group, the
// option and the file and line (or the environment variable).
//
// # Secrets
//
// Transport URLs are of type [URL], which prints with its passwords
// replaced by "***", whatever the verb, and so do [Messaging] and its
// String form. Errors never quote the value of an option that oslo
// marks secret, or whose name suggests a secret, nor any line of a file.
//
// # Differences from oslo.config
//
//   - An environment variable for a multi-valued option is a
//     comma-separated list; oslo.config splits it into characters.
//   - A blank integer, float or duration value is the default; oslo.config
//     makes it None. Integers beyond 64 bits are errors.
//   - "$name" may refer to any option set in the files, where oslo.config
//     needs the option to be registered by the running service; the
//     value substituted for an option this package does not know is its
//     text, not Python's str() of its typed value.
//   - A UTF-8 byte order mark at the start of a file is skipped; invalid
//     UTF-8 is a parse error naming the line.
//   - A parse error for an assignment outside any section names the line
//     of the assignment, where oslo.config names the line that ends it.
//   - Values are checked for Go's limits when read: rpc_response_timeout
//     and executor_thread_pool_size must be at least 1, topics must not
//     be empty; unknown notification driver names are errors in
//     [Messaging.Sinks], where oslo skips them.
//   - Repeated notification drivers count once, as in oslo (its plugin
//     loader loads each driver once).
package config
