package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging/config"
	"github.com/go-oslo/messaging/internal/bench"
	"github.com/go-oslo/messaging/internal/bench/raw"
)

const benchSummary = "Run oslo.messaging's simulator.py benchmarks on the library, on bare amqp091-go, or compare them with Python."

const benchDetails = `omsg bench takes the command line of oslo.messaging's tools/simulator.py,
global flags first, then the mode and its flags, so that either can
replace the other on the same broker:

  omsg bench [--url URL] [-d] [-tp TOPIC] [-s SERVER] [-tg TOPIC.SERVER ...]
             [-l SECONDS] [-j FILE] [--config-file FILE] [--payload-size N]
             MODE [mode flags]

The simulator's two-letter flags are accepted as it spells them: -tp is
--topic and "-tg a.b c.d" (one or more words, up to the next flag or the
mode) is --targets a.b,c.d.

Modes:
  rpc-server           an RPC server on TOPIC/SERVER whose method info(message)
                       returns the message with server_ts set; it also serves
                       sync_start and sync_done for the clients' --sync
  rpc-client           -p senders calling (or with --is-cast casting) info on
                       the -tg targets in turn, -m messages each or for -l
                       seconds, from the next whole second
  notify-server        a notification listener on TOPIC (priority info)
  batch-notify-server  the same, in batches of 1000 or 5 seconds
  notify-client        -p notifiers (messagingv2) sending compute.start
                       notifications to TOPIC
  raw MODE             the same modes on bare amqp091-go, without oslo's
                       envelope or dispatch
  compare              runs and compares the library, raw and Python

The message is the simulator's [seq, cargo, client_ts, server_ts,
return_ts], its cargo a random lowercase string whose length follows the
simulator's distribution, or is --payload-size characters.

Servers print "omsg bench: ready" on stderr once they consume, and run
until -l seconds passed, their synchronised clients are done, or SIGINT
or SIGTERM. Clients and servers then print the simulator's summary (with
the 50th, 90th and 99th latency percentiles and the CPU time used) on
stdout, and with -j write the simulator's JSON statistics to FILE.

The transport URL is --url, else the transport_url of --config-file
(the notification one for the notification modes), else
$` + urlEnv + `, else oslo's default.

Exit status: 0 on success, 1 when a client could send nothing or the
run failed, 2 when the broker cannot be reached, 64 for a usage error.`

const benchExample = `omsg bench --url rabbit://guest:guest@localhost:5672/ rpc-server &
omsg bench --url rabbit://guest:guest@localhost:5672/ -l 10 -j client.json rpc-client -p 8
omsg bench -tp profiler_topic -s profiler_server rpc-server -w 0
omsg bench -tg profiler_topic.profiler_server profiler_topic.other rpc-client -p 4 -m 1000 --sync call
omsg bench --topic t --targets t.s1,t.s2 rpc-client --threads 4 --messages 1000 --is-cast
omsg bench -tp events -l 30 notify-server --requeue &
omsg bench -tp events -l 10 --payload-size 1024 notify-client -p 4
omsg bench raw -l 10 rpc-client -p 8`

// The modes of omsg bench.
const (
	modeRPCServer    = "rpc-server"
	modeRPCClient    = "rpc-client"
	modeNotifyServer = "notify-server"
	modeBatchServer  = "batch-notify-server"
	modeNotifyClient = "notify-client"
	benchRaw         = "raw"
	benchCompare     = "compare"
)

// benchWords are the words that end the targets of -tg.
var benchWords = map[string]bool{
	modeRPCServer: true, modeRPCClient: true, modeNotifyServer: true, modeBatchServer: true,
	modeNotifyClient: true, benchRaw: true, benchCompare: true,
}

