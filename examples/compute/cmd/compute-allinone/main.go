// Command compute-allinone runs every service of the compute example in
// one process: the REST API, the conductor, two compute services, two
// schedulers and the billing service, over the embedded memory://
// transport by default. It prints what flows where, one line per
// message, and serves the REST API until SIGINT or SIGTERM.
//
//	go run ./examples/compute/cmd/compute-allinone
//	go run ./examples/compute/cmd/compute-allinone --demo
//
// With --demo it plays a scripted sequence of REST requests against
// itself, checks their effects, and exits 0 if they all held, 1 if not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	_ "github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/examples/compute/api/apiclient"
	billingapi "github.com/go-oslo/messaging/examples/compute/billing/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/deploy"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	schedulerapi "github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
)

// demoTimeout bounds the scripted demonstration.
const demoTimeout = time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	url, listen, legacyListen, capVersion string
	computes, schedulers                  []string
	reportInterval, bootDelay             time.Duration
	demo, verbose                         bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compute-allinone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var computes, schedulers string
	fs.StringVar(&o.url, "url", "memory:///compute-allinone", "transport URL; memory:// keeps every message in this process")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8774", "address of the REST API")
	fs.StringVar(&o.legacyListen, "legacy-listen", "", "address of a second REST API whose conductor client is capped at RPC version 1.0 (default: none; the demo picks a free port)")
	fs.StringVar(&o.capVersion, "conductor-version-cap", "", "cap the main REST API's conductor RPC version, e.g. 1.0 (default: none)")
	fs.StringVar(&computes, "computes", "compute1,compute2", "comma-separated compute hosts")
	fs.StringVar(&schedulers, "schedulers", "scheduler1,scheduler2", "comma-separated scheduler hosts")
	fs.DurationVar(&o.reportInterval, "report-interval", 10*time.Second, "how often compute services report to the conductor and the schedulers")
	fs.DurationVar(&o.bootDelay, "boot-delay", 0, "how long booting an instance takes, to watch it building (e.g. 5s)")
	fs.BoolVar(&o.demo, "demo", false, "play a scripted sequence of REST requests, check their effects and exit")
	fs.BoolVar(&o.verbose, "verbose", false, "also print the library's logs on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	o.computes, o.schedulers = splitList(computes), splitList(schedulers)
	if len(o.computes) == 0 {
		return nil, errors.New("--computes: at least one compute host is needed")
	}
	if o.demo {
		if o.listen == "127.0.0.1:8774" {
			o.listen = "127.0.0.1:0"
		}
		if o.legacyListen == "" {
			o.legacyListen = "127.0.0.1:0"
		}
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "compute-allinone:", err)
		return 64
	}
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	tr, err := messaging.Open(o.url, messaging.WithLogger(logger))
	if err != nil {
		fmt.Fprintln(stderr, "compute-allinone:", err)
		return 2
	}
	defer tr.Close()

	log := trace.New(stdout)
	apis := []deploy.APIConfig{{Name: "api", Addr: o.listen, VersionCap: o.capVersion}}
	if o.legacyListen != "" {
		apis = append(apis, deploy.APIConfig{Name: "api-1.0", Addr: o.legacyListen, VersionCap: "1.0"})
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	d, err := deploy.Start(startCtx, deploy.Config{
		Transport:      func(string) (*messaging.Transport, error) { return tr, nil },
		ComputeHosts:   o.computes,
		Schedulers:     o.schedulers,
		APIs:           apis,
		ReportInterval: o.reportInterval,
		BootDelay:      o.bootDelay,
		Trace:          log,
		Logger:         logger,
	})
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "compute-allinone:", err)
		return 2
	}
	for _, a := range apis {
		log.Printf(a.Name, "REST API on %s (conductor version cap %q)", d.APIs[a.Name].URL(), a.VersionCap)
	}

	code := 0
	if o.demo {
		dctx, cancel := context.WithTimeout(ctx, demoTimeout)
		err = demo(dctx, tr, d, log)
		cancel()
		if err != nil {
			fmt.Fprintln(stderr, "compute-allinone: demo failed:", err)
			code = 1
		} else {
			log.Printf("demo", "OK: every effect checked")
		}
	} else {
		log.Printf("allinone", "running; try: curl -s %s/v1/instances -d '{\"name\":\"vm1\",\"flavor\":\"m1.small\"}'", d.APIs["api"].URL())
		select {
		case <-ctx.Done():
		case name := <-d.Stopped():
			fmt.Fprintf(stderr, "compute-allinone: %s stopped on its own\n", name)
			code = 2
		}
	}
	if err := d.Stop(); err != nil {
		fmt.Fprintln(stderr, "compute-allinone: stopping:", err)
		if code == 0 {
			code = 2
		}
	}
	return code
}

