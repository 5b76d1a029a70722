package compare

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixtureCell evaluates scenario name from the hand-written JSON files
// testdata/<prefix>_client.json and <prefix>_server.json, as runCell
// does with what the programs wrote.
func fixtureCell(t *testing.T, name string, sys System, prefix string, duration float64) Cell {
	t.Helper()
	sc := findScenario(name)
	client, err := readClient(filepath.Join("testdata", prefix+"_client.json"))
	if err != nil {
		t.Fatal(err)
	}
	server, err := readServer(filepath.Join("testdata", prefix+"_server.json"))
	if err != nil {
		t.Fatal(err)
	}
	cell := Cell{Scenario: name, System: sys}
	evaluate(sc, &cellData{client: client, servers: []*serverResult{server}, duration: duration}, &cell)
	return cell
}

func TestRate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name   string
		s      *summary
		want   float64
		exact  bool
		wantOK bool
	}{
		{"exact", &summary{Count: 2601, CountPS: 433.5, FirstTS: f(100.5), LastTS: f(105.5)}, 520, true, true},
		{"simulator", &summary{Count: 900, CountPS: 300}, 300, false, true},
		{"one sample", &summary{Count: 1, CountPS: 1, FirstTS: f(100), LastTS: f(100)}, 0, false, false},
		{"same time", &summary{Count: 5, CountPS: 5, FirstTS: f(100), LastTS: f(100)}, 0, false, false},
		{"empty", &summary{}, 0, false, false},
		{"none", nil, 0, false, false},
	}
	for _, tc := range tests {
		v, exact, ok := rate(tc.s)
		if !near(v, tc.want) || exact != tc.exact || ok != tc.wantOK {
			t.Errorf("%s: rate = %v, %v, %v; want %v, %v, %v", tc.name, v, exact, ok, tc.want, tc.exact, tc.wantOK)
		}
	}
}

