package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/go-oslo/messaging"
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

// command is one subcommand's flag set and help text.
type command struct {
	name     string // "call"
	synopsis string // the arguments after "omsg <name>"
	summary  string // one line: what the command does
	details  string // further paragraphs, may be empty
	example  string // one or more example invocations, one per line
	fs       *flag.FlagSet
}

// newCommand returns a command whose flag set reports parse errors on
// stderr and leaves help to [command.parse].
func newCommand(name, synopsis, summary, details, example string, stderr io.Writer) *command {
	fs := flag.NewFlagSet("omsg "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parse prints the usage itself, on the right stream
	return &command{name: name, synopsis: synopsis, summary: summary, details: details, example: example, fs: fs}
}

// usage writes the command's help to w.
func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: omsg %s %s\n\n%s\n", c.name, c.synopsis, c.summary)
	if c.details != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.details, "\n"))
	}
	fmt.Fprintf(w, "\nExample:\n")
	for line := range strings.SplitSeq(strings.TrimRight(c.example, "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	out := c.fs.Output()
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(out)
}

// parse parses args. When the command must stop (--help, or a flag
// error, which the flag package has already reported), ok is false and
// code is the exit code: help goes to stdout with exitOK, usage errors
// to stderr with exitUsage.
func (c *command) parse(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	err := c.fs.Parse(args)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, flag.ErrHelp):
		c.usage(stdout)
		return exitOK, false
	default:
		fmt.Fprintf(stderr, "Run 'omsg %s --help' for usage.\n", c.name)
		return exitUsage, false
	}
}

// usageError reports a usage error on stderr and returns exitUsage.
func (c *command) usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "omsg %s: %s\nRun 'omsg %s --help' for usage.\n", c.name, fmt.Sprintf(format, args...), c.name)
	return exitUsage
}

// targetFlags are the flags shared by call, cast and serve: where the
// bus is and which target to use.
type targetFlags struct {
	url       string
	exchange  string
	topic     string
	server    string
	namespace string
	version   string
	verbose   bool
}

// register defines the flags on fs; serverHelp and versionHelp describe
// --server and --version, whose meanings differ between clients and
// servers.
func (f *targetFlags) register(fs *flag.FlagSet, serverHelp, versionHelp string) {
	fs.StringVar(&f.url, "url", "", "transport URL, oslo's transport_url (default $"+urlEnv+", else "+redactedDefaultURL()+")")
	fs.StringVar(&f.exchange, "exchange", "", "exchange (default: the control exchange, "+messaging.DefaultExchange+")")
	fs.StringVar(&f.topic, "topic", "", "topic (required)")
	fs.StringVar(&f.server, "server", "", serverHelp)
	fs.StringVar(&f.namespace, "namespace", "", "RPC namespace (default: the default namespace, oslo's None)")
	fs.StringVar(&f.version, "version", "", versionHelp)
	fs.BoolVar(&f.verbose, "verbose", false, "also print the library's logs (to stderr)")
}

// transportURL returns the URL to open: --url, else $OMSG_TRANSPORT_URL,
// else oslo's default.
func (f *targetFlags) transportURL() string {
	if f.url != "" {
		return f.url
	}
	if env := os.Getenv(urlEnv); env != "" {
		return env
	}
	return defaultTransportURL
}

// open opens the transport the flags name, with the library's logs
// going to stderr when --verbose is set. Open does no I/O, so its errors
// are about the URL itself; they never contain its password.
func (f *targetFlags) open(stderr io.Writer) (*messaging.Transport, error) {
	return messaging.Open(f.transportURL(), messaging.WithLogger(logger(f.verbose, stderr)))
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
