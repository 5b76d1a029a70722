package rpc

import (
	"encoding/json"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the request counters of a [Server], returned by
// [Server.Stats] and, under "stats", by the introspection method
// describe (see [WithIntrospection]).
//
// Every request the server takes from the broker is counted, whether an
// endpoint serves it or not, except, on a server with introspection, the
// requests in [IntrospectionNamespace]: watching a server does not
// change what it reports. Each counter is exact, but a Stats is not an atomic
// snapshot of all of them: a request finishing while Stats runs may be
// counted by some counters and not yet by others.
//
// In JSON, durations are seconds, as floating-point numbers:
//
//	{"received": 7, "calls": 5, "casts": 2, "in_flight": 1, "failures": 1,
//	 "failures_by_class": {"builtins.ValueError": 1}, "reply_failures": 0,
//	 "processing_seconds_total": 0.0123, "processing_seconds_max": 0.01}
type Stats struct {
	// Received counts the requests taken from the broker: Calls + Casts.
	Received uint64
	// Calls counts the received requests that wait for a reply.
	Calls uint64
	// Casts counts the received requests that do not, fanout casts
	// included.
	Casts uint64
	// InFlight is the number of requests being processed: received,
	// and not yet finished. A call finishes just before its reply is
	// sent, so a caller never sees its own answered call in flight.
	InFlight int64
	// Failures counts the requests whose processing failed: the method
	// returned an error or panicked, no endpoint served it, its
	// arguments or result could not be decoded or encoded.
	Failures uint64
	// FailuresByClass splits Failures by the exception class a caller
	// receives, "module.Class" as oslo names it (for example
	// "builtins.ValueError" or
	// "oslo_messaging.rpc.dispatcher.NoSuchMethod"); casts are counted
	// under the class a call would have received. It is nil when there
	// were no failures; the map belongs to the caller.
	FailuresByClass map[string]uint64
	// ReplyFailures counts the calls whose reply could not be sent.
	ReplyFailures uint64
	// ProcessingTime is the total time spent processing the finished
	// requests: middleware, dispatch, the method and the encoding of its
	// result, without sending the reply.
	ProcessingTime time.Duration
	// MaxProcessingTime is the longest time one request took.
	MaxProcessingTime time.Duration
}

// MeanProcessingTime returns the mean processing time of the finished
// requests, or 0 if none finished. As the counters are read one by one,
// it is approximate while requests are in flight.
func (st Stats) MeanProcessingTime() time.Duration {
	done := int64(st.Received) - st.InFlight
	if done <= 0 {
		return 0
	}
	return st.ProcessingTime / time.Duration(done)
}

// statsJSON is the JSON form of Stats.
type statsJSON struct {
	Received        uint64            `json:"received"`
	Calls           uint64            `json:"calls"`
	Casts           uint64            `json:"casts"`
	InFlight        int64             `json:"in_flight"`
	Failures        uint64            `json:"failures"`
	FailuresByClass map[string]uint64 `json:"failures_by_class"`
	ReplyFailures   uint64            `json:"reply_failures"`
	ProcessingTotal float64           `json:"processing_seconds_total"`
	ProcessingMax   float64           `json:"processing_seconds_max"`
}

// MarshalJSON encodes st with snake_case keys and durations in seconds.
func (st Stats) MarshalJSON() ([]byte, error) {
	byClass := st.FailuresByClass
	if byClass == nil {
		byClass = map[string]uint64{}
	}
	return json.Marshal(statsJSON{
		Received:        st.Received,
		Calls:           st.Calls,
		Casts:           st.Casts,
		InFlight:        st.InFlight,
		Failures:        st.Failures,
		FailuresByClass: byClass,
		ReplyFailures:   st.ReplyFailures,
		ProcessingTotal: st.ProcessingTime.Seconds(),
		ProcessingMax:   st.MaxProcessingTime.Seconds(),
	})
}

// UnmarshalJSON decodes the form MarshalJSON writes.
func (st *Stats) UnmarshalJSON(data []byte) error {
	var j statsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*st = Stats{
		Received:          j.Received,
		Calls:             j.Calls,
		Casts:             j.Casts,
		InFlight:          j.InFlight,
		Failures:          j.Failures,
		ReplyFailures:     j.ReplyFailures,
		ProcessingTime:    seconds(j.ProcessingTotal),
		MaxProcessingTime: seconds(j.ProcessingMax),
	}
	if len(j.FailuresByClass) > 0 {
		st.FailuresByClass = j.FailuresByClass
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// serverStats collects a server's Stats. The counters of every request
// are atomics; only failures take the mutex, to count them by class.
type serverStats struct {
	received      atomic.Uint64
	calls         atomic.Uint64
	casts         atomic.Uint64
	inFlight      atomic.Int64
	failures      atomic.Uint64
	replyFailures atomic.Uint64
	procNanos     atomic.Int64
	maxNanos      atomic.Int64

	mu      sync.Mutex // guards the fields below
	byClass map[string]uint64
}

// begin counts a request taken from the broker.
func (ss *serverStats) begin(call bool) {
	ss.received.Add(1)
	if call {
		ss.calls.Add(1)
	} else {
		ss.casts.Add(1)
	}
	ss.inFlight.Add(1)
}

// processed records the end of the processing of a request, its time
// and, if err is not nil, its failure. The request is no longer in
// flight: for a call, its reply is about to be sent, so a caller that
// has its reply never sees its own call in flight.
func (ss *serverStats) processed(d time.Duration, err error) {
	defer ss.inFlight.Add(-1)
	n := int64(d)
	ss.procNanos.Add(n)
	for {
		m := ss.maxNanos.Load()
		if n <= m || ss.maxNanos.CompareAndSwap(m, n) {
			break
		}
	}
	if err == nil {
		return
	}
	f := failureFor(err, nil)
	class := f.Module + "." + f.Class
	ss.failures.Add(1)
	ss.mu.Lock()
	if ss.byClass == nil {
		ss.byClass = make(map[string]uint64)
	}
	ss.byClass[class]++
	ss.mu.Unlock()
}

// replyFailed counts a reply that could not be sent.
func (ss *serverStats) replyFailed() { ss.replyFailures.Add(1) }

func (ss *serverStats) snapshot() Stats {
	st := Stats{
		Received:          ss.received.Load(),
		Calls:             ss.calls.Load(),
		Casts:             ss.casts.Load(),
		InFlight:          ss.inFlight.Load(),
		Failures:          ss.failures.Load(),
		ReplyFailures:     ss.replyFailures.Load(),
		ProcessingTime:    time.Duration(ss.procNanos.Load()),
		MaxProcessingTime: time.Duration(ss.maxNanos.Load()),
	}
	ss.mu.Lock()
	if len(ss.byClass) > 0 {
		st.FailuresByClass = maps.Clone(ss.byClass)
	}
	ss.mu.Unlock()
	return st
}

// Stats returns the server's request counters. It does not block and is
// safe to call at any time, before Serve and after it returned included;
// it is meant for in-process metrics exporters. Counting is always on:
// it costs a few atomic operations per request.
func (s *Server) Stats() Stats { return s.stats.snapshot() }
