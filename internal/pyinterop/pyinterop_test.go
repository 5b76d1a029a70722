package pyinterop

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestInteropRun(t *testing.T) {
	out := Run(t, "import sys; sys.stdout.write(sys.stdin.read().upper())", []byte("oslo"))
	if string(out) != "OSLO" {
		t.Fatalf("Run = %q, want %q", out, "OSLO")
	}
}

func TestInteropRunJSON(t *testing.T) {
	var out struct {
		Sum     int    `json:"sum"`
		Version string `json:"version"`
	}
	RunJSON(t, `
import json, sys
import oslo_messaging
nums = json.load(sys.stdin)
json.dump({"sum": sum(nums), "version": "ok"}, sys.stdout)
`, []int{1, 2, 3}, &out)
	if out.Sum != 6 || out.Version != "ok" {
		t.Fatalf("RunJSON decoded %+v", out)
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of
// ending the test, so that the gating itself can be tested.
type recorder struct {
	testing.TB // nil: only the methods below may be called
	skipped    bool
	failed     bool
	msg        string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// call runs f with a recorder on its own goroutine, as the testing
// package runs a test, and returns the recorder once f has ended.
func call(f func(testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestSkipsLoudlyWithoutInterpreter(t *testing.T) {
	t.Setenv(EnvVar, "")
	r := call(func(tb testing.TB) { Run(tb, "print(1)", nil) })
	if !r.skipped || r.failed {
		t.Fatalf("Run without %s: skipped=%v failed=%v, want a skip", EnvVar, r.skipped, r.failed)
	}
	if !strings.Contains(r.msg, EnvVar+" not set") {
		t.Errorf("skip message %q does not say that %s is not set", r.msg, EnvVar)
	}
}

func TestFailsWhenImportFails(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake interpreter is a shell script")
	}
	fake := filepath.Join(t.TempDir(), "python")
	script := "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'oslo_messaging'\" >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVar, fake)
	r := call(func(tb testing.TB) { Run(tb, "print(1)", nil) })
	if !r.failed || r.skipped {
		t.Fatalf("Run with an interpreter lacking oslo_messaging: failed=%v skipped=%v, want a failure", r.failed, r.skipped)
	}
	for _, want := range []string{"cannot import oslo_messaging", "No module named"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("failure message %q does not contain %q", r.msg, want)
		}
	}
}

func TestInteropRunReportsStderr(t *testing.T) {
	Python(t) // skip or fail here, not inside the recorder
	r := call(func(tb testing.TB) { Run(tb, "import sys; sys.stderr.write('boom-marker'); sys.exit(3)", nil) })
	if !r.failed {
		t.Fatal("Run of a failing script did not fail the test")
	}
	if !strings.Contains(r.msg, "boom-marker") || !strings.Contains(r.msg, "exit status 3") {
		t.Errorf("failure message %q lacks the script's stderr or exit status", r.msg)
	}
}
