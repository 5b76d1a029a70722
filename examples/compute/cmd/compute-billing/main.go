// Command compute-billing runs the billing service of the compute
// example: it records instance usage from the compute notifications
// and answers get_usage. It stops gracefully on SIGINT or SIGTERM.
//
//	compute-billing --url rabbit://guest:guest@127.0.0.1:5672/
package main

import (
	"context"
	"flag"
	"os"

	"github.com/go-oslo/messaging/examples/compute/billing"
	"github.com/go-oslo/messaging/examples/compute/internal/cli"
)

func main() {
	var c cli.Common
	fs := flag.NewFlagSet(billing.Binary, flag.ContinueOnError)
	c.Register(fs, "billing1")
	cli.Parse(fs, os.Args[1:])

	tr, logger, log, err := c.Open(billing.Binary)
	if err != nil {
		cli.Fatal(billing.Binary, err)
	}
	defer tr.Close()
	m := billing.NewManager(c.Host, log)
	svc, err := billing.NewService(tr, c.Host, m, cli.ServiceOptions(logger)...)
	if err != nil {
		cli.Fatal(billing.Binary, err)
	}
	log.Printf(billing.Binary, "serving topic billing on host %s, notifications in pool %s", c.Host, billing.Pool)
	if err := svc.Run(context.Background()); err != nil {
		cli.Fatal(billing.Binary, err)
	}
}
