package compare

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/internal/bench"
)

// TestPyBenchLengthTable checks that pybench.py draws its cargo lengths
// from the table of package bench, as omsg bench and omsg bench raw do.
func TestPyBenchLengthTable(t *testing.T) {
	src := string(PyBench)
	start := strings.Index(src, "LENGTH_WEIGHTS = (")
	end := strings.Index(src[start:], "\n)\n")
	if start < 0 || end < 0 {
		t.Fatal("no LENGTH_WEIGHTS table in pybench.py")
	}
	var got []bench.LengthBucket
	for _, m := range regexp.MustCompile(`\((\d+), (\d+)\)`).FindAllStringSubmatch(src[start:start+end], -1) {
		s, _ := strconv.Atoi(m[1])
		c, _ := strconv.Atoi(m[2])
		got = append(got, bench.LengthBucket{Start: s, Count: c})
	}
	if want := bench.Distribution(); !slices.Equal(got, want) {
		t.Errorf("pybench.py LENGTH_WEIGHTS = %v, want bench.Distribution() = %v", got, want)
	}
	for name, want := range map[string]int{"LENGTH_BUCKET": bench.BucketSize, "CARGO_LIMIT": bench.MaxPayloads} {
		if !strings.Contains(src, fmt.Sprintf("\n%s = %d\n", name, want)) {
			t.Errorf("pybench.py lacks %s = %d", name, want)
		}
	}
}
