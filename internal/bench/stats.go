package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxSeriesSeconds bounds a series: a sample dated before the Stats
// were made, or more than this after, is placed at the time it is
// recorded instead.
const maxSeriesSeconds = 7 * 24 * 3600

// numKinds is the number of Kinds.
const numKinds = int(Received) + 1

// point is one second of a stream: the simulator's report interval.
type point struct {
	count, size    int64
	latSum         float64 // sum of the non-zero latencies
	latMin, latMax float64 // valid when latN > 0
	latN           int64
}

// stream is the series of one of the simulator's
// MessageStatsCollectors: client_<i>, error_<i>, round_trip_<i> or
// server.
type stream struct {
	mu          sync.Mutex // guards the fields below
	points      []point    // points[k] covers [base+k, base+k+1)
	n           int64      // samples
	first, last float64    // times of the first and last samples
}

// add counts a sample at time t (Unix seconds) in second k.
func (st *stream) add(k int, t float64, size int, lat float64, hasLat bool) {
	st.mu.Lock()
	if k >= len(st.points) {
		if k < cap(st.points) {
			st.points = st.points[:k+1]
		} else {
			st.points = append(st.points, make([]point, k+1-len(st.points))...)
		}
	}
	p := &st.points[k]
	p.count++
	p.size += int64(size)
	if hasLat {
		if p.latN == 0 || lat < p.latMin {
			p.latMin = lat
		}
		if p.latN == 0 || lat > p.latMax {
			p.latMax = lat
		}
		p.latN++
		p.latSum += lat
	}
	if st.n == 0 || t < st.first {
		st.first = t
	}
	if t > st.last {
		st.last = t
	}
	st.n++
	st.mu.Unlock()
}

// snapshot returns a copy of the points and the sample times.
func (st *stream) snapshot() (points []point, n int64, first, last float64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]point(nil), st.points...), st.n, st.first, st.last
}

// Stats is the Recorder of omsg bench: it keeps, per stream, the
// simulator's series of one point per second, and the latencies of each
// Kind in a Histogram. It is safe for concurrent use; Record takes one
// short lock, that of the sample's stream, and does not allocate except
// to grow a series by a second.
//
// A client's streams are client_<i> (Sent), error_<i> (Failed) and, for
// calls, round_trip_<i> (RoundTrip) for each sender i; a server's one
// stream is server (Received). Samples of other kinds or senders are
// ignored (see Stats.Ignored).
//
// A sample is placed in the second of its event: ClientTS for Sent,
// ReturnTS for RoundTrip, ServerTS for Received, and the time it is
// recorded for Failed or when that timestamp is missing. Its latency is
// the simulator's: ReturnTS−ClientTS when ReturnTS is set, else
// ServerTS−ClientTS when ServerTS is set, else none; a latency of zero
// counts as none, as in the simulator.
type Stats struct {
	server     bool
	roundTrips bool
	now        func() time.Time
	start      time.Time
	base       int64         // Unix second of start
	cpu0       time.Duration // CPU time used at start
	cpuOK      bool

	recv               *stream
	sent, failed, rtts []*stream
	hist               [numKinds]Histogram

	ignored  atomic.Int64
	firstErr atomic.Pointer[error]

	finish sync.Once
	end    time.Time
	cpu    time.Duration
	rss    int64
}

// NewClientStats returns the Stats of a client run with threads
// senders, numbered from 0; roundTrips says whether replies are
// counted (calls, not casts or notifications). The run starts now.
func NewClientStats(threads int, roundTrips bool) *Stats {
	return newClientStats(time.Now, threads, roundTrips)
}

// NewServerStats returns the Stats of a server run, which starts now.
func NewServerStats() *Stats { return newServerStats(time.Now) }

func newClientStats(now func() time.Time, threads int, roundTrips bool) *Stats {
	s := newStats(now)
	threads = max(threads, 0)
	s.sent = newStreams(threads)
	s.failed = newStreams(threads)
	if roundTrips {
		s.roundTrips = true
		s.rtts = newStreams(threads)
	}
	return s
}

func newServerStats(now func() time.Time) *Stats {
	s := newStats(now)
	s.server = true
	s.recv = &stream{points: make([]point, 0, 64)}
	return s
}

func newStats(now func() time.Time) *Stats {
	s := &Stats{now: now}
	s.start = now()
	s.base = s.start.Unix()
	s.cpu0, s.cpuOK = cpuTime()
	return s
}

func newStreams(n int) []*stream {
	out := make([]*stream, n)
	for i := range out {
		out[i] = &stream{points: make([]point, 0, 64)}
	}
	return out
}

