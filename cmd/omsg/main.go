// Command omsg is the go-oslo/messaging command-line tool.
//
// Usage:
//
//	omsg demo [--url URL] [--topic TOPIC] [--exchange EXCHANGE]
//	omsg call --topic T [flags] METHOD [key=value ...]
//	omsg cast --topic T [--fanout] [flags] METHOD [key=value ...]
//	omsg serve --topic T --server S [flags]
//	omsg notify --publisher-id P --event-type E [flags] PAYLOAD_JSON
//	omsg listen [--topic T] [--pool P] [--priority P,...] [--event-type GLOB] [flags]
//	omsg inspect [--topic T] [--exchange E] [--json] [flags]
//	omsg version
//	omsg completion bash|zsh|fish|powershell
//
// demo replays oslo.messaging's classic demonstration: two RPC servers
// on one topic, a call answered by one of them, a call to a named
// server, a fanout cast reaching both, a version mismatch rejected and
// a remote error coming back. It runs over the in-process memory://
// transport unless --url names another.
//
// call invokes a method on an RPC server and prints its result as
// JSON; cast sends one without waiting for it to run; serve runs a
// diagnostic RPC server (ping, echo, sleep, fail) that prints every
// request it serves as a line of JSON. notify sends a notification, as
// oslo's Notifier does; listen prints every notification it receives as
// a line of JSON. inspect shows the queues of a topic or an exchange,
// with their depth and consumers, and the live servers of the topic.
// They use the bus named by --url, else
// $OMSG_TRANSPORT_URL, else the transport_url of the oslo.config files
// given with --config-file and --config-dir, else oslo's default
// rabbit://guest:guest@localhost:5672/; the files also give the control
// exchange, rpc_response_timeout and the rabbit options.
//
// Exit status: 0 on success, 1 when the command failed (a remote error),
// 2 when the broker could not be reached or did not answer in time, 64
// for a usage error. "omsg --help" and "omsg <command> --help" describe
// the commands; "omsg completion" writes shell completion scripts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging/config"
	_ "github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/wire"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 64
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling so that a
	// second one ends the process even during a graceful drain.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError ends a command that has already reported why, with its
// exit code.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitWith returns the error of a command that ends with code: nil for
// exitOK.
func exitWith(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitError{code: code}
}

// run runs omsg with args, the arguments after the program name, and
// returns its exit code. Commands write on stdout and stderr only.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	if len(args) == 0 {
		// Without a command, omsg is a usage error: help on stderr.
		root.SetOut(stderr)
		root.SetArgs([]string{"--help"})
		_ = root.ExecuteContext(ctx)
		return exitUsage
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	// Cobra's errors are usage errors: an unknown command or flag, an
	// invalid flag value, a wrong number of arguments.
	path := cmd.CommandPath()
	fmt.Fprintf(stderr, "%s: %s\n", path, strings.TrimRight(err.Error(), "\n"))
	if hint := dashHint(cmd, args); hint != "" {
		fmt.Fprintf(stderr, "%s: %s\n", path, hint)
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
	return exitUsage
}

// dashHint returns a hint for the first argument that names a long flag
// of cmd after one dash, such as -url, which omsg read before it
// followed the convention of two; "" if there is none.
func dashHint(cmd *cobra.Command, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(name) > 1 && cmd.Flags().Lookup(name) != nil {
			return fmt.Sprintf("long flags take two dashes: --%s, not %s", name, a)
		}
	}
	return ""
}

const rootLong = `omsg talks to OpenStack services over their message bus, as
oslo.messaging does: it calls and casts RPC methods, serves them, sends
notifications and listens for them, all in oslo.messaging's wire format,
over RabbitMQ (rabbit://) or the in-process bus (memory://).`

