package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-oslo/messaging/internal/brokertest"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/rpc"
)

// describeEndpoints is a server's endpoints for the introspection tests:
// the default namespace with a few methods, and a namespaced one.
func describeEndpoints(hold <-chan struct{}, held chan<- struct{}) []*rpc.Endpoint {
	def := &rpc.Endpoint{}
	rpc.Handle(def, "echo", func(_ context.Context, a echoArgs) (string, error) { return a.Arg, nil })
	rpc.Handle(def, "fail", func(context.Context, struct{}) (any, error) {
		return nil, rpc.NewRemoteError("builtins.ValueError", "no")
	})
	rpc.Handle(def, "slow", func(context.Context, struct{}) (any, error) {
		time.Sleep(2 * time.Second)
		return nil, nil
	})
	rpc.Handle(def, "hold", func(ctx context.Context, _ struct{}) (any, error) {
		held <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return nil, nil
	})
	compute := &rpc.Endpoint{Namespace: "compute", Version: "5.13", LegacyNamespaces: []string{"", "old"}}
	rpc.Handle(compute, "reboot_instance", func(context.Context, struct{}) (bool, error) { return true, nil })
	rpc.Handle(compute, "attach_volume", func(context.Context, struct{}) (bool, error) { return true, nil })
	return []*rpc.Endpoint{compute, def}
}