// unix returns t as float Unix seconds.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Now returns the current time as float Unix seconds, as Python's
// time.time(): the timestamps of a Sample.
func Now() float64 { return unix(time.Now()) }

// second returns the index of the second of time t, and whether t falls
// in the series' range.
func (s *Stats) second(t float64) (int, bool) {
	if !(t > 0) || math.IsInf(t, 0) {
		return 0, false
	}
	k := math.Floor(t) - float64(s.base)
	if k < 0 || k >= maxSeriesSeconds {
		return 0, false
	}
	return int(k), true
}

// stream returns the stream of x, nil if the Stats have none.
func (s *Stats) stream(x *Sample) *stream {
	pick := func(list []*stream) *stream {
		if x.Sender < 0 || x.Sender >= len(list) {
			return nil
		}
		return list[x.Sender]
	}
	switch x.Kind {
	case Sent:
		return pick(s.sent)
	case Failed:
		return pick(s.failed)
	case RoundTrip:
		return pick(s.rtts)
	case Received:
		return s.recv
	}
	return nil
}

// latency returns the simulator's latency of x.
func latency(x *Sample) (float64, bool) {
	var l float64
	switch {
	case x.ReturnTS != 0:
		l = x.ReturnTS - x.ClientTS
	case x.ServerTS != 0:
		l = x.ServerTS - x.ClientTS
	}
	if l == 0 || math.IsNaN(l) || math.IsInf(l, 0) {
		return 0, false
	}
	return l, true
}

// Record counts x in its stream.
func (s *Stats) Record(x Sample) {
	st := s.stream(&x)
	if st == nil {
		s.ignored.Add(1)
		return
	}
	var t float64
	switch x.Kind {
	case Sent:
		t = x.ClientTS
	case RoundTrip:
		t = x.ReturnTS
	case Received:
		t = x.ServerTS
	}
	k, ok := s.second(t)
	if !ok {
		t = unix(s.now())
		if k, ok = s.second(t); !ok {
			k = maxSeriesSeconds - 1
		}
	}
	lat, hasLat := latency(&x)
	st.add(k, t, x.Size, lat, hasLat)
	if hasLat {
		s.hist[x.Kind].Add(lat)
	}
	if x.Kind == Failed && x.Err != nil && s.firstErr.Load() == nil {
		err := x.Err
		s.firstErr.CompareAndSwap(nil, &err)
	}
}

// Ignored returns the number of samples that had no stream: a kind
// or sender the Stats do not keep.
func (s *Stats) Ignored() int64 { return s.ignored.Load() }

