package faulttest

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// maxStacks bounds the goroutine dump a watchdog keeps.
const maxStacks = 1 << 20

// Watchdog watches a ledger's callers: one still blocked past its
// deadline plus the ledger's slack is recorded as hung, and the first
// time it catches any, it keeps a dump of every goroutine's stack (see
// [Report.HungStacks]) taken while they are still blocked. Made by
// [Ledger.StartWatchdog].
type Watchdog struct {
	l    *Ledger
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// StartWatchdog starts watching the ledger's callers, checking every
// quarter of the slack (between 20 ms and 500 ms), until Stop or the end
// of t.
func (l *Ledger) StartWatchdog(t testing.TB) *Watchdog {
	w := &Watchdog{l: l, stop: make(chan struct{})}
	every := min(max(l.slack/4, 20*time.Millisecond), 500*time.Millisecond)
	w.wg.Go(func() { w.run(every) })
	t.Cleanup(w.Stop)
	return w
}

// Stop stops the watchdog and waits for its goroutine. It is
// idempotent.
func (w *Watchdog) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *Watchdog) run(every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.check(time.Now())
	}
}

// check records the callers blocked past deadline and slack at now.
func (w *Watchdog) check(now time.Time) {
	l := w.l
	l.mu.Lock()
	caught := false
	for id, e := range l.entries {
		if e.deadline.IsZero() || !e.returned.IsZero() || now.Sub(e.deadline) <= l.slack {
			continue
		}
		if _, seen := l.hung[id]; !seen {
			l.hung[id] = now
			caught = true
		}
	}
	dump := caught && l.stacks == ""
	l.mu.Unlock()
	if !dump {
		return
	}
	stacks := allStacks()
	l.mu.Lock()
	if l.stacks == "" {
		l.stacks = stacks
	}
	l.mu.Unlock()
}

// allStacks returns the stacks of every goroutine, at most maxStacks
// bytes of them.
func allStacks() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= maxStacks {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}
