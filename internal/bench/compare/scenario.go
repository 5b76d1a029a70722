package compare

import (
	"fmt"
	"strings"
)

// System is one of the programs compared.
type System string

// The systems, in the order of the table's columns.
const (
	Raw    System = "raw"    // omsg bench raw: bare amqp091-go
	Ours   System = "ours"   // omsg bench: this library
	Python System = "python" // pybench.py or simulator.py: Python oslo.messaging
)

// systems are the systems in the order they run and are shown.
var systems = []System{Raw, Ours, Python}

// Unit is the unit of a metric's values.
type Unit string

// The units of the metrics. Values are kept in these units; the table
// shows latencies in milliseconds and CPU in microseconds.
const (
	UnitRate    Unit = "msg/s" // messages per second
	UnitSeconds Unit = "s"     // a latency
	UnitCPU     Unit = "s/msg" // CPU seconds (user+system) per message
)

// serverSpec is one server process of a scenario.
type serverSpec struct {
	mode string // "rpc-server", "notify-server"
	name string // -s
}

// metric is one row of a scenario.
type metric struct {
	name  string
	unit  Unit
	value func(*cellData) (float64, bool)
}

// cellData is what a cell's programs wrote.
type cellData struct {
	client   *clientResult
	servers  []*serverResult
	duration float64 // seconds the client sent for (its -l)
	approx   bool    // a rate was not exact (simulator.py)
}

// scenario is a group of rows: servers, a client and what is measured.
type scenario struct {
	name       string
	title      string
	servers    []serverSpec
	clientMode string
	clientArgs []string
	metrics    []metric
	// check reports why a run's figures cannot be used, if they cannot.
	check func(*cellData) error
}

// The metrics.
var (
	callsPerSecond = metric{"calls/s", UnitRate, func(d *cellData) (float64, bool) {
		return d.clientRate(d.client.Summary.RoundTrip)
	}}
	p50Latency = metric{"p50 latency", UnitSeconds, func(d *cellData) (float64, bool) {
		return deref(d.client.Summary.RoundTrip, func(s *summary) *float64 { return s.P50 })
	}}
	p99Latency = metric{"p99 latency", UnitSeconds, func(d *cellData) (float64, bool) {
		return deref(d.client.Summary.RoundTrip, func(s *summary) *float64 { return s.P99 })
	}}
	clientCPU = metric{"client CPU/msg", UnitCPU, func(d *cellData) (float64, bool) {
		return cpuPerMessage(d.client.Process)
	}}
	serverCPU = metric{"server CPU/msg", UnitCPU, func(d *cellData) (float64, bool) {
		return cpuPerMessage(d.servers[0].Process)
	}}
	publishesPerSecond = metric{"publishes/s", UnitRate, func(d *cellData) (float64, bool) {
		return d.clientRate(d.client.Summary.Client)
	}}
)

// delivered is the sum of the servers' received rates.
func delivered(name string) metric {
	return metric{name, UnitRate, func(d *cellData) (float64, bool) {
		total := 0.0
		for _, s := range d.servers {
			v, ok := d.rate(s.Summary)
			if !ok {
				return 0, false
			}
			total += v
		}
		return total, true
	}}
}

// rate returns the rate of s, noting whether it was exact.
func (d *cellData) rate(s *summary) (float64, bool) {
	v, exact, ok := rate(s)
	if ok && !exact {
		d.approx = true
	}
	return v, ok
}

// clientRate returns the rate of a client's stream s. Without exact
// timestamps it is the count over the time the client sent for, which
// for closed-loop senders is closer than the whole seconds of
// count_p_s.
func (d *cellData) clientRate(s *summary) (float64, bool) {
	if _, exact, ok := rate(s); ok && exact || s == nil || d.duration <= 0 {
		return d.rate(s)
	}
	if s.Count == 0 {
		return 0, false
	}
	d.approx = true
	return float64(s.Count) / d.duration, true
}

