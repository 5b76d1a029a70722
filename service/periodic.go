package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/oslocontext"
)

// DefaultTaskInterval is the interval of a periodic task added with
// interval 0, as oslo's periodic_task decorator does.
const DefaultTaskInterval = 60 * time.Second

// task is a periodic task.
type task struct {
	name           string
	interval       time.Duration
	fn             func(context.Context) error
	initialDelay   time.Duration
	runImmediately bool
}

// TaskOption configures a periodic task.
type TaskOption interface {
	applyTask(*task) error
}

type taskOptionFunc func(*task) error

func (f taskOptionFunc) applyTask(t *task) error { return f(t) }

// RunImmediately makes the first run of the task start as soon as the
// task starts (after its InitialDelay), instead of one interval later:
// oslo's run_immediately. Default: false.
func RunImmediately(on bool) TaskOption {
	return taskOptionFunc(func(t *task) error {
		t.runImmediately = on
		return nil
	})
}

// InitialDelay delays the start of the task's schedule by d, counted
// from the moment the service starts serving: the first run comes d
// later, or d plus the interval unless RunImmediately. Services use it
// to spread the tasks of many hosts (Nova's periodic_fuzzy_delay).
// Default: 0.
func InitialDelay(d time.Duration) TaskOption {
	return taskOptionFunc(func(t *task) error {
		if d < 0 {
			return fmt.Errorf("%w: initial delay %v is negative", messaging.ErrInvalidOption, d)
		}
		t.initialDelay = d
		return nil
	})
}

// loop runs the task on its schedule until ctx is done.
//
// Runs are spaced from the start of the previous one, on the grid
// start, start+interval, start+2*interval...; a run never overlaps the
// previous one: the boundaries that pass while a run is still going are
// skipped, and the next run starts at the first boundary not before the
// end of the slow one.
func (t *task) loop(ctx context.Context, log *slog.Logger) {
	log = log.With("task", t.name)
	next := time.Now().Add(t.initialDelay)
	if !t.runImmediately {
		next = next.Add(t.interval)
	}
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if ctx.Err() != nil {
			return
		}
		t.run(ctx, log)
		next = next.Add(t.interval)
		if late := time.Since(next); late > 0 {
			skipped := (late + t.interval - 1) / t.interval
			next = next.Add(skipped * t.interval)
			if ctx.Err() == nil {
				log.Warn("service: periodic task took longer than its interval; runs skipped",
					"interval", t.interval, "skipped", int64(skipped))
			}
		}
		timer.Reset(time.Until(next))
	}
}

// run runs the task once, with a new admin request context, and logs
// its error or panic.
func (t *task) run(ctx context.Context, log *slog.Logger) {
	rc := oslocontext.NewAdmin()
	ctx = oslocontext.NewContext(ctx, rc)
	log = log.With("request_id", rc.RequestID)
	log.Debug("service: running periodic task")
	err := t.call(ctx)
	var pe *panicError
	switch {
	case err == nil:
	case errors.As(err, &pe):
		log.Error("service: periodic task panicked", "panic", fmt.Sprint(pe.value), "stack", pe.stack)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		log.Debug("service: periodic task stopped", "error", err)
	default:
		log.Error("service: periodic task failed", "error", err)
	}
}

func (t *task) call(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return t.fn(ctx)
}

// panicError is a recovered panic of a task or a reload.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }
