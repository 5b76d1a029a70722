package interoptest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// TestInteropTopology compares what the broker holds for a topic served
// and used by Go and Python processes together with what it holds for a
// topic of the same shape served and used by Python alone, while they
// run, once the Go processes stopped gracefully, and once everything
// stopped.
//
// Shape: servers s1..s4 on the topic (Go s1, s2 and Python s3, s4 in the
// mixed run; all Python in the other), and clients that call the topic
// and a server, cast, and fanout-cast (Go and Python clients in the mixed
// run).
//
// It is not parallel: it tells the Go side's fanout and reply queues
// from Python's by listing the queues before and after the Go side
// starts, which needs a quiet virtual host. Parallel tests wait until
// the serial ones are over.
func TestInteropTopology(t *testing.T) {
	setup(t)
	runSerialCase(t, "mixed_go_python_vs_python_only", func(t *testing.T) {
		e := newEnv(t)
		ctx := e.ctx(caseTimeout)
		topicM, topicP := e.name("topo_mixed"), e.name("topo_python")
		servers := []string{"s1", "s2", "s3", "s4"}

		// Two Python processes: one per run, so that each run has its
		// own Python client transport (and reply queue), like separate
		// services.
		peers := e.startPeers("topology-mixed", "topology-python-only")
		pyM, pyP := peers[0], peers[1]
		rec := newRecorder()
		for _, s := range servers {
			e.startPyServer(pyP, e.s.url(), "", topicP, s, rec)
		}
		var pyMServers []*pyServer
		for _, s := range servers[2:] {
			pyMServers = append(pyMServers, e.startPyServer(pyM, e.s.url(), "", topicM, s, rec))
		}
		e.pyOK(pyP, pyReq{Op: "call", Topic: topicP, Server: "s1", Method: "whoami", Timeout: 30})
		e.pyOK(pyM, pyReq{Op: "call", Topic: topicM, Server: "s3", Method: "whoami", Timeout: 30})
		before := queueNames(listQueues(t, ctx, e.s.vhost))

		// The Go side: a server process and a client process.
		trS, trC := e.transport(), e.transport() // closed below, and again (no-op) at cleanup
		var goServers []*goServer
		for _, s := range servers[:2] {
			goServers = append(goServers, e.startGoServer(trS, messaging.Target{Topic: topicM, Server: s}, rec))
		}
		c := e.client(trC, messaging.Target{Topic: topicM})
		if err := c.Call(e.ctx(opTimeout), "whoami", nil, nil, rpc.ToServer("s3")); err != nil {
			t.Fatalf("Go call to the Python server: %v", err)
		}
		var goQueues []string
		for _, q := range queueNames(listQueues(t, ctx, e.s.vhost)) {
			if !slices.Contains(before, q) {
				goQueues = append(goQueues, q)
			}
		}
		sort.Strings(goQueues)
		fanoutRE := regexp.MustCompile(`^` + regexp.QuoteMeta(topicM) + `_fanout_[0-9a-f]{32}$`)
		// The Go side's own queues: the servers' queues, a fanout queue
		// per server and the client's reply queue (the topic queue
		// exists already, shared with the Python servers).
		var goFanout, goReply []string
		for _, q := range goQueues {
			switch {
			case fanoutRE.MatchString(q):
				goFanout = append(goFanout, q)
			case replyRE.MatchString(q):
				goReply = append(goReply, q)
			}
		}
		goPrivate := slices.Concat(goFanout, goReply)
		if len(goFanout) != 2 || len(goReply) != 1 || !slices.Equal(goQueues, sortedStrings(append([]string{topicM + ".s1", topicM + ".s2"}, goPrivate...))) {
			t.Fatalf("the Go side declared the queues %v; want %s.s1 and .s2, a fanout queue per server and one reply queue", goQueues, topicM)
		}

		// Traffic of every kind, from every client.
		pyTraffic := func(p *peer, topic, goOrPyServer string) {
			e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "whoami", Timeout: 30})
			e.pyOK(p, pyReq{Op: "call", Topic: topic, Server: goOrPyServer, Method: "whoami", Timeout: 30})
			e.pyOK(p, pyReq{Op: "cast", Topic: topic, Method: "record", Args: map[string]any{"item": "cast"}})
			e.pyOK(p, pyReq{Op: "cast", Topic: topic, Fanout: true, Method: "record", Args: map[string]any{"item": "fanout"}})
		}
		pyTraffic(pyP, topicP, "s1")
		pyTraffic(pyM, topicM, "s1") // a Go server
		if err := c.Call(e.ctx(opTimeout), "whoami", nil, nil); err != nil {
			t.Fatalf("Go call to the topic: %v", err)
		}
		if err := c.Cast(e.ctx(opTimeout), "record", map[string]any{"item": "cast"}); err != nil {
			t.Fatalf("Go cast: %v", err)
		}
		if err := c.Prepare(rpc.Fanout(true)).Cast(e.ctx(opTimeout), "record", map[string]any{"item": "fanout"}); err != nil {
			t.Fatalf("Go fanout cast: %v", err)
		}
		// Three casts (one in the Python-only run, two in the mixed run)
		// and three fanout casts, each reaching the four servers.
		rec.waitN(t, e.ctx(opTimeout), "record", 3+3*len(servers))

		snap := takeSnapshot(t, ctx, e.s.vhost)
		compareTopics(t, "while running", snap, topicM, topicP)
		goR, ok := snap.queues[goReply[0]]
		if !ok {
			t.Fatalf("the Go reply queue %s is missing while the client runs", goReply[0])
		}
		// The Python clients' reply queues have the same flags.
		for _, q := range snap.replyQueues() {
			if q.Name == goReply[0] {
				continue
			}
			if got, want := q.shape(), goR.shape(); got != want {
				t.Errorf("reply queue flags: Go %s, Python %s", want, got)
			}
		}

		// Graceful stop of the Go processes.
		for _, g := range goServers {
			e.stopGoServer(g)
		}
		if err := trS.Close(); err != nil {
			t.Errorf("closing the Go server transport: %v", err)
		}
		if err := trC.Close(); err != nil {
			t.Errorf("closing the Go client transport: %v", err)
		}
		snap = takeSnapshot(t, ctx, e.s.vhost)
		for _, q := range goPrivate {
			if _, left := snap.queues[q]; left {
				t.Errorf("queue %s of the stopped Go side is left behind", q)
			}
		}
		for _, b := range snap.bindings {
			if slices.Contains(goPrivate, b.Destination) {
				t.Errorf("binding %+v of the stopped Go side is left behind", b)
			}
		}
		// What oslo keeps for its stopped servers stays: the shared topic
		// queue and the servers' own queues.
		for _, q := range []string{topicM, topicM + ".s1", topicM + ".s2"} {
			if _, ok := snap.queues[q]; !ok {
				t.Errorf("queue %s is gone after the Go servers stopped; oslo keeps it", q)
			}
		}
		if n := countMatching(snap, fanoutRE); n != 2 {
			t.Errorf("%d fanout queues on the mixed topic after the Go side stopped, want the 2 of the Python servers", n)
		}

		// Graceful stop of everything: what is left must be what oslo
		// leaves.
		e.stopPyServers(pyMServers...)
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(func() {
				if err := p.stop(); err != nil {
					t.Errorf("%v", err)
				}
			})
		}
		wg.Wait()
		snap = takeSnapshot(t, ctx, e.s.vhost)
		compareTopics(t, "after everything stopped", snap, topicM, topicP)
		if n := countMatching(snap, fanoutRE); n != 0 {
			t.Errorf("%d fanout queues left on the mixed topic after everything stopped", n)
		}
		// oslo 14 does not delete its reply queues (they expire after
		// rabbit_transient_queues_ttl); the Go client deletes its own
		// on Close, which the check after the Go side stopped covered.
		t.Logf("reply queues left by the stopped Python clients: %d", len(snap.replyQueues()))
		if x, ok := snap.exchanges[messaging.DefaultExchange]; !ok || x.Type != "topic" || x.Durable || x.AutoDelete {
			t.Errorf("control exchange after everything stopped: %+v (present: %v); oslo keeps it: topic, not durable, not auto-delete", x, ok)
		}
	})
}

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}

