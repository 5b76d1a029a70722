package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/config"
	"github.com/go-oslo/messaging/driver"
)

// exitUnavailable is the exit code of every command when the
// broker cannot be reached, does not take a message, or no reply comes
// in time.
const exitUnavailable = 2

// urlEnv names the environment variable that holds the default
// transport URL of every command.
const urlEnv = "OMSG_TRANSPORT_URL"

// defaultTransportURL is oslo's default transport_url, used when
// neither --url nor OMSG_TRANSPORT_URL is set.
const defaultTransportURL = "rabbit://guest:guest@localhost:5672/"

// command is one subcommand: its cobra command and the helpers that
// report its usage errors.
type command struct {
	name string // "call"
	cc   *cobra.Command
}

// newCommand returns a command whose help has synopsis after "omsg
// <name>", summary as its first line, then details and the examples,
// one invocation a line. Its flags stop at the first argument, so that
// METHOD, key=value and PAYLOAD_JSON arguments are never taken for
// flags.
func newCommand(name, synopsis, summary, details, example string) *command {
	long := summary
	if details != "" {
		long += "\n\n" + strings.TrimRight(details, "\n")
	}
	cc := &cobra.Command{
		Use:     name + " " + synopsis,
		Short:   strings.TrimSuffix(summary, "."),
		Long:    long,
		Example: indent(example),
	}
	cc.Flags().SetInterspersed(false)
	cc.Flags().SortFlags = false
	return &command{name: name, cc: cc}
}

// indent indents every line of text by two spaces, as cobra shows
// examples.
func indent(text string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("  " + line)
	}
	return b.String()
}

// usageError reports a usage error on stderr and returns exitUsage.
func (c *command) usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "omsg %s: %s\nRun 'omsg %s --help' for usage.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

// changed reports whether the flag name was given on the command line.
func (c *command) changed(name string) bool { return c.cc.Flags().Changed(name) }

// targetFlags are the flags shared by call, cast and serve: where the
// bus is and which target to use. notify and listen use the bus flags
// only: --url, --exchange, --verbose and the configuration files.
type targetFlags struct {
	url       string
	exchange  string
	topic     string
	server    string
	namespace string
	version   string
	verbose   bool
	config    *config.Sources // --config-file and --config-dir; nil: none
}

// registerBus defines --url, --exchange, --verbose, --config-file and
// --config-dir on fs.
func (f *targetFlags) registerBus(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "url", "", "transport `URL`, oslo's transport_url (default: the configuration files' transport_url, else $"+urlEnv+", else "+redactedDefaultURL()+")")
	fs.StringVar(&f.exchange, "exchange", "", "`exchange` (default: the control exchange: the configuration files' control_exchange, else "+messaging.DefaultExchange+")")
	f.config = registerConfigFlags(fs)
	fs.BoolVar(&f.verbose, "verbose", false, "also print the library's logs (to stderr)")
}

// register defines the flags on fs; serverHelp and versionHelp describe
// --server and --version, whose meanings differ between clients and
// servers.
func (f *targetFlags) register(fs *pflag.FlagSet, serverHelp, versionHelp string) {
	fs.StringVar(&f.topic, "topic", "", "`topic` (required)")
	fs.StringVar(&f.server, "server", "", serverHelp)
	fs.StringVar(&f.namespace, "namespace", "", "RPC `namespace` (default: the default namespace, oslo's None)")
	fs.StringVar(&f.version, "version", "", versionHelp)
	f.registerBus(fs)
}

// registerConfigFlags defines package config's --config-file and
// --config-dir on fs, with their help, and returns the sources they
// fill.
func registerConfigFlags(fs *pflag.FlagSet) *config.Sources {
	std := flag.NewFlagSet("", flag.ContinueOnError)
	srcs := config.RegisterFlags(std)
	fs.AddGoFlagSet(std)
	return srcs
}

// markConfigCompletion makes the shells complete --config-file with
// *.conf files and --config-dir with directories.
func markConfigCompletion(cc *cobra.Command) {
	_ = cc.MarkFlagFilename("config-file", "conf")
	_ = cc.MarkFlagDirname("config-dir")
}

// transportURL returns the URL to open without configuration files:
// --url, else $OMSG_TRANSPORT_URL, else oslo's default.
func (f *targetFlags) transportURL() string {
	if u, _ := f.explicitURL(); u != "" {
		return u
	}
	return defaultTransportURL
}

