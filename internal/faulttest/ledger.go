package faulttest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// ArgKey is the argument that carries a message's ledger id, e.g.
// {"ledger_id": "L3fa2c1-000042", ...}: the scenario's handlers read it
// to call [Ledger.Executed].
const ArgKey = "ledger_id"

// DefaultSlack is how long past its deadline a caller may stay blocked
// before it counts as hung, unless [LedgerOptions.Slack] says otherwise.
const DefaultSlack = 2 * time.Second

// Op is the kind of a message a scenario sends.
type Op int

// Kinds of messages.
const (
	// OpCall is an RPC call: executed by one server, answered.
	OpCall Op = iota + 1
	// OpCast is a cast to a topic or a server: executed by one server.
	OpCast
	// OpFanout is a fanout cast: executed once by every server of the
	// topic.
	OpFanout
	// OpNotify is a notification: received by one listener (of each
	// pool).
	OpNotify
)

var opNames = map[Op]string{OpCall: "call", OpCast: "cast", OpFanout: "fanout", OpNotify: "notify"}

// String returns "call", "cast", "fanout" or "notify".
func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// ErrorKind is the class of a caller's error, as [Classify] finds it.
type ErrorKind string

// Kinds of errors.
const (
	// ErrorTimeout: the deadline passed (context.DeadlineExceeded,
	// messaging.ErrHeartbeatTimeout).
	ErrorTimeout ErrorKind = "timeout"
	// ErrorDelivery: the message may not have reached the broker
	// (messaging.ErrDeliveryFailure, ErrUndeliverable, ErrUnconfirmed).
	ErrorDelivery ErrorKind = "delivery"
	// ErrorRemote: the method ran and failed (*rpc.RemoteError).
	ErrorRemote ErrorKind = "remote"
	// ErrorClosed: the transport, client or server was closed
	// (messaging.ErrClosed, rpc.ErrServerClosed).
	ErrorClosed ErrorKind = "closed"
	// ErrorOther: anything else, context.Canceled included.
	ErrorOther ErrorKind = "other"
)

// errorKinds in report order.
var errorKinds = []ErrorKind{ErrorTimeout, ErrorDelivery, ErrorRemote, ErrorClosed, ErrorOther}

// Classify returns the kind of err, or "" for nil. A remote error is
// ErrorRemote even if it maps to a local error of another kind.
func Classify(err error) ErrorKind {
	var remote *rpc.RemoteError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &remote):
		return ErrorRemote
	case errors.Is(err, context.DeadlineExceeded):
		return ErrorTimeout
	case errors.Is(err, messaging.ErrDeliveryFailure),
		errors.Is(err, messaging.ErrUndeliverable),
		errors.Is(err, messaging.ErrUnconfirmed):
		return ErrorDelivery
	case errors.Is(err, messaging.ErrClosed), errors.Is(err, rpc.ErrServerClosed):
		return ErrorClosed
	}
	return ErrorOther
}

// LedgerOptions configures a Ledger. The zero value is usable.
type LedgerOptions struct {
	// Name labels the report, e.g. the scenario's id. Default: "ledger".
	Name string
	// Slack is how long past its deadline a caller may stay blocked
	// before it counts as hung. Default: [DefaultSlack].
	Slack time.Duration
}

// Ledger counts a scenario's outcomes: what callers sent and got back,
// what servers and listeners executed, what leaked and how long the
// system took to recover. Each message carries a ledger id (see
// [ArgKey]) from [Ledger.Sent] to the handler that calls
// [Ledger.Executed]. It is safe for concurrent use.
type Ledger struct {
	name    string
	slack   time.Duration
	prefix  string
	created time.Time

	mu          sync.Mutex // guards the fields below
	seq         int
	entries     map[string]*entry
	unknown     int                  // executions of ids the ledger did not issue
	hung        map[string]time.Time // callers the watchdog caught, when
	stacks      string               // goroutine stacks when the first hung callers were caught
	fault, heal time.Time
	changed     chan struct{} // closed and replaced at each outcome

	leaksChecked     bool
	leakedQueues     []QueueInfo
	leakedConns      []ConnectionInfo
	baseline         goleak.Option // nil before GoroutineBaseline
	goroutineChecked bool
	leakedGoroutines int
	goroutineDump    string
}