func TestIntrospectionDescribe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		hold, held := make(chan struct{}), make(chan struct{})
		info := rpc.ServerInfo{Binary: "nova-compute", Host: "node1", Metadata: map[string]string{"zone": "az1"}}
		srv := newServer(t, tr, messaging.Target{Topic: "intro", Server: "s1"}, describeEndpoints(hold, held),
			rpc.WithPing(true), rpc.WithIntrospection(info))
		info.Metadata["zone"] = "changed" // the option copied the map
		shutdown, served := run(t, srv)
		started := time.Now()
		ctx := context.Background()
		c := newClient(t, tr, messaging.Target{Topic: "intro"})
		// Describe overrides the client's namespace, version and cap.
		capped := newClient(t, tr, messaging.Target{Topic: "intro", Namespace: "compute", Version: "5.0"}, rpc.WithVersionCap("5.13"))

		time.Sleep(90 * time.Second)
		d, err := rpc.Describe(ctx, capped.Prepare(rpc.ToServer("s1")))
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		wantEndpoints := []rpc.EndpointDescription{
			{Namespace: "compute", Version: "5.13", LegacyNamespaces: []string{"", "old"}, Methods: []string{"attach_volume", "reboot_instance"}},
			{Namespace: "", Version: "1.0", LegacyNamespaces: []string{}, Methods: []string{"echo", "fail", "hold", "slow"}},
			{Namespace: "", Version: "1.0", LegacyNamespaces: []string{}, Methods: []string{rpc.PingMethod}},
			{Namespace: rpc.IntrospectionNamespace, Version: rpc.IntrospectionVersion, LegacyNamespaces: []string{},
				Methods: []string{rpc.AnnounceMethod, rpc.DescribeMethod}},
		}
		if !reflect.DeepEqual(d.Endpoints, wantEndpoints) {
			t.Errorf("endpoints = %+v\nwant %+v", d.Endpoints, wantEndpoints)
		}
		if d.Binary != "nova-compute" || d.Host != "node1" || d.PID != os.Getpid() ||
			!reflect.DeepEqual(d.Metadata, map[string]string{"zone": "az1"}) {
			t.Errorf("process = %q %q %d %v, want nova-compute node1 %d map[zone:az1]", d.Binary, d.Host, d.PID, d.Metadata, os.Getpid())
		}
		if d.Exchange != tr.ControlExchange() || d.Topic != "intro" || d.Server != "s1" {
			t.Errorf("target = %s/%s/%s, want %s/intro/s1", d.Exchange, d.Topic, d.Server, tr.ControlExchange())
		}
		if !d.StartedAt.Equal(started) || d.Uptime != 90*time.Second {
			t.Errorf("started at %v, up %v; want %v, 1m30s", d.StartedAt, d.Uptime, started)
		}
		if len(d.ID) != 32 || !strings.HasPrefix(d.Library, "github.com/go-oslo/messaging ") || d.GoVersion != runtime.Version() {
			t.Errorf("id %q, library %q, go %q", d.ID, d.Library, d.GoVersion)
		}
		if !reflect.DeepEqual(d.Stats, rpc.Stats{}) {
			t.Errorf("stats before any request = %+v, want zero (introspection is not counted)", d.Stats)
		}

		// Requests change the stats: two calls, a cast, a failure, an
		// unknown method, a 2s method, and one still running.
		for range 2 {
			if _, err := rpc.Call[string](ctx, c, "echo", echoArgs{"x"}); err != nil {
				t.Fatalf("echo: %v", err)
			}
		}
		if err := c.Cast(ctx, "echo", echoArgs{"y"}); err != nil {
			t.Fatalf("cast: %v", err)
		}
		if err := c.Call(ctx, "fail", nil, nil); err == nil {
			t.Fatal("fail succeeded")
		}
		if err := c.Call(ctx, "nosuch", nil, nil); !errors.Is(err, rpc.ErrNoSuchMethod) {
			t.Fatalf("nosuch: %v", err)
		}
		if err := c.Call(ctx, "slow", nil, nil); err != nil {
			t.Fatalf("slow: %v", err)
		}
		holding := make(chan error, 1)
		go func() { holding <- c.Call(ctx, "hold", nil, nil) }()
		<-held
		synctest.Wait() // the cast has finished
		want := rpc.Stats{
			Received: 7, Calls: 6, Casts: 1, InFlight: 1, Failures: 2,
			FailuresByClass: map[string]uint64{
				"builtins.ValueError":                        1,
				"oslo_messaging.rpc.dispatcher.NoSuchMethod": 1,
			},
			ProcessingTime: 2 * time.Second, MaxProcessingTime: 2 * time.Second,
		}
		d, err = rpc.Describe(ctx, c, rpc.ToServer("s1"))
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		if !reflect.DeepEqual(d.Stats, want) {
			t.Errorf("described stats = %+v\nwant %+v", d.Stats, want)
		}
		if got := srv.Stats(); !reflect.DeepEqual(got, want) {
			t.Errorf("Stats() = %+v\nwant %+v", got, want)
		}
		close(hold)
		if err := <-holding; err != nil {
			t.Errorf("hold: %v", err)
		}
		synctest.Wait()
		st := srv.Stats()
		if st.InFlight != 0 || st.Received != 7 {
			t.Errorf("after hold returned, in flight %d of %d, want 0 of 7", st.InFlight, st.Received)
		}
		if m := st.MeanProcessingTime(); m != 2*time.Second/7 {
			t.Errorf("MeanProcessingTime = %v, want %v", m, 2*time.Second/7)
		}

		// The JSON document, as a Python caller sees it.
		var raw map[string]any
		if err := c.Call(ctx, rpc.DescribeMethod, nil, &raw, rpc.Namespace(rpc.IntrospectionNamespace),
			rpc.Version("1.0"), rpc.VersionCap("")); err != nil {
			t.Fatalf("raw describe: %v", err)
		}
		for _, k := range []string{"id", "binary", "host", "pid", "metadata", "exchange", "topic", "server", "endpoints",
			"started_at", "uptime_seconds", "stats", "library", "go_version"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("describe has no %q: %v", k, raw)
			}
		}
		if s, _ := raw["started_at"].(string); s != started.UTC().Format("2006-01-02T15:04:05.000000Z07:00") {
			t.Errorf("started_at = %q, want RFC 3339 in UTC with microseconds", s)
		}
		if u, _ := raw["uptime_seconds"].(float64); u != 92 {
			t.Errorf("uptime_seconds = %v, want 92", raw["uptime_seconds"])
		}
		stats, _ := raw["stats"].(map[string]any)
		wantStats := map[string]any{"received": 7.0, "calls": 6.0, "casts": 1.0, "in_flight": 0.0, "failures": 2.0,
			"failures_by_class": map[string]any{"builtins.ValueError": 1.0, "oslo_messaging.rpc.dispatcher.NoSuchMethod": 1.0},
			"reply_failures":    0.0, "processing_seconds_total": 2.0, "processing_seconds_max": 2.0}
		if !reflect.DeepEqual(stats, wantStats) {
			t.Errorf("stats JSON = %v\nwant %v", stats, wantStats)
		}
		eps, _ := raw["endpoints"].([]any)
		if len(eps) != 4 || !reflect.DeepEqual(eps[0], map[string]any{"namespace": "compute", "version": "5.13",
			"legacy_namespaces": []any{"", "old"}, "methods": []any{"attach_volume", "reboot_instance"}}) {
			t.Errorf("endpoints JSON = %v", eps)
		}

		if err := shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
}

func TestStatsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, st := range []rpc.Stats{
		{},
		{Received: 3, Calls: 2, Casts: 1, InFlight: 1, Failures: 1, FailuresByClass: map[string]uint64{"builtins.Exception": 1},
			ReplyFailures: 1, ProcessingTime: 1500 * time.Millisecond, MaxProcessingTime: time.Second},
	} {
		d := rpc.ServerDescription{ID: "x", Topic: "t", Stats: st, StartedAt: time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC),
			Uptime: 90 * time.Second, Endpoints: []rpc.EndpointDescription{}}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var got rpc.ServerDescription
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip of %s = %+v, want %+v", b, got, d)
		}
	}
	if err := json.Unmarshal([]byte(`{"started_at": "yesterday"}`), new(rpc.ServerDescription)); err == nil {
		t.Error("Unmarshal accepted a bad started_at")
	}
}

func TestIntrospectionOff(t *testing.T) {
	t.Parallel()
	tr := newTransport(t)
	userDescribe := func(tag string) *rpc.Endpoint {
		ep := &rpc.Endpoint{}
		rpc.Handle(ep, "describe", func(context.Context, struct{}) (string, error) { return tag, nil })
		return ep
	}
	own := &rpc.Endpoint{Namespace: rpc.IntrospectionNamespace, Version: "1.0"}
	rpc.Handle(own, "other", func(context.Context, struct{}) (string, error) { return "other", nil })
	mine := &rpc.Endpoint{Namespace: rpc.IntrospectionNamespace, Version: "1.0"}
	rpc.Handle(mine, rpc.DescribeMethod, func(context.Context, struct{}) (string, error) { return "mine", nil })

	off := newServer(t, tr, messaging.Target{Topic: "off", Server: "s"}, []*rpc.Endpoint{userDescribe("off")})
	serve(t, off)
	serve(t, newServer(t, tr, messaging.Target{Topic: "on", Server: "s"}, []*rpc.Endpoint{userDescribe("on")},
		rpc.WithIntrospection(rpc.ServerInfo{})))
	serve(t, newServer(t, tr, messaging.Target{Topic: "ns", Server: "s"}, []*rpc.Endpoint{own}))
	serve(t, newServer(t, tr, messaging.Target{Topic: "mine", Server: "s"}, []*rpc.Endpoint{mine},
		rpc.WithIntrospection(rpc.ServerInfo{})))
	ctx := testContext(t)
	client := func(topic string) *rpc.Client { return newClient(t, tr, messaging.Target{Topic: topic}) }

	// Without introspection the dispatcher decides, as for any method.
	if _, err := rpc.Describe(ctx, client("off")); !errors.Is(err, rpc.ErrUnsupportedVersion) {
		t.Errorf("Describe without introspection = %v, want ErrUnsupportedVersion", err)
	}
	if _, err := rpc.Describe(ctx, client("ns")); !errors.Is(err, rpc.ErrNoSuchMethod) {
		t.Errorf("Describe with a user endpoint in the namespace = %v, want ErrNoSuchMethod", err)
	}
	// A user's describe in the default namespace is unaffected.
	for _, topic := range []string{"off", "on"} {
		if got, err := rpc.Call[string](ctx, client(topic), "describe", nil); err != nil || got != topic {
			t.Errorf("user describe on %s = %q, %v; want %q", topic, got, err, topic)
		}
	}
	// A user endpoint of the namespace comes before the built-in one.
	if got, err := rpc.Call[string](ctx, client("mine"), rpc.DescribeMethod, nil,
		rpc.Namespace(rpc.IntrospectionNamespace), rpc.Version("1.0")); err != nil || got != "mine" {
		t.Errorf("describe with a user endpoint first = %q, %v; want mine", got, err)
	}
	d, err := rpc.Describe(ctx, client("on"))
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	host, _ := os.Hostname()
	if d.Host != host || d.Binary == "" || len(d.Endpoints) != 2 || d.Endpoints[0].Methods[0] != "describe" {
		t.Errorf("description with defaults = %+v", d)
	}
	// Stats are kept without introspection too, and count the request
	// that asked for it.
	want := rpc.Stats{Received: 2, Calls: 2, Failures: 1,
		FailuresByClass: map[string]uint64{"oslo_messaging.rpc.dispatcher.UnsupportedVersion": 1}}
	got := off.Stats()
	got.ProcessingTime, got.MaxProcessingTime = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if d := off.Description(); d.Topic != "off" || d.StartedAt.IsZero() || len(d.Endpoints) != 1 {
		t.Errorf("Description() without introspection = %+v", d)
	}
	if d := newServer(t, tr, messaging.Target{Topic: "x", Server: "y"}, nil).Description(); !d.StartedAt.IsZero() || d.Uptime != 0 {
		t.Errorf("Description() before Serve: started %v, up %v; want zero", d.StartedAt, d.Uptime)
	}
}

