package compare

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The fake benchmark program: this test binary, run by the comparison
// as omsg ("bench [raw] ...") and as Python ("-c SCRIPT" for the import
// check, "pybench.py ..." or "simulator.py ..."), when fakeEnv is set.
// It follows the contract's command line and writes JSON statistics of
// known figures, without a broker.
const (
	// fakeEnv holds the fake's behaviours: comma-separated
	// SYSTEM:BEHAVIOUR words (see fakeMain); "" for none.
	fakeEnv = "OMSG_COMPARE_FAKE"
	// fakeLogEnv names a file the fake appends its events to, one line
	// each: EVENT SYSTEM MODE TOPIC ARGS, tab-separated.
	fakeLogEnv = "OMSG_COMPARE_FAKE_LOG"
)

// fakeFactor scales each system's figures: raw is twice as fast as
// ours, which is twice as fast as Python.
var fakeFactor = map[System]float64{Raw: 4, Ours: 2, Python: 1}

// The fake's figures, for a factor f. Rates are exact: counts of n+1
// samples one second apart.
func fakeCallRate(f float64) float64      { return 100 * f }
func fakeSendRate(f float64) float64      { return 300 * f }
func fakeServerRate(f float64) float64    { return 200 * f }
func fakeP50(f float64) float64           { return 0.001 / f }
func fakeP99(f float64) float64           { return 0.004 / f }
func fakeClientCPU(f float64) float64     { return 0.0001 / f }
func fakeServerCPU(f float64) float64     { return 0.0002 / f }
func fakeSimServerRate(f float64) float64 { return 150 * f }

// fakeArgs is a parsed command line.
type fakeArgs struct {
	system    System
	simulator bool
	mode      string
	topic     string
	server    string
	targets   []string
	duration  string
	json      string
	payload   string
	flags     []string // the mode's
}

var fakeModes = map[string]bool{
	"rpc-server": true, "rpc-client": true, "notify-server": true, "batch-notify-server": true, "notify-client": true,
}

func parseFakeArgs(args []string) (fakeArgs, error) {
	var a fakeArgs
	switch {
	case len(args) > 0 && args[0] == "bench":
		args = args[1:]
		a.system = Ours
		if len(args) > 0 && args[0] == "raw" {
			args = args[1:]
			a.system = Raw
		}
	case len(args) > 0 && strings.HasSuffix(args[0], ".py"):
		a.system = Python
		a.simulator = filepath.Base(args[0]) == "simulator.py"
		args = args[1:]
	default:
		return a, fmt.Errorf("fake: unknown program in %q", args)
	}
	for i := 0; i < len(args); i++ {
		w := args[i]
		if fakeModes[w] {
			a.mode, a.flags = w, args[i+1:]
			return a, nil
		}
		if w == "-tg" {
			for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && !fakeModes[args[i+1]] {
				i++
				a.targets = append(a.targets, args[i])
			}
			continue
		}
		if i+1 >= len(args) {
			return a, fmt.Errorf("fake: flag %s has no value", w)
		}
		v := args[i+1]
		i++
		switch w {
		case "--url":
		case "-tp":
			a.topic = v
		case "-s":
			a.server = v
		case "-l":
			a.duration = v
		case "-j":
			a.json = v
		case "--payload-size":
			a.payload = v
		default:
			return a, fmt.Errorf("fake: unknown flag %s", w)
		}
	}
	return a, fmt.Errorf("fake: no mode in %q", args)
}