// entry is one message.
type entry struct {
	id       string
	op       Op
	sent     time.Time
	deadline time.Time // zero: none
	returned time.Time // zero: not yet
	err      error
	execs    []execution
}

type execution struct {
	by string
	at time.Time
}

// NewLedger returns an empty ledger.
func NewLedger(opts LedgerOptions) *Ledger {
	if opts.Name == "" {
		opts.Name = "ledger"
	}
	if opts.Slack <= 0 {
		opts.Slack = DefaultSlack
	}
	return &Ledger{
		name:    opts.Name,
		slack:   opts.Slack,
		prefix:  "L" + randomHex(3),
		created: time.Now(),
		entries: map[string]*entry{},
		hung:    map[string]time.Time{},
		changed: make(chan struct{}),
	}
}

// Slack returns how long past its deadline a caller may stay blocked
// before it counts as hung.
func (l *Ledger) Slack() time.Duration { return l.slack }

// Sent records that a caller is about to send a message of kind op with
// ctx (whose deadline, if any, is the caller's) and returns the
// message's new ledger id, unique to the ledger and unlikely to match
// another ledger's. Put it in the message's arguments under [ArgKey].
// A send whose ctx has no deadline can never count as hung (nor a call
// as executed late): give every send one.
func (l *Ledger) Sent(ctx context.Context, op Op) string {
	deadline, _ := ctx.Deadline()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	id := fmt.Sprintf("%s-%06d", l.prefix, l.seq)
	l.entries[id] = &entry{id: id, op: op, sent: now, deadline: deadline}
	return id
}

// Returned records what the caller of message id got back: nil for a
// call's reply or a cast's or notification's confirmation, or the
// error. Only the first outcome of an id counts; unknown ids are
// ignored.
func (l *Ledger) Returned(id string, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[id]
	if e == nil || !e.returned.IsZero() {
		return
	}
	e.returned, e.err = now, err
	l.notifyLocked()
}

// Executed records that by (a server or listener name) started to
// execute, or received, message id. Call it first thing in the handler,
// before the reply can reach the caller. Ids the ledger did not issue
// are counted as unknown.
func (l *Ledger) Executed(id, by string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[id]
	if e == nil {
		l.unknown++
		return
	}
	e.execs = append(e.execs, execution{by: by, at: now})
	l.notifyLocked()
}

func (l *Ledger) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// MarkFault records that the fault was injected now; the time to
// recover is measured from the later of this and [Ledger.MarkHealed].
func (l *Ledger) MarkFault() {
	l.mu.Lock()
	l.fault = time.Now()
	l.mu.Unlock()
}

// MarkHealed records that the fault was removed now (the node restarted,
// the proxy re-enabled).
func (l *Ledger) MarkHealed() {
	l.mu.Lock()
	l.heal = time.Now()
	l.mu.Unlock()
}

// WaitReturned waits until every caller has returned, or ctx ends (then
// it returns ctx's error).
func (l *Ledger) WaitReturned(ctx context.Context) error {
	return l.wait(ctx, func(e *entry) bool { return !e.returned.IsZero() })
}

// WaitDelivered waits until every caller has returned and every message
// whose sending succeeded has been executed at least once, or ctx ends
// (then it returns ctx's error). Give ctx the settle time after which
// the missing ones count as lost.
func (l *Ledger) WaitDelivered(ctx context.Context) error {
	return l.wait(ctx, func(e *entry) bool {
		return !e.returned.IsZero() && (e.err != nil || len(e.execs) > 0)
	})
}

