package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/rpc"
)

type RebootArgs struct {
	InstanceID string `json:"instance_id"`
	Hard       bool   `json:"hard"`
}

type RebootResult struct {
	Rebooted bool `json:"rebooted"`
}

// A server on host1 exposes reboot_instance in the compute namespace; a
// client calls it on that host.
func Example() {
	tr, err := messaging.Open("memory:///example")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	ep := &rpc.Endpoint{Namespace: "compute", Version: "5.13"}
	rpc.Handle(ep, "reboot_instance", func(ctx context.Context, a RebootArgs) (RebootResult, error) {
		md, _ := messaging.FromIncomingContext(ctx)
		fmt.Println("rebooting", a.InstanceID, "hard:", a.Hard, "for request", md["request_id"])
		return RebootResult{Rebooted: true}, nil
	})
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: "compute", Server: "host1"}, []*rpc.Endpoint{ep})
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil { // oslo's start()
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Print(err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			log.Print(err)
		}
	}()

	client, err := rpc.NewClient(tr, messaging.Target{Topic: "compute", Namespace: "compute", Version: "5.0"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := messaging.NewOutgoingContext(context.Background(), messaging.Metadata{"request_id": "req-42"})
	res, err := rpc.Call[RebootResult](ctx, client.Prepare(rpc.ToServer("host1")), "reboot_instance",
		RebootArgs{InstanceID: "i-1", Hard: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rebooted:", res.Rebooted)
	// Output:
	// rebooting i-1 hard: true for request req-42
	// rebooted: true
}

// Metadata prints without its secrets.
func ExampleMetadata_String() {
	md := messaging.Metadata{"request_id": "req-1", "auth_token": "gAAAA..."}
	fmt.Println(md)
	// Output: map[auth_token:*** request_id:req-1]
}

func ExampleTarget_String() {
	fmt.Println(messaging.Target{Topic: "compute", Server: "host1"})
	// Output: <Target topic=compute, server=host1>
}
