package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/go-oslo/messaging/internal/bench/compare"
)

// benchCompareOmsg is the omsg program that omsg bench compare runs;
// "" for this one. Tests set it.
var benchCompareOmsg string

const benchCompareSummary = "Compare the library with bare amqp091-go and Python oslo.messaging"

const benchCompareDetails = `Runs each scenario with omsg bench raw (bare amqp091-go), omsg bench (this
library) and Python oslo.messaging (the embedded pybench.py, or
oslo.messaging's tools/simulator.py with --simulator), one after the
other on the same broker with the same payloads, and prints one Markdown
table with the figures of each and the ratios of ours to the others.

Scenarios (--scenarios, default all):
  call      sequential calls (-p 1): calls/s, p50 and p99 latency, CPU/msg
  call-8    calls with 8 in flight: calls/s, p50 latency, CPU/msg
  call-64   calls with 64 in flight: calls/s, p50 latency, CPU/msg
  cast      casts from 1 publisher: casts/s delivered
  cast-8    casts from 8 publishers: casts/s delivered
  fanout    fanout casts to 3 servers: publishes/s and deliveries/s
  notify    notifications from 1 notifier: notifications/s delivered

Each cell starts the servers, waits for them to be ready, runs the client
for --duration seconds, waits for the queues to empty, stops the servers
with SIGINT and reads their JSON statistics; rates are exact, from the
first and last message's timestamps. A cell takes about --duration plus
a few seconds; the whole comparison, 21 cells.

With rabbitmqctl on $PATH, the comparison runs in a virtual host of its
own, created for it and deleted after it; otherwise in the URL's virtual
host, on topics of its own. Python runs only when --python can import
oslo_messaging; the table says why when it cannot. simulator.py reports
neither percentiles nor CPU (shown as —) and draws its own payloads.

Exit status: 0 when every cell ran, 1 when some failed (the table is
still printed), 2 when the broker cannot be reached, 64 for a usage
error.`

const benchCompareExample = `omsg bench compare
omsg bench compare --url rabbit://guest:guest@localhost:5672/ --duration 10 -j compare.json
omsg bench compare --scenarios call,cast --payload-size 4096 --no-python
omsg bench compare --simulator ~/oslo.messaging/tools/simulator.py`

// newBenchCompareCommand returns omsg bench compare.
func newBenchCompareCommand(stdout, stderr io.Writer) *cobra.Command {
	cc := &cobra.Command{
		Use:     "compare [flags]",
		Short:   benchCompareSummary,
		Long:    benchCompareSummary + ".\n\n" + benchCompareDetails,
		Example: indent(benchCompareExample),
	}
	fs := cc.Flags()
	fs.SortFlags = false
	url := fs.String("url", "", "transport `URL` of the RabbitMQ broker (default: $"+urlEnv+", else "+redactedDefaultURL()+")")
	duration := fs.Float64("duration", 5, "`SECONDS` of sending per cell")
	payload := fs.Int("payload-size", 1024, "every message's cargo is `BYTES` characters (0: the simulator's length distribution)")
	python := fs.String("python", compare.DefaultPython, "Python `interpreter` with oslo.messaging")
	noPython := fs.Bool("no-python", false, "leave Python out")
	simulator := fs.String("simulator", "", "run oslo.messaging's tools/simulator.py at `PATH` instead of the embedded pybench.py")
	scenarios := fs.StringSlice("scenarios", nil, "run only these `scenarios` (comma-separated: "+strings.Join(compare.Scenarios(), ",")+")")
	jsonFile := fs.StringP("json", "j", "", "also write every figure as JSON to `FILE`")
	_ = cc.MarkFlagFilename("json", "json")
	_ = cc.MarkFlagFilename("simulator", "py")
	// The global flags of omsg bench configure a single program; compare
	// runs its own and refuses them, so its help does not list them.
	cc.SetUsageTemplate(strings.Replace(cc.UsageTemplate(),
		"{{if .HasAvailableInheritedFlags}}\n\nGlobal Flags:\n{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}", "", 1))

	usage := func(format string, args ...any) error {
		fmt.Fprintf(stderr, "omsg bench compare: %s\nRun 'omsg bench compare --help' for usage.\n", fmt.Sprintf(format, args...))
		return exitWith(exitUsage)
	}
	cc.RunE = func(cc *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usage("unexpected arguments %q", args)
		}
		var inherited []string
		cc.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Changed {
				inherited = append(inherited, "--"+f.Name)
			}
		})
		if len(inherited) > 0 {
			return usage("%s: not a flag of compare, which sets those of the programs it runs", strings.Join(inherited, ", "))
		}
		if *duration <= 0 || math.IsNaN(*duration) || *duration > 24*3600 {
			return usage("--duration %v: want seconds in (0, 86400]", *duration)
		}
		o := compare.Options{
			URL:         *url,
			Duration:    time.Duration(*duration * float64(time.Second)),
			PayloadSize: *payload,
			Scenarios:   *scenarios,
			Omsg:        benchCompareOmsg,
			Python:      *python,
			NoPython:    *noPython,
			Simulator:   *simulator,
			Progress:    stderr,
		}
		if o.URL == "" {
			o.URL = os.Getenv(urlEnv)
		}
		if o.URL == "" {
			o.URL = defaultTransportURL
		}
		rep, err := compare.Run(cc.Context(), o)
		switch {
		case errors.Is(err, compare.ErrInvalidOptions):
			return usage("%s", strings.TrimPrefix(err.Error(), "compare: "))
		case errors.Is(err, compare.ErrUnreachable):
			fmt.Fprintf(stderr, "omsg bench compare: %s\n", strings.TrimPrefix(err.Error(), "compare: "))
			return exitWith(exitUnavailable)
		case rep == nil:
			fmt.Fprintf(stderr, "omsg bench compare: %v\n", err)
			return exitWith(exitFailure)
		}
		code := exitOK
		if err != nil {
			fmt.Fprintf(stderr, "omsg bench compare: %v\n", err)
			code = exitFailure
		}
		if rep.Failed() {
			code = exitFailure
		}
		if werr := rep.WriteMarkdown(stdout); werr != nil {
			fmt.Fprintf(stderr, "omsg bench compare: %v\n", werr)
			code = exitFailure
		}
		if *jsonFile != "" {
			if werr := writeCompareJSON(*jsonFile, rep); werr != nil {
				fmt.Fprintf(stderr, "omsg bench compare: %v\n", werr)
				code = exitFailure
			}
		}
		return exitWith(code)
	}
	return cc
}

// writeCompareJSON writes rep as indented JSON to path.
func writeCompareJSON(path string, rep *compare.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
