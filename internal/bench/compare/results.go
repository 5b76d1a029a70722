package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// summary is the summary of one stream in the JSON of a benchmark
// program: the simulator's calc_stats, plus the contract's percentiles
// and first_ts/last_ts (absent from simulator.py's output).
type summary struct {
	Count    int64    `json:"count"`
	Size     int64    `json:"size"`
	Duration float64  `json:"duration"`
	CountPS  float64  `json:"count_p_s"`
	Latency  *float64 `json:"latency"`
	P50      *float64 `json:"p50_latency"`
	P90      *float64 `json:"p90_latency"`
	P99      *float64 `json:"p99_latency"`
	FirstTS  *float64 `json:"first_ts"`
	LastTS   *float64 `json:"last_ts"`
}

// process is the contract's process block (absent from simulator.py's
// output).
type process struct {
	CPUSeconds  *float64 `json:"cpu_seconds"`
	WallSeconds *float64 `json:"wall_seconds"`
	Messages    int64    `json:"messages"`
	CPUPerMsg   *float64 `json:"cpu_s_per_msg"`
	MaxRSS      *float64 `json:"max_rss_bytes"`
}

// clientResult is the JSON of a client mode.
type clientResult struct {
	Summary struct {
		Client    *summary `json:"client"`
		Error     *summary `json:"error"`
		RoundTrip *summary `json:"round_trip"`
	} `json:"summary"`
	Process *process `json:"process"`
}

// serverResult is the JSON of a server mode.
type serverResult struct {
	Summary *summary `json:"summary"`
	Process *process `json:"process"`
}

// readJSON decodes the JSON file path into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no JSON statistics written (%s)", path)
		}
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("JSON statistics %s: %w", path, err)
	}
	return nil
}

// readClient reads the JSON of a client.
func readClient(path string) (*clientResult, error) {
	var r clientResult
	if err := readJSON(path, &r); err != nil {
		return nil, err
	}
	if r.Summary.Client == nil {
		return nil, fmt.Errorf("JSON statistics %s: no summary.client", path)
	}
	return &r, nil
}

// readServer reads the JSON of a server.
func readServer(path string) (*serverResult, error) {
	var r serverResult
	if err := readJSON(path, &r); err != nil {
		return nil, err
	}
	if r.Summary == nil {
		return nil, fmt.Errorf("JSON statistics %s: no summary", path)
	}
	return &r, nil
}

// rate returns the rate of a stream in messages per second: exactly,
// (count − 1) / (last_ts − first_ts), when the stream has those
// timestamps and two samples or more; else the simulator's count_p_s
// (count over whole seconds), with exact false. ok is false when there
// is no rate.
func rate(s *summary) (v float64, exact, ok bool) {
	if s == nil {
		return 0, false, false
	}
	if s.FirstTS != nil && s.LastTS != nil && s.Count >= 2 && *s.LastTS > *s.FirstTS {
		return float64(s.Count-1) / (*s.LastTS - *s.FirstTS), true, true
	}
	if s.FirstTS == nil && s.CountPS > 0 {
		return s.CountPS, false, true
	}
	return 0, false, false
}

// cpuPerMessage returns the CPU seconds per message of p.
func cpuPerMessage(p *process) (float64, bool) {
	switch {
	case p == nil:
		return 0, false
	case p.CPUPerMsg != nil:
		return *p.CPUPerMsg, true
	case p.CPUSeconds != nil && p.Messages > 0:
		return *p.CPUSeconds / float64(p.Messages), true
	}
	return 0, false
}
