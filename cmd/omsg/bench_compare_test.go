package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/internal/brokertest"
	"github.com/go-oslo/messaging/internal/pyinterop"
)

func TestBenchCompareUsage(t *testing.T) {
	// Should a case run a comparison, its programs fail at once: this
	// test binary must never be run as omsg.
	benchCompareOmsg = "/nonexistent/omsg"
	t.Cleanup(func() { benchCompareOmsg = "" })
	tests := []struct {
		args []string
		code int
		in   string // substring of stdout+stderr
	}{
		{[]string{"--help"}, exitOK, "Scenarios (--scenarios, default all):"},
		{[]string{"--help"}, exitOK, "  -j, --json FILE             also write every figure as JSON to FILE\n  -h, --help                  help for compare\n"},
		{[]string{"--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{[]string{"--duration", "0"}, exitUsage, "--duration 0: want seconds"},
		{[]string{"--duration", "x"}, exitUsage, `invalid argument "x" for "--duration"`},
		{[]string{"--scenarios", "call,nosuch"}, exitUsage, `unknown scenario "nosuch" (want call, call-8, call-64, cast, cast-8, fanout, notify)`},
		{[]string{"--url", "memory://"}, exitUsage, "memory:// is not RabbitMQ"},
		{[]string{"--payload-size", "-1"}, exitUsage, "payload size -1 not in 0..1048576"},
		{[]string{"--simulator", "/nonexistent/simulator.py"}, exitUsage, "simulator /nonexistent/simulator.py is not a file"},
		{[]string{"--url", "rabbit://guest:guest@127.0.0.1:1/", "-tp", "t", "--server", "s"}, exitUsage, "--server, --topic: not a flag of compare"},
		{[]string{"-l", "2"}, exitUsage, "unknown shorthand flag: 'l' in -l"},
		{[]string{"--url", "rabbit://guest:SECRETPW@127.0.0.1:1/", "--no-python"}, exitUnavailable,
			`broker unreachable: 127.0.0.1:1 (vhost "/"): dial tcp 127.0.0.1:1: connect: connection refused`},
	}
	for _, tc := range tests {
		args := append([]string{"bench", "compare"}, tc.args...)
		code, out, errOut := runCmd(t, args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, output %q; want exit %d containing %q", args, code, out+errOut, tc.code, tc.in)
		}
		if strings.Contains(out+errOut, "SECRETPW") {
			t.Errorf("omsg %q printed the password", args)
		}
	}
}

// buildOmsg builds omsg into a temporary directory and makes omsg bench
// compare run it, until the test ends.
func buildOmsg(t *testing.T) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build omsg: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "omsg")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	benchCompareOmsg = bin
	t.Cleanup(func() { benchCompareOmsg = "" })
}

// runCompare runs omsg bench compare with args, bounded by ten minutes.
func runCompare(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var out, errb strings.Builder
	code = run(ctx, append([]string{"bench", "compare"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// compareJSON is what the tests read of the -j document.
type compareJSON struct {
	Python struct {
		Ran    bool   `json:"ran"`
		Reason string `json:"reason"`
	} `json:"python"`
	Rows []struct {
		Scenario string             `json:"scenario"`
		Metric   string             `json:"metric"`
		Values   map[string]float64 `json:"values"`
	} `json:"rows"`
	Cells []struct {
		Scenario string `json:"scenario"`
		System   string `json:"system"`
		Status   string `json:"status"`
	} `json:"cells"`
}

func readCompareJSON(t *testing.T, path string) compareJSON {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc compareJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// numberCell matches a table cell with a figure.
var numberCell = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// tableRow returns the cells of the table row whose metric is metric,
// in the first row group whose title starts with title.
func tableRow(t *testing.T, table, title, metric string) []string {
	t.Helper()
	in := false
	for line := range strings.SplitSeq(table, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if cells[0] != "" {
			in = strings.HasPrefix(cells[0], title)
		}
		if in && cells[1] == metric {
			return cells
		}
	}
	t.Fatalf("no row %q of %q in\n%s", metric, title, table)
	return nil
}

// TestRabbitBenchCompare runs the comparison of omsg bench and omsg
// bench raw on two short scenarios.
func TestRabbitBenchCompare(t *testing.T) {
	url, _ := brokertest.Vhost(t, "benchcompare")
	buildOmsg(t)
	jsonPath := filepath.Join(t.TempDir(), "compare.json")
	code, out, errOut := runCompare(t, "--url", url, "--duration", "1", "--scenarios", "call,cast", "--payload-size", "256",
		"--no-python", "-j", jsonPath)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, w := range []string{"- Payload: 256 characters per message; 1 s of sending per cell", "python = not run: disabled (--no-python)"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, r := range []struct{ title, metric string }{
		{"sequential call", "calls/s"}, {"sequential call", "p50 latency (ms)"}, {"sequential call", "server CPU/msg (µs)"},
		{"cast, 1 publisher", "casts/s delivered"},
	} {
		cells := tableRow(t, out, r.title, r.metric)
		raw, ours, ratio, python := cells[2], cells[3], cells[4], cells[5]
		if !numberCell.MatchString(raw) || !numberCell.MatchString(ours) || !strings.HasSuffix(ratio, "×") || python != "not run" {
			t.Errorf("row %s %s = %q, want figures for raw and ours, their ratio, python not run", r.title, r.metric, cells)
		}
	}
	doc := readCompareJSON(t, jsonPath)
	if doc.Python.Ran || len(doc.Rows) != 6 || len(doc.Cells) != 6 {
		t.Errorf("JSON: python %+v, %d rows, %d cells; want not run, 6, 6", doc.Python, len(doc.Rows), len(doc.Cells))
	}
	for _, row := range doc.Rows {
		if row.Values["raw"] <= 0 || row.Values["ours"] <= 0 {
			t.Errorf("JSON row %s %s = %v, want positive figures of raw and ours", row.Scenario, row.Metric, row.Values)
		}
	}
}

// TestInteropBenchCompare runs the comparison with Python oslo.messaging
// on the sequential call.
func TestInteropBenchCompare(t *testing.T) {
	py := pyinterop.Python(t)
	url, _ := brokertest.Vhost(t, "benchcompare")
	buildOmsg(t)
	code, out, errOut := runCompare(t, "--url", url, "--duration", "1", "--scenarios", "call", "--python", py)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "python = pybench.py run by "+py) || !regexp.MustCompile(`oslo\.messaging \d+\.\d+`).MatchString(out) {
		t.Errorf("output does not say how Python ran:\n%s", out)
	}
	for _, metric := range []string{"calls/s", "p99 latency (ms)", "client CPU/msg (µs)"} {
		cells := tableRow(t, out, "sequential call", metric)
		if !numberCell.MatchString(cells[5]) || !strings.HasSuffix(cells[6], "×") {
			t.Errorf("row %s = %q, want a Python figure and the ratio", metric, cells)
		}
	}
}
