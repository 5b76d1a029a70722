package bench

import (
	"math/rand/v2"
	"testing"
)

func TestDistributionTable(t *testing.T) {
	d := Distribution()
	total := 0
	for i, b := range d {
		total += b.Count
		if (b.Start-1)%BucketSize != 0 {
			t.Errorf("bucket %d starts at %d, not at 500k+1", i, b.Start)
		}
		if i > 0 && b.Start <= d[i-1].Start {
			t.Errorf("bucket %d starts at %d, not after %d", i, b.Start, d[i-1].Start)
		}
		if b.Count <= 0 {
			t.Errorf("bucket %d (%d) has count %d", i, b.Start, b.Count)
		}
	}
	// tools/messages_length.yaml holds 4,077 lengths, from 806 to 11292.
	if total != 4077 {
		t.Errorf("the counts sum to %d, want 4077", total)
	}
	if d[0].Start != 501 || d[len(d)-1].Start != 11001 {
		t.Errorf("buckets from %d to %d, want 501 to 11001", d[0].Start, d[len(d)-1].Start)
	}
	d[0].Count = 0 // the caller's copy
	if Distribution()[0].Count == 0 {
		t.Error("Distribution returned the package's table")
	}
}

// TestPayloadsFollowDistribution draws 5,000 cargo lengths with a fixed
// seed and checks them against the table with a chi-square test.
func TestPayloadsFollowDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := Distribution()
	observed := make(map[int]int)
	n := 0
	for range 5 {
		ps := Payloads(MaxPayloads, 0, rng)
		if len(ps) != MaxPayloads {
			t.Fatalf("Payloads(%d) returned %d cargos", MaxPayloads, len(ps))
		}
		for _, p := range ps {
			start := (len(p)-1)/BucketSize*BucketSize + 1
			observed[start]++
			n++
			for j := 0; j < len(p); j++ {
				if p[j] < 'a' || p[j] > 'z' {
					t.Fatalf("cargo has %q, want lowercase letters only", p[j])
				}
			}
		}
	}
	chi2 := 0.0
	known := 0
	for _, b := range d {
		exp := float64(n) * float64(b.Count) / 4077
		o := float64(observed[b.Start])
		chi2 += (o - exp) * (o - exp) / exp
		known += observed[b.Start]
	}
	if known != n {
		t.Errorf("%d of %d lengths fell outside the table's buckets: %v", n-known, n, observed)
	}
	// 15 degrees of freedom: P(chi2 > 37.7) = 0.001.
	if chi2 > 37.7 {
		t.Errorf("chi-square = %.1f over %d buckets, want < 37.7; observed %v", chi2, len(d), observed)
	}
}

func TestPayloadsSize(t *testing.T) {
	ps := Payloads(5, 100, rand.New(rand.NewPCG(3, 4)))
	if len(ps) != 5 {
		t.Fatalf("Payloads(5, 100) returned %d cargos", len(ps))
	}
	distinct := map[string]bool{}
	for _, p := range ps {
		if len(p) != 100 {
			t.Errorf("cargo of %d characters, want 100", len(p))
		}
		distinct[p] = true
	}
	if len(distinct) != 5 {
		t.Errorf("%d distinct cargos of 5", len(distinct))
	}
	if got := Payloads(5000, 1, nil); len(got) != MaxPayloads {
		t.Errorf("Payloads(5000) returned %d cargos, want %d", len(got), MaxPayloads)
	}
	for _, n := range []int{0, -3} {
		if got := Payloads(n, 10, nil); got != nil {
			t.Errorf("Payloads(%d) = %d cargos, want nil", n, len(got))
		}
	}
	if l := Length(nil); l < 501 || l > 11500 {
		t.Errorf("Length(nil) = %d, want the distribution's", l)
	}
	for _, p := range Payloads(50, -1, nil) {
		if len(p) < 501 || len(p) > 11500 {
			t.Errorf("negative size: cargo of %d characters, want the distribution's", len(p))
		}
	}
}
