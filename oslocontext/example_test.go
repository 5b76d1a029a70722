package oslocontext_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// The Serializer carries a RequestContext from a client to a handler, as
// Nova's RequestContextSerializer carries a context between services.
func ExampleSerializer() {
	tr, err := messaging.Open("memory:///example-oslocontext")
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	ep := &rpc.Endpoint{Namespace: "compute", Version: "5.0"}
	rpc.Handle(ep, "start_instance", func(ctx context.Context, a struct {
		Instance string `json:"instance"`
	}) (any, error) {
		rc, _ := oslocontext.FromContext(ctx)
		fmt.Println(rc) // the token is never printed
		fmt.Println(rc.UserID, "starts", a.Instance, "in", rc.ProjectID)
		return nil, nil
	})
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: "compute", Server: "host1"}, []*rpc.Endpoint{ep},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Listen(context.Background()); err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()

	client, err := rpc.NewClient(tr, messaging.Target{Topic: "compute", Namespace: "compute", Version: "5.0"},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		log.Fatal(err)
	}
	rc := &oslocontext.RequestContext{
		UserID: "alice", ProjectID: "demo", Roles: []string{"member"}, AuthToken: "gAAAAAB...",
		RequestID: "req-5c2b0a3e-2f1d-4c3b-9a8e-7d6c5b4a3f2e", IsAdminProject: true,
	}
	ctx := oslocontext.NewContext(context.Background(), rc)
	if err := client.Call(ctx, "start_instance", map[string]string{"instance": "vm-1"}, nil); err != nil {
		log.Fatal(err)
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
		log.Fatal(err)
	}
	// Output:
	// RequestContext[auth_token:*** is_admin_project:true project_id:demo request_id:req-5c2b0a3e-2f1d-4c3b-9a8e-7d6c5b4a3f2e roles:[member] user:alice]
	// alice starts vm-1 in demo
}

// A context's dictionary is oslo.context's, with the names the services
// add.
func ExampleRequestContext_Metadata() {
	rc := oslocontext.RequestContext{UserID: "alice", ProjectID: "demo", RequestID: "req-1", IsAdminProject: true}
	md := rc.Metadata()
	fmt.Println(md["user"], md["user_id"], md["project_id"], md["project"], md["request_id"])
	fmt.Println(md["user_identity"])
	fmt.Println(md["auth_token"], md["roles"], md["is_admin"], md["is_admin_project"])

	back, err := oslocontext.FromMetadata(md)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.UserID, back.ProjectID, back.RequestID)
	// Output:
	// alice alice demo demo req-1
	// alice demo - - -
	// <nil> [] false true
	// alice demo req-1
}