// introServer returns a server with introspection of topic on exchange.
func introServer(t *testing.T, tr *messaging.Transport, exchange, topic, server string, on bool) *rpc.Server {
	t.Helper()
	var opts []rpc.ServerOption
	if on {
		opts = append(opts, rpc.WithIntrospection(rpc.ServerInfo{Binary: "bin-" + topic, Host: "host-" + server}))
	}
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "echo", func(_ context.Context, a echoArgs) (string, error) { return a.Arg, nil })
	return newServer(t, tr, messaging.Target{Exchange: exchange, Topic: topic, Server: server}, []*rpc.Endpoint{ep}, opts...)
}

func servers(ds []rpc.ServerDescription) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Topic + "/" + d.Server
	}
	return out
}

func TestDiscover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memory.NewBroker()
		tr := messaging.NewTransport(b.Conn())
		defer tr.Close()
		var stops []func(context.Context) error
		var serveds []<-chan error
		var s1 *rpc.Server
		for _, s := range []struct {
			exchange, topic, server string
			on                      bool
		}{
			{"", "compute", "s3", true}, {"", "compute", "s1", true}, {"", "compute", "s2", true},
			{"", "compute", "quiet", false}, {"", "network", "n1", true}, {"other", "compute", "x1", true},
		} {
			srv := introServer(t, tr, s.exchange, s.topic, s.server, s.on)
			if s.server == "s1" {
				s1 = srv
			}
			stop, served := run(t, srv)
			stops, serveds = append(stops, stop), append(serveds, served)
		}
		// The discovering process has a connection of its own.
		dtr := messaging.NewTransport(b.Conn())
		defer dtr.Close()
		ctx := context.Background()

		start := time.Now()
		got, err := rpc.Discover(ctx, dtr, messaging.Target{Topic: "compute"}, 3*time.Second)
		if err != nil {
			t.Fatalf("Discover: %v", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Discover took %v, want the 3s wait", d)
		}
		if want := []string{"compute/s1", "compute/s2", "compute/s3"}; !slices.Equal(servers(got), want) {
			t.Fatalf("Discover = %v, want %v", servers(got), want)
		}
		if got[0].Binary != "bin-compute" || got[0].Host != "host-s1" || got[0].ID != s1.Description().ID ||
			len(got[0].Endpoints) != 2 || got[0].StartedAt.IsZero() {
			t.Errorf("s1 described as %+v", got[0])
		}

		// Discovers at the same time keep their own answers.
		var wg sync.WaitGroup
		results := make([][]string, 3)
		for i, target := range []messaging.Target{{Topic: "compute"}, {Topic: "network"}, {Exchange: "other", Topic: "compute"}} {
			wg.Go(func() {
				ds, err := rpc.Discover(ctx, dtr, target, time.Second)
				if err != nil {
					t.Errorf("Discover(%v): %v", target, err)
				}
				results[i] = servers(ds)
			})
		}
		wg.Wait()
		want := [][]string{{"compute/s1", "compute/s2", "compute/s3"}, {"network/n1"}, {"compute/x1"}}
		if !reflect.DeepEqual(results, want) {
			t.Errorf("concurrent Discovers = %v, want %v", results, want)
		}

		// With a server name, only that server is asked.
		got, err = rpc.Discover(ctx, dtr, messaging.Target{Topic: "compute", Server: "s2"}, 0)
		if err != nil || !slices.Equal(servers(got), []string{"compute/s2"}) {
			t.Errorf("Discover of s2 = %v, %v", servers(got), err)
		}
		// Answering is not counted in the stats.
		if st := s1.Stats(); st.Received != 0 {
			t.Errorf("s1 counted %d requests, want 0", st.Received)
		}

		for i, stop := range stops {
			if err := stop(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			if err := <-serveds[i]; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("Serve = %v", err)
			}
		}
	})
}

