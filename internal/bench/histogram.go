package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// The histogram's buckets, on values in nanoseconds: below histExact
// one bucket per nanosecond; above, each power of two is split into
// histSub buckets of equal width, so that a bucket is at most 1/64 of
// its lower bound wide and its midpoint is within 1/128 (0.8 %) of any
// value in it. Values from 2^histMaxBits ns (about 4.9 hours) up are
// counted in the last bucket.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits // 64
	histExact   = histSub
	histMaxBits = 44
	histBuckets = histExact + (histMaxBits-histSubBits)*histSub
)

// Histogram counts durations, in seconds, in logarithmic buckets of
// fixed memory (about 40 KB), so that its quantiles are within 1 % of
// the exact ones: the relative error is at most 0.8 % from 64 ns to
// 4.9 hours; below 64 ns the values are kept to the nanosecond, and
// above 4.9 hours they are counted as 4.9 hours. Negative durations
// (between hosts whose clocks differ) are kept, by magnitude, with the
// same precision.
//
// The zero value is an empty histogram. Its methods are safe for
// concurrent use; Add takes a few atomic operations and never allocates.
type Histogram struct {
	pos, neg [histBuckets]atomic.Uint64
	n        atomic.Uint64
}

// histIndex returns the bucket of a non-negative value in nanoseconds.
func histIndex(ns uint64) int {
	if ns < histExact {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // ns in [2^e, 2^(e+1))
	if e >= histMaxBits {
		return histBuckets - 1
	}
	shift := e - histSubBits
	m := ns >> shift // in [histSub, 2*histSub)
	return histExact + shift*histSub + int(m-histSub)
}

// histValue returns the value that stands for bucket i, in
// nanoseconds: the value itself for the exact buckets, else the
// bucket's midpoint.
func histValue(i int) float64 {
	if i < histExact {
		return float64(i)
	}
	shift := (i - histExact) / histSub
	m := uint64(histSub + (i-histExact)%histSub)
	lower := m << shift
	width := uint64(1) << shift
	return float64(lower) + float64(width)/2
}

// toNanos converts a magnitude in seconds to whole nanoseconds,
// saturating.
func toNanos(sec float64) uint64 {
	ns := math.Round(sec * 1e9)
	if ns >= math.MaxUint64/2 || math.IsNaN(ns) {
		return math.MaxUint64 / 2
	}
	return uint64(ns)
}

// Add counts d, a duration in seconds. NaN is ignored.
func (h *Histogram) Add(d float64) {
	if math.IsNaN(d) {
		return
	}
	if d < 0 {
		h.neg[histIndex(toNanos(-d))].Add(1)
	} else {
		h.pos[histIndex(toNanos(d))].Add(1)
	}
	h.n.Add(1)
}

// Count returns the number of durations counted.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Merge adds the counts of o to h. o may be in use meanwhile; its
// durations counted during the merge may or may not be included.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o == h {
		return
	}
	var n uint64
	for i := range o.pos {
		if c := o.pos[i].Load(); c != 0 {
			h.pos[i].Add(c)
			n += c
		}
		if c := o.neg[i].Load(); c != 0 {
			h.neg[i].Add(c)
			n += c
		}
	}
	h.n.Add(n)
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of the durations counted,
// in seconds: the value of rank ceil(q·n) in increasing order (the
// smallest for q = 0), within the precision of the buckets. It returns
// 0 for an empty histogram; q outside [0, 1] is clamped.
func (h *Histogram) Quantile(q float64) float64 {
	var total uint64
	for i := range h.pos {
		total += h.pos[i].Load() + h.neg[i].Load()
	}
	if total == 0 {
		return 0
	}
	if !(q > 0) { // also NaN
		q = 0
	}
	rank := uint64(math.Ceil(min(q, 1) * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	// Negative values first, from the largest magnitude down.
	for i := histBuckets - 1; i >= 0; i-- {
		if seen += h.neg[i].Load(); seen >= rank {
			return -histValue(i) / 1e9
		}
	}
	for i := range h.pos {
		if seen += h.pos[i].Load(); seen >= rank {
			return histValue(i) / 1e9
		}
	}
	// Only when counts grew during the walk: the largest bucket in use.
	for i := histBuckets - 1; i >= 0; i-- {
		if h.pos[i].Load() != 0 {
			return histValue(i) / 1e9
		}
	}
	return 0
}
