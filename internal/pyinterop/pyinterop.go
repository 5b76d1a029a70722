// Package pyinterop runs the real Python oslo.messaging from Go tests, so
// that the wire format and the URL syntax are checked against the
// library they must stay compatible with.
//
// Tests that use it are named TestInterop... and run only when the
// environment variable OMSG_PYTHON names a Python interpreter that can
// import oslo_messaging (normally /usr/bin/python3). Without the
// variable they skip with a message saying so; with it, an interpreter
// that cannot import oslo_messaging fails the test.
package pyinterop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvVar names the environment variable that holds the interpreter.
const EnvVar = "OMSG_PYTHON"

// Timeout bounds each run of the interpreter.
const Timeout = 30 * time.Second

// checked caches, per interpreter, the result of importing
// oslo_messaging, so that a test binary checks it once.
var checked sync.Map // interpreter path -> *check

type check struct {
	once sync.Once
	err  error
}

// Python returns the interpreter named by OMSG_PYTHON after checking,
// once per test binary, that it can import oslo_messaging. It skips t
// when the variable is not set and fails t when the import fails.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv(EnvVar)
	if py == "" {
		t.Skipf("%s not set: skipping this interop test against the real Python oslo.messaging "+
			"(set %s=/usr/bin/python3 to run it)", EnvVar, EnvVar)
	}
	v, _ := checked.LoadOrStore(py, &check{})
	c := v.(*check)
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_, stderr, err := run(ctx, py, "import oslo_messaging", nil)
		if err != nil {
			c.err = fmt.Errorf("%s=%s cannot import oslo_messaging: %w\n%s", EnvVar, py, err, stderr)
		}
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return py
}

// Run runs script with `python -I -c script`, feeding it stdin, and
// returns its standard output. It fails t, showing the standard error,
// if the script exits with an error or runs for longer than Timeout.
// It skips or fails t as [Python] does.
func Run(t testing.TB, script string, stdin []byte) []byte {
	t.Helper()
	py := Python(t)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	stdout, stderr, err := run(ctx, py, script, stdin)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %v)", err, Timeout)
		}
		t.Fatalf("python script failed: %v\nstderr:\n%s", err, stderr)
	}
	return stdout
}

// RunJSON runs script with in encoded as JSON on its standard input and
// decodes its standard output, which must be one JSON document, into
// out. Numbers decode as json.Number when out holds interfaces.
func RunJSON(t testing.TB, script string, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("encoding python input: %v", err)
	}
	stdout := Run(t, script, data)
	dec := json.NewDecoder(bytes.NewReader(stdout))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("decoding python output: %v\noutput:\n%s", err, truncate(stdout))
	}
}

func run(ctx context.Context, py, script string, stdin []byte) (stdout, stderr []byte, err error) {
	// -I: isolated mode, so that PYTHONPATH, user site-packages and the
	// current directory cannot change what is imported.
	cmd := exec.CommandContext(ctx, py, "-I", "-c", script)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func truncate(b []byte) string {
	const max = 4000
	s := string(b)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.TrimSpace(s)
}
