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
// a line of JSON. They use the bus named by --url,
// else $OMSG_TRANSPORT_URL, else oslo's default
// rabbit://guest:guest@localhost:5672/. "omsg <command> --help" describes
// each command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
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

const usage = `omsg: the go-oslo/messaging tool

Usage:
  omsg demo [--url URL] [--topic TOPIC] [--exchange EXCHANGE] [--verbose]
      Replay oslo.messaging's RPC demonstration (two servers, call, call to a
      server, fanout cast, version mismatch, remote error) and print who sent
      what and who handled it. Default URL: memory:// (in-process).
  omsg call --topic T [--server S] [--namespace N] [--version V] [--exchange E]
            [--url URL] [--timeout 60s] [--context JSON] METHOD [key=value ...]
      Call METHOD and print its result as JSON on stdout. Values are JSON
      when valid JSON, else strings. Exit 1 on a remote error, 2 on a
      timeout or transport error.
  omsg cast [same flags as call] [--fanout] METHOD [key=value ...]
      Send METHOD without waiting for it to run (--fanout: to every server).
  omsg serve --topic T --server S [--namespace N] [--version V] [--exchange E] [--url URL]
      Run a diagnostic RPC server (ping, echo, sleep, fail, oslo_rpc_server_ping)
      that prints every request it serves as a JSON line on stdout.
  omsg notify --publisher-id P --event-type E [--priority info] [--topic T]
              [--format v2|v1] [--context JSON] [--exchange E] [--url URL]
              [--timeout 60s] PAYLOAD_JSON
      Send a notification, as oslo's Notifier does (default topic:
      notifications). Exit 2 on a timeout or transport error.
  omsg listen [--topic T] [--pool P] [--priority info,error,...]
              [--event-type GLOB] [--exchange E] [--url URL]
      Print every notification received as a JSON line on stdout. Without
      --pool it takes them from the queues the services' listeners share:
      use --pool to watch a live bus.
  omsg help
      Show this help.

call, cast, serve, notify and listen use --url, else $OMSG_TRANSPORT_URL,
else oslo's default: RabbitMQ on localhost:5672 as guest. Add --help to a
command for its flags.

Examples:
  omsg demo
  omsg serve --topic omsg --server s1 &
  omsg call --topic omsg --server s1 echo n=5 s=hello
  omsg listen --pool omsg-tail &
  omsg notify --publisher-id omsg --event-type omsg.test '{"n": 5}'
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "demo":
		return runDemoCommand(ctx, args[1:], stdout, stderr)
	case "call":
		return runCallCommand(ctx, args[1:], stdout, stderr)
	case "cast":
		return runCastCommand(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServeCommand(ctx, args[1:], stdout, stderr)
	case "notify":
		return runNotifyCommand(ctx, args[1:], stdout, stderr)
	case "listen":
		return runListenCommand(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "omsg: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
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

func runDemoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("omsg demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "memory://", "transport URL")
	topic := fs.String("topic", "test", "topic the demo servers listen on")
	exchange := fs.String("exchange", "", "exchange (default: the control exchange, openstack)")
	verbose := fs.Bool("verbose", false, "also print the library's logs (to stderr)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: omsg demo [--url URL] [--topic TOPIC] [--exchange EXCHANGE]\n\nExample:\n  omsg demo\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "omsg demo: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if err := runDemo(ctx, stdout, demoConfig{URL: *url, Topic: *topic, Exchange: *exchange, Log: logger(*verbose, stderr)}); err != nil {
		fmt.Fprintf(stderr, "omsg demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}