func TestEvaluateFixtures(t *testing.T) {
	ours := fixtureCell(t, "call", Ours, "ours_call", 5)
	want := map[string]float64{
		"calls/s":        2600.0 / 5.0,
		"p50 latency":    0.0018,
		"p99 latency":    0.0042,
		"client CPU/msg": 0.00012,
		"server CPU/msg": 0.00015,
	}
	if ours.Status != StatusOK || len(ours.Values) != len(want) || ours.Approximate || len(ours.Notes) != 0 {
		t.Fatalf("ours = %+v", ours)
	}
	for k, w := range want {
		if !near(ours.Values[k], w) {
			t.Errorf("ours %s = %v, want %v", k, ours.Values[k], w)
		}
	}

	py := fixtureCell(t, "call", Python, "python_call", 5)
	if got, want := py.Values["server CPU/msg"], 0.7007/1001; !near(got, want) {
		t.Errorf("python server CPU/msg = %v, want cpu_seconds/messages = %v when cpu_s_per_msg is null", got, want)
	}
	if len(py.Notes) != 1 || py.Notes[0] != "2 of 1003 sends failed" {
		t.Errorf("python notes = %q, want the failed sends", py.Notes)
	}

	sim := fixtureCell(t, "call", Python, "sim_call", 2)
	if !sim.Approximate || !near(sim.Values["calls/s"], 900.0/2) || len(sim.Values) != 1 {
		t.Errorf("simulator = %+v, want only calls/s = 450 (count over -l), approximate", sim)
	}
	cast := fixtureCell(t, "cast", Python, "sim_call", 2)
	if !near(cast.Values["casts/s delivered"], 300) {
		t.Errorf("simulator casts/s delivered = %v, want its count_p_s 300", cast.Values["casts/s delivered"])
	}

	// A call run whose calls all failed is a failed cell.
	client, err := readClient(filepath.Join("testdata", "ours_call_client.json"))
	if err != nil {
		t.Fatal(err)
	}
	client.Summary.RoundTrip = nil
	var c Cell
	evaluate(findScenario("call"), &cellData{client: client, servers: []*serverResult{{Summary: &summary{}}}}, &c)
	if c.Status != StatusFailed || c.Error != "no call completed (2602 sent)" {
		t.Errorf("no round trip: %s %q, want failed, no call completed", c.Status, c.Error)
	}
	evaluate(findScenario("cast"), &cellData{client: client, servers: []*serverResult{{Summary: &summary{}}}}, &c)
	if c.Status != StatusFailed || c.Error != "server 1 received nothing (2602 sent)" {
		t.Errorf("nothing received: %s %q, want failed", c.Status, c.Error)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := readClient(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "no JSON statistics written") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := readClient(write("bad.json", "{")); err == nil || !strings.Contains(err.Error(), "unexpected end of JSON input") {
		t.Errorf("bad JSON: %v", err)
	}
	if _, err := readClient(write("server.json", `{"summary": {"count": 1}}`)); err == nil || !strings.Contains(err.Error(), "no summary.client") {
		t.Errorf("server JSON read as a client's: %v", err)
	}
	if _, err := readServer(write("empty.json", `{}`)); err == nil || !strings.Contains(err.Error(), "no summary") {
		t.Errorf("no summary: %v", err)
	}
}

func TestMarkdown(t *testing.T) {
	cells := []Cell{
		fixtureCell(t, "call", Raw, "raw_call", 5),
		fixtureCell(t, "call", Ours, "ours_call", 5),
		fixtureCell(t, "call", Python, "python_call", 5),
		{Scenario: "cast", System: Raw, Status: StatusFailed, Error: "client exit status 1: fake: no message\ncould be sent"},
		fixtureCell(t, "cast", Ours, "ours_call", 5),
		{Scenario: "cast", System: Python, Status: StatusNotRun, Error: "interrupted"},
	}
	cells[4].Notes = []string{"7 messages still queued 1m0s after the client ended (q)"}
	scenarios, err := selectScenarios([]string{"cast", "call"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{
		Date:        time.Date(2026, 11, 21, 8, 30, 0, 0, time.UTC),
		Machine:     Machine{CPU: "Test CPU", Cores: 2, Kernel: "Linux 6.1", Go: "go1.26.0", RabbitMQ: "3.10.8", OsloMessaging: "14.0.3"},
		PayloadSize: 1024,
		Duration:    5,
		Broker:      "virtual host omsg-bench-1, created for the run and deleted after it",
		Python:      PythonInfo{Interpreter: "/usr/bin/python3", Program: "pybench.py", Ran: true},
		Cells:       cells,
		Rows:        buildRows(scenarios, cells),
		Notes:       []string{"cleanup: rabbitmqctl delete_vhost: failed"},
	}
	var b bytes.Buffer
	if err := rep.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	want := `## omsg bench compare

- Date: 2026-11-21 08:30:00 UTC
- Machine: Test CPU, 2 cores, Linux 6.1, go1.26.0
- RabbitMQ 3.10.8; oslo.messaging 14.0.3
- Payload: 1024 characters per message; 5 s of sending per cell
- Broker: virtual host omsg-bench-1, created for the run and deleted after it
- Systems: raw = omsg bench raw (bare amqp091-go); ours = omsg bench (this library); python = pybench.py run by /usr/bin/python3 (Python oslo.messaging)

| scenario | metric | raw | ours | ours/raw | python | ours/python |
|---|---|--:|--:|--:|--:|--:|
| sequential call (-p 1) | calls/s | 800 | 520 | 0.65× | 200 | 2.60× |
|  | p50 latency (ms) | 1.10 | 1.80 | 1.64× | 4.50 | 0.40× |
|  | p99 latency (ms) | 3.00 | 4.20 | 1.40× | 9.00 | 0.47× |
|  | client CPU/msg (µs) | 80.0 | 120 | 1.50× | 600 | 0.20× |
|  | server CPU/msg (µs) | 100 | 150 | 1.50× | 700 | 0.21× |
| cast, 1 publisher (-p 1 --is-cast) | casts/s delivered | failed [1] | 520 | — | not run | — |

Rates are exact, (count − 1) / (last − first sample time), from the receiving side for deliveries; latencies are round trips; CPU is the user+system time of a process per message it sent or received. A ratio above 1 means ours is higher (better for rates, worse for latency and CPU).

Notes:

1. cast/raw failed: client exit status 1: fake: no message could be sent
2. call/python: 2 of 1003 sends failed
3. cast/ours: 7 messages still queued 1m0s after the client ended (q)
4. cleanup: rabbitmqctl delete_vhost: failed
`
	if got := b.String(); got != want {
		t.Errorf("WriteMarkdown:\n%s\nwant:\n%s", got, want)
	}
	if !rep.Failed() {
		t.Error("Failed() = false with a failed cell")
	}

	// The JSON document holds every figure, and the ratios.
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Rows []struct {
			Metric    string             `json:"metric"`
			Values    map[string]float64 `json:"values"`
			OursToRaw *float64           `json:"ours_to_raw"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if r := back.Rows[0]; r.Metric != "calls/s" || !near(r.Values["raw"], 800) || r.OursToRaw == nil || !near(*r.OursToRaw, 0.65) {
		t.Errorf("JSON row 0 = %+v", r)
	}
	if r := back.Rows[5]; len(r.Values) != 1 || r.OursToRaw != nil {
		t.Errorf("JSON row of cast = %+v, want ours only and no ratio", r)
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		u    Unit
		want string
	}{
		{12345.6, UnitRate, "12346"},
		{45.67, UnitRate, "45.7"},
		{4.567, UnitRate, "4.57"},
		{0.25, UnitRate, "0.250"},
		{0.000289, UnitSeconds, "0.289"},
		{0.0123, UnitSeconds, "12.3"},
		{0.000092, UnitCPU, "92.0"},
		{0.0012, UnitCPU, "1200"},
	}
	for _, tc := range tests {
		if got := formatValue(tc.v, tc.u); got != tc.want {
			t.Errorf("formatValue(%v, %s) = %q, want %q", tc.v, tc.u, got, tc.want)
		}
	}
	if got := formatRatio(nil); got != "—" {
		t.Errorf("formatRatio(nil) = %q", got)
	}
}

func TestScenarios(t *testing.T) {
	want := "call,call-8,call-64,cast,cast-8,fanout,notify"
	if got := strings.Join(Scenarios(), ","); got != want {
		t.Errorf("Scenarios() = %s, want %s", got, want)
	}
	got, err := selectScenarios([]string{"notify", " call ", "notify"})
	if err != nil || len(got) != 2 || got[0].name != "call" || got[1].name != "notify" {
		t.Errorf("selectScenarios = %v, %v; want call, notify in the table's order", got, err)
	}
}
