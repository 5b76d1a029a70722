package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging/oslocontext"
)

// logBuffer collects log output; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// recorder records the times of a task's runs since its creation.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	runs  []time.Duration
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) record() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, time.Since(r.start))
	return len(r.runs)
}

func (r *recorder) times() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

// startTask runs tk's loop and returns a function that cancels it and
// waits for it to return.
func startTask(t *testing.T, tk *task, log *slog.Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk.loop(ctx, log)
	}()
	return func() {
		cancel()
		<-done
	}
}

func seconds(s ...int) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, v := range s {
		out[i] = time.Duration(v) * time.Second
	}
	return out
}

func TestPeriodicSchedule(t *testing.T) {
	tests := []struct {
		name      string
		immediate bool
		delay     time.Duration
		want      []time.Duration
	}{
		{"interval", false, 0, seconds(10, 20, 30)},
		{"run immediately", true, 0, seconds(0, 10, 20, 30)},
		{"initial delay", false, 5 * time.Second, seconds(15, 25)},
		{"initial delay and run immediately", true, 5 * time.Second, seconds(5, 15, 25)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log, _ := newLogger()
				rec := newRecorder()
				tk := &task{name: "tick", interval: 10 * time.Second, runImmediately: tc.immediate, initialDelay: tc.delay,
					fn: func(context.Context) error { rec.record(); return nil }}
				stop := startTask(t, tk, log)
				time.Sleep(32 * time.Second) // not on a boundary
				stop()
				if got := rec.times(); !slices.Equal(got, tc.want) {
					t.Errorf("runs at %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// A run that takes longer than the interval does not make runs pile
// up: the boundaries that passed are skipped, and the schedule goes on
// from the start of the first run.
func TestPeriodicSlowTaskDoesNotPileUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newLogger()
		rec := newRecorder()
		var running, overlaps int
		var mu sync.Mutex
		tk := &task{name: "slow", interval: 10 * time.Second, fn: func(context.Context) error {
			mu.Lock()
			running++
			if running > 1 {
				overlaps++
			}
			mu.Unlock()
			if rec.record() == 1 {
				time.Sleep(25 * time.Second) // from 10s to 35s: 20s and 30s are skipped
			} else {
				time.Sleep(time.Second)
			}
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}}
		stop := startTask(t, tk, log)
		time.Sleep(65 * time.Second)
		stop()
		if got, want := rec.times(), seconds(10, 40, 50, 60); !slices.Equal(got, want) {
			t.Errorf("runs at %v, want %v", got, want)
		}
		if overlaps != 0 {
			t.Errorf("%d runs overlapped", overlaps)
		}
		if out := logs.String(); !strings.Contains(out, "runs skipped") || !strings.Contains(out, "skipped=2") || !strings.Contains(out, "task=slow") {
			t.Errorf("no warning about the 2 skipped runs in the log:\n%s", out)
		}
	})
}

// A run ending exactly on a boundary is followed by the run of that
// boundary.
func TestPeriodicRunEndingOnBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, _ := newLogger()
		rec := newRecorder()
		tk := &task{name: "exact", interval: 10 * time.Second, runImmediately: true, fn: func(context.Context) error {
			if rec.record() == 1 {
				time.Sleep(20 * time.Second)
			}
			return nil
		}}
		stop := startTask(t, tk, log)
		time.Sleep(35 * time.Second)
		stop()
		if got, want := rec.times(), seconds(0, 20, 30); !slices.Equal(got, want) {
			t.Errorf("runs at %v, want %v", got, want)
		}
	})
}

func TestPeriodicErrorsAndPanicsKeepTheTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newLogger()
		rec := newRecorder()
		tk := &task{name: "flaky", interval: 10 * time.Second, fn: func(context.Context) error {
			switch rec.record() {
			case 1:
				return errors.New("database unavailable")
			case 2:
				panic("nil hypervisor")
			}
			return nil
		}}
		stop := startTask(t, tk, log)
		time.Sleep(45 * time.Second)
		stop()
		if got, want := rec.times(), seconds(10, 20, 30, 40); !slices.Equal(got, want) {
			t.Errorf("runs at %v, want %v", got, want)
		}
		out := logs.String()
		for _, want := range []string{
			`msg="service: periodic task failed" task=flaky`, `error="database unavailable"`,
			`msg="service: periodic task panicked" task=flaky`, `panic="nil hypervisor"`, "periodic_test.go",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log does not contain %q:\n%s", want, out)
			}
		}
	})
}

func TestPeriodicStopCancelsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newLogger()
		rec := newRecorder()
		tk := &task{name: "long", interval: 10 * time.Second, runImmediately: true, fn: func(ctx context.Context) error {
			rec.record()
			<-ctx.Done()
			return ctx.Err()
		}}
		stop := startTask(t, tk, log)
		time.Sleep(5 * time.Second)
		start := time.Now()
		stop()
		if d := time.Since(start); d != 0 {
			t.Errorf("stopping took %v, want at once", d)
		}
		if got := rec.times(); len(got) != 1 {
			t.Errorf("runs at %v, want one", got)
		}
		out := logs.String()
		if strings.Contains(out, "level=ERROR") || !strings.Contains(out, "periodic task stopped") {
			t.Errorf("a cancelled run is not an error, and is logged at debug level:\n%s", out)
		}
	})
}

// Before its first run, a stop ends the task without running it.
func TestPeriodicStopBeforeFirstRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, _ := newLogger()
		rec := newRecorder()
		stop := startTask(t, &task{name: "never", interval: time.Hour, fn: func(context.Context) error { rec.record(); return nil }}, log)
		time.Sleep(time.Minute)
		stop()
		if got := rec.times(); len(got) != 0 {
			t.Errorf("runs at %v, want none", got)
		}
	})
}

func TestPeriodicRunsWithAnAdminContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := newLogger()
		var ids []string
		var mu sync.Mutex
		tk := &task{name: "admin", interval: time.Second, runImmediately: true, fn: func(ctx context.Context) error {
			rc, ok := oslocontext.FromContext(ctx)
			if !ok || !rc.IsAdmin || rc.UserID != "" {
				t.Errorf("run context = %v, %v, want an admin RequestContext", rc, ok)
				return nil
			}
			mu.Lock()
			ids = append(ids, rc.RequestID)
			mu.Unlock()
			return nil
		}}
		stop := startTask(t, tk, log)
		time.Sleep(1500 * time.Millisecond)
		stop()
		if len(ids) != 2 || ids[0] == ids[1] {
			t.Errorf("request ids %v, want two different ones", ids)
		}
		if out := logs.String(); len(ids) > 0 && !strings.Contains(out, "request_id="+ids[0]) {
			t.Errorf("the run's request id is not logged:\n%s", out)
		}
	})
}