// replyRE matches reply queue names.
var replyRE = regexp.MustCompile(`^reply_[0-9a-f]{32}$`)

// startPeers starts Python peers of the case at once.
func (e *env) startPeers(names ...string) []*peer {
	e.t.Helper()
	peers := make([]*peer, len(names))
	errs := make([]error, len(names))
	ctx := e.ctx(opTimeout)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { peers[i], errs[i] = startPeer(ctx, e.s, name) })
	}
	wg.Wait()
	for _, p := range peers {
		if p == nil {
			continue
		}
		e.t.Cleanup(func() {
			if err := p.stop(); err != nil {
				e.t.Errorf("%v", err)
			}
			if e.t.Failed() {
				e.t.Logf("python peer %s stderr (tail):\n%s", p.name, p.stderr)
			}
		})
	}
	for _, err := range errs {
		if err != nil {
			e.t.Fatal(err)
		}
	}
	return peers
}

// queueInfo, exchangeInfo and bindingInfo are rabbitmqctl's listings.
type queueInfo struct {
	Name       string          `json:"name"`
	Durable    bool            `json:"durable"`
	AutoDelete bool            `json:"auto_delete"`
	Exclusive  bool            `json:"exclusive"`
	Arguments  json.RawMessage `json:"arguments"`
}