const rootExample = `omsg demo
omsg serve --topic omsg --server s1 &
omsg call --topic omsg --server s1 echo n=5 s=hello
omsg call --config-file /etc/nova/nova.conf --topic compute --server host1 oslo_rpc_server_ping
omsg listen --pool omsg-tail &
omsg notify --publisher-id omsg --event-type omsg.test '{"n": 5}'
source <(omsg completion bash)`

// rootFooter is added to the usage of omsg itself, after its flags;
// %s is oslo's default URL.
const rootFooter = `{{if not .HasParent}}

Transport URL:
  call, cast, serve, notify, listen and inspect use the first of:
    1. --url
    2. transport_url of the configuration files given with
       --config-file or --config-dir (notify and listen prefer
       [oslo_messaging_notifications] transport_url)
    3. $` + urlEnv + `
    4. oslo's default, %s
  demo uses --url, else the files' transport_url, else memory://.

Configuration files:
  --config-file PATH and --config-dir DIR, on every command that uses
  a bus, read oslo.config files such as /etc/nova/nova.conf as the
  services do. Both are repeatable; later sources win, and a directory
  stands for its *.conf files in sorted order. Besides the transport
  URL, the files give control_exchange (the default of --exchange),
  rpc_response_timeout (the default of call's --timeout),
  executor_thread_pool_size (serve), [oslo_messaging_notifications]
  topics (the default of --topic of notify and listen) and the
  [oslo_messaging_rabbit] options, which apply to the transport URL
  unless its query sets them. Flags always win over the files. Unknown
  and deprecated options are reported on stderr.

Environment:
  ` + urlEnv + `    transport URL when neither --url nor a configuration file gives one
  OS_<GROUP>__<OPTION>  with --config-file or --config-dir, overrides
                        that option of the files, as for oslo.config
                        (e.g. OS_DEFAULT__CONTROL_EXCHANGE)

Exit status:
  0   success
  1   the command failed: a remote error (call), stdout unwritable
      (listen), a failed demonstration (demo)
  2   unavailable: the broker could not be reached or did not take the
      message, or no reply came, within --timeout
  64  usage error: unknown command or flag, invalid argument, unreadable
      or invalid configuration file{{end}}
`

// newRootCommand returns omsg and its commands, writing on stdout and
// stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "omsg",
		Short:         "The go-oslo/messaging tool",
		Long:          rootLong,
		Example:       indent(rootExample),
		Version:       moduleVersion(),
		SilenceErrors: true, // run reports them
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetUsageTemplate(strings.TrimSuffix(root.UsageTemplate(), "\n") + fmt.Sprintf(rootFooter, redactedDefaultURL()))
	root.SetVersionTemplate("omsg version {{.Version}}\n")
	root.AddCommand(
		newDemoCommand(stdout, stderr),
		newCallCommand(stdout, stderr),
		newCastCommand(stderr),
		newServeCommand(stdout, stderr),
		newNotifyCommand(stderr),
		newListenCommand(stdout, stderr),
		newInspectCommand(stdout, stderr),
		newBenchCommand(stdout, stderr),
		newVersionCommand(stdout),
	)
	root.InitDefaultCompletionCmd()
	if cc, _, err := root.Find([]string{"completion"}); err == nil && cc != root {
		completionHelp(cc, stderr)
	}
	return root
}

// completionHelp adds examples to cobra's completion command cc and
// makes a missing or unknown shell a usage error.
func completionHelp(cc *cobra.Command, stderr io.Writer) {
	cc.Example = indent(`source <(omsg completion bash)
omsg completion zsh > "${fpath[1]}/_omsg"
omsg completion fish > ~/.config/fish/completions/omsg.fish`)
	cc.RunE = func(cc *cobra.Command, _ []string) error {
		cc.SetOut(stderr)
		_ = cc.Help()
		return exitWith(exitUsage)
	}
}

// logger returns the library logger: the servers log the failures the
// demo provokes on purpose, so logs are shown only with --verbose.
func logger(verbose bool, w io.Writer) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const demoSummary = "Replay oslo.messaging's RPC demonstration and print who sent what and who handled it."

