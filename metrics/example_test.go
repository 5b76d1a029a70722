package metrics_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/metrics"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
	"github.com/prometheus/client_golang/prometheus"
)

// A service whose RPC server and clients are measured, with its metrics
// served at /metrics next to the service's Run.
func Example() {
	tr, err := messaging.Open("memory:///example-metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	reg := prometheus.NewRegistry()

	// Server side: the middleware, installed through the service's
	// server options.
	mw, err := metrics.ServerMiddleware(reg, "compute")
	if err != nil {
		log.Fatal(err)
	}
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	svc, err := service.New(tr, "nova-compute", "compute", "host1", []*rpc.Endpoint{ep},
		service.WithServerOptions(rpc.WithMiddleware(mw)),
		service.WithSignals(nil), // the example stops it with Stop
		service.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}

	// The opt-in /metrics endpoint runs as long as the service: a daemon
	// would listen on a configured address, such as ":9090".
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ctx, "127.0.0.1:0", reg) }()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	<-svc.Ready()

	// Client side: the wrapper records the calls.
	rc, err := rpc.NewClient(tr, messaging.Target{Topic: "compute"})
	if err != nil {
		log.Fatal(err)
	}
	client, err := metrics.NewClient(rc, reg)
	if err != nil {
		log.Fatal(err)
	}
	reply, err := metrics.Call[string](ctx, client, "ping", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply)

	svc.Stop()
	if err := <-ran; err != nil {
		log.Fatal(err)
	}
	cancel()
	if err := <-served; err != nil {
		log.Fatal(err)
	}

	// What a scrape of /metrics shows, in short: the counters.
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasSuffix(mf.GetName(), "_total") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			fmt.Printf("%s{%s} %v\n", mf.GetName(), strings.Join(ls, ","), m.GetCounter().GetValue())
		}
	}
	// Output:
	// pong
	// oslo_messaging_rpc_client_calls_total{method=ping,outcome=ok,topic=compute} 1
	// oslo_messaging_rpc_server_handled_total{kind=call,method=ping,outcome=ok,topic=compute} 1
}
