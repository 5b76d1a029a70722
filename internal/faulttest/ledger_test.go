package faulttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{nil, ""},
		{fmt.Errorf("rpc: call x: %w", context.DeadlineExceeded), ErrorTimeout},
		{messaging.ErrHeartbeatTimeout, ErrorTimeout},
		{fmt.Errorf("x: %w", messaging.ErrDeliveryFailure), ErrorDelivery},
		{messaging.ErrUndeliverable, ErrorDelivery},
		{messaging.ErrUnconfirmed, ErrorDelivery},
		{fmt.Errorf("x: %w", rpc.NewRemoteError("builtins.ValueError", "bad")), ErrorRemote},
		{messaging.ErrClosed, ErrorClosed},
		{rpc.ErrServerClosed, ErrorClosed},
		{context.Canceled, ErrorOther},
		{errors.New("boom"), ErrorOther},
	} {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// TestLedgerSyntheticRun feeds a ledger a run whose outcomes are known
// and checks every count of its report.
func TestLedgerSyntheticRun(t *testing.T) {
	l := NewLedger(LedgerOptions{Name: "synthetic", Slack: 100 * time.Millisecond})
	w := l.StartWatchdog(t)
	future, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	timeout := fmt.Errorf("call: %w", context.DeadlineExceeded)

	// Calls: 3 answered by one server, 1 executed twice (a duplicate),
	// 1 timed out unexecuted, 1 executed after its deadline, 1
	// "answered" without execution, 1 failed remotely after execution,
	// and 1 still blocked long past its deadline.
	for range 3 {
		id := l.Sent(future, OpCall)
		l.Executed(id, "srv1")
		l.Returned(id, nil)
	}
	dup := l.Sent(future, OpCall)
	l.Executed(dup, "srv1")
	l.Executed(dup, "srv2")
	l.Returned(dup, nil)
	lost := l.Sent(past, OpCall)
	l.Returned(lost, timeout)
	late := l.Sent(past, OpCall)
	l.Returned(late, timeout)
	l.Executed(late, "srv2")
	swe := l.Sent(future, OpCall)
	l.Returned(swe, nil)
	remote := l.Sent(future, OpCall)
	l.Executed(remote, "srv1")
	l.Returned(remote, rpc.NewRemoteError("ValueError", "no"))
	l.Returned(remote, nil) // only the first outcome counts
	hung := l.Sent(past, OpCall)

	// Casts: 2 delivered, 1 confirmed and lost, 1 failed (unconfirmed)
	// but executed all the same, 1 closed.
	for range 2 {
		id := l.Sent(future, OpCast)
		l.Returned(id, nil)
		l.Executed(id, "srv1")
	}
	castLost := l.Sent(future, OpCast)
	l.Returned(castLost, nil)
	unconfirmed := l.Sent(future, OpCast)
	l.Returned(unconfirmed, messaging.ErrUnconfirmed)
	l.Executed(unconfirmed, "srv2")
	closed := l.Sent(future, OpCast)
	l.Returned(closed, messaging.ErrClosed)

	// Fanout: one executed by both servers (no duplicate), one twice by
	// srv1 (a duplicate, one extra execution).
	fan := l.Sent(future, OpFanout)
	l.Returned(fan, nil)
	l.Executed(fan, "srv1")
	l.Executed(fan, "srv2")
	fanDup := l.Sent(future, OpFanout)
	l.Returned(fanDup, nil)
	l.Executed(fanDup, "srv1")
	l.Executed(fanDup, "srv2")
	l.Executed(fanDup, "srv1")

	// Notifications: one received twice, one pending, and a stranger.
	note := l.Sent(future, OpNotify)
	l.Returned(note, nil)
	l.Executed(note, "listener")
	l.Executed(note, "listener")
	l.Sent(future, OpNotify)
	l.Executed("L000000-000001", "listener")

	// A fault, healed, then a success sent after it.
	l.MarkFault()
	l.MarkHealed()
	after := l.Sent(future, OpCall)
	time.Sleep(20 * time.Millisecond)
	l.Executed(after, "srv1")
	l.Returned(after, nil)

	// The watchdog catches the hung caller and keeps the stacks.
	deadline := time.Now().Add(testTimeout)
	for l.Report().HungStacks == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.Stop()
	r := l.Report()

	wantCalls := OpStats{
		Sent: 10, OK: 6, Errors: map[ErrorKind]int{ErrorTimeout: 2, ErrorRemote: 1}, Pending: 1,
		Executed: 7, Executions: 8, Duplicates: 1, DuplicateExecutions: 1,
		Lost: 1, Unexecuted: 1, Late: 1,
	}
	wantCasts := OpStats{
		Sent: 5, OK: 3, Errors: map[ErrorKind]int{ErrorDelivery: 1, ErrorClosed: 1},
		Executed: 3, Executions: 3, Lost: 1, Unexecuted: 1,
	}
	wantFanouts := OpStats{
		Sent: 2, OK: 2, Errors: map[ErrorKind]int{}, Executed: 2, Executions: 5,
		Duplicates: 1, DuplicateExecutions: 1,
	}
	wantNotes := OpStats{
		Sent: 2, OK: 1, Errors: map[ErrorKind]int{}, Pending: 1, Executed: 1, Executions: 2,
		Duplicates: 1, DuplicateExecutions: 1,
	}
	for _, c := range []struct {
		name      string
		got, want OpStats
	}{{"calls", r.Calls, wantCalls}, {"casts", r.Casts, wantCasts}, {"fanouts", r.Fanouts, wantFanouts}, {"notifications", r.Notifications, wantNotes}} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, c.got, c.want)
		}
	}
	if r.SuccessWithoutExecution != 1 || r.Lost != 1 || r.LostCalls != 1 || r.Duplicates != 3 ||
		r.Late != 1 || r.UnknownExecutions != 1 {
		t.Errorf("report totals: swe %d lost %d lost-calls %d dup %d late %d unknown %d; want 1 1 1 3 1 1",
			r.SuccessWithoutExecution, r.Lost, r.LostCalls, r.Duplicates, r.Late, r.UnknownExecutions)
	}
	// The calls sent with a past deadline returned, or are still
	// blocked, a second past it: all three count as hung.
	if want := []string{late, lost, hung}; fmt.Sprint(r.HungCallers) != fmt.Sprint(sorted(want)) {
		t.Errorf("HungCallers = %v, want %v", r.HungCallers, sorted(want))
	}
	if !strings.Contains(r.HungStacks, "goroutine ") || r.MaxOverrun < time.Second {
		t.Errorf("HungStacks (%d bytes) or MaxOverrun %v missing", len(r.HungStacks), r.MaxOverrun)
	}
	if !r.Recovered || r.TimeToRecover < 20*time.Millisecond {
		t.Errorf("TimeToRecover = %v, %v; want at least 20ms", r.TimeToRecover, r.Recovered)
	}
	line := r.String()
	for _, want := range []string{
		"synthetic: call 10 ok 6 err timeout=2,remote=1 pending 1 exec 8",
		"| cast 5 ok 3 err delivery=1,closed=1 exec 3",
		"| fanout 2 ok 2 exec 5 | notify 2 ok 1 pending 1 exec 2",
		"| dup 3 lost 1 lost-calls 1 late 1 swe 1 unknown 1 | hung 3 overrun",
		"| leaks q=- c=- g=- | recover ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("String() = %q\nwant it to contain %q", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("String() is not one line: %q", line)
	}

	// Every assertion fails, with the ids.
	rec := &recorder{TB: t}
	l.AssertNoHungCallers(rec)
	l.AssertAllReturned(rec)
	l.AssertNoSuccessWithoutExecution(rec)
	l.AssertNoDuplicates(rec)
	l.AssertNoLost(rec)
	l.AssertNoLateExecutions(rec)
	l.AssertNoLeaks(rec)
	got := rec.failures()
	for _, want := range []string{
		"3 callers blocked past deadline + 100ms", hung, "goroutine ",
		"2 callers have not returned",
		"1 calls succeeded without any execution: " + swe,
		"3 duplicated messages", dup + " (call) executed by srv1, srv2", fanDup + " (fanout) executed by srv1, srv2, srv1",
		"1 confirmed messages were never executed: " + castLost,
		"1 calls executed after their deadline: " + late,
		"AssertNoLeaks without CheckLeaks or CheckGoroutines",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("assertion failures lack %q:\n%s", want, truncate(got, 4000))
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestLedgerCleanRun checks that the assertions pass on a run without
// faults, and the waits.
func TestLedgerCleanRun(t *testing.T) {
	l := NewLedger(LedgerOptions{})
	l.GoroutineBaseline()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 20 {
		op := []Op{OpCall, OpCast, OpFanout, OpNotify}[i%4]
		id := l.Sent(ctx, op)
		wg.Go(func() {
			l.Executed(id, "srv")
			l.Returned(id, nil)
		})
	}
	if err := l.WaitDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := l.CheckGoroutines(ctx); err != nil {
		t.Fatal(err)
	}
	for _, assert := range []func(testing.TB){
		l.AssertNoHungCallers, l.AssertAllReturned, l.AssertNoSuccessWithoutExecution,
		l.AssertNoDuplicates, l.AssertNoLost, l.AssertNoLateExecutions, l.AssertNoLeaks,
	} {
		assert(t)
	}
	r := l.Report()
	if r.Calls.OK != 5 || r.Notifications.Executions != 5 || r.Recovered || r.Name != "ledger" || l.Slack() != DefaultSlack {
		t.Errorf("report of a clean run: %s", r)
	}

	// A message never executed keeps WaitDelivered waiting, but not
	// WaitReturned.
	id := l.Sent(ctx, OpCast)
	l.Returned(id, nil)
	if err := l.WaitReturned(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if err := l.WaitDelivered(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitDelivered with a lost cast = %v, want DeadlineExceeded", err)
	}
}

func TestLedgerGoroutines(t *testing.T) {
	l := NewLedger(LedgerOptions{Name: "g"})
	if err := l.CheckGoroutines(t.Context()); err == nil {
		t.Error("CheckGoroutines without a baseline succeeded")
	}
	l.GoroutineBaseline()
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-release })
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := l.CheckGoroutines(ctx); err != nil {
		t.Fatal(err)
	}
	r := l.Report()
	if r.LeakedGoroutines != 1 || !strings.Contains(r.GoroutineDump, "TestLedgerGoroutines") {
		t.Errorf("LeakedGoroutines = %d, dump:\n%s", r.LeakedGoroutines, r.GoroutineDump)
	}
	rec := &recorder{TB: t}
	l.AssertNoLeaks(rec)
	if !strings.Contains(rec.failures(), "1 leaked goroutines") {
		t.Errorf("AssertNoLeaks: %q", rec.failures())
	}
	close(release)
	wg.Wait()
	if err := l.CheckGoroutines(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := l.Report(); r.LeakedGoroutines != 0 || !strings.Contains(r.String(), "g=0") {
		t.Errorf("after the goroutine ended: %s", r)
	}
}
