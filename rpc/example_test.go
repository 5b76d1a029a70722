package rpc_test

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

// startServer serves eps for topic on host and returns a stop function.
func startServer(tr *messaging.Transport, topic, host string, eps ...*rpc.Endpoint) (stop func()) {
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: topic, Server: host}, eps)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Print(err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			log.Print(err)
		}
	}
}

func ExampleClient_Call() {
	tr, _ := messaging.Open("memory:///example-call")
	defer tr.Close()
	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "add", func(ctx context.Context, a struct{ X, Y int }) (int, error) {
		return a.X + a.Y, nil
	})
	defer startServer(tr, "calculator", "host1", ep)()

	client, _ := rpc.NewClient(tr, messaging.Target{Topic: "calculator"})
	var sum int
	if err := client.Call(context.Background(), "add", map[string]int{"X": 2, "Y": 3}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
	// Output: 5
}

// A Python-style exception from a handler reaches the caller, which maps
// it to a local error.
func ExampleRemoteError() {
	tr, _ := messaging.Open("memory:///example-error")
	defer tr.Close()
	errNotFound := errors.New("instance not found")

	ep := &rpc.Endpoint{}
	rpc.Handle(ep, "show", func(ctx context.Context, a struct {
		ID string `json:"id"`
	}) (any, error) {
		return nil, rpc.Expected(rpc.NewRemoteError("nova.exception.InstanceNotFound", "Instance "+a.ID+" could not be found."))
	})
	defer startServer(tr, "compute", "host1", ep)()

	client, _ := rpc.NewClient(tr, messaging.Target{Topic: "compute"},
		rpc.WithRemoteErrors(map[string]error{"nova.exception.InstanceNotFound": errNotFound}))
	err := client.Call(context.Background(), "show", map[string]string{"id": "i-9"}, nil)
	var re *rpc.RemoteError
	fmt.Println(errors.Is(err, errNotFound), errors.As(err, &re) && re.Class == "InstanceNotFound")
	fmt.Println(re.Message)
	// Output:
	// true true
	// Instance i-9 could not be found.
}

// Versioned interfaces: a client capped at 1.1 cannot send a 1.2 message.
func ExampleClient_CanSendVersion() {
	tr, _ := messaging.Open("memory:///example-cap")
	defer tr.Close()
	client, _ := rpc.NewClient(tr, messaging.Target{Topic: "compute", Version: "1.0"}, rpc.WithVersionCap("1.1"))
	fmt.Println(client.CanSendVersion("1.1"), client.CanSendVersion("1.2"), client.CanSendVersion("2.0"))
	err := client.Cast(context.Background(), "m", nil, rpc.Version("1.2"))
	fmt.Println(errors.Is(err, rpc.ErrVersionCap))
	// Output:
	// true false false
	// true
}

// Fanout casts reach every server of the topic.
func ExampleFanout() {
	tr, _ := messaging.Open("memory:///example-fanout")
	defer tr.Close()
	got := make(chan string, 2)
	for _, host := range []string{"host1", "host2"} {
		ep := &rpc.Endpoint{Namespace: "control", Version: "2.0"}
		rpc.Handle(ep, "stop", func(ctx context.Context, _ struct{}) (any, error) {
			got <- host
			return nil, nil
		})
		defer startServer(tr, "test", host, ep)()
	}
	client, _ := rpc.NewClient(tr, messaging.Target{Topic: "test"})
	cctx := client.Prepare(rpc.Namespace("control"), rpc.Version("2.0"), rpc.Fanout(true))
	if err := cctx.Cast(context.Background(), "stop", nil); err != nil {
		log.Fatal(err)
	}
	a, b := <-got, <-got
	fmt.Println(a != b)
	// Output: true
}