func TestDiscoverNoServers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		for _, wait := range []time.Duration{time.Second, 0} {
			start := time.Now()
			got, err := rpc.Discover(context.Background(), tr, messaging.Target{Topic: "nobody"}, wait)
			if err != nil || got == nil || len(got) != 0 {
				t.Errorf("Discover with no servers = %#v, %v; want an empty list", got, err)
			}
			want := wait
			if want == 0 {
				want = rpc.DefaultDiscoverWait
			}
			if d := time.Since(start); d != want {
				t.Errorf("Discover(wait %v) took %v, want %v", wait, d, want)
			}
		}
	})
}

func TestDiscoverContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := bubbleTransport()
		defer tr.Close()
		stop, served := run(t, introServer(t, tr, "", "ctx", "s", true))

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		got, err := rpc.Discover(ctx, tr, messaging.Target{Topic: "ctx"}, time.Minute)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Errorf("Discover past its ctx deadline = %v after %v, want DeadlineExceeded after 1s", err, time.Since(start))
		}
		if !slices.Equal(servers(got), []string{"ctx/s"}) {
			t.Errorf("Discover past its ctx deadline found %v, want what it had: ctx/s", servers(got))
		}

		if _, err := rpc.Discover(context.Background(), tr, messaging.Target{}, 0); !errors.Is(err, messaging.ErrInvalidTarget) {
			t.Errorf("Discover without topic = %v, want ErrInvalidTarget", err)
		}
		if _, err := rpc.Discover(context.Background(), nil, messaging.Target{Topic: "t"}, 0); err == nil {
			t.Error("Discover with a nil transport succeeded")
		}

		// An announce without a nonce gets no answer, and a cast to the
		// discovery topic that is not an answer is ignored.
		c := newClient(t, tr, messaging.Target{Topic: "ctx", Namespace: rpc.IntrospectionNamespace, Version: "1.0", Fanout: true})
		if err := c.Cast(context.Background(), rpc.AnnounceMethod, nil); err != nil {
			t.Fatalf("Cast: %v", err)
		}
		go func() {
			synctest.Wait() // Discover is listening
			if err := c.Cast(context.Background(), "discovered", map[string]any{"nonce": "forged", "server": map[string]string{"id": "x"}},
				rpc.Topic(rpc.DiscoveryTopic)); err != nil {
				t.Errorf("Cast: %v", err)
			}
		}()
		if got, err := rpc.Discover(context.Background(), tr, messaging.Target{Topic: "nobody"}, time.Second); err != nil || len(got) != 0 {
			t.Errorf("Discover with a forged answer = %v, %v; want none", servers(got), err)
		}

		if err := stop(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
}

