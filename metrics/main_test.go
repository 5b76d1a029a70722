package metrics_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The Prometheus client starts no goroutine of its own for registries,
// vectors or promhttp handlers, so nothing needs to be ignored.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
