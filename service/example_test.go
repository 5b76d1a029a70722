package service_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// StartArgs are the arguments of the compute manager's start_instance.
type StartArgs struct {
	Instance string `json:"instance"`
}

// ComputeManager holds the RPC methods of the compute service.
type ComputeManager struct {
	host string
}

// StartInstance is the RPC method start_instance.
func (m *ComputeManager) StartInstance(ctx context.Context, a StartArgs) (string, error) {
	rc, _ := oslocontext.FromContext(ctx)
	return fmt.Sprintf("%s started %s for %s", m.host, a.Instance, rc.UserID), nil
}

// Endpoints registers the manager's methods.
func (m *ComputeManager) Endpoints() []*rpc.Endpoint {
	ep := &rpc.Endpoint{Namespace: "compute", Version: "5.0"}
	rpc.Handle(ep, "start_instance", m.StartInstance)
	return []*rpc.Endpoint{ep}
}

// ComputeAPI is the client side other services import: the rpcapi
// module of an OpenStack project.
type ComputeAPI struct{ client *rpc.Client }

// NewComputeAPI returns the client of the compute service.
func NewComputeAPI(tr *messaging.Transport) (*ComputeAPI, error) {
	c, err := rpc.NewClient(tr, messaging.Target{Topic: "compute", Namespace: "compute", Version: "5.0"},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		return nil, err
	}
	return &ComputeAPI{client: c}, nil
}

// StartInstance asks the compute service of host to start an instance.
func (a *ComputeAPI) StartInstance(ctx context.Context, host, instance string) (string, error) {
	return rpc.Call[string](ctx, a.client.Prepare(rpc.ToServer(host)), "start_instance", StartArgs{Instance: instance})
}

// A compute service in the shape of an OpenStack one: the command builds
// the manager and the service and runs it; other services call it
// through its RPC API, passing their request context.
func Example() {
	tr, err := messaging.Open("memory:///example-service")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	// The command (cmd/nova-compute): manager, service, periodic task, Run.
	manager := &ComputeManager{host: "host1"}
	svc, err := service.New(tr, "nova-compute", "compute", "host1", manager.Endpoints(),
		service.WithSignals(nil), // the example stops it with Stop; a daemon handles SIGTERM and SIGHUP
		service.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	ticks := make(chan string, 1)
	err = svc.AddPeriodicTask("update_available_resource", time.Minute, func(ctx context.Context) error {
		rc, _ := oslocontext.FromContext(ctx)
		select {
		case ticks <- fmt.Sprintf("periodic task runs as admin: %v", rc.IsAdmin):
		default:
		}
		return nil
	}, service.RunImmediately(true))
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	<-svc.Ready()
	fmt.Println(<-ticks)

	// Another service (say nova-conductor) calls it through its RPC API.
	api, err := NewComputeAPI(tr)
	if err != nil {
		log.Fatal(err)
	}
	rc := oslocontext.New()
	rc.UserID, rc.ProjectID = "alice", "demo"
	ctx, cancel := context.WithTimeout(oslocontext.NewContext(context.Background(), rc), 10*time.Second)
	defer cancel()
	reply, err := api.StartInstance(ctx, "host1", "vm-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply)

	// SIGTERM would do the same: drain, stop the tasks, return nil.
	svc.Stop()
	fmt.Println("Run:", <-done)
	// Output:
	// periodic task runs as admin: true
	// host1 started vm-1 for alice
	// Run: <nil>
}