const demoDetails = `Two RPC servers on --topic, a call answered by one of them, a call to a
named server, a fanout cast reaching both, a version mismatch rejected, a
remote error coming back, and a notification sent and received.

It runs over the in-process memory:// bus unless --url, or the
transport_url of --config-file, names another; the files' control_exchange
is then the default of --exchange.

Exit status: 0 when the demonstration completed, 1 when it failed, 64 for
a usage error.`

const demoExample = `omsg demo
omsg demo --url rabbit://user:pass@rabbit1:5672/ --verbose`

// newDemoCommand returns omsg demo, which writes on stdout and stderr.
func newDemoCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := newCommand("demo", "[flags]", demoSummary, demoDetails, demoExample)
	fs := cmd.cc.Flags()
	url := fs.String("url", "memory://", "transport `URL`")
	topic := fs.String("topic", "test", "`topic` the demo servers listen on")
	exchange := fs.String("exchange", "", "`exchange` (default: the control exchange: the configuration files' control_exchange, else openstack)")
	srcs := registerConfigFlags(fs)
	verbose := fs.Bool("verbose", false, "also print the library's logs (to stderr)")
	markConfigCompletion(cmd.cc)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		if len(args) > 0 {
			return exitWith(cmd.usageError(stderr, "unexpected arguments %q", args))
		}
		cfg := demoConfig{URL: *url, Topic: *topic, Exchange: *exchange, Log: logger(*verbose, stderr)}
		if !srcs.Empty() {
			m, file, err := loadConfig(srcs, cmd.name, stderr)
			if err != nil {
				return exitWith(cmd.usageError(stderr, "configuration: %v", err))
			}
			if cmd.changed("url") || !file.IsSet(config.GroupDefault, "transport_url") {
				m.TransportURL = config.URL(*url)
			}
			u, err := m.RPCURL()
			if err != nil {
				fmt.Fprintf(stderr, "omsg demo: %v\n", err)
				return exitWith(exitFailure)
			}
			cfg.URL = string(u)
			if !cmd.changed("exchange") {
				cfg.Exchange = m.ControlExchange
			}
		}
		if err := runDemo(cc.Context(), stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "omsg demo: %v\n", err)
			return exitWith(exitFailure)
		}
		return nil
	}
	return cmd.cc
}

// newVersionCommand returns omsg version, which writes on stdout.
func newVersionCommand(stdout io.Writer) *cobra.Command {
	cmd := newCommand("version", "", "Print the version of omsg, of Go and of oslo.messaging's wire format.",
		`The first line is the version of the module github.com/go-oslo/messaging
omsg was built from: a release such as v1.2.0, a pseudo-version, or
(devel) for a build from a working tree. The lines after it give the VCS
revision when the build recorded it, the Go release, and the version of
oslo.messaging's message envelope that omsg speaks.`, "omsg version")
	cmd.cc.Args = cobra.NoArgs
	cmd.cc.RunE = func(*cobra.Command, []string) error {
		writeVersion(stdout)
		return nil
	}
	return cmd.cc
}

// modulePath is the path of the module omsg is part of.
const modulePath = "github.com/go-oslo/messaging"

// moduleVersion returns the version of the module omsg was built from,
// "(devel)" when unknown.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == modulePath && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// writeVersion writes what omsg version prints.
func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "omsg version %s\n", moduleVersion())
	fmt.Fprintf(w, "  module:  %s\n", modulePath)
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			if settings["vcs.modified"] == "true" {
				rev += " (modified)"
			}
			if t := settings["vcs.time"]; t != "" {
				rev += ", " + t
			}
			fmt.Fprintf(w, "  commit:  %s\n", rev)
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	fmt.Fprintf(w, "  go:      %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "  wire:    oslo.messaging %s\n", wire.EnvelopeVersion)
}
