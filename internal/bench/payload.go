package bench

import (
	"math/rand/v2"
)

// BucketSize is the width of the buckets of the cargo length
// distribution: a cargo drawn from the bucket starting at s has a
// length in [s, s+BucketSize).
const BucketSize = 500

// MaxPayloads is the most cargos a run pre-generates; senders cycle
// through them, as the simulator's MESSAGES_LIMIT.
const MaxPayloads = 1000

// LengthBucket is one bucket of the cargo length distribution: Count of
// the simulator's sample lengths fell in the bucket that starts at
// Start.
type LengthBucket struct {
	Start int
	Count int
}

// lengthBuckets are the 4,077 string lengths of oslo.messaging's
// tools/messages_length.yaml, bucketed as simulator.py's
// init_random_generator does: a length l counts in the bucket starting
// at (l/500)*500 + 1.
var lengthBuckets = [...]LengthBucket{
	{501, 56},
	{1001, 105},
	{1501, 801},
	{2001, 1166},
	{2501, 616},
	{3001, 150},
	{3501, 100},
	{4001, 37},
	{4501, 177},
	{5001, 250},
	{5501, 99},
	{6001, 154},
	{6501, 211},
	{7001, 52},
	{7501, 53},
	{11001, 50},
}

// lengthTotal is the sum of the counts of lengthBuckets.
var lengthTotal = func() int {
	n := 0
	for _, b := range lengthBuckets {
		n += b.Count
	}
	return n
}()

// Distribution returns the buckets of the simulator's cargo length
// distribution, in increasing order of Start. The slice belongs to the
// caller.
func Distribution() []LengthBucket {
	return append([]LengthBucket(nil), lengthBuckets[:]...)
}

// Length draws a cargo length from the simulator's distribution with
// rng (the global generator if nil): a bucket with the probability of
// its count, then a length uniformly within it.
func Length(rng *rand.Rand) int {
	intN := rand.IntN
	if rng != nil {
		intN = rng.IntN
	}
	r := intN(lengthTotal)
	for _, b := range lengthBuckets {
		if r < b.Count {
			return b.Start + intN(BucketSize)
		}
		r -= b.Count
	}
	// Unreachable: r < lengthTotal.
	last := lengthBuckets[len(lengthBuckets)-1]
	return last.Start + intN(BucketSize)
}

// Payloads returns n random cargos of lowercase ASCII letters, at most
// MaxPayloads of them, drawn with rng. With size > 0 every cargo is
// exactly size characters long; otherwise the lengths follow the
// simulator's distribution (see Length). It returns nil for n ≤ 0, and
// draws from a randomly seeded generator when rng is nil.
func Payloads(n, size int, rng *rand.Rand) []string {
	if n <= 0 {
		return nil
	}
	n = min(n, MaxPayloads)
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	out := make([]string, n)
	for i := range out {
		l := size
		if l <= 0 {
			l = Length(rng)
		}
		b := make([]byte, l)
		for j := range b {
			b[j] = 'a' + byte(rng.IntN(26))
		}
		out[i] = string(b)
	}
	return out
}
