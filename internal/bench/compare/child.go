package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ReadyLine is the line a benchmark server prints on its standard error
// once it consumes.
const ReadyLine = "omsg bench: ready"

// childEnv is set in the environment of every program a comparison
// runs, so that a comparison never runs inside one of its programs.
const childEnv = "OMSG_BENCH_COMPARE_CHILD"

// tailSize is how much of a child's output is kept for error messages.
const tailSize = 4 << 10

// output keeps the tail of a child's standard output or error and, for
// standard error, notices the ready line. It is an io.Writer for
// exec.Cmd, which writes from its own goroutine.
type output struct {
	mu      sync.Mutex // guards the fields below
	tail    []byte     // the last tailSize bytes written
	partial []byte     // the current, unfinished line
	ready   chan struct{}
	isReady bool
}

func newOutput() *output { return &output{ready: make(chan struct{})} }

// Write implements io.Writer.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tail = append(o.tail, p...)
	if len(o.tail) > tailSize {
		o.tail = append(o.tail[:0], o.tail[len(o.tail)-tailSize:]...)
	}
	if o.isReady {
		return len(p), nil
	}
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
		if line == ReadyLine {
			o.isReady = true
			o.partial = nil
			close(o.ready)
			break
		}
	}
	if len(o.partial) > tailSize {
		// A line this long is not the ready line.
		o.partial = o.partial[:0]
	}
	return len(p), nil
}

// String returns the tail of the output, trimmed.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.TrimSpace(strings.ToValidUTF8(string(o.tail), "?"))
}

// child is a benchmark program started by a cell.
type child struct {
	name   string // for messages: "server s1", "client"
	cmd    *exec.Cmd
	stdout *output
	stderr *output
	done   chan struct{} // closed once the process has exited and err is set
	err    error         // of cmd.Wait
}

// startChild starts argv with extra environment variables env. The
// process is killed when ctx is done. The returned child must be
// stopped or waited for.
func startChild(ctx context.Context, name string, argv, env []string) (*child, error) {
	c := &child{name: name, stdout: newOutput(), stderr: newOutput(), done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.cmd.Stdout = c.stdout
	c.cmd.Stderr = c.stderr
	c.cmd.Env = append(append(os.Environ(), env...), childEnv+"=1")
	c.cmd.SysProcAttr = newProcAttr()
	c.cmd.Cancel = func() error { return kill(c.cmd.Process) }
	c.cmd.WaitDelay = 5 * time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exitError returns the error of an exited child, with its standard
// error.
func (c *child) exitError() error {
	msg := "exited"
	if c.err != nil {
		msg = c.err.Error()
	}
	return fmt.Errorf("%s %s%s", c.name, msg, c.stderrTail())
}

// stderrTail returns ": <last lines of stderr>", or "" when it is empty.
func (c *child) stderrTail() string {
	s := c.stderr.String()
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, " | ")
}

// waitReady waits until the child has printed the ready line, for at
// most timeout.
func (c *child) waitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.stderr.ready:
		return nil
	case <-c.done:
		return c.exitError()
	case <-t.C:
		return fmt.Errorf("%s not ready within %v%s", c.name, timeout, c.stderrTail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for the child to exit, for at most timeout, then kills it.
// It returns nil for an exit status of 0.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil {
			return c.exitError()
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("%s still running after %v: killed%s", c.name, timeout, c.stderrTail())
	case <-ctx.Done():
		c.kill()
		return ctx.Err()
	}
}

// stop sends SIGINT to the child and waits for it to exit, for at most
// grace, then kills it. It returns nil when the child exited with
// status 0 after the signal.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.done:
		// It ended on its own, before the signal.
		if c.err != nil {
			return c.exitError()
		}
		return nil
	default:
	}
	if err := interrupt(c.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.kill()
		return fmt.Errorf("%s: interrupt: %w", c.name, err)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil {
			return c.exitError()
		}
		return nil
	case <-t.C:
		c.kill()
		return fmt.Errorf("%s did not stop within %v of SIGINT: killed%s", c.name, grace, c.stderrTail())
	}
}

// kill kills the child and waits for it; Wait returns within the
// command's WaitDelay.
func (c *child) kill() {
	_ = kill(c.cmd.Process)
	<-c.done
}
