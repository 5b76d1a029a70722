package compare

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Status is the outcome of a cell.
type Status string

// The statuses of a cell.
const (
	StatusOK     Status = "ok"      // it ran and its figures are in the rows
	StatusFailed Status = "failed"  // it ran and failed: see Cell.Error
	StatusNotRun Status = "not run" // it was not run: see Cell.Error
)

// Cell is one scenario run by one system.
type Cell struct {
	Scenario string `json:"scenario"`
	System   System `json:"system"`
	Status   Status `json:"status"`
	// Error says why the cell failed or was not run.
	Error string `json:"error,omitempty"`
	// Notes are remarks on a cell that ran, such as failed sends or
	// queues that did not empty in time.
	Notes []string `json:"notes,omitempty"`
	// Values are the cell's figures by metric name, in the metric's
	// unit.
	Values map[string]float64 `json:"values,omitempty"`
	// Approximate is set when a rate came from whole seconds
	// (simulator.py's count_p_s) rather than from exact timestamps.
	Approximate bool `json:"approximate,omitempty"`
	// Seconds is the wall time the cell took, servers included.
	Seconds float64 `json:"seconds"`
}

// Row is one line of the table: a metric of a scenario for every
// system.
type Row struct {
	Scenario string `json:"scenario"`
	Title    string `json:"title"`
	Metric   string `json:"metric"`
	Unit     Unit   `json:"unit"`
	// Values holds the figures of the systems that have one.
	Values map[System]float64 `json:"values"`
	// OursToRaw and OursToPython are the ratios of our figure to the
	// others', when both exist.
	OursToRaw    *float64 `json:"ours_to_raw,omitempty"`
	OursToPython *float64 `json:"ours_to_python,omitempty"`
}

// Machine describes where the comparison ran.
type Machine struct {
	CPU           string `json:"cpu"`
	Cores         int    `json:"cores"`
	Kernel        string `json:"kernel"`
	Go            string `json:"go"`
	RabbitMQ      string `json:"rabbitmq"`
	OsloMessaging string `json:"oslo_messaging,omitempty"`
}

// PythonInfo says how Python oslo.messaging was run, or why it was not.
type PythonInfo struct {
	Interpreter string `json:"interpreter"`
	// Program is "pybench.py" or the path of simulator.py.
	Program string `json:"program"`
	Ran     bool   `json:"ran"`
	// Reason says why Python was not run.
	Reason string `json:"reason,omitempty"`
}

// Report is the outcome of a comparison.
type Report struct {
	Date        time.Time  `json:"date"`
	Machine     Machine    `json:"machine"`
	PayloadSize int        `json:"payload_size"` // 0: the simulator's distribution
	Duration    float64    `json:"duration"`     // seconds of sending per cell
	Broker      string     `json:"broker"`       // where the queues were
	Python      PythonInfo `json:"python"`
	Rows        []Row      `json:"rows"`
	Cells       []Cell     `json:"cells"`
	// Notes are remarks on the whole run.
	Notes []string `json:"notes,omitempty"`
}

// Failed reports whether a cell failed. Cells that were not run, such
// as Python's without oslo.messaging, are not failures.
func (r *Report) Failed() bool {
	for _, c := range r.Cells {
		if c.Status == StatusFailed {
			return true
		}
	}
	return false
}

// cell returns the cell of scenario and system, or nil.
func (r *Report) cell(scenario string, sys System) *Cell {
	for i := range r.Cells {
		if r.Cells[i].Scenario == scenario && r.Cells[i].System == sys {
			return &r.Cells[i]
		}
	}
	return nil
}

// buildRows computes the rows of scenarios from the cells.
func buildRows(scenarios []*scenario, cells []Cell) []Row {
	find := func(name string, sys System) *Cell {
		for i := range cells {
			if cells[i].Scenario == name && cells[i].System == sys {
				return &cells[i]
			}
		}
		return nil
	}
	var rows []Row
	for _, sc := range scenarios {
		for _, m := range sc.metrics {
			row := Row{Scenario: sc.name, Title: sc.title, Metric: m.name, Unit: m.unit, Values: map[System]float64{}}
			for _, sys := range systems {
				if c := find(sc.name, sys); c != nil && c.Status == StatusOK {
					if v, ok := c.Values[m.name]; ok {
						row.Values[sys] = v
					}
				}
			}
			row.OursToRaw = ratio(row.Values, Ours, Raw)
			row.OursToPython = ratio(row.Values, Ours, Python)
			rows = append(rows, row)
		}
	}
	return rows
}

// ratio returns values[a]/values[b] when both exist and b is not 0.
func ratio(values map[System]float64, a, b System) *float64 {
	va, okA := values[a]
	vb, okB := values[b]
	if !okA || !okB || vb == 0 {
		return nil
	}
	r := va / vb
	return &r
}

