// Package deploy starts every service of the compute example in one
// process: the one-command run, and the end-to-end tests. Each service
// may have a transport of its own, as separate processes would.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/api"
	"github.com/go-oslo/messaging/examples/compute/billing"
	"github.com/go-oslo/messaging/examples/compute/compute"
	computeapi "github.com/go-oslo/messaging/examples/compute/compute/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/conductor"
	conductorapi "github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/scheduler"
	schedulerapi "github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// DrainTimeout bounds the graceful stop of each service.
const DrainTimeout = 10 * time.Second

// APIConfig describes one REST API server.
type APIConfig struct {
	// Name names it in the trace, such as "api".
	Name string
	// Addr is its listening address; "127.0.0.1:0" picks a port.
	Addr string
	// VersionCap caps the conductor RPC versions it sends ("" for none).
	VersionCap string
}

// Config describes a deployment.
type Config struct {
	// Transport returns the transport of a part of the deployment, named
	// "api:<name>", "conductor", "compute:<host>", "scheduler:<host>" or
	// "billing". It may return the same transport for every part. The
	// caller closes the transports, after Stop.
	Transport func(part string) (*messaging.Transport, error)
	// Conductor is the conductor's host; default "conductor1".
	Conductor string
	// ComputeHosts are the hosts of the compute services.
	ComputeHosts []string
	// Schedulers are the hosts of the scheduler services.
	Schedulers []string
	// APIs are the REST API servers.
	APIs []APIConfig
	// ReportInterval is the compute services' report interval (0: the
	// default).
	ReportInterval time.Duration
	// BootDelay is how long a compute service takes to boot an instance.
	BootDelay time.Duration
	// Trace receives the trace of what flows where (nil: none).
	Trace *trace.Log
	// Logger is the services' logger (nil: discard).
	Logger *slog.Logger
}

type runner interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
	Stop()
}

type running struct {
	name string
	r    runner
	done chan struct{}
	err  error // set before done is closed
}

// Deployment is a running set of services.
type Deployment struct {
	// Conductor, Computes, Schedulers and Billing are the services'
	// managers, for inspection.
	Conductor  *conductor.Manager
	Computes   map[string]*compute.Manager
	Schedulers map[string]*scheduler.Manager
	Billing    *billing.Manager
	// APIs are the REST API servers by name.
	APIs map[string]*api.Server

	runs   []*running
	failed chan string // names of the services that stopped on their own
}

// Start starts the services (billing, schedulers, conductor, compute
// services, then the APIs) and returns once each serves, or with an
// error after stopping those it started. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Deployment, error) {
	if cfg.Conductor == "" {
		cfg.Conductor = "conductor1"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	svcOpts := []service.Option{
		service.WithSignals(nil), // the process handles its signals and calls Stop
		service.WithLogger(logger),
		service.WithDrainTimeout(DrainTimeout),
		service.WithServerOptions(rpc.WithPing(true)),
	}
	d := &Deployment{
		Computes:   make(map[string]*compute.Manager),
		Schedulers: make(map[string]*scheduler.Manager),
		APIs:       make(map[string]*api.Server),
		failed:     make(chan string, 2+len(cfg.Schedulers)+len(cfg.ComputeHosts)+len(cfg.APIs)),
	}
	fail := func(err error) (*Deployment, error) {
		return nil, errors.Join(err, d.Stop())
	}

	tr, err := cfg.Transport("billing")
	if err != nil {
		return fail(err)
	}
	d.Billing = billing.NewManager("billing1", cfg.Trace)
	bsvc, err := billing.NewService(tr, "billing1", d.Billing, svcOpts...)
	if err != nil {
		return fail(err)
	}
	if err := d.start(ctx, "billing", bsvc); err != nil {
		return fail(err)
	}

	for _, host := range cfg.Schedulers {
		tr, err := cfg.Transport("scheduler:" + host)
		if err != nil {
			return fail(err)
		}
		m := scheduler.NewManager(host, cfg.Trace)
		svc, err := scheduler.NewService(tr, host, m, svcOpts...)
		if err != nil {
			return fail(err)
		}
		d.Schedulers[host] = m
		if err := d.start(ctx, "scheduler:"+host, svc); err != nil {
			return fail(err)
		}
	}

	tr, err = cfg.Transport("conductor")
	if err != nil {
		return fail(err)
	}
	capi, err := computeapi.NewAPI(tr)
	if err != nil {
		return fail(err)
	}
	d.Conductor = conductor.NewManager(cfg.Conductor, capi, cfg.Trace)
	csvc, err := conductor.NewService(tr, cfg.Conductor, d.Conductor, svcOpts...)
	if err != nil {
		return fail(err)
	}
	if err := d.start(ctx, "conductor", csvc); err != nil {
		return fail(err)
	}

	for _, host := range cfg.ComputeHosts {
		tr, err := cfg.Transport("compute:" + host)
		if err != nil {
			return fail(err)
		}
		cond, err := conductorapi.NewAPI(tr, "")
		if err != nil {
			return fail(err)
		}
		sched, err := schedulerapi.NewAPI(tr)
		if err != nil {
			return fail(err)
		}
		m, err := compute.NewManager(tr, host, cond, sched, cfg.Trace)
		if err != nil {
			return fail(err)
		}
		m.BootDelay = cfg.BootDelay
		svc, err := compute.NewService(tr, host, m, cfg.ReportInterval, svcOpts...)
		if err != nil {
			return fail(err)
		}
		d.Computes[host] = m
		if err := d.start(ctx, "compute:"+host, svc); err != nil {
			return fail(err)
		}
	}

	for _, ac := range cfg.APIs {
		tr, err := cfg.Transport("api:" + ac.Name)
		if err != nil {
			return fail(err)
		}
		cond, err := conductorapi.NewAPI(tr, ac.VersionCap)
		if err != nil {
			return fail(err)
		}
		srv, err := api.NewServer(ac.Addr, api.NewHandler(ac.Name, cond, cfg.Trace))
		if err != nil {
			return fail(err)
		}
		d.APIs[ac.Name] = srv
		if err := d.start(ctx, "api:"+ac.Name, srv); err != nil {
			return fail(err)
		}
	}
	return d, nil
}

// start runs r and waits until it serves.
func (d *Deployment) start(ctx context.Context, name string, r runner) error {
	run := &running{name: name, r: r, done: make(chan struct{})}
	d.runs = append(d.runs, run)
	go func() {
		defer close(run.done)
		run.err = r.Run(context.Background())
		d.failed <- name // buffered: room for every service
	}()
	select {
	case <-r.Ready():
		return nil
	case <-run.done:
		return fmt.Errorf("%s did not start: %w", name, run.err)
	case <-ctx.Done():
		return fmt.Errorf("starting %s: %w", name, ctx.Err())
	}
}

// Stopped returns a channel that receives the name of each service that
// stops, on its own or by Stop.
func (d *Deployment) Stopped() <-chan string { return d.failed }

// Stop stops the services in the reverse order of their start, waits
// for each to return, and returns their errors.
func (d *Deployment) Stop() error {
	var errs []error
	for i := len(d.runs) - 1; i >= 0; i-- {
		run := d.runs[i]
		run.r.Stop()
		<-run.done
		if run.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", run.name, run.err))
		}
	}
	d.runs = nil
	return errors.Join(errs...)
}
