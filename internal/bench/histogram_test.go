package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// exactQuantile is Histogram.Quantile's definition on sorted values.
func exactQuantile(sorted []float64, q float64) float64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestHistogramRelativeError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var h Histogram
	var vals []float64
	for range 50000 {
		// Log-uniform from 100 ns to 100 s, a tenth of them negative.
		v := math.Pow(10, -7+9*rng.Float64())
		if rng.IntN(10) == 0 {
			v = -v
		}
		vals = append(vals, v)
		h.Add(v)
	}
	slices.Sort(vals)
	if h.Count() != uint64(len(vals)) {
		t.Fatalf("Count = %d, want %d", h.Count(), len(vals))
	}
	for _, q := range []float64{0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1} {
		want := exactQuantile(vals, q)
		got := h.Quantile(q)
		if rel := math.Abs(got-want) / math.Abs(want); rel > 0.01 {
			t.Errorf("Quantile(%v) = %g, want %g within 1%% (off by %.3f%%)", q, got, want, rel*100)
		}
	}
}

func TestHistogramEveryBucket(t *testing.T) {
	// Each value alone: the quantile is within 1 % of it (or exact
	// below 64 ns), from 1 ns to beyond the last bucket.
	for ns := 1.0; ns < 1e14; ns *= 1.37 {
		var h Histogram
		v := math.Round(ns) / 1e9
		h.Add(v)
		got := h.Quantile(0.5)
		limit := 0.01 * v
		if v > float64(uint64(1)<<histMaxBits)/1e9 {
			limit = math.Inf(1) // clamped: only order matters
			if got < 17000 {
				t.Errorf("Add(%g): Quantile = %g, want the last bucket's value", v, got)
			}
		}
		if math.Abs(got-v) > limit {
			t.Errorf("Add(%g s): Quantile = %g s, off by more than 1%%", v, got)
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 || h.Count() != 0 {
		t.Errorf("empty histogram: Quantile = %g, Count = %d", got, h.Count())
	}
	h.Add(math.NaN())
	if h.Count() != 0 {
		t.Errorf("NaN was counted")
	}
	h.Add(math.Inf(1))
	h.Add(0)
	h.Add(math.Inf(-1))
	if h.Count() != 3 {
		t.Errorf("Count = %d, want 3", h.Count())
	}
	if lo, hi := h.Quantile(0), h.Quantile(1); lo >= 0 || hi <= 0 {
		t.Errorf("Quantile(0) = %g, Quantile(1) = %g: want the negative and the positive infinity, clamped", lo, hi)
	}
	if mid := h.Quantile(0.5); mid != 0 {
		t.Errorf("Quantile(0.5) = %g, want 0", mid)
	}
	if got := h.Quantile(-1); got != h.Quantile(0) {
		t.Errorf("Quantile(-1) = %g, want Quantile(0)", got)
	}
	if got := h.Quantile(7); got != h.Quantile(1) {
		t.Errorf("Quantile(7) = %g, want Quantile(1)", got)
	}
	if got := h.Quantile(math.NaN()); got != h.Quantile(0) {
		t.Errorf("Quantile(NaN) = %g, want Quantile(0)", got)
	}
}

func TestHistogramMergeAndConcurrency(t *testing.T) {
	var parts [4]Histogram
	var all Histogram
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for range 5000 {
				v := rng.ExpFloat64() / 1000
				parts[i].Add(v)
				all.Add(v)
			}
		})
	}
	wg.Wait()
	var merged Histogram
	for i := range parts {
		merged.Merge(&parts[i])
	}
	merged.Merge(nil)
	merged.Merge(&merged)
	if merged.Count() != all.Count() || all.Count() != 20000 {
		t.Fatalf("merged Count = %d, concurrent Count = %d, want 20000", merged.Count(), all.Count())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if a, b := merged.Quantile(q), all.Quantile(q); a != b {
			t.Errorf("Quantile(%v): merged %g, concurrent %g", q, a, b)
		}
	}
}

func TestHistogramAddDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Add(0.00123) }); n != 0 {
		t.Errorf("Add allocates %v times", n)
	}
}