// demo plays the scripted sequence against the deployment's REST APIs.
func demo(ctx context.Context, tr *messaging.Transport, d *deploy.Deployment, log *trace.Log) error {
	say := func(format string, args ...any) { log.Printf("demo", format, args...) }
	c := &apiclient.Client{BaseURL: d.APIs["api"].URL()}
	legacy := &apiclient.Client{BaseURL: d.APIs["api-1.0"].URL()}
	nHosts := len(d.Computes)

	say("GET /v1/hosts until the %d compute hosts have reported", nHosts)
	hosts, err := c.WaitHosts(ctx, nHosts)
	if err != nil {
		return fmt.Errorf("compute hosts: %w", err)
	}
	say("hosts: %d known", len(hosts))

	var ids []string
	placed := map[string]bool{}
	for i := range nHosts {
		name := fmt.Sprintf("vm-%d", i+1)
		say("POST /v1/instances name=%s", name)
		inst, err := c.Create(ctx, name, "m1.small")
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		say("202: %s is %s on %s", inst.ID, inst.State, inst.Host)
		ids = append(ids, inst.ID)
		placed[inst.Host] = true
	}
	if len(placed) != nHosts {
		return fmt.Errorf("instances placed on %d hosts, want %d", len(placed), nHosts)
	}
	for _, id := range ids {
		if _, err := c.WaitState(ctx, id, objects.StateActive); err != nil {
			return fmt.Errorf("instance %s never active: %w", id, err)
		}
	}
	list, err := c.List(ctx)
	if err != nil {
		return err
	}
	say("GET /v1/instances: %d instances, all active", len(list))

	first := ids[0]
	say("POST /v1/instances/%s/reboot (conductor RPC 1.1)", first)
	inst, err := c.Reboot(ctx, first, "SOFT")
	if err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	say("200: %s reboots=%d state=%s", first, inst.Reboots, inst.State)
	say("POST /v1/instances/%s/reboot on the API capped at conductor RPC 1.0", first)
	_, err = legacy.Reboot(ctx, first, "SOFT")
	if apiclient.StatusCode(err) != http.StatusConflict {
		return fmt.Errorf("capped reboot: got %w, want HTTP 409", err)
	}
	say("409 as expected: %v", err)
	got, err := legacy.Get(ctx, first)
	if err != nil {
		return fmt.Errorf("capped API show: %w", err)
	}
	if got.Reboots != 1 {
		return fmt.Errorf("capped API show: %d reboots, want 1", got.Reboots)
	}
	say("the capped API still serves the 1.0 methods: GET shows reboots=1")

	say("DELETE /v1/instances/%s", first)
	if _, err := c.Delete(ctx, first); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if _, err := c.WaitState(ctx, first, objects.StateDeleted); err != nil {
		return fmt.Errorf("delete never completed: %w", err)
	}
	say("GET /v1/instances/%s: 404, deleted", first)

	bapi, err := billingapi.NewAPI(tr)
	if err != nil {
		return err
	}
	usage, err := pollUntil(ctx, func() ([]billingapi.Usage, bool, error) {
		u, err := bapi.GetUsage(ctx)
		for _, r := range u {
			if r.InstanceID == first {
				return u, r.Started != nil && r.Ended != nil, err
			}
		}
		return u, false, err
	})
	if err != nil {
		return fmt.Errorf("billing never recorded the deletion: %w", err)
	}
	for _, u := range usage {
		say("billing: %s %s started=%v ended=%v events=%d", u.InstanceID, u.Name, u.Started != nil, u.Ended != nil, len(u.Events))
	}

	sapi, err := schedulerapi.NewAPI(tr)
	if err != nil {
		return err
	}
	for host := range d.Schedulers {
		st, err := pollUntil(ctx, func() (schedulerapi.Status, bool, error) {
			st, err := sapi.GetHostStates(ctx, host)
			return st, err == nil && len(st.Hosts) == nHosts, err
		})
		if err != nil {
			return fmt.Errorf("scheduler %s: %w", host, err)
		}
		say("scheduler %s: %d updates, %d hosts", st.Scheduler, st.Updates, len(st.Hosts))
	}
	return nil
}

// pollUntil calls fn every apiclient.PollInterval until it reports done
// or ctx ends.
func pollUntil[T any](ctx context.Context, fn func() (T, bool, error)) (T, error) {
	t := time.NewTicker(apiclient.PollInterval)
	defer t.Stop()
	for {
		v, done, err := fn()
		if done {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
