package compare

import "github.com/go-oslo/messaging/internal/bench"

// PyBench is the Python oslo.messaging side of the comparison,
// [bench.PyBench].
var PyBench = bench.PyBench