// deref returns field(s), if s and it are set.
func deref(s *summary, field func(*summary) *float64) (float64, bool) {
	if s == nil || field(s) == nil {
		return 0, false
	}
	return *field(s), true
}

// checkCalls fails a call run in which no call came back.
func checkCalls(d *cellData) error {
	rt := d.client.Summary.RoundTrip
	if rt == nil || rt.Count == 0 {
		return fmt.Errorf("no call completed (%d sent)", d.client.Summary.Client.Count)
	}
	return nil
}

// checkDelivered fails a run in which a server received nothing.
func checkDelivered(d *cellData) error {
	for i, s := range d.servers {
		if s.Summary.Count == 0 {
			return fmt.Errorf("server %d received nothing (%d sent)", i+1, d.client.Summary.Client.Count)
		}
	}
	return nil
}

// allScenarios are the scenarios, in the order of the table.
var allScenarios = []*scenario{
	{
		name: "call", title: "sequential call (-p 1)",
		servers:    []serverSpec{{"rpc-server", "s1"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "1"},
		metrics: []metric{callsPerSecond, p50Latency, p99Latency, clientCPU, serverCPU},
		check:   checkCalls,
	},
	{
		name: "call-8", title: "calls, 8 in flight (-p 8)",
		servers:    []serverSpec{{"rpc-server", "s1"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "8"},
		metrics: []metric{callsPerSecond, p50Latency, clientCPU, serverCPU},
		check:   checkCalls,
	},
	{
		name: "call-64", title: "calls, 64 in flight (-p 64)",
		servers:    []serverSpec{{"rpc-server", "s1"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "64"},
		metrics: []metric{callsPerSecond, p50Latency, clientCPU, serverCPU},
		check:   checkCalls,
	},
	{
		name: "cast", title: "cast, 1 publisher (-p 1 --is-cast)",
		servers:    []serverSpec{{"rpc-server", "s1"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "1", "--is-cast"},
		metrics: []metric{delivered("casts/s delivered")},
		check:   checkDelivered,
	},
	{
		name: "cast-8", title: "cast, 8 publishers (-p 8 --is-cast)",
		servers:    []serverSpec{{"rpc-server", "s1"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "8", "--is-cast"},
		metrics: []metric{delivered("casts/s delivered")},
		check:   checkDelivered,
	},
	{
		name: "fanout", title: "fanout cast to 3 servers (-p 1 --is-cast --is-fanout)",
		servers:    []serverSpec{{"rpc-server", "s1"}, {"rpc-server", "s2"}, {"rpc-server", "s3"}},
		clientMode: "rpc-client", clientArgs: []string{"-p", "1", "--is-cast", "--is-fanout"},
		metrics: []metric{publishesPerSecond, delivered("deliveries/s")},
		check:   checkDelivered,
	},
	{
		name: "notify", title: "notifications (notify-client -p 1 → notify-server)",
		servers:    []serverSpec{{"notify-server", "s1"}},
		clientMode: "notify-client", clientArgs: []string{"-p", "1"},
		metrics: []metric{delivered("notifications/s delivered")},
		check:   checkDelivered,
	},
}

// Scenarios returns the names of the scenarios, in the order of the
// table: call, call-8, call-64, cast, cast-8, fanout and notify.
func Scenarios() []string {
	names := make([]string, len(allScenarios))
	for i, s := range allScenarios {
		names[i] = s.name
	}
	return names
}

// selectScenarios returns the scenarios named, in the table's order;
// all of them for none.
func selectScenarios(names []string) ([]*scenario, error) {
	if len(names) == 0 {
		return allScenarios, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if findScenario(n) == nil {
			return nil, fmt.Errorf("%w: unknown scenario %q (want %s)", ErrInvalidOptions, n, strings.Join(Scenarios(), ", "))
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("%w: no scenario given", ErrInvalidOptions)
	}
	var out []*scenario
	for _, s := range allScenarios {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// findScenario returns the scenario named name, or nil.
func findScenario(name string) *scenario {
	for _, s := range allScenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}
