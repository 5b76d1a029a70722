//go:build !unix

package bench

import "time"

// cpuTime reports that the CPU time is unknown on this system.
func cpuTime() (time.Duration, bool) { return 0, false }

// maxRSS reports that the resident set size is unknown on this system.
func maxRSS() int64 { return 0 }
