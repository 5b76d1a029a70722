// Command compute-scheduler runs a scheduler service of the compute
// example, which receives the compute hosts' states by fanout. Run
// several with different --host values: each receives every update. It
// stops gracefully on SIGINT or SIGTERM.
//
//	compute-scheduler --url rabbit://guest:guest@127.0.0.1:5672/ --host scheduler1
package main

import (
	"context"
	"flag"
	"os"

	"github.com/go-oslo/messaging/examples/compute/internal/cli"
	"github.com/go-oslo/messaging/examples/compute/scheduler"
)

func main() {
	var c cli.Common
	fs := flag.NewFlagSet(scheduler.Binary, flag.ContinueOnError)
	c.Register(fs, "")
	cli.Parse(fs, os.Args[1:])

	tr, logger, log, err := c.Open(scheduler.Binary)
	if err != nil {
		cli.Fatal(scheduler.Binary, err)
	}
	defer tr.Close()
	m := scheduler.NewManager(c.Host, log)
	svc, err := scheduler.NewService(tr, c.Host, m, cli.ServiceOptions(logger)...)
	if err != nil {
		cli.Fatal(scheduler.Binary, err)
	}
	log.Printf(scheduler.Binary, "serving topic scheduler on host %s", c.Host)
	if err := svc.Run(context.Background()); err != nil {
		cli.Fatal(scheduler.Binary, err)
	}
}
