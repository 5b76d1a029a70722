package faultsuite

import (
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging/internal/faulttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// EnvOut names the file that receives one JSON line per scenario run.
const EnvOut = "OMSG_RELIABILITY_OUT"

// outcome is one scenario's result, as RELIABILITY.md's table shows it.
type outcome struct {
	ID       string            `json:"id"`    // "S1"
	Fault    string            `json:"fault"` // what was injected
	Rule     string            `json:"rule"`  // the pass rule checked
	Passed   bool              `json:"passed"`
	Seconds  float64           `json:"seconds"`
	Ledger   string            `json:"ledger,omitempty"` // faulttest.Report's one-line form
	Notes    string            `json:"notes,omitempty"`  // other figures (detection time, ...)
	Report   *faulttest.Report `json:"report,omitempty"`
	Finished time.Time         `json:"finished"`
}

var outMu sync.Mutex

// record logs the outcome of scenario id when the test ends: passed
// unless the test failed. rep, when not nil, is the ledger's report,
// read at the end of the test; notes adds figures of the scenario's own.
// Call it at the start of the scenario, before anything can fail.
func record(t *testing.T, id, fault, rule string, rep func() *faulttest.Report, notes func() string) {
	t.Helper()
	start := time.Now()
	t.Cleanup(func() {
		o := outcome{ID: id, Fault: fault, Rule: rule, Passed: !t.Failed(), Seconds: time.Since(start).Seconds(), Finished: time.Now().UTC()}
		if rep != nil {
			if r := rep(); r != nil {
				o.Report = r
				o.Ledger = r.String()
			}
		}
		if notes != nil {
			o.Notes = notes()
		}
		status := "PASS"
		if !o.Passed {
			status = "FAIL"
		}
		t.Logf("scenario %s: %s in %.1fs: %s | %s | %s", id, status, o.Seconds, rule, o.Ledger, o.Notes)
		path := os.Getenv(EnvOut)
		if path == "" {
			return
		}
		line, err := json.Marshal(o)
		if err != nil {
			t.Errorf("scenario %s: encoding its outcome: %v", id, err)
			return
		}
		outMu.Lock()
		defer outMu.Unlock()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("scenario %s: %s: %v", id, EnvOut, err)
			return
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			t.Errorf("scenario %s: %s: %v", id, EnvOut, err)
		}
	})
}