// explicitURL returns --url, else $OMSG_TRANSPORT_URL, with the name of
// its source; "" when neither is set.
func (f *targetFlags) explicitURL() (url, from string) {
	if f.url != "" {
		return f.url, "--url"
	}
	if env := os.Getenv(urlEnv); env != "" {
		return env, "$" + urlEnv
	}
	return "", ""
}

// bus is the configuration of the bus a command uses: the options of
// oslo.messaging, from the configuration files when any is given, else
// oslo's defaults, with the transport URL chosen as the help of --url
// says.
type bus struct {
	*config.Messaging
	urlFrom   string // what chose the transport URL, for errors: "--url", ...
	fromFiles bool   // --config-file or --config-dir was given
}

// resolve reads the configuration files, if any, reports their notices
// on stderr and returns the bus. Its errors are about the files, which
// are part of the command line.
func (f *targetFlags) resolve(name string, stderr io.Writer) (*bus, error) {
	b := &bus{Messaging: config.Default()}
	rpcSet, notifSet := false, false
	if f.config != nil && !f.config.Empty() {
		m, file, err := loadConfig(f.config, name, stderr)
		if err != nil {
			return nil, err
		}
		b.Messaging, b.fromFiles = m, true
		rpcSet = file.IsSet(config.GroupDefault, "transport_url")
		notifSet = file.IsSet(config.GroupNotifications, "transport_url")
	}
	// The files named on the command line come before the environment:
	// they are as explicit as --url, the variable may be a leftover of
	// the shell.
	env := os.Getenv(urlEnv)
	switch {
	case f.url != "":
		// The URL of the command line serves RPC and notifications
		// alike; the files' rabbit options still apply to it.
		b.TransportURL, b.Notifications.TransportURL, b.urlFrom = config.URL(f.url), "", "--url"
	case rpcSet || notifSet:
		b.urlFrom = "the configuration files' transport_url"
		if !rpcSet {
			b.TransportURL = defaultTransportURL
		}
	case env != "":
		b.TransportURL, b.Notifications.TransportURL, b.urlFrom = config.URL(env), "", "$"+urlEnv
	default:
		b.TransportURL, b.urlFrom = defaultTransportURL, "the default URL"
	}
	return b, nil
}

// loadConfig reads the configuration files of srcs and the options of
// oslo.messaging they set, and reports their notices on stderr.
func loadConfig(srcs *config.Sources, name string, stderr io.Writer) (*config.Messaging, *config.File, error) {
	file, err := srcs.Load()
	if err != nil {
		return nil, nil, err
	}
	m, notices, err := config.FromFile(file)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notices {
		fmt.Fprintf(stderr, "omsg %s: %v\n", name, n)
	}
	return m, file, nil
}

// open opens the RPC transport of b, or its notification transport
// when notifications is true, with the library's logs going to stderr
// when --verbose is set. Open does no I/O, so its errors are about the
// URL itself; they never contain its password.
func (f *targetFlags) open(b *bus, notifications bool, stderr io.Writer) (*messaging.Transport, error) {
	log := messaging.WithLogger(logger(f.verbose, stderr))
	switch {
	case !b.fromFiles:
		// Without files there is no option to add to the URL.
		return messaging.Open(string(b.TransportURL), log)
	case notifications:
		return b.OpenNotificationTransport(log)
	default:
		return b.OpenRPCTransport(log)
	}
}

// setUp resolves the bus of a command and opens its RPC transport, or
// its notification transport when notifications is true, reporting
// errors on stderr. When ok is false the command exits with code.
func (f *targetFlags) setUp(cmd *command, notifications bool, stderr io.Writer) (b *bus, tr *messaging.Transport, code int, ok bool) {
	b, err := f.resolve(cmd.name, stderr)
	if err != nil {
		return nil, nil, cmd.usageError(stderr, "configuration: %v", err), false
	}
	tr, err = f.open(b, notifications, stderr)
	if err != nil {
		return nil, nil, cmd.usageError(stderr, "%s: %v", b.urlFrom, err), false
	}
	return b, tr, exitOK, true
}

// redactedDefaultURL is oslo's default URL as the help shows it, with
// its password redacted.
func redactedDefaultURL() string {
	u, err := driver.ParseURL(defaultTransportURL)
	if err != nil {
		return "rabbit://localhost:5672/"
	}
	return u.String()
}

// lockedWriter serializes writes to w, so that lines written by
// concurrent goroutines (handlers, the library's logger) do not
// interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying writer in one call, holding the lock.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
