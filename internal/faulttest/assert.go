package faulttest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Assert methods check one pass rule of the reliability suite on
// the ledger as of now and fail t (with t.Errorf, so that the others
// still run) with the details when it is broken. They may be called
// from any goroutine.

// AssertNoHungCallers fails t if a caller was blocked past its deadline
// plus the slack, showing their ids and the watchdog's goroutine dump.
func (l *Ledger) AssertNoHungCallers(t testing.TB) {
	t.Helper()
	r := l.Report()
	if len(r.HungCallers) == 0 {
		return
	}
	stacks := r.HungStacks
	if stacks == "" {
		stacks = "(no watchdog dump; stacks now:)\n" + allStacks()
	}
	t.Errorf("%s: %d callers blocked past deadline + %v (longest overrun %v): %s\ngoroutines:\n%s",
		r.Name, len(r.HungCallers), l.slack, r.MaxOverrun.Round(time.Millisecond),
		firstIDs(r.HungCallers), truncate(stacks, 256<<10))
}

// AssertAllReturned fails t if a caller has not returned yet.
func (l *Ledger) AssertAllReturned(t testing.TB) {
	t.Helper()
	if ids := l.ids(func(e *entry) bool { return e.returned.IsZero() }); len(ids) > 0 {
		t.Errorf("%s: %d callers have not returned: %s", l.name, len(ids), firstIDs(ids))
	}
}

// AssertNoSuccessWithoutExecution fails t if a call returned a reply
// that no server produced.
func (l *Ledger) AssertNoSuccessWithoutExecution(t testing.TB) {
	t.Helper()
	ids := l.ids(func(e *entry) bool {
		return e.op == OpCall && !e.returned.IsZero() && e.err == nil && len(e.execs) == 0
	})
	if len(ids) > 0 {
		t.Errorf("%s: %d calls succeeded without any execution: %s", l.name, len(ids), firstIDs(ids))
	}
}

// AssertNoDuplicates fails t if a message was executed more often than
// its kind allows, showing by whom.
func (l *Ledger) AssertNoDuplicates(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	var lines []string
	for _, e := range l.entries {
		if len(e.execs) > 0 && duplicates(e) > 0 {
			by := make([]string, len(e.execs))
			for i, x := range e.execs {
				by[i] = x.by
			}
			lines = append(lines, fmt.Sprintf("%s (%s) executed by %s", e.id, e.op, strings.Join(by, ", ")))
		}
	}
	l.mu.Unlock()
	if len(lines) > 0 {
		slices.Sort(lines)
		t.Errorf("%s: %d duplicated messages:\n%s", l.name, len(lines), firstLines(lines))
	}
}

// AssertNoLost fails t if a cast, fanout cast or notification was
// confirmed but never executed.
func (l *Ledger) AssertNoLost(t testing.TB) {
	t.Helper()
	ids := l.ids(func(e *entry) bool {
		return e.op != OpCall && !e.returned.IsZero() && e.err == nil && len(e.execs) == 0
	})
	if len(ids) > 0 {
		t.Errorf("%s: %d confirmed messages were never executed: %s", l.name, len(ids), firstIDs(ids))
	}
}

// AssertNoLateExecutions fails t if a call was executed after its
// caller's deadline.
func (l *Ledger) AssertNoLateExecutions(t testing.TB) {
	t.Helper()
	ids := l.ids(func(e *entry) bool {
		if e.op != OpCall || e.deadline.IsZero() {
			return false
		}
		for _, x := range e.execs {
			if x.at.After(e.deadline) {
				return true
			}
		}
		return false
	})
	if len(ids) > 0 {
		t.Errorf("%s: %d calls executed after their deadline: %s", l.name, len(ids), firstIDs(ids))
	}
}

// AssertNoLeaks fails t if CheckLeaks found queues or connections or
// CheckGoroutines found goroutines, and if neither was called.
func (l *Ledger) AssertNoLeaks(t testing.TB) {
	t.Helper()
	r := l.Report()
	if !r.LeaksChecked && !r.GoroutinesChecked {
		t.Errorf("%s: AssertNoLeaks without CheckLeaks or CheckGoroutines", r.Name)
		return
	}
	for _, q := range r.LeakedQueues {
		t.Errorf("%s: leaked queue %q in vhost %q (messages %d, consumers %d)", r.Name, q.Name, q.VHost, q.Messages, q.Consumers)
	}
	for _, c := range r.LeakedConnections {
		t.Errorf("%s: leaked connection %q (%s, user %s, vhost %s)", r.Name, c.Name, c.Addr, c.User, c.VHost)
	}
	if r.LeakedGoroutines > 0 {
		t.Errorf("%s: %d leaked goroutines:\n%s", r.Name, r.LeakedGoroutines, r.GoroutineDump)
	}
}

// ids returns the sorted ids of the entries for which match is true.
func (l *Ledger) ids(match func(*entry) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, e := range l.entries {
		if match(e) {
			ids = append(ids, e.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// firstIDs lists at most 20 ids.
func firstIDs(ids []string) string {
	if len(ids) > 20 {
		return strings.Join(ids[:20], ", ") + fmt.Sprintf(", ... (%d more)", len(ids)-20)
	}
	return strings.Join(ids, ", ")
}

// firstLines lists at most 20 lines.
func firstLines(lines []string) string {
	if len(lines) > 20 {
		return strings.Join(lines[:20], "\n") + fmt.Sprintf("\n... (%d more)", len(lines)-20)
	}
	return strings.Join(lines, "\n")
}