// rewriteBenchArgs rewrites the simulator's spellings that pflag cannot
// parse into ours: -tp into --topic, and -tg (or --targets) followed by
// several words, up to the next flag or mode, into --targets=a,b,c.
// Arguments after "--" are left alone.
func rewriteBenchArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case a == "-tp":
			out = append(out, "--topic")
		case strings.HasPrefix(a, "-tp="):
			out = append(out, "--topic="+strings.TrimPrefix(a, "-tp="))
		case strings.HasPrefix(a, "-tg="):
			out = append(out, "--targets="+strings.TrimPrefix(a, "-tg="))
		case a == "-tg" || a == "--targets":
			var words []string
			for i+1 < len(args) && !isFlagArg(args[i+1]) && !benchWords[args[i+1]] {
				i++
				words = append(words, args[i])
			}
			out = append(out, "--targets="+strings.Join(words, ","))
		default:
			out = append(out, a)
		}
	}
	return out
}

// isFlagArg reports whether a looks like a flag rather than a word.
func isFlagArg(a string) bool { return len(a) > 1 && a[0] == '-' }

// newBenchCommand returns omsg bench, which writes on stdout and stderr.
// It parses its own arguments, since pflag cannot read the simulator's
// -tp and -tg: it rewrites them, then runs the tree of newBenchTree.
func newBenchCommand(stdout, stderr io.Writer) *cobra.Command {
	cc := &cobra.Command{
		Use:                "bench [global flags] MODE [mode flags]",
		Short:              strings.TrimSuffix(benchSummary, "."),
		Long:               benchSummary + "\n\n" + benchDetails,
		Example:            indent(benchExample),
		DisableFlagParsing: true,
		RunE: func(cc *cobra.Command, args []string) error {
			return exitWith(runBench(cc.Context(), args, stdout, stderr))
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			for _, a := range args {
				if benchWords[a] {
					return nil, cobra.ShellCompDirectiveDefault
				}
			}
			return []cobra.Completion{modeRPCServer, modeRPCClient, modeNotifyServer, modeBatchServer,
				modeNotifyClient, benchRaw, benchCompare}, cobra.ShellCompDirectiveNoFileComp
		},
	}
	// omsg help bench shows the help of the real tree.
	cc.SetHelpFunc(func(c *cobra.Command, _ []string) {
		ctx := c.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		runBench(ctx, []string{"--help"}, stdout, stderr)
	})
	return cc
}

// runBench runs omsg bench with args, the arguments after "bench", and
// returns its exit code.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newBenchTree(stdout, stderr)
	root.SetArgs(append([]string{"bench"}, rewriteBenchArgs(args)...))
	cmd, err := root.ExecuteContextC(ctx)
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	path := cmd.CommandPath()
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", path, strings.TrimRight(err.Error(), "\n"), path)
	return exitUsage
}

// benchFlags are the global flags of omsg bench.
type benchFlags struct {
	url         string
	debug       bool
	topic       string
	server      string
	targets     []string
	duration    float64
	json        string
	payloadSize int
	cpuProfile  string
	config      *config.Sources
}

// modeFlags are the flags of the modes; each mode defines its own.
type modeFlags struct {
	wait     float64
	executor string
	threads  int
	messages int
	timeout  float64
	exitWait float64
	cast     bool
	fanout   bool
	sync     string
	requeue  bool
}

// benchImpl runs the modes: the library's or raw amqp091-go's.
type benchImpl struct {
	rpcServer, notifyServer, batchServer func(context.Context, *bench.Config, func(), bench.Recorder) error
	rpcClient, notifyClient              func(context.Context, *bench.Config, bench.Recorder) error
}

var (
	ourImpl = benchImpl{
		rpcServer: bench.RPCServer, notifyServer: bench.NotifyServer, batchServer: bench.BatchNotifyServer,
		rpcClient: bench.RPCClient, notifyClient: bench.NotifyClient,
	}
	// Bare amqp091-go has no batches: its notify-server serves both.
	rawImpl = benchImpl{
		rpcServer: raw.RPCServer, notifyServer: raw.NotifyServer, batchServer: raw.NotifyServer,
		rpcClient: raw.RPCClient, notifyClient: raw.NotifyClient,
	}
)

