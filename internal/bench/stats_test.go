package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func (c *clock) set(sec float64) {
	c.t = time.Unix(0, int64(math.Round(sec*1e9)))
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// val returns *p, or NaN for nil.
func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func checkSummary(t *testing.T, name string, got StreamSummary, want map[string]float64) {
	t.Helper()
	fields := map[string]float64{
		"count": float64(got.Count), "size": float64(got.Size), "duration": got.Duration,
		"count_p_s": got.CountPerS, "size_p_s": got.SizePerS,
		"start": val(got.Start), "end": val(got.End),
		"latency": val(got.Latency), "min_latency": val(got.MinLatency), "max_latency": val(got.MaxLatency),
		"p50_latency": val(got.P50), "p90_latency": val(got.P90), "p99_latency": val(got.P99),
		"first_ts": val(got.FirstTS), "last_ts": val(got.LastTS),
	}
	for k, v := range fields {
		w, ok := want[k]
		switch {
		case !ok && !math.IsNaN(v):
			t.Errorf("%s: %s = %v, want none", name, k, v)
		case !ok:
		case math.IsNaN(v):
			t.Errorf("%s: no %s, want %v", name, k, w)
		case strings.HasPrefix(k, "p") && strings.HasSuffix(k, "_latency"):
			if math.Abs(v-w) > 0.01*math.Abs(w) {
				t.Errorf("%s: %s = %v, want %v within 1%%", name, k, v, w)
			}
		case !near(v, w):
			t.Errorf("%s: %s = %v, want %v", name, k, v, w)
		}
	}
}

// TestCalcStats checks the series and summaries against values worked
// out by hand with the code of simulator.py's MessageStatsCollector:
// monitor() closes a point every second with its count, size and, when
// the sum of its non-zero latencies is not zero, latency = sum/count
// (count including the samples without latency), min and max;
// calc_stats() sums the points, takes start = (first timestamp of a
// point with samples) − 1 and end = its last one, and latency =
// Σ(point latency × point count) / count.
func TestCalcStats(t *testing.T) {
	c := &clock{}
	c.set(1000.3)
	s := newClientStats(c.now, 2, true)
	errFirst := errors.New("first failure")
	for _, x := range []Sample{
		{Kind: Sent, Sender: 0, Seq: 0, Size: 10, ClientTS: 1001.1},
		{Kind: Sent, Sender: 0, Seq: 1, Size: 20, ClientTS: 1001.5},
		{Kind: Sent, Sender: 1, Seq: 0, Size: 30, ClientTS: 1003.0},
		{Kind: Sent, Sender: 1, Seq: 1, Size: 40, ClientTS: 1003.2},
		{Kind: Sent, Sender: 1, Seq: 2, Size: 5, ClientTS: 1003.6},
		{Kind: RoundTrip, Sender: 0, Seq: 0, Size: 10, ClientTS: 1001.1, ServerTS: 1001.15, ReturnTS: 1001.3},
		{Kind: RoundTrip, Sender: 0, Seq: 1, Size: 20, ClientTS: 1001.5, ReturnTS: 1001.9},
		{Kind: RoundTrip, Sender: 1, Seq: 0, Size: 30, ClientTS: 1003.0, ServerTS: 1003.1, ReturnTS: 1003.5},
		// A latency of zero is no latency, but the sample counts.
		{Kind: RoundTrip, Sender: 1, Seq: 2, Size: 5, ClientTS: 1003.6, ReturnTS: 1003.6},
		// Ignored: no such sender or stream.
		{Kind: Sent, Sender: 2, Size: 1, ClientTS: 1001.1},
		{Kind: Sent, Sender: -1, Size: 1, ClientTS: 1001.1},
		{Kind: Received, Size: 1, ServerTS: 1001.1},
		{Kind: Kind(99)},
	} {
		s.Record(x)
	}
	// A failure counts when it is recorded.
	c.set(1004.7)
	s.Record(Sample{Kind: Failed, Sender: 1, Seq: 1, Size: 40, ClientTS: 1003.2, Err: errFirst})
	s.Record(Sample{Kind: Failed, Sender: 1, Seq: 3, Size: 0, ClientTS: 1003.9, Err: errors.New("second")})
	c.set(1005.5)
	s.Finish()
	c.set(2000) // Finish took the end
	s.Finish()

	if got := s.Ignored(); got != 4 {
		t.Errorf("Ignored = %d, want 4", got)
	}
	if !errors.Is(s.FirstError(), errFirst) {
		t.Errorf("FirstError = %v, want %v", s.FirstError(), errFirst)
	}
	for k, want := range map[Kind]int64{Sent: 5, Failed: 2, RoundTrip: 4, Received: 0} {
		if got := s.Count(k); got != want {
			t.Errorf("Count(%d) = %d, want %d", k, got, want)
		}
	}

	r := s.Report()
	type pt struct {
		count, size   int64
		lat, min, max float64 // NaN: none
	}
	nan := math.NaN()
	none := pt{0, 0, nan, nan, nan}
	wantSeries := map[string]map[int]pt{
		"client_0":     {1: {2, 30, nan, nan, nan}},
		"client_1":     {3: {3, 75, nan, nan, nan}},
		"error_0":      {},
		"error_1":      {4: {2, 40, nan, nan, nan}},
		"round_trip_0": {1: {2, 30, 0.3, 0.2, 0.4}},
		"round_trip_1": {3: {2, 35, 0.25, 0.5, 0.5}},
	}
	if len(r.Series) != len(wantSeries) {
		t.Errorf("series %v, want %d of them", slices.Sorted(maps.Keys(r.Series)), len(wantSeries))
	}
	for name, pts := range wantSeries {
		got := r.Series[name]
		// One point per second, from the start to the end of the run.
		if len(got) != 6 {
			t.Errorf("%s has %d points, want 6", name, len(got))
			continue
		}
		for k, p := range got {
			w, ok := pts[k]
			if !ok {
				w = none
			}
			if p.Seq != k || p.Timestamp != float64(1001+k) || p.Count != w.count || p.Size != w.size ||
				!near(val(p.Latency), w.lat) && !(p.Latency == nil && math.IsNaN(w.lat)) ||
				!near(val(p.MinLatency), w.min) && !(p.MinLatency == nil && math.IsNaN(w.min)) ||
				!near(val(p.MaxLatency), w.max) && !(p.MaxLatency == nil && math.IsNaN(w.max)) {
				t.Errorf("%s[%d] = {seq %d ts %v count %d size %d latency %v min %v max %v}, want {seq %d ts %d %+v}",
					name, k, p.Seq, p.Timestamp, p.Count, p.Size, val(p.Latency), val(p.MinLatency), val(p.MaxLatency), k, 1001+k, w)
			}
		}
	}

	checkSummary(t, "client", r.Summaries["client"], map[string]float64{
		"count": 5, "size": 105, "duration": 3, "count_p_s": 5.0 / 3, "size_p_s": 35,
		"start": 1001, "end": 1004, "first_ts": 1001.1, "last_ts": 1003.6,
	})
	checkSummary(t, "error", r.Summaries["error"], map[string]float64{
		"count": 2, "size": 40, "duration": 1, "count_p_s": 2, "size_p_s": 40,
		"start": 1004, "end": 1005, "first_ts": 1004.7, "last_ts": 1004.7,
	})
	checkSummary(t, "round_trip", r.Summaries["round_trip"], map[string]float64{
		"count": 4, "size": 65, "duration": 3, "count_p_s": 4.0 / 3, "size_p_s": 65.0 / 3,
		"start": 1001, "end": 1004, "first_ts": 1001.3, "last_ts": 1003.6,
		// (0.3×2 + 0.25×2) / 4
		"latency": 0.275, "min_latency": 0.2, "max_latency": 0.5,
		// Of 0.2, 0.4 and 0.5: ranks 2, 3 and 3.
		"p50_latency": 0.4, "p90_latency": 0.5, "p99_latency": 0.5,
	})
	if p := r.Process; p.Messages != 5 || !near(p.WallSeconds, 5.2) || p.CPUSeconds < 0 || p.MaxRSSBytes <= 0 {
		t.Errorf("process = %+v, want 5 messages, 5.2 s wall, a max RSS", p)
	}
}

func TestCalcStatsEmptyAndServer(t *testing.T) {
	c := &clock{}
	c.set(50.9)
	s := newServerStats(c.now)
	c.set(52.5)
	r := s.Report()
	checkSummary(t, "server", r.Summaries["server"], map[string]float64{
		"count": 0, "size": 0, "duration": 0, "count_p_s": 0, "size_p_s": 0,
	})
	if n := len(r.Series["server"]); n != 3 {
		t.Errorf("idle server: %d points, want 3 (50 to 53)", n)
	}

	c.set(100.2)
	s = newServerStats(c.now)
	c.set(101.4)
	for _, x := range []Sample{
		{Kind: Received, Seq: 0, Size: 3, ClientTS: 101.0, ServerTS: 101.25},
		{Kind: Received, Seq: 1, Size: 3, ClientTS: 101.5, ServerTS: 101.75},
		{Kind: Received, Seq: 2, Size: 3, ClientTS: 0, ServerTS: 0},           // placed now: 101.4; no latency
		{Kind: Received, Seq: 3, Size: 3, ClientTS: 1e12, ServerTS: 1e12 + 1}, // far future: placed now
		{Kind: Received, Seq: 4, Size: 3, ClientTS: 104.5, ServerTS: 104.25},  // clocks apart: negative
		{Kind: Sent, Size: 3, ClientTS: 101.0},                                // not a server's
	} {
		s.Record(x)
	}
	c.set(104.9)
	r = s.Report()
	// Points: [100,101) empty, [101,102) 4 samples, latencies 0.25,
	// 0.25, 1 → sum 1.5, latency 1.5/4; [104,105) one, -0.25.
	checkSummary(t, "server", r.Summaries["server"], map[string]float64{
		"count": 5, "size": 15, "duration": 4, "count_p_s": 5.0 / 4, "size_p_s": 15.0 / 4,
		"start": 101, "end": 105, "first_ts": 101.25, "last_ts": 104.25,
		"latency": 1.25 / 5, "min_latency": -0.25, "max_latency": 1,
		"p50_latency": 0.25, "p90_latency": 1, "p99_latency": 1,
	})
	if s.Ignored() != 1 {
		t.Errorf("Ignored = %d, want 1", s.Ignored())
	}
	pts := r.Series["server"]
	if len(pts) != 5 || pts[1].Count != 4 || !near(val(pts[1].Latency), 1.5/4) || pts[4].Count != 1 || !near(val(pts[4].Latency), -0.25) {
		t.Errorf("server series = %+v", pts)
	}
	if r.Process.Messages != 5 {
		t.Errorf("process messages = %d, want 5", r.Process.Messages)
	}
}

// keys returns the sorted keys of the JSON object m[k]... along path.
func keys(t *testing.T, v any, path ...string) []string {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v is not an object", path)
		}
		v = m[p]
	}
	switch x := v.(type) {
	case map[string]any:
		var out []string
		for k := range x {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		return keys(t, x[len(x)-1])
	}
	t.Fatalf("%v is %T, not an object", path, v)
	return nil
}

