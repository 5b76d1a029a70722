// Command compute-conductor runs the conductor service of the compute
// example: the instance table and the placement of instances on the
// compute hosts. It stops gracefully on SIGINT or SIGTERM.
//
//	compute-conductor --url rabbit://guest:guest@127.0.0.1:5672/ --host conductor1
package main

import (
	"context"
	"flag"
	"os"

	computeapi "github.com/go-oslo/messaging/examples/compute/compute/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/conductor"
	"github.com/go-oslo/messaging/examples/compute/internal/cli"
)

func main() {
	var c cli.Common
	fs := flag.NewFlagSet(conductor.Binary, flag.ContinueOnError)
	c.Register(fs, "conductor1")
	cli.Parse(fs, os.Args[1:])

	tr, logger, log, err := c.Open(conductor.Binary)
	if err != nil {
		cli.Fatal(conductor.Binary, err)
	}
	defer tr.Close()
	compute, err := computeapi.NewAPI(tr)
	if err != nil {
		cli.Fatal(conductor.Binary, err)
	}
	m := conductor.NewManager(c.Host, compute, log)
	svc, err := conductor.NewService(tr, c.Host, m, cli.ServiceOptions(logger)...)
	if err != nil {
		cli.Fatal(conductor.Binary, err)
	}
	log.Printf(conductor.Binary, "serving topic conductor on host %s", c.Host)
	if err := svc.Run(context.Background()); err != nil {
		cli.Fatal(conductor.Binary, err)
	}
}