// newBenchTree returns the commands of omsg bench, under a root named
// omsg that only carries them.
func newBenchTree(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{Use: "omsg", SilenceErrors: true, SilenceUsage: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)

	gf := &benchFlags{}
	bc := &cobra.Command{
		Use:                   "bench [global flags] MODE [mode flags]",
		DisableFlagsInUseLine: true,
		Short:                 strings.TrimSuffix(benchSummary, "."),
		Long:                  benchSummary + "\n\n" + benchDetails,
		Example:               indent(benchExample),
		RunE: func(cc *cobra.Command, args []string) error {
			return exitWith(noMode(cc, "omsg bench", args, stderr))
		},
	}
	fs := bc.PersistentFlags()
	fs.SortFlags = false
	fs.StringVar(&gf.url, "url", "", "transport `URL` (default: the transport_url of --config-file, else $"+urlEnv+", else "+redactedDefaultURL()+")")
	fs.BoolVarP(&gf.debug, "debug", "d", false, "log the library's debug messages on stderr (default: warnings and errors)")
	fs.StringVar(&gf.topic, "topic", "profiler_topic", "`topic` of the servers and notifications (simulator: -tp)")
	fs.StringVarP(&gf.server, "server", "s", "profiler_server", "`server` name of rpc-server")
	fs.StringSliceVar(&gf.targets, "targets", []string{"profiler_topic.profiler_server"},
		"`TOPIC.SERVER` targets of rpc-client, used in turn by its senders (simulator: -tg T1 T2 ...)")
	fs.Float64VarP(&gf.duration, "duration", "l", 0, "run for `SECONDS` (0: clients send -m messages, servers run until stopped)")
	fs.StringVarP(&gf.json, "json", "j", "", "write the JSON statistics to `FILE`")
	gf.config = registerConfigFlags(fs)
	fs.IntVar(&gf.payloadSize, "payload-size", 0, "every cargo is `N` characters (0: the simulator's length distribution)")
	fs.StringVar(&gf.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof)")
	_ = bc.MarkPersistentFlagFilename("config-file", "conf")
	_ = bc.MarkPersistentFlagDirname("config-dir")
	_ = bc.MarkPersistentFlagFilename("json", "json")

	rc := &cobra.Command{
		Use:                   "raw MODE [mode flags]",
		DisableFlagsInUseLine: true,
		Short:                 "Run a mode on bare amqp091-go, without oslo's envelope or dispatch",
		Long: `Run a mode on bare amqp091-go, without oslo's envelope or dispatch, to
measure what the broker allows on the same machine with the same payloads
and delivery guarantees. The global flags and the modes are those of omsg
bench; they may come before or after "raw".`,
		Example: indent(`omsg bench raw rpc-server &
omsg bench raw -l 10 rpc-client -p 8`),
		RunE: func(cc *cobra.Command, args []string) error {
			return exitWith(noMode(cc, "omsg bench raw", args, stderr))
		},
	}
	for _, impl := range []struct {
		parent *cobra.Command
		impl   benchImpl
	}{{bc, ourImpl}, {rc, rawImpl}} {
		for _, m := range []string{modeRPCServer, modeRPCClient, modeNotifyServer, modeBatchServer, modeNotifyClient} {
			impl.parent.AddCommand(newBenchModeCommand(m, impl.impl, gf, stdout, stderr))
		}
	}
	bc.AddCommand(rc, newBenchCompareCommand(stdout, stderr))
	root.AddCommand(bc)
	return root
}

// noMode reports a missing or unknown mode of path.
func noMode(cc *cobra.Command, path string, args []string, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "%s: unknown mode %q\nRun '%s --help' for usage.\n", path, args[0], path)
		return exitUsage
	}
	cc.SetOut(stderr)
	_ = cc.Help()
	return exitUsage
}

// benchModeHelp are the summaries of the modes.
var benchModeHelp = map[string]string{
	modeRPCServer:    "Serve info(message), sync_start and sync_done on the target --topic/--server.",
	modeRPCClient:    "Call (or cast) info on the --targets from -p senders, -m messages each or for -l seconds.",
	modeNotifyServer: "Listen to the info notifications of --topic.",
	modeBatchServer:  "Listen to the info notifications of --topic in batches of 1000, or 5 seconds.",
	modeNotifyClient: "Send compute.start notifications to --topic from -p notifiers.",
}