func TestJSONKeys(t *testing.T) {
	c := &clock{}
	c.set(10.5)
	s := newClientStats(c.now, 1, true)
	s.Record(Sample{Kind: Sent, ClientTS: 11.1, Size: 3})
	s.Record(Sample{Kind: RoundTrip, ClientTS: 11.1, ReturnTS: 11.2, Size: 3})
	c.set(12)
	var b bytes.Buffer
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%s: %v", b.String(), err)
	}
	summary := []string{"count", "count_p_s", "duration", "end", "first_ts", "last_ts", "size", "size_p_s", "start"}
	latency := []string{"latency", "max_latency", "min_latency", "p50_latency", "p90_latency", "p99_latency"}
	for _, tc := range []struct {
		path []string
		want []string
	}{
		{nil, []string{"process", "series", "summary"}},
		{[]string{"series"}, []string{"client_0", "error_0", "round_trip_0"}},
		{[]string{"summary"}, []string{"client", "error", "round_trip"}},
		{[]string{"summary", "client"}, summary},
		{[]string{"summary", "error"}, []string{"count", "count_p_s", "duration", "size", "size_p_s"}},
		{[]string{"summary", "round_trip"}, slices.Sorted(slices.Values(append(slices.Clone(summary), latency...)))},
		{[]string{"series", "client_0"}, []string{"count", "seq", "size", "timestamp"}},
		{[]string{"series", "round_trip_0"}, []string{"count", "seq", "size", "timestamp"}}, // last point: empty
		{[]string{"process"}, []string{"cpu_s_per_msg", "cpu_seconds", "max_rss_bytes", "messages", "wall_seconds"}},
	} {
		if got := keys(t, doc, tc.path...); !slices.Equal(got, tc.want) {
			t.Errorf("keys of %v = %v, want %v", tc.path, got, tc.want)
		}
	}
	pt := doc.(map[string]any)["series"].(map[string]any)["round_trip_0"].([]any)[1].(map[string]any)
	if got := keys(t, pt); !slices.Equal(got, []string{"count", "latency", "max_latency", "min_latency", "seq", "size", "timestamp"}) {
		t.Errorf("keys of a point with latencies = %v", got)
	}

	// A server's summary is the summary itself.
	srv := newServerStats(c.now)
	b.Reset()
	if err := srv.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		want []string
	}{
		{nil, []string{"process", "series", "summary"}},
		{[]string{"series"}, []string{"server"}},
		{[]string{"summary"}, []string{"count", "count_p_s", "duration", "size", "size_p_s"}},
	} {
		if got := keys(t, doc, tc.path...); !slices.Equal(got, tc.want) {
			t.Errorf("server: keys of %v = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestSummaryText(t *testing.T) {
	c := &clock{}
	c.set(10.5)
	s := newClientStats(c.now, 1, true)
	for i, lat := range []float64{0.001, 0.002, 0.003} {
		ts := 11 + 0.1*float64(i)
		s.Record(Sample{Kind: Sent, ClientTS: ts, Size: 100})
		s.Record(Sample{Kind: RoundTrip, ClientTS: ts, ReturnTS: ts + lat, Size: 100})
	}
	c.set(12.5)
	var b bytes.Buffer
	if err := s.Summary(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"client: duration: 1.00 count: 3 (3.0 msg/sec) bytes: 300 (300 bps)",
		"error: duration: 0.00 count: 0 (0.0 msg/sec) bytes: 0 (0 bps)",
		"round-trip: duration: 1.00 count: 3 (3.0 msg/sec) bytes: 300 (300 bps) latency: 0.002000 min: 0.001000 max: 0.003000 p50: 0.00",
		"process: cpu: ",
	}
	if len(lines) != len(want) {
		t.Fatalf("summary has %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[3], " messages: 3 ") {
		t.Errorf("process line %q lacks the message count", lines[3])
	}
}

func TestRecordConcurrentAndCheap(t *testing.T) {
	s := NewClientStats(4, true)
	srv := NewServerStats()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 2000 {
				ts := Now()
				s.Record(Sample{Kind: Sent, Sender: i, Seq: int64(j), Size: 10, ClientTS: ts})
				s.Record(Sample{Kind: RoundTrip, Sender: i, Seq: int64(j), Size: 10, ClientTS: ts, ReturnTS: ts + 0.001})
				srv.Record(Sample{Kind: Received, Seq: int64(j), Size: 10, ClientTS: ts, ServerTS: ts + 0.0005})
			}
		})
	}
	wg.Wait()
	if s.Count(Sent) != 8000 || s.Count(RoundTrip) != 8000 || srv.Count(Received) != 8000 {
		t.Errorf("counts: sent %d, round trips %d, received %d; want 8000 each", s.Count(Sent), s.Count(RoundTrip), srv.Count(Received))
	}
	r := srv.Report()
	if sum := r.Summaries["server"]; sum.Count != 8000 || sum.P50 == nil || math.Abs(*sum.P50-0.0005) > 0.000005 {
		t.Errorf("server summary = %+v", sum)
	}

	// In one second, once the series has grown, Record does not allocate.
	c := &clock{}
	c.set(100.5)
	st := newClientStats(c.now, 1, true)
	x := Sample{Kind: RoundTrip, Size: 10, ClientTS: 101.1, ReturnTS: 101.2}
	st.Record(x)
	if n := testing.AllocsPerRun(1000, func() { st.Record(x) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
	f := Sample{Kind: Failed, Size: 10, ClientTS: 101.1, Err: errors.New("x")}
	st.Record(f)
	if n := testing.AllocsPerRun(1000, func() { st.Record(f) }); n != 0 {
		t.Errorf("Record of a failure allocates %v times", n)
	}
}
