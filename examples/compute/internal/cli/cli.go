// Package cli holds what the commands of the compute example share:
// the --url, --host and --verbose flags, the transport and the logs.
package cli

import (
	"errors"
	"flag"
	"fmt"

	"log/slog"
	"os"
	"strings"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory" // memory:// and fake://
	_ "github.com/go-oslo/messaging/driver/rabbit" // rabbit:// and kombu://
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// URLEnv names the variable that gives the default transport URL.
const URLEnv = "OMSG_TRANSPORT_URL"

// DefaultURL is the transport URL when neither --url nor URLEnv is set.
const DefaultURL = "rabbit://guest:guest@127.0.0.1:5672/"

// Common are the flags every command takes.
type Common struct {
	URL     string
	Host    string
	Verbose bool
}

// Register adds --url, --host (default defaultHost, else the machine's
// name) and --verbose to fs.
func (c *Common) Register(fs *flag.FlagSet, defaultHost string) {
	url := os.Getenv(URLEnv)
	if url == "" {
		url = DefaultURL
	}
	if defaultHost == "" {
		defaultHost, _ = os.Hostname()
	}
	fs.StringVar(&c.URL, "url", url, "transport URL (default $"+URLEnv+", else "+DefaultURL+"); memory:// reaches only this process")
	fs.StringVar(&c.Host, "host", defaultHost, "host name of this service (oslo's CONF.host)")
	fs.BoolVar(&c.Verbose, "verbose", false, "also print the library's logs on stderr")
}

// Parse parses args into fs, exiting with status 64 on a usage error
// and 0 for -h.
func Parse(fs *flag.FlagSet, args []string) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(64)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %q\n", fs.Name(), fs.Args())
		os.Exit(64)
	}
}

// Open opens the transport of the command; it warns on stderr that a
// memory:// transport reaches no other process. It also returns the
// logger of the library (stderr with --verbose, else warnings only) and
// the trace, on stdout.
func (c *Common) Open(name string) (*messaging.Transport, *slog.Logger, *trace.Log, error) {
	level := slog.LevelWarn
	if c.Verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if strings.HasPrefix(c.URL, "memory:") || strings.HasPrefix(c.URL, "fake:") {
		fmt.Fprintf(os.Stderr, "%s: warning: %s reaches only this process; run compute-allinone, or use rabbit://\n", name, c.URL)
	}
	tr, err := messaging.Open(c.URL, messaging.WithLogger(logger))
	if err != nil {
		return nil, nil, nil, err
	}
	return tr, logger, trace.New(os.Stdout), nil
}

// ServiceOptions returns the options of the commands' services: the
// logger, and oslo's ping method (oslo_rpc_server_ping) enabled, so
// that "omsg call ... oslo_rpc_server_ping" checks a service is alive.
func ServiceOptions(logger *slog.Logger) []service.Option {
	return []service.Option{
		service.WithLogger(logger),
		service.WithServerOptions(rpc.WithPing(true)),
	}
}

// Fatal prints err on stderr and exits with status 1.
func Fatal(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(1)
}