func (q queueInfo) shape() string {
	return fmt.Sprintf("durable=%v auto_delete=%v exclusive=%v arguments=%s", q.Durable, q.AutoDelete, q.Exclusive, canonArgs(q.Arguments))
}

type exchangeInfo struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Durable    bool            `json:"durable"`
	AutoDelete bool            `json:"auto_delete"`
	Internal   bool            `json:"internal"`
	Arguments  json.RawMessage `json:"arguments"`
}

type bindingInfo struct {
	Source          string          `json:"source_name"`
	SourceKind      string          `json:"source_kind"`
	Destination     string          `json:"destination_name"`
	DestinationKind string          `json:"destination_kind"`
	Key             string          `json:"routing_key"`
	Arguments       json.RawMessage `json:"arguments"`
}

// canonArgs renders an argument list in a stable order.
func canonArgs(raw json.RawMessage) string {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return string(raw)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = string(it)
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ",") + "]"
}

// snapshot is the broker's view of the vhost.
type snapshot struct {
	queues    map[string]queueInfo
	exchanges map[string]exchangeInfo
	bindings  []bindingInfo
}

func (s *snapshot) replyQueues() []queueInfo {
	var out []queueInfo
	for _, q := range s.queues {
		if replyRE.MatchString(q.Name) {
			out = append(out, q)
		}
	}
	return out
}

func countMatching(s *snapshot, re *regexp.Regexp) int {
	n := 0
	for name := range s.queues {
		if re.MatchString(name) {
			n++
		}
	}
	return n
}

func listQueues(t *testing.T, ctx context.Context, vhost string) []queueInfo {
	t.Helper()
	return ctlJSON[queueInfo](t, ctx, "list_queues", "-p", vhost, "name", "durable", "auto_delete", "exclusive", "arguments")
}

func queueNames(qs []queueInfo) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Name
	}
	return out
}

