// Command compute-compute runs the compute service of one host of the
// compute example. It stops gracefully on SIGINT or SIGTERM.
//
//	compute-compute --url rabbit://guest:guest@127.0.0.1:5672/ --host compute1
package main

import (
	"context"
	"flag"
	"os"

	"github.com/go-oslo/messaging/examples/compute/compute"
	conductorapi "github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/cli"
	schedulerapi "github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
)

func main() {
	var c cli.Common
	fs := flag.NewFlagSet(compute.Binary, flag.ContinueOnError)
	c.Register(fs, "")
	interval := fs.Duration("report-interval", compute.DefaultReportInterval, "how often to report to the conductor and the schedulers")
	bootDelay := fs.Duration("boot-delay", 0, "how long booting an instance takes, to watch it building (e.g. 5s)")
	capVersion := fs.String("conductor-version-cap", "", "cap the conductor RPC version this service sends (e.g. 1.0)")
	cli.Parse(fs, os.Args[1:])

	tr, logger, log, err := c.Open(compute.Binary)
	if err != nil {
		cli.Fatal(compute.Binary, err)
	}
	defer tr.Close()
	cond, err := conductorapi.NewAPI(tr, *capVersion)
	if err != nil {
		cli.Fatal(compute.Binary, err)
	}
	sched, err := schedulerapi.NewAPI(tr)
	if err != nil {
		cli.Fatal(compute.Binary, err)
	}
	m, err := compute.NewManager(tr, c.Host, cond, sched, log)
	if err != nil {
		cli.Fatal(compute.Binary, err)
	}
	m.BootDelay = *bootDelay
	svc, err := compute.NewService(tr, c.Host, m, *interval, cli.ServiceOptions(logger)...)
	if err != nil {
		cli.Fatal(compute.Binary, err)
	}
	log.Printf(compute.Binary, "serving topic compute on host %s", c.Host)
	if err := svc.Run(context.Background()); err != nil {
		cli.Fatal(compute.Binary, err)
	}
}
