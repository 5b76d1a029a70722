package bench

import _ "embed" // for PyBench

// PyBench is pybench.py, the Python oslo.messaging program that speaks
// the command line and the JSON of omsg bench, for comparisons on the
// same broker. Run it with an interpreter that has oslo.messaging.
//
//go:embed pybench.py
var PyBench []byte