// fakeMain runs the fake with the behaviours of spec. Behaviours, each
// for one system ("ours:never-ready"):
//
//	never-ready   a server never prints the ready line
//	ignore-int    a server ignores SIGINT
//	no-json       a server exits on SIGINT without writing its JSON
//	client-hang   a client never ends
//	client-fail   a client exits with status 1
//	no-oslo       Python cannot import oslo_messaging
func fakeMain(spec string, args []string) int {
	has := func(sys System, b string) bool {
		for w := range strings.SplitSeq(spec, ",") {
			if w == string(sys)+":"+b {
				return true
			}
		}
		return false
	}
	if os.Getenv(childEnv) != "1" {
		fmt.Fprintf(os.Stderr, "fake: $%s not set by the comparison\n", childEnv)
		return 70
	}
	if len(args) > 0 && args[0] == "-c" {
		if has(Python, "no-oslo") {
			fmt.Fprintln(os.Stderr, "ModuleNotFoundError: No module named 'oslo_messaging'")
			return 1
		}
		fmt.Println("14.0.3")
		return 0
	}
	a, err := parseFakeArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64
	}
	fakeLog("start", a, strings.Join(args, " "))
	f := fakeFactor[a.system]
	if strings.HasSuffix(a.mode, "server") {
		return fakeServer(a, f, has)
	}
	switch {
	case has(a.system, "client-hang"):
		time.Sleep(time.Hour)
		return 0
	case has(a.system, "client-fail"):
		fmt.Fprintln(os.Stderr, "fake: no message could be sent")
		return 1
	}
	cast := a.mode == "notify-client"
	for _, fl := range a.flags {
		cast = cast || fl == "--is-cast"
	}
	out := map[string]any{}
	if a.simulator {
		d, _ := strconv.ParseFloat(a.duration, 64)
		n := fakeCallRate(f) * d
		if cast {
			n = fakeSendRate(f) * d
		}
		s := map[string]any{"count": n, "size": n * 10, "duration": d + 1, "count_p_s": n / (d + 1), "size_p_s": 0}
		sum := map[string]any{"client": s, "error": map[string]any{"count": 0, "size": 0, "duration": 0, "count_p_s": 0, "size_p_s": 0}}
		if !cast {
			sum["round_trip"] = s
		}
		out["summary"] = sum
	} else {
		sum := map[string]any{
			"client": fakeSummary(fakeSendRate(f), nil),
			"error":  map[string]any{"count": 0, "size": 0, "duration": 0, "count_p_s": 0, "size_p_s": 0},
		}
		if !cast {
			sum["round_trip"] = fakeSummary(fakeCallRate(f), map[string]any{
				"latency": fakeP50(f), "min_latency": fakeP50(f) / 2, "max_latency": fakeP99(f) * 2,
				"p50_latency": fakeP50(f), "p90_latency": fakeP99(f) / 2, "p99_latency": fakeP99(f),
			})
		}
		out["summary"] = sum
		out["process"] = fakeProcess(fakeSendRate(f)+1, fakeClientCPU(f))
	}
	out["series"] = map[string]any{"client_0": []any{}, "error_0": []any{}}
	if err := fakeWrite(a.json, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fakeServer serves until SIGINT or -l.
func fakeServer(a fakeArgs, f float64, has func(System, string) bool) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	if !has(a.system, "never-ready") && !a.simulator {
		fmt.Fprintln(os.Stderr, "fake: consuming")
		fmt.Fprintln(os.Stderr, ReadyLine)
	}
	d, err := strconv.ParseFloat(a.duration, 64)
	if err != nil || d <= 0 {
		d = 3600
	}
	limit := time.NewTimer(time.Duration(d * float64(time.Second)))
	defer limit.Stop()
	for {
		select {
		case <-sig:
			if has(a.system, "ignore-int") {
				fakeLog("sigint-ignored", a, "")
				continue
			}
			fakeLog("sigint", a, "")
		case <-limit.C:
			fakeLog("limit", a, "")
		}
		break
	}
	if has(a.system, "no-json") {
		return 0
	}
	var out map[string]any
	if a.simulator {
		n := fakeSimServerRate(f) * 3
		out = map[string]any{"summary": map[string]any{
			"count": n, "size": n * 10, "duration": 3, "count_p_s": fakeSimServerRate(f), "size_p_s": 0,
			"latency": 0.001, "min_latency": 0.0005, "max_latency": 0.002,
		}}
	} else {
		out = map[string]any{
			"summary": fakeSummary(fakeServerRate(f), map[string]any{"latency": 0.001, "min_latency": 0.0005, "max_latency": 0.002,
				"p50_latency": 0.001, "p90_latency": 0.0015, "p99_latency": 0.002}),
			"process": fakeProcess(fakeServerRate(f)+1, fakeServerCPU(f)),
		}
	}
	out["series"] = map[string]any{"server": []any{}}
	if err := fakeWrite(a.json, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fakeSummary returns a summary of rate+1 samples one second apart.
func fakeSummary(rate float64, extra map[string]any) map[string]any {
	s := map[string]any{
		"count": rate + 1, "size": (rate + 1) * 10, "duration": 2.0, "count_p_s": (rate + 1) / 2, "size_p_s": (rate + 1) * 5,
		"start": 1000.0, "end": 1002.0, "first_ts": 1000.25, "last_ts": 1001.25,
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func fakeProcess(messages, cpuPerMsg float64) map[string]any {
	return map[string]any{
		"cpu_seconds": messages * cpuPerMsg, "wall_seconds": 1.5, "messages": messages,
		"cpu_s_per_msg": cpuPerMsg, "max_rss_bytes": 1 << 24,
	}
}

func fakeWrite(path string, v any) error {
	if path == "" {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// fakeLog appends an event to the file named by fakeLogEnv.
func fakeLog(event string, a fakeArgs, detail string) {
	path := os.Getenv(fakeLogEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%s\t%s\t%s\n", event, a.system, a.mode, a.topic, detail)
}