// rabbitTestURL returns a URL to a virtual host of the test's own and
// its name (see brokertest.Vhost).
func rabbitTestURL(t *testing.T) (url, vhost string) {
	t.Helper()
	return brokertest.Vhost(t, "rpc-test")
}

func rabbitmqctl(t *testing.T, args ...string) string {
	t.Helper()
	return brokertest.Ctl(t, args...)
}

// rabbitQueues lists the names of the queues of vhost, sorted.
func rabbitQueues(t *testing.T, vhost string) []string {
	t.Helper()
	names := strings.Fields(rabbitmqctl(t, "list_queues", "--quiet", "--no-table-headers", "-p", vhost, "name"))
	slices.Sort(names)
	return names
}

// TestRabbitDiscover discovers two servers on a real broker and checks
// what discovering leaves behind: two idle queues, reused by every
// Discover, and no fanout queue.
func TestRabbitDiscover(t *testing.T) {
	url, vhost := rabbitTestURL(t)
	open := func() *messaging.Transport {
		tr, err := messaging.Open(url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = tr.Close() })
		return tr
	}
	tr := open()
	topic := unique("discover")
	for _, name := range []string{"b", "a"} {
		serve(t, introServer(t, tr, "", topic, name, true))
	}
	dtr := open()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	before := rabbitQueues(t, vhost)

	for range 2 {
		got, err := rpc.Discover(ctx, dtr, messaging.Target{Topic: topic}, 3*time.Second)
		if err != nil {
			t.Fatalf("Discover: %v", err)
		}
		if want := []string{topic + "/a", topic + "/b"}; !slices.Equal(servers(got), want) {
			t.Fatalf("Discover = %v, want %v", servers(got), want)
		}
		var added []string
		for _, q := range rabbitQueues(t, vhost) {
			if !slices.Contains(before, q) {
				added = append(added, q)
			}
		}
		if want := []string{rpc.DiscoveryTopic, rpc.DiscoveryTopic + ".replies"}; !slices.Equal(added, want) {
			t.Errorf("Discover left queues %v, want only the two shared ones %v", added, want)
		}
	}
	t.Logf("queues after two Discovers: %v; exchanges: %v", rabbitQueues(t, vhost),
		strings.Fields(rabbitmqctl(t, "list_exchanges", "--quiet", "--no-table-headers", "-p", vhost, "name")))

	d, err := rpc.Describe(ctx, newClient(t, dtr, messaging.Target{Topic: topic}), rpc.ToServer("a"))
	if err != nil || d.Server != "a" || d.Host != "host-a" {
		t.Errorf("Describe over RabbitMQ = %+v, %v", d, err)
	}
}

func ExampleDiscover() {
	tr, _ := messaging.Open("memory:///example-discover")
	defer tr.Close()
	for _, host := range []string{"node2", "node1"} {
		srv, err := rpc.NewServer(tr, messaging.Target{Topic: "compute", Server: host}, nil,
			rpc.WithIntrospection(rpc.ServerInfo{Binary: "nova-compute", Host: host}))
		if err != nil {
			log.Fatal(err)
		}
		if err := srv.Listen(context.Background()); err != nil {
			log.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(context.Background()) }()
		defer func() {
			_ = srv.Shutdown(context.Background())
			if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
				log.Print(err)
			}
		}()
	}

	ctx := context.Background()
	found, err := rpc.Discover(ctx, tr, messaging.Target{Topic: "compute"}, 200*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range found {
		fmt.Println(d.Server, d.Binary, d.Endpoints[0].Namespace, d.Endpoints[0].Methods)
	}

	client, _ := rpc.NewClient(tr, messaging.Target{Topic: "compute"})
	d, err := rpc.Describe(ctx, client, rpc.ToServer("node1"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Host, d.Stats.Received)
	// Output:
	// node1 nova-compute omsg.introspection [announce describe]
	// node2 nova-compute omsg.introspection [announce describe]
	// node1 0
}