// newBenchModeCommand returns the command of mode m, run by impl.
func newBenchModeCommand(m string, impl benchImpl, gf *benchFlags, stdout, stderr io.Writer) *cobra.Command {
	mf := &modeFlags{}
	cc := &cobra.Command{
		Use:                   m + " [mode flags]",
		DisableFlagsInUseLine: true,
		Short:                 strings.TrimSuffix(benchModeHelp[m], "."),
		Long:                  benchModeHelp[m],
	}
	fs := cc.Flags()
	fs.SortFlags = false
	switch m {
	case modeRPCServer, modeNotifyServer, modeBatchServer:
		fs.Float64VarP(&mf.wait, "wait", "w", -1, "wait `SECONDS` before answering (notify-server: before requeueing)")
		if m == modeRPCServer {
			fs.StringVarP(&mf.executor, "executor", "e", "", "the simulator's `executor`: accepted and ignored")
		} else {
			fs.BoolVar(&mf.requeue, "requeue", false, "requeue every notification the first time its seq is seen")
		}
	default:
		fs.IntVarP(&mf.threads, "threads", "p", 1, "`N` concurrent senders")
		fs.IntVarP(&mf.messages, "messages", "m", 1, "`N` messages per sender, when -l is not given")
		fs.Float64VarP(&mf.wait, "wait", "w", -1, "wait `SECONDS` after each message")
		fs.Float64Var(&mf.timeout, "timeout", 3, "each call or send fails after `SECONDS`")
		if m == modeRPCClient {
			fs.Float64Var(&mf.exitWait, "exit-wait", 0, "keep the connection open `SECONDS` after sending")
			fs.BoolVar(&mf.cast, "is-cast", false, "cast instead of calling")
			fs.BoolVar(&mf.fanout, "is-fanout", false, "send to every server of the topic (fanout casts)")
			fs.StringVar(&mf.sync, "sync", "", "report the start and end of each sender to the server, which stops when all are done: `call` or fanout")
		}
	}
	cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runBenchMode(cc.Context(), cc.CommandPath(), m, impl, gf, mf, args, stdout, stderr))
	}
	return cc
}

