package compare

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the tests, or, when fakeEnv is set, acts as a benchmark
// program (see fake_test.go): the tests run this binary as omsg and as
// Python.
func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(fakeEnv); ok {
		os.Exit(fakeMain(spec, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}
