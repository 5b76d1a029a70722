// Command compute-api serves the REST API of the compute example and
// calls the conductor over the bus. It stops gracefully on SIGINT or
// SIGTERM.
//
//	compute-api --url rabbit://guest:guest@127.0.0.1:5672/ --listen 127.0.0.1:8774
//	compute-api --listen 127.0.0.1:8775 --conductor-version-cap 1.0   # as during an upgrade
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-oslo/messaging/examples/compute/api"
	conductorapi "github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/cli"
)

func main() {
	var c cli.Common
	fs := flag.NewFlagSet(api.Binary, flag.ContinueOnError)
	c.Register(fs, "api1")
	listen := fs.String("listen", "127.0.0.1:8774", "address of the REST API")
	capVersion := fs.String("conductor-version-cap", "", "cap the conductor RPC version (e.g. 1.0, which has no reboot)")
	cli.Parse(fs, os.Args[1:])

	tr, _, log, err := c.Open(api.Binary)
	if err != nil {
		cli.Fatal(api.Binary, err)
	}
	defer tr.Close()
	cond, err := conductorapi.NewAPI(tr, *capVersion)
	if err != nil {
		cli.Fatal(api.Binary, err)
	}
	srv, err := api.NewServer(*listen, api.NewHandler("api", cond, log))
	if err != nil {
		cli.Fatal(api.Binary, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf(api.Binary, "REST API on %s (conductor version cap %q)", srv.URL(), *capVersion)
	if err := srv.Run(ctx); err != nil {
		cli.Fatal(api.Binary, err)
	}
}