// seconds converts a number of seconds to a Duration; negative is 0.
func seconds(s float64) time.Duration {
	if !(s > 0) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// maxBenchSeconds bounds every duration of the flags: a year.
const maxBenchSeconds = 365 * 24 * 3600

// checkBenchFlags returns the usage error of the flags of mode m, "" if
// there is none.
func checkBenchFlags(m string, gf *benchFlags, mf *modeFlags) string {
	client := m == modeRPCClient || m == modeNotifyClient
	for _, d := range []struct {
		name string
		v    float64
	}{{"-l", gf.duration}, {"-w", mf.wait}, {"--timeout", mf.timeout}, {"--exit-wait", mf.exitWait}} {
		if math.IsNaN(d.v) || d.v > maxBenchSeconds {
			return fmt.Sprintf("%s: %v is not a number of seconds", d.name, d.v)
		}
	}
	switch {
	case gf.duration < 0:
		return "-l must not be negative"
	case gf.payloadSize < 0:
		return "--payload-size must not be negative"
	case gf.topic == "":
		return "--topic (-tp) must not be empty"
	case m == modeRPCServer && gf.server == "":
		return "--server (-s) must not be empty"
	case client && mf.threads < 1:
		return fmt.Sprintf("-p %d: want at least one sender", mf.threads)
	case client && gf.duration == 0 && mf.messages < 1:
		return fmt.Sprintf("-m %d: want at least one message per sender", mf.messages)
	case client && !(mf.timeout > 0):
		return "--timeout must be positive"
	case mf.exitWait < 0:
		return "--exit-wait must not be negative"
	case mf.sync != "" && mf.sync != "call" && mf.sync != "fanout":
		return fmt.Sprintf("--sync %q: want call or fanout", mf.sync)
	}
	if m == modeRPCClient {
		if len(gf.targets) == 0 {
			return "--targets (-tg) needs at least one TOPIC.SERVER"
		}
		for _, t := range gf.targets {
			if _, _, err := bench.ParseTarget(t); err != nil {
				return fmt.Sprintf("--targets (-tg): target %q has no topic (want TOPIC.SERVER)", t)
			}
		}
	}
	return ""
}

// runBenchMode runs mode m of impl and returns the exit code.
func runBenchMode(ctx context.Context, path, m string, impl benchImpl, gf *benchFlags, mf *modeFlags, args []string, stdout, stderr io.Writer) int {
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", path, fmt.Sprintf(format, a...), path)
		return exitUsage
	}
	if len(args) > 0 {
		return usage("unexpected arguments %q", args)
	}
	if msg := checkBenchFlags(m, gf, mf); msg != "" {
		return usage("%s", msg)
	}
	notifications := m == modeNotifyServer || m == modeBatchServer || m == modeNotifyClient
	tf := &targetFlags{url: gf.url, config: gf.config}
	b, err := tf.resolve("bench", stderr)
	if err != nil {
		return usage("configuration: %v", err)
	}
	url, err := b.RPCURL()
	if notifications {
		url, err = b.NotificationURL()
	}
	if err != nil {
		return usage("%s: %v", b.urlFrom, err)
	}

	cfg := &bench.Config{
		URL:        url.Unredacted(),
		Topic:      gf.topic,
		Server:     gf.server,
		Targets:    gf.targets,
		Duration:   seconds(gf.duration),
		Threads:    mf.threads,
		Messages:   mf.messages,
		Timeout:    seconds(mf.timeout),
		WaitAfter:  seconds(mf.wait),
		WaitBefore: seconds(mf.wait),
		ExitWait:   seconds(mf.exitWait),
		Cast:       mf.cast,
		Fanout:     mf.fanout,
		Sync:       mf.sync,
		Requeue:    mf.requeue,
	}
	stderr = &lockedWriter{w: stderr}
	level := slog.LevelWarn
	if gf.debug {
		level = slog.LevelDebug
	}
	ctx = bench.ContextWithLogger(ctx, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	if gf.cpuProfile != "" {
		f, err := os.Create(gf.cpuProfile)
		if err != nil {
			return usage("--cpuprofile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return usage("--cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}

	var st *bench.Stats
	switch m {
	case modeRPCServer, modeNotifyServer, modeBatchServer:
		run := map[string]func(context.Context, *bench.Config, func(), bench.Recorder) error{
			modeRPCServer: impl.rpcServer, modeNotifyServer: impl.notifyServer, modeBatchServer: impl.batchServer,
		}[m]
		st = bench.NewServerStats()
		err = run(ctx, cfg, func() { fmt.Fprintln(stderr, "omsg bench: ready") }, st)
	default:
		n := bench.MaxPayloads
		if cfg.Duration == 0 {
			n = cfg.Messages
		}
		cfg.Payloads = bench.Payloads(n, gf.payloadSize, nil)
		run := impl.notifyClient
		if m == modeRPCClient {
			run = impl.rpcClient
		}
		st = bench.NewClientStats(cfg.Threads, m == modeRPCClient && !cfg.Cast)
		err = run(ctx, cfg, st)
	}
	switch {
	case errors.Is(err, bench.ErrInvalidConfig):
		return usage("%v", err)
	case errors.Is(err, bench.ErrUnreachable):
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return exitUnavailable
	}
	code := exitOK
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		code = exitFailure
	}
	if err := st.Summary(stdout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		code = exitFailure
	}
	if gf.json != "" {
		if err := writeBenchJSON(gf.json, st); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			code = exitFailure
		}
	}
	if m == modeRPCClient || m == modeNotifyClient {
		sent, failed := st.Count(bench.Sent), st.Count(bench.Failed)
		switch {
		case sent-failed <= 0 && code == exitOK:
			if first := st.FirstError(); first != nil {
				fmt.Fprintf(stderr, "%s: nothing could be sent: %d of %d messages failed, the first with: %v\n", path, failed, sent, first)
			} else {
				fmt.Fprintf(stderr, "%s: nothing could be sent\n", path)
			}
			code = exitFailure
		case failed > 0:
			fmt.Fprintf(stderr, "%s: %d of %d messages failed, the first with: %v\n", path, failed, sent, st.FirstError())
		}
	}
	return code
}

// writeBenchJSON writes the JSON statistics of st to the file name.
func writeBenchJSON(name string, st *bench.Stats) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := st.WriteJSON(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