// FirstError returns the error of the first Failed sample that had
// one, nil if none.
func (s *Stats) FirstError() error {
	if p := s.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Count returns the number of samples of kind k recorded, over all
// senders.
func (s *Stats) Count(k Kind) int64 {
	var list []*stream
	switch k {
	case Sent:
		list = s.sent
	case Failed:
		list = s.failed
	case RoundTrip:
		list = s.rtts
	case Received:
		if s.recv != nil {
			list = []*stream{s.recv}
		}
	}
	var n int64
	for _, st := range list {
		st.mu.Lock()
		n += st.n
		st.mu.Unlock()
	}
	return n
}

// Finish ends the run: it takes the end time and the CPU time and
// memory the process used. The series then run to the second of the
// end. Only the first call counts; samples recorded later are still
// counted. The modes call it, when rec is a *Stats, once the messages
// are sent or the server stopped, so that a client's --exit-wait is not
// part of the run.
func (s *Stats) Finish() {
	s.finish.Do(func() {
		s.end = s.now()
		if cpu, ok := cpuTime(); ok && s.cpuOK {
			s.cpu = cpu - s.cpu0
		}
		s.rss = maxRSS()
	})
}

// Point is one point of a series: one second of a stream, as the
// simulator's MessageStatsCollector reports it. The latencies are
// seconds, and set only when the second had non-zero latencies.
type Point struct {
	Seq        int      `json:"seq"`
	Timestamp  float64  `json:"timestamp"` // the end of the second
	Count      int64    `json:"count"`
	Size       int64    `json:"size"`
	Latency    *float64 `json:"latency,omitempty"` // sum of latencies / Count
	MinLatency *float64 `json:"min_latency,omitempty"`
	MaxLatency *float64 `json:"max_latency,omitempty"`
}

// StreamSummary is the summary of streams: the simulator's calc_stats, and
// our additions.
//
// Duration runs from the start of the first second with samples to the
// end of the last, in whole seconds; the rates divide by it. Start and
// End are set when Duration is not zero. Latency (the mean, over all
// samples), MinLatency and MaxLatency are set when the sum of the
// latencies is not zero, with the percentiles P50, P90 and P99, within
// 1 %. FirstTS and LastTS are the times of the first and last samples,
// set when Count > 0: (Count−1)/(LastTS−FirstTS) is the exact rate.
type StreamSummary struct {
	Count      int64    `json:"count"`
	Size       int64    `json:"size"`
	Duration   float64  `json:"duration"`
	CountPerS  float64  `json:"count_p_s"`
	SizePerS   float64  `json:"size_p_s"`
	Start      *float64 `json:"start,omitempty"`
	End        *float64 `json:"end,omitempty"`
	Latency    *float64 `json:"latency,omitempty"`
	MinLatency *float64 `json:"min_latency,omitempty"`
	MaxLatency *float64 `json:"max_latency,omitempty"`
	P50        *float64 `json:"p50_latency,omitempty"`
	P90        *float64 `json:"p90_latency,omitempty"`
	P99        *float64 `json:"p99_latency,omitempty"`
	FirstTS    *float64 `json:"first_ts,omitempty"`
	LastTS     *float64 `json:"last_ts,omitempty"`
}

// Process is what the process used during the run.
type Process struct {
	CPUSeconds    float64 `json:"cpu_seconds"` // user + system
	WallSeconds   float64 `json:"wall_seconds"`
	Messages      int64   `json:"messages"` // sent (clients) or received (servers)
	CPUSecondsMsg float64 `json:"cpu_s_per_msg"`
	MaxRSSBytes   int64   `json:"max_rss_bytes"`
}

// Report is the outcome of a run, as written in JSON by
// Stats.WriteJSON: the series by stream name, the summaries ("client",
// "error" and, for calls, "round_trip" for a client; "server" for a
// server) and the process.
type Report struct {
	Server    bool
	Series    map[string][]Point
	Summaries map[string]StreamSummary
	Process   Process
}

// MarshalJSON writes r as the simulator does, with our additions: for a
// client {"series": {...}, "summary": {"client": S, "error": S,
// "round_trip": S}, "process": P}, and for a server {"series":
// {"server": [...]}, "summary": S, "process": P}.
func (r Report) MarshalJSON() ([]byte, error) {
	var summary any = r.Summaries
	if r.Server {
		summary = r.Summaries["server"]
	}
	return json.Marshal(struct {
		Series  map[string][]Point `json:"series"`
		Summary any                `json:"summary"`
		Process Process            `json:"process"`
	}{r.Series, summary, r.Process})
}

// Report finishes the run (see Stats.Finish) and returns its report.
func (s *Stats) Report() Report {
	s.Finish()
	last, _ := s.second(unix(s.end))
	r := Report{Server: s.server, Series: map[string][]Point{}, Summaries: map[string]StreamSummary{}}
	series := func(name string, st *stream) {
		pts, _, _, _ := st.snapshot()
		r.Series[name] = s.points(pts, last)
	}
	if s.server {
		series("server", s.recv)
		r.Summaries["server"] = s.summarize([]*stream{s.recv}, &s.hist[Received])
		r.Process.Messages = s.Count(Received)
	} else {
		for i := range s.sent {
			series("client_"+strconv.Itoa(i), s.sent[i])
			series("error_"+strconv.Itoa(i), s.failed[i])
			if s.roundTrips {
				series("round_trip_"+strconv.Itoa(i), s.rtts[i])
			}
		}
		r.Summaries["client"] = s.summarize(s.sent, &s.hist[Sent])
		r.Summaries["error"] = s.summarize(s.failed, &s.hist[Failed])
		if s.roundTrips {
			r.Summaries["round_trip"] = s.summarize(s.rtts, &s.hist[RoundTrip])
		}
		r.Process.Messages = s.Count(Sent)
	}
	r.Process.WallSeconds = s.end.Sub(s.start).Seconds()
	r.Process.CPUSeconds = s.cpu.Seconds()
	if r.Process.Messages > 0 {
		r.Process.CPUSecondsMsg = r.Process.CPUSeconds / float64(r.Process.Messages)
	}
	r.Process.MaxRSSBytes = s.rss
	return r
}

// points returns the series of pts, padded with empty seconds up to
// second last.
func (s *Stats) points(pts []point, last int) []Point {
	n := max(len(pts), last+1)
	out := make([]Point, n)
	for k := range out {
		out[k] = Point{Seq: k, Timestamp: float64(s.base + int64(k) + 1)}
		if k >= len(pts) {
			continue
		}
		p := pts[k]
		out[k].Count, out[k].Size = p.count, p.size
		if p.latSum != 0 {
			out[k].Latency = ptr(p.latSum / float64(p.count))
			out[k].MinLatency = ptr(p.latMin)
			out[k].MaxLatency = ptr(p.latMax)
		}
	}
	return out
}

func ptr(v float64) *float64 { return &v }

// summarize computes the summary of streams as the simulator's
// calc_stats does, with the percentiles of h.
func (s *Stats) summarize(streams []*stream, h *Histogram) StreamSummary {
	var (
		sum                StreamSummary
		start, end         float64
		sumLat             float64
		minLat, maxLat     float64
		hasLat, hasSamples bool
		first, last        float64
	)
	for _, st := range streams {
		pts, n, f, l := st.snapshot()
		if n > 0 {
			if !hasSamples || f < first {
				first = f
			}
			if !hasSamples || l > last {
				last = l
			}
			hasSamples = true
		}
		for k, p := range pts {
			sum.Count += p.count
			sum.Size += p.size
			if p.count > 0 {
				ts := float64(s.base + int64(k) + 1)
				if start == 0 || ts < start {
					start = ts
				}
				end = max(end, ts)
			}
			if p.latSum != 0 {
				sumLat += p.latSum
				if !hasLat || p.latMin < minLat {
					minLat = p.latMin
				}
				if !hasLat || p.latMax > maxLat {
					maxLat = p.latMax
				}
				hasLat = true
			}
		}
	}
	// The first point with samples stands for the second before its
	// timestamp.
	start--
	if sum.Count > 0 {
		sum.Duration = end - start
	}
	if sum.Duration != 0 {
		sum.Start, sum.End = ptr(start), ptr(end)
		sum.CountPerS = float64(sum.Count) / sum.Duration
		sum.SizePerS = float64(sum.Size) / sum.Duration
	}
	if sumLat != 0 {
		sum.Latency = ptr(sumLat / float64(sum.Count))
		sum.MinLatency, sum.MaxLatency = ptr(minLat), ptr(maxLat)
		clamp := func(v float64) *float64 { return ptr(min(max(v, minLat), maxLat)) }
		sum.P50, sum.P90, sum.P99 = clamp(h.Quantile(0.50)), clamp(h.Quantile(0.90)), clamp(h.Quantile(0.99))
	}
	if hasSamples {
		sum.FirstTS, sum.LastTS = ptr(first), ptr(last)
	}
	return sum
}

// WriteJSON finishes the run (see Stats.Finish) and writes its Report
// to w as one JSON document.
func (s *Stats) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(s.Report())
	if err != nil {
		return fmt.Errorf("bench: encoding the report: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("bench: writing the report: %w", err)
	}
	return nil
}

// Summary finishes the run (see Stats.Finish) and writes the
// human summary of its Report to w, one line per summary, as the
// simulator logs them, then the process's line: for example
//
//	client: duration: 5.00 count: 1234 (246.8 msg/sec) bytes: 3087000 (617400 bps)
//	error: duration: 0.00 count: 0 (0.0 msg/sec) bytes: 0 (0 bps)
//	round-trip: duration: 5.00 count: 1234 (246.8 msg/sec) bytes: 3087000 (617400 bps) latency: 0.004012 min: 0.001020 max: 0.019870 p50: 0.003900 p90: 0.005100 p99: 0.009800
//	process: cpu: 1.234 s (0.001000 s/msg) wall: 6.01 s messages: 1234 max rss: 23.4 MiB
func (s *Stats) Summary(w io.Writer) error {
	return s.Report().Summary(w)
}

// Summary writes the human summary of r to w (see Stats.Summary).
func (r Report) Summary(w io.Writer) error {
	var b []byte
	names := []string{"client", "error", "round_trip"}
	if r.Server {
		names = []string{"server"}
	}
	for _, name := range names {
		sum, ok := r.Summaries[name]
		if !ok {
			continue
		}
		label := name
		if name == "round_trip" {
			label = "round-trip"
		}
		b = fmt.Appendf(b, "%s: duration: %.2f count: %d (%.1f msg/sec) bytes: %d (%.0f bps)",
			label, sum.Duration, sum.Count, sum.CountPerS, sum.Size, sum.SizePerS)
		if sum.Latency != nil {
			b = fmt.Appendf(b, " latency: %.6f min: %.6f max: %.6f p50: %.6f p90: %.6f p99: %.6f",
				*sum.Latency, *sum.MinLatency, *sum.MaxLatency, *sum.P50, *sum.P90, *sum.P99)
		}
		b = append(b, '\n')
	}
	p := r.Process
	b = fmt.Appendf(b, "process: cpu: %.3f s (%.6f s/msg) wall: %.2f s messages: %d max rss: %.1f MiB\n",
		p.CPUSeconds, p.CPUSecondsMsg, p.WallSeconds, p.Messages, float64(p.MaxRSSBytes)/(1<<20))
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("bench: writing the summary: %w", err)
	}
	return nil
}