// takeSnapshot lists queues, exchanges and bindings (at once, since each
// rabbitmqctl run takes a while).
func takeSnapshot(t *testing.T, ctx context.Context, vhost string) *snapshot {
	t.Helper()
	var (
		qs  []queueInfo
		xs  []exchangeInfo
		bs  []bindingInfo
		wg  sync.WaitGroup
		mu  sync.Mutex
		bad []error
	)
	list := func(dst any, args ...string) {
		out, err := rabbitmqctl(ctx, append(args, "--formatter", "json", "--quiet")...)
		if err == nil {
			err = json.Unmarshal([]byte(out), dst)
		}
		if err != nil {
			mu.Lock()
			bad = append(bad, fmt.Errorf("rabbitmqctl %s: %w", args[0], err))
			mu.Unlock()
		}
	}
	wg.Go(func() {
		list(&qs, "list_queues", "-p", vhost, "name", "durable", "auto_delete", "exclusive", "arguments")
	})
	wg.Go(func() {
		list(&xs, "list_exchanges", "-p", vhost, "name", "type", "durable", "auto_delete", "internal", "arguments")
	})
	wg.Go(func() {
		list(&bs, "list_bindings", "-p", vhost, "source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments")
	})
	wg.Wait()
	for _, err := range bad {
		t.Fatal(err)
	}
	s := &snapshot{queues: map[string]queueInfo{}, exchanges: map[string]exchangeInfo{}, bindings: bs}
	for _, q := range qs {
		s.queues[q.Name] = q
	}
	for _, x := range xs {
		s.exchanges[x.Name] = x
	}
	return s
}

func ctlJSON[T any](t *testing.T, ctx context.Context, args ...string) []T {
	t.Helper()
	out, err := rabbitmqctl(ctx, append(args, "--formatter", "json", "--quiet")...)
	if err != nil {
		t.Fatal(err)
	}
	var v []T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", args[0], err, out)
	}
	return v
}

var hexSuffix = regexp.MustCompile(`_[0-9a-f]{32}$`)

// topicObjects returns the normalised broker objects of topic: its
// queues, its exchanges and the bindings that involve them, with the
// topic replaced by <topic> and random suffixes by <hex>, sorted.
func topicObjects(s *snapshot, topic string) []string {
	ours := func(name string) bool {
		return name == topic || strings.HasPrefix(name, topic+".") || strings.HasPrefix(name, topic+"_fanout")
	}
	norm := func(name string) string {
		return hexSuffix.ReplaceAllString(strings.ReplaceAll(name, topic, "<topic>"), "_<hex>")
	}
	var out []string
	for _, q := range s.queues {
		if ours(q.Name) {
			out = append(out, "queue "+norm(q.Name)+" "+q.shape())
		}
	}
	for _, x := range s.exchanges {
		if ours(x.Name) {
			out = append(out, fmt.Sprintf("exchange %s type=%s durable=%v auto_delete=%v internal=%v arguments=%s",
				norm(x.Name), x.Type, x.Durable, x.AutoDelete, x.Internal, canonArgs(x.Arguments)))
		}
	}
	for _, b := range s.bindings {
		if ours(b.Source) || ours(b.Destination) {
			out = append(out, fmt.Sprintf("binding %s %q -> %s %s key=%q arguments=%s", b.SourceKind, norm(b.Source),
				b.DestinationKind, norm(b.Destination), norm(b.Key), canonArgs(b.Arguments)))
		}
	}
	sort.Strings(out)
	return out
}

// compareTopics checks that the mixed topic's objects equal the Python
// topic's, once normalised.
func compareTopics(t *testing.T, when string, s *snapshot, mixed, python string) {
	t.Helper()
	m, p := topicObjects(s, mixed), topicObjects(s, python)
	if slices.Equal(m, p) {
		t.Logf("%s, both topics have:\n  %s", when, strings.Join(m, "\n  "))
		return
	}
	count := func(xs []string) map[string]int {
		c := map[string]int{}
		for _, x := range xs {
			c[x]++
		}
		return c
	}
	cm, cp := count(m), count(p)
	var diff []string
	for _, k := range slices.Sorted(maps.Keys(cm)) {
		if cm[k] != cp[k] {
			diff = append(diff, fmt.Sprintf("  mixed %d, python-only %d: %s", cm[k], cp[k], k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cp)) {
		if _, ok := cm[k]; !ok {
			diff = append(diff, fmt.Sprintf("  mixed 0, python-only %d: %s", cp[k], k))
		}
	}
	t.Errorf("%s, the mixed Go/Python topic's broker objects differ from the Python-only topic's:\n%s", when, strings.Join(diff, "\n"))
}
