package drivertest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/go-oslo/messaging/driver"
)

// testCastOnce checks that a cast is delivered exactly once, to the
// topic as to a server, and that Reply and Heartbeat do nothing for it.
func testCastOnce(s *suite) {
	t := s.t
	l := s.server(s.addr("srv"))
	c := s.open()
	s.cast(c, s.addr(""), castReq("once", seqArgs(1)))
	s.cast(c, s.addr("srv"), castReq("once", seqArgs(2)))
	got := s.receive([]driver.Listener{l}, 2)[0]
	if seqs := seqsOf(t, got); fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("received casts %v, want [1 2], each once", seqs)
	}
	ctx := s.ctx(waitTimeout)
	for _, d := range got {
		if d.Request().IsCall() {
			t.Errorf("cast %d: IsCall() = true", seq(t, d))
		}
		if err := d.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("cast %d: Heartbeat() = %v, want nil", seq(t, d), err)
		}
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`1`)}); err != nil && ctx.Err() == nil {
			t.Errorf("cast %d: Reply() = %v, want nil", seq(t, d), err)
		}
	}
}

// testToServer checks that casts and calls to a server reach that server
// only.
func testToServer(s *suite) {
	t := s.t
	l1, l2 := s.server(s.addr("s1")), s.server(s.addr("s2"))
	c := s.open()
	for i := range 5 {
		s.cast(c, s.addr("s2"), castReq("to_s2", seqArgs(i)))
	}
	got := s.receive([]driver.Listener{l1, l2}, 5)
	if len(got[0]) != 0 {
		t.Errorf("s1 received casts %v sent to s2", seqsOf(t, got[0]))
	}
	if seqs := seqsOf(t, got[1]); fmt.Sprint(seqs) != "[0 1 2 3 4]" {
		t.Errorf("s2 received casts %v, want [0 1 2 3 4]", seqs)
	}

	for name, l := range map[string]driver.Listener{"s1": l1, "s2": l2} {
		s.serve(l, func(ctx context.Context, d driver.Delivery) {
			if err := d.Reply(ctx, &driver.Reply{Result: jsonOf(t, name)}); err != nil && ctx.Err() == nil {
				t.Errorf("%s: Reply() = %v", name, err)
			}
		})
	}
	for i := range 6 {
		server := []string{"s1", "s2"}[i%2]
		r := s.call(c, s.addr(server), callReq("whoami", seqArgs(i)))
		if !jsonEqual(r.Result, jsonOf(t, server)) {
			t.Errorf("call %d to %s answered by %s", i, server, show(r.Result))
		}
	}
}

// testSharedTopic checks that the servers of a topic share its casts:
// each gets some, none gets one twice.
func testSharedTopic(s *suite) {
	t := s.t
	const n = 30
	ls := []driver.Listener{s.server(s.addr("s0")), s.server(s.addr("s1")), s.server(s.addr("s2"))}
	c := s.open()
	for i := range n {
		s.cast(c, s.addr(""), castReq("shared", seqArgs(i)))
	}
	got := s.receive(ls, n)
	count := make(map[int]int)
	for i, ds := range got {
		if len(ds) == 0 {
			t.Errorf("server %d received none of the %d casts", i, n)
		}
		for _, q := range seqsOf(t, ds) {
			count[q]++
		}
	}
	for i := range n {
		if count[i] != 1 {
			t.Errorf("cast %d received %d times, want once", i, count[i])
		}
	}
	if len(count) != n {
		t.Errorf("received %d distinct casts, want %d", len(count), n)
	}
}

// testFanout checks that a fanout cast reaches every server of its topic
// once, and no server of another topic.
func testFanout(s *suite) {
	t := s.t
	ls := []driver.Listener{s.server(s.addr("s0")), s.server(s.addr("s1")), s.server(s.addr("s2"))}
	other := s.server(driver.Address{Exchange: s.exchange, Topic: s.name("other"), Server: "s0"})
	c := s.open()
	fan := s.addr("")
	fan.Fanout = true
	s.cast(c, fan, castReq("fanout", seqArgs(7)))
	got := s.receive(append(ls, other), len(ls))
	for i := range ls {
		if seqs := seqsOf(t, got[i]); fmt.Sprint(seqs) != "[7]" {
			t.Errorf("server %d received %v, want the fanout cast once", i, seqs)
		}
	}
	if len(got[len(ls)]) != 0 {
		t.Errorf("a server of another topic received %v", seqsOf(t, got[len(ls)]))
	}
}

// testExchangesIsolated checks that a topic on one exchange does not get
// the messages for the same topic on another.
func testExchangesIsolated(s *suite) {
	t := s.t
	exA, exB, exC := s.exchange, s.name("ex"), s.name("ex")
	at := func(ex, server string) driver.Address {
		return driver.Address{Exchange: ex, Topic: s.topic, Server: server}
	}
	lA, lB := s.server(at(exA, "srv")), s.server(at(exB, "srv"))
	c := s.open()
	s.cast(c, at(exA, ""), castReq("isolated", seqArgs(1)))
	s.cast(c, at(exA, "srv"), castReq("isolated", seqArgs(2)))
	s.cast(c, at(exB, "srv"), castReq("isolated", seqArgs(3)))
	s.cast(c, at(exC, ""), castReq("isolated", seqArgs(4)))
	s.cast(c, at(exC, "srv"), castReq("isolated", seqArgs(5)))
	got := s.receive([]driver.Listener{lA, lB}, 3)
	if seqs := seqsOf(t, got[0]); fmt.Sprint(seqs) != "[1 2]" {
		t.Errorf("exchange A received %v, want [1 2]", seqs)
	}
	if seqs := seqsOf(t, got[1]); fmt.Sprint(seqs) != "[3]" {
		t.Errorf("exchange B received %v, want [3]", seqs)
	}

	s.serve(lA, func(ctx context.Context, d driver.Delivery) {
		_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"A"`)})
	})
	s.serve(lB, func(ctx context.Context, d driver.Delivery) {
		_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"B"`)})
	})
	if r := s.call(c, at(exB, ""), callReq("which", json.RawMessage(`{}`))); !jsonEqual(r.Result, []byte(`"B"`)) {
		t.Errorf("call on exchange B answered by %s", show(r.Result))
	}
	if r := s.call(c, at(exA, "srv"), callReq("which", json.RawMessage(`{}`))); !jsonEqual(r.Result, []byte(`"A"`)) {
		t.Errorf("call on exchange A answered by %s", show(r.Result))
	}
}

// seqsOf returns the sorted "seq" arguments of ds.
func seqsOf(t *testing.T, ds []driver.Delivery) []int {
	t.Helper()
	out := make([]int, 0, len(ds))
	for _, d := range ds {
		var a struct {
			Seq *int `json:"seq"`
		}
		if err := json.Unmarshal(d.Request().Args, &a); err != nil || a.Seq == nil {
			t.Errorf("request %s: args %s have no seq", d.Request().Method, show(d.Request().Args))
			continue
		}
		out = append(out, *a.Seq)
	}
	sort.Ints(out)
	return out
}