func (l *Ledger) wait(ctx context.Context, done func(*entry) bool) error {
	for {
		l.mu.Lock()
		all := true
		for _, e := range l.entries {
			if !done(e) {
				all = false
				break
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("faulttest: ledger %s: %w", l.name, ctx.Err())
		case <-changed:
		}
	}
}

// LeakFilter selects the queues and connections that [Ledger.CheckLeaks]
// counts. The zero value selects everything.
type LeakFilter struct {
	// QueuePrefixes select the queues whose names begin with one of
	// them, e.g. "reply_" and "<topic>_fanout_"; none selects every
	// queue.
	QueuePrefixes []string
	// ConnectionPrefixes select the connections whose client-provided
	// connection_name begins with one of them; none selects every
	// connection. The node's own probes are never selected.
	ConnectionPrefixes []string
}

func hasPrefix(name string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// CheckLeaks lists the queues and connections of node that f selects
// and records them as leaked. Call it once the clients and servers are
// closed: it polls until none is left or ctx ends (the broker drops
// closed connections asynchronously, and a queue's x-expires may be
// due) and records the last listing. It returns an error only if no
// listing succeeded.
func (l *Ledger) CheckLeaks(ctx context.Context, node *Node, f LeakFilter) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	observed := false
	for {
		queues, qerr := node.ListQueues(ctx)
		conns, cerr := node.ListConnections(ctx)
		if err := errors.Join(qerr, cerr); err != nil {
			if observed && ctx.Err() != nil {
				return nil
			}
			return err
		}
		observed = true
		var lq []QueueInfo
		for _, q := range queues {
			if hasPrefix(q.Name, f.QueuePrefixes) {
				lq = append(lq, q)
			}
		}
		var lc []ConnectionInfo
		for _, c := range conns {
			if c.Name != probeName && hasPrefix(c.Name, f.ConnectionPrefixes) {
				lc = append(lc, c)
			}
		}
		l.mu.Lock()
		l.leaksChecked, l.leakedQueues, l.leakedConns = true, lq, lc
		l.mu.Unlock()
		if len(lq) == 0 && len(lc) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// GoroutineBaseline records the goroutines running now, before the
// scenario starts its clients and servers, for [Ledger.CheckGoroutines].
func (l *Ledger) GoroutineBaseline() {
	opt := goleak.IgnoreCurrent()
	l.mu.Lock()
	l.baseline = opt
	l.mu.Unlock()
}

// CheckGoroutines records the goroutines started since
// [Ledger.GoroutineBaseline] that are still running, waiting for them to
// end until ctx does. Call it after closing everything the scenario
// started (a running [Watchdog] counts). It returns an error if there is
// no baseline.
func (l *Ledger) CheckGoroutines(ctx context.Context) error {
	l.mu.Lock()
	base := l.baseline
	l.mu.Unlock()
	if base == nil {
		return errors.New("faulttest: CheckGoroutines without GoroutineBaseline")
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := goleak.Find(base)
		count, dump := 0, ""
		if err != nil {
			dump = err.Error()
			count = len(goroutineHeaderRE.FindAllStringIndex(dump, -1))
		}
		l.mu.Lock()
		l.goroutineChecked, l.leakedGoroutines, l.goroutineDump = true, count, truncate(dump, 256<<10)
		l.mu.Unlock()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// goroutineHeaderRE matches the header goleak writes for each goroutine.
var goroutineHeaderRE = regexp.MustCompile(`Goroutine \d+ in state `)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n... (truncated)"
}

// OpStats are the outcomes of one kind of message.
type OpStats struct {
	Sent    int               // messages sent
	OK      int               // sends that returned nil: replies, confirmations
	Errors  map[ErrorKind]int // sends that returned an error, by kind
	Pending int               // callers that have not returned
	// Executed is the number of ids executed at least once, and
	// Executions the executions in all.
	Executed   int
	Executions int
	// Duplicates is the number of ids executed more than once (for
	// fanout: more than once by one server), and DuplicateExecutions
	// the executions beyond the first.
	Duplicates          int
	DuplicateExecutions int
	// Lost is the number of ids whose send returned nil but which were
	// never executed: for calls, success without execution.
	Lost int
	// Unexecuted is the number of ids whose send failed and which were
	// never executed (a call's timeout without execution is allowed by
	// at-most-once).
	Unexecuted int
	// Late is the number of executions that started after the caller's
	// deadline (calls only).
	Late int
}

// ErrorCount returns the number of errors of every kind.
func (s OpStats) ErrorCount() int {
	n := 0
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Report sums up a ledger. It is a copy: later outcomes do not change
// it.
type Report struct {
	Name          string
	Calls         OpStats
	Casts         OpStats
	Fanouts       OpStats
	Notifications OpStats
	// SuccessWithoutExecution counts calls that returned a reply that
	// no server produced: always a bug.
	SuccessWithoutExecution int
	// Lost counts casts and notifications confirmed but never
	// executed; LostCalls counts calls that failed and never executed.
	Lost      int
	LostCalls int
	// Duplicates and Late sum the kinds' counts.
	Duplicates int
	Late       int
	// UnknownExecutions counts executions of ids this ledger did not
	// issue (messages of an earlier run, or corrupted ones).
	UnknownExecutions int
	// HungCallers are the ids of callers that were still blocked past
	// their deadline plus the slack (caught by the watchdog, still
	// blocked now, or returned too late), sorted; HungStacks are the
	// goroutine stacks the watchdog took when it first caught one.
	HungCallers []string
	HungStacks  string
	// MaxOverrun is the longest a caller returned (or is still blocked)
	// past its deadline.
	MaxOverrun time.Duration
	// Leaks, as recorded by CheckLeaks and CheckGoroutines (zero when
	// they were not called; see LeaksChecked and GoroutinesChecked).
	LeaksChecked      bool
	LeakedQueues      []QueueInfo
	LeakedConnections []ConnectionInfo
	GoroutinesChecked bool
	LeakedGoroutines  int
	GoroutineDump     string
	// TimeToRecover is the time from the fault (or its healing, if
	// marked) to the return of the first successful send made after
	// the fault; Recovered is false when there is none or no fault was
	// marked.
	TimeToRecover time.Duration
	Recovered     bool
	// Elapsed is the time since the ledger was made.
	Elapsed time.Duration
}

// Report sums up the ledger as of now.
func (l *Ledger) Report() Report {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Report{
		Name:              l.name,
		UnknownExecutions: l.unknown,
		HungStacks:        l.stacks,
		LeaksChecked:      l.leaksChecked,
		LeakedQueues:      slices.Clone(l.leakedQueues),
		LeakedConnections: slices.Clone(l.leakedConns),
		GoroutinesChecked: l.goroutineChecked,
		LeakedGoroutines:  l.leakedGoroutines,
		GoroutineDump:     l.goroutineDump,
		Elapsed:           now.Sub(l.created),
	}
	stats := map[Op]*OpStats{OpCall: &r.Calls, OpCast: &r.Casts, OpFanout: &r.Fanouts, OpNotify: &r.Notifications}
	for _, s := range stats {
		s.Errors = map[ErrorKind]int{}
	}
	var firstOK time.Time
	mark := l.heal
	if mark.IsZero() || mark.Before(l.fault) {
		mark = l.fault
	}
	for _, e := range l.entries {
		s := stats[e.op]
		if s == nil {
			continue
		}
		s.Sent++
		switch {
		case e.returned.IsZero():
			s.Pending++
		case e.err == nil:
			s.OK++
			if !l.fault.IsZero() && !e.sent.Before(l.fault) && !e.returned.Before(mark) &&
				(firstOK.IsZero() || e.returned.Before(firstOK)) {
				firstOK = e.returned
			}
		default:
			s.Errors[Classify(e.err)]++
		}
		if len(e.execs) > 0 {
			s.Executed++
			s.Executions += len(e.execs)
			if extra := duplicates(e); extra > 0 {
				s.Duplicates++
				s.DuplicateExecutions += extra
			}
		} else if !e.returned.IsZero() {
			if e.err == nil {
				s.Lost++
			} else {
				s.Unexecuted++
			}
		}
		if !e.deadline.IsZero() {
			if e.op == OpCall {
				for _, x := range e.execs {
					if x.at.After(e.deadline) {
						s.Late++
					}
				}
			}
			end := e.returned
			if end.IsZero() {
				end = now
			}
			over := end.Sub(e.deadline)
			r.MaxOverrun = max(r.MaxOverrun, over)
			if _, caught := l.hung[e.id]; caught || over > l.slack {
				r.HungCallers = append(r.HungCallers, e.id)
			}
		}
	}
	slices.Sort(r.HungCallers)
	r.SuccessWithoutExecution = r.Calls.Lost
	r.Lost = r.Casts.Lost + r.Fanouts.Lost + r.Notifications.Lost
	r.LostCalls = r.Calls.Unexecuted
	for _, s := range stats {
		r.Duplicates += s.Duplicates
		r.Late += s.Late
	}
	if !firstOK.IsZero() {
		r.TimeToRecover, r.Recovered = firstOK.Sub(mark), true
	}
	return r
}

// duplicates returns the executions of e beyond those its kind allows.
func duplicates(e *entry) int {
	if e.op != OpFanout {
		return len(e.execs) - 1
	}
	per := map[string]int{}
	extra := 0
	for _, x := range e.execs {
		per[x.by]++
		if per[x.by] > 1 {
			extra++
		}
	}
	return extra
}

// String returns the report as one line of a results table, e.g.
//
//	S1: call 40 ok 38 err timeout=2 | cast 20 ok 20 | fanout 0 | notify 0 | dup 0 lost 0 lost-calls 2 late 0 swe 0 unknown 0 | hung 0 overrun 0s | leaks q=0 c=0 g=0 | recover 1.2s | 14.1s
func (r Report) String() string {
	var b strings.Builder
	b.WriteString(r.Name + ":")
	for i, s := range []OpStats{r.Calls, r.Casts, r.Fanouts, r.Notifications} {
		if i > 0 {
			b.WriteString(" |")
		}
		fmt.Fprintf(&b, " %s %d", Op(i+1), s.Sent)
		if s.Sent == 0 {
			continue
		}
		fmt.Fprintf(&b, " ok %d", s.OK)
		if n := s.ErrorCount(); n > 0 {
			b.WriteString(" err")
			sep := " "
			for _, k := range errorKinds {
				if c := s.Errors[k]; c > 0 {
					fmt.Fprintf(&b, "%s%s=%d", sep, k, c)
					sep = ","
				}
			}
		}
		if s.Pending > 0 {
			fmt.Fprintf(&b, " pending %d", s.Pending)
		}
		fmt.Fprintf(&b, " exec %d", s.Executions)
	}
	fmt.Fprintf(&b, " | dup %d lost %d lost-calls %d late %d swe %d unknown %d",
		r.Duplicates, r.Lost, r.LostCalls, r.Late, r.SuccessWithoutExecution, r.UnknownExecutions)
	fmt.Fprintf(&b, " | hung %d overrun %v", len(r.HungCallers), max(r.MaxOverrun, 0).Round(time.Millisecond))
	leak := func(checked bool, n int) string {
		if !checked {
			return "-"
		}
		return fmt.Sprint(n)
	}
	fmt.Fprintf(&b, " | leaks q=%s c=%s g=%s", leak(r.LeaksChecked, len(r.LeakedQueues)),
		leak(r.LeaksChecked, len(r.LeakedConnections)), leak(r.GoroutinesChecked, r.LeakedGoroutines))
	if r.Recovered {
		fmt.Fprintf(&b, " | recover %v", r.TimeToRecover.Round(time.Millisecond))
	} else {
		b.WriteString(" | recover -")
	}
	fmt.Fprintf(&b, " | %v", r.Elapsed.Round(100*time.Millisecond))
	return b.String()
}
