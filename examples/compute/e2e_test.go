package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/internal/brokertest"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/examples/compute/api/apiclient"
	billingapi "github.com/go-oslo/messaging/examples/compute/billing/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/deploy"
	"github.com/go-oslo/messaging/examples/compute/objects"
	schedulerapi "github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
	"github.com/go-oslo/messaging/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds each end-to-end test.
const testTimeout = 2 * time.Minute

var (
	computeHosts = []string{"compute1", "compute2"}
	schedulers   = []string{"scheduler1", "scheduler2"}
)

// start runs a deployment whose parts get their transports from
// transport, with a REST API without version cap ("api") and one capped
// at conductor RPC 1.0 ("api-1.0"), and stops it at cleanup.
func start(t *testing.T, ctx context.Context, transport func(string) (*messaging.Transport, error)) *deploy.Deployment {
	t.Helper()
	d, err := deploy.Start(ctx, deploy.Config{
		Transport:    transport,
		ComputeHosts: computeHosts,
		Schedulers:   schedulers,
		APIs: []deploy.APIConfig{
			{Name: "api", Addr: "127.0.0.1:0"},
			{Name: "api-1.0", Addr: "127.0.0.1:0", VersionCap: "1.0"},
		},
	})
	if err != nil {
		t.Fatalf("deploy.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d
}

// exercise drives the REST APIs of d over HTTP and checks the effects
// through the REST API and, for billing and the schedulers, through
// their RPC APIs on tr.
func exercise(t *testing.T, ctx context.Context, d *deploy.Deployment, tr *messaging.Transport) {
	c := &apiclient.Client{BaseURL: d.APIs["api"].URL(), ProjectID: "proj-a"}
	legacy := &apiclient.Client{BaseURL: d.APIs["api-1.0"].URL(), ProjectID: "proj-a"}

	hosts, err := c.WaitHosts(ctx, len(computeHosts))
	if err != nil {
		t.Fatalf("compute hosts never reported: %v", err)
	}
	if len(hosts) != 2 || hosts[0].Host != "compute1" || hosts[1].Host != "compute2" {
		t.Fatalf("hosts = %+v", hosts)
	}

	// Create: four instances, spread over both hosts by round robin.
	var ids []string
	perHost := map[string]int{}
	for _, name := range []string{"vm1", "vm2", "vm3", "vm4"} {
		inst, err := c.Create(ctx, name, "m1.small")
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if inst.ID == "" || inst.Name != name || inst.ProjectID != "proj-a" || inst.State != objects.StateBuilding {
			t.Errorf("create %s returned %+v", name, inst)
		}
		ids = append(ids, inst.ID)
		perHost[inst.Host]++
	}
	if perHost["compute1"] != 2 || perHost["compute2"] != 2 {
		t.Errorf("placement = %v, want 2 instances per host", perHost)
	}
	for _, id := range ids {
		if _, err := c.WaitState(ctx, id, objects.StateActive); err != nil {
			t.Fatalf("instance %s never active: %v", id, err)
		}
	}

	// List and show.
	list, err := c.List(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 4 {
		t.Fatalf("list has %d instances, want 4: %+v", len(list), list)
	}
	for i, inst := range list {
		if inst.ID != ids[i] || inst.State != objects.StateActive {
			t.Errorf("list[%d] = %+v, want %s active (in creation order)", i, inst, ids[i])
		}
	}
	first, err := c.Get(ctx, ids[0])
	if err != nil || first.Name != "vm1" || first.Flavor != "m1.small" || first.Host != "compute1" {
		t.Errorf("show = %+v, %v", first, err)
	}
	for host, m := range d.Computes {
		if got := len(m.Instances()); got != 2 {
			t.Errorf("compute %s runs %d instances, want 2", host, got)
		}
	}

	// Reboot at version 1.1.
	rebooted, err := c.Reboot(ctx, ids[0], "hard")
	if err != nil || rebooted.Reboots != 1 || rebooted.State != objects.StateActive {
		t.Errorf("reboot = %+v, %v; want 1 reboot, active", rebooted, err)
	}

	// A client capped at 1.0: reboot refused with 409 and nothing sent;
	// the 1.0 methods still work.
	if _, err := legacy.Reboot(ctx, ids[0], ""); apiclient.StatusCode(err) != http.StatusConflict {
		t.Errorf("capped reboot: %v, want HTTP 409", err)
	}
	if got, err := legacy.Get(ctx, ids[0]); err != nil || got.Reboots != 1 {
		t.Errorf("after the capped reboot: %+v, %v; want still 1 reboot", got, err)
	}
	vm5, err := legacy.Create(ctx, "vm5", "m1.tiny")
	if err != nil {
		t.Fatalf("create on the capped API: %v", err)
	}
	if _, err := c.WaitState(ctx, vm5.ID, objects.StateActive); err != nil {
		t.Fatalf("vm5 never active: %v", err)
	}

	// Errors.
	if _, err := c.Get(ctx, "no-such-id"); apiclient.StatusCode(err) != http.StatusNotFound {
		t.Errorf("show unknown: %v, want 404", err)
	}
	if _, err := c.Reboot(ctx, "no-such-id", ""); apiclient.StatusCode(err) != http.StatusNotFound {
		t.Errorf("reboot unknown: %v, want 404", err)
	}
	if _, err := c.Reboot(ctx, ids[1], "warm"); apiclient.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("reboot type warm: %v, want 400", err)
	}
	if _, err := c.Create(ctx, "nameless-flavor", ""); apiclient.StatusCode(err) != http.StatusBadRequest {
		t.Errorf("create without flavor: %v, want 400", err)
	}

	// Delete: accepted, then gone once the compute host has deleted it.
	deleting, err := c.Delete(ctx, ids[0])
	if err != nil || deleting.State != objects.StateDeleting {
		t.Fatalf("delete = %+v, %v", deleting, err)
	}
	if _, err := c.WaitState(ctx, ids[0], objects.StateDeleted); err != nil {
		t.Fatalf("instance never deleted: %v", err)
	}
	if _, err := c.Delete(ctx, ids[0]); apiclient.StatusCode(err) != http.StatusNotFound {
		t.Errorf("second delete: %v, want 404", err)
	}
	list, err = c.List(ctx)
	if err != nil || len(list) != 4 || slices.ContainsFunc(list, func(i objects.Instance) bool { return i.ID == ids[0] }) {
		t.Errorf("list after delete = %+v, %v", list, err)
	}

	// Billing recorded the life of vm1 from the notifications, and the
	// start of the others.
	bapi, err := billingapi.NewAPI(tr)
	if err != nil {
		t.Fatal(err)
	}
	usage, err := poll(ctx, func() ([]billingapi.Usage, bool, error) {
		u, err := bapi.GetUsage(ctx)
		if err != nil {
			return nil, false, err
		}
		started, ended := 0, 0
		for _, r := range u {
			if r.Started != nil {
				started++
			}
			if r.Ended != nil {
				ended++
			}
		}
		return u, started == 5 && ended == 1, nil
	})
	if err != nil {
		t.Fatalf("billing: %v\n%+v", err, usage)
	}
	for _, u := range usage {
		if u.ProjectID != "proj-a" {
			t.Errorf("usage %s has project %q", u.InstanceID, u.ProjectID)
		}
		if u.InstanceID != ids[0] {
			continue
		}
		want := []string{objects.EventCreateStart, objects.EventCreateEnd, objects.EventRebootStart,
			objects.EventRebootEnd, objects.EventDeleteStart, objects.EventDeleteEnd}
		got := slices.Clone(u.Events)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("billing events of vm1 = %v, want %v", u.Events, want)
		}
		if u.Ended.Before(*u.Started) {
			t.Errorf("vm1 billed from %v to %v", u.Started, u.Ended)
		}
	}

	// Every scheduler got the fanout casts: each sees both hosts with
	// the instances they run now.
	want := map[string][]string{}
	for host, m := range d.Computes {
		for id := range m.Instances() {
			want[host] = append(want[host], id)
		}
		slices.Sort(want[host])
	}
	sapi, err := schedulerapi.NewAPI(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, sched := range schedulers {
		st, err := poll(ctx, func() (schedulerapi.Status, bool, error) {
			st, err := sapi.GetHostStates(ctx, sched)
			if err != nil || len(st.Hosts) != len(want) {
				return st, false, err
			}
			for _, h := range st.Hosts {
				if !slices.Equal(h.Instances, want[h.Host]) {
					return st, false, nil
				}
			}
			return st, true, nil
		})
		if err != nil {
			t.Errorf("scheduler %s: %v\n got %+v\nwant %v", sched, err, st, want)
		}
		if st.Scheduler != sched {
			t.Errorf("GetHostStates(%s) answered by %s", sched, st.Scheduler)
		}
	}
}

// poll calls fn every apiclient.PollInterval until it reports done or
// ctx ends.
func poll[T any](ctx context.Context, fn func() (T, bool, error)) (T, error) {
	tk := time.NewTicker(apiclient.PollInterval)
	defer tk.Stop()
	for {
		v, done, err := fn()
		if done {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-tk.C:
		}
	}
}

// TestComputeEndToEnd runs every service in this process on one
// memory:// transport and drives the REST API over HTTP.
func TestComputeEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	tr, err := messaging.Open("memory:///compute-example-" + wire.NewID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() }) // after the deployment's Stop: cleanups run last first
	d := start(t, ctx, func(string) (*messaging.Transport, error) { return tr, nil })
	exercise(t, ctx, d, tr)
}

// rabbitVhost returns a URL to a virtual host of the test's own (see
// brokertest.Vhost).
func rabbitVhost(t *testing.T) string {
	t.Helper()
	url, _ := brokertest.Vhost(t, "compute-example-test")
	return url
}

// TestRabbitComputeEndToEnd runs the services on RabbitMQ, each with a
// transport of its own as separate processes would have, and drives the
// REST API over HTTP.
func TestRabbitComputeEndToEnd(t *testing.T) {
	url := rabbitVhost(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	var mu sync.Mutex
	var transports []*messaging.Transport
	open := func(string) (*messaging.Transport, error) {
		tr, err := messaging.Open(url)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		transports = append(transports, tr)
		mu.Unlock()
		return tr, nil
	}
	t.Cleanup(func() {
		for _, tr := range transports {
			if err := tr.Close(); err != nil {
				t.Errorf("closing a transport: %v", err)
			}
		}
	})
	d := start(t, ctx, open)
	mu.Lock()
	if n := len(transports); n != 1+len(schedulers)+1+len(computeHosts)+2 {
		t.Errorf("%d transports, want one per service", n)
	}
	mu.Unlock()
	checker, err := open("test")
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, ctx, d, checker)
}