// WriteMarkdown writes the report as Markdown: what was compared,
// where, and one table with the systems as columns, followed by the
// notes that explain failed cells.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("## omsg bench compare\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", r.Date.UTC().Format("2006-01-02 15:04:05 UTC"))
	m := r.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %s, %s\n", orUnknown(m.CPU), m.Cores, orUnknown(m.Kernel), orUnknown(m.Go))
	fmt.Fprintf(&b, "- RabbitMQ %s; oslo.messaging %s\n", orUnknown(m.RabbitMQ), orUnknown(m.OsloMessaging))
	payload := fmt.Sprintf("%d characters per message", r.PayloadSize)
	if r.PayloadSize == 0 {
		payload = "lengths of the simulator's distribution"
	}
	fmt.Fprintf(&b, "- Payload: %s; %s s of sending per cell\n", payload, formatFloat(r.Duration))
	if r.Broker != "" {
		fmt.Fprintf(&b, "- Broker: %s\n", r.Broker)
	}
	python := fmt.Sprintf("%s run by %s (Python oslo.messaging)", r.Python.Program, r.Python.Interpreter)
	if !r.Python.Ran {
		python = "not run: " + r.Python.Reason
	}
	fmt.Fprintf(&b, "- Systems: raw = omsg bench raw (bare amqp091-go); ours = omsg bench (this library); python = %s\n\n", python)

	b.WriteString("| scenario | metric | raw | ours | ours/raw | python | ours/python |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|\n")
	var notes []string
	noteOf := map[*Cell]int{}
	show := func(sc string, sys System, metric string, unit Unit) string {
		c := r.cell(sc, sys)
		switch {
		case c == nil:
			return "—"
		case c.Status == StatusNotRun:
			return "not run"
		case c.Status == StatusFailed:
			n, ok := noteOf[c]
			if !ok {
				notes = append(notes, fmt.Sprintf("%s/%s failed: %s", c.Scenario, c.System, c.Error))
				n = len(notes)
				noteOf[c] = n
			}
			return fmt.Sprintf("failed [%d]", n)
		}
		v, ok := c.Values[metric]
		if !ok {
			return "—"
		}
		s := formatValue(v, unit)
		if c.Approximate && unit == UnitRate {
			s = "≈" + s
		}
		return s
	}
	last := ""
	for _, row := range r.Rows {
		title := ""
		if row.Scenario != last {
			title = row.Title
			last = row.Scenario
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", escapeCell(title), row.Metric+unitSuffix(row.Unit),
			show(row.Scenario, Raw, row.Metric, row.Unit), show(row.Scenario, Ours, row.Metric, row.Unit),
			formatRatio(row.OursToRaw), show(row.Scenario, Python, row.Metric, row.Unit), formatRatio(row.OursToPython))
	}
	b.WriteString("\nRates are exact, (count − 1) / (last − first sample time), from the receiving side for deliveries; " +
		"latencies are round trips; CPU is the user+system time of a process per message it sent or received. " +
		"A ratio above 1 means ours is higher (better for rates, worse for latency and CPU).")
	if r.hasApprox() {
		b.WriteString(" ≈: simulator.py reports no exact timestamps: a client's rate is its count over the time it sent for, " +
			"a server's the simulator's count over whole seconds.")
	}
	b.WriteString("\n")
	for _, c := range r.Cells {
		for _, n := range c.Notes {
			notes = append(notes, fmt.Sprintf("%s/%s: %s", c.Scenario, c.System, n))
		}
	}
	notes = append(notes, r.Notes...)
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "%d. %s\n", i+1, oneLine(n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// hasApprox reports whether a cell's rates are approximate.
func (r *Report) hasApprox() bool {
	for _, c := range r.Cells {
		if c.Approximate {
			return true
		}
	}
	return false
}

// unitSuffix is what follows a metric's name in the table.
func unitSuffix(u Unit) string {
	switch u {
	case UnitSeconds:
		return " (ms)"
	case UnitCPU:
		return " (µs)"
	}
	return ""
}

// formatValue formats v of unit u as the table shows it: a rate in
// messages per second, a latency in milliseconds, CPU in microseconds.
func formatValue(v float64, u Unit) string {
	switch u {
	case UnitSeconds:
		v *= 1e3
	case UnitCPU:
		v *= 1e6
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// formatRatio formats a ratio, "—" when there is none.
func formatRatio(r *float64) string {
	if r == nil || math.IsNaN(*r) || math.IsInf(*r, 0) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", *r)
}

// formatFloat formats v without trailing zeros.
func formatFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// orUnknown returns s, or "unknown" when it is empty.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// escapeCell makes s safe inside a Markdown table cell.
func escapeCell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }

// oneLine joins the lines of s.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
