package config_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/config"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
)

// A service reads its oslo.messaging options from nova.conf-style text
// and gets the transport URL, with the [oslo_messaging_rabbit] options
// in its query, and its options for rpc and notify.
func Example() {
	f, err := config.Parse("nova.conf", []byte(`
[DEFAULT]
transport_url = rabbit://nova:secret@rabbit1:5672,nova:secret@rabbit2:5672/nova
control_exchange = nova
rpc_response_timeout = 180

[oslo_messaging_notifications]
driver = messagingv2
topics = notifications,billing

[oslo_messaging_rabbit]
amqp_durable_queues = true
heartbeat_timeout_threshold = 30
amqp_durable_queus = true

[database]
connection = mysql+pymysql://nova:secret@db/nova
`), config.WithEnviron(nil)) // no OS_* variables in this example
	if err != nil {
		log.Fatal(err)
	}
	m, notices, err := config.FromFile(f)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range notices {
		fmt.Println("notice:", n)
	}
	u, err := m.RPCURL()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u) // printed with its passwords redacted
	fmt.Println(m.ControlExchange, m.RPCResponseTimeout, m.Notifications.Drivers, m.Notifications.Topics)
	// Output:
	// notice: nova.conf:14: unknown option [oslo_messaging_rabbit] amqp_durable_queus: did you mean amqp_durable_queues?
	// rabbit://nova:***@rabbit1:5672,nova:***@rabbit2:5672/nova?amqp_durable_queues=true&heartbeat_timeout_threshold=30
	// nova 3m0s [messagingv2] [notifications billing]
}

// The options of a configuration go to the transports, clients, servers
// and notifiers of the service.
func ExampleMessaging_OpenTransports() {
	f, err := config.Parse("svc.conf", []byte(`
[DEFAULT]
transport_url = memory:///example-config
control_exchange = svc
rpc_ping_enabled = true
[oslo_messaging_notifications]
driver = test
`), config.WithEnviron(nil))
	if err != nil {
		log.Fatal(err)
	}
	m, _, err := config.FromFile(f)
	if err != nil {
		log.Fatal(err)
	}
	rpcTr, notifTr, err := m.OpenTransports()
	if err != nil {
		log.Fatal(err)
	}
	defer rpcTr.Close()
	defer notifTr.Close()

	// A server with the configuration's options answers oslo's ping.
	ctx := context.Background()
	srv, err := rpc.NewServer(rpcTr, messaging.Target{Topic: "svc", Server: "host1"}, []*rpc.Endpoint{{}}, m.ServerOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Listen(ctx); err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			log.Print(err)
		}
	}()
	client, err := rpc.NewClient(rpcTr, messaging.Target{Topic: "svc"}, m.ClientOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	var pong string
	if err := client.Call(ctx, "oslo_rpc_server_ping", nil, &pong); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rpcTr.ControlExchange(), pong)

	// The "test" driver is a sink that the caller provides.
	rec := notify.NewRecorder()
	opts, err := m.NotifierOptions(map[string]notify.Sink{"test": rec})
	if err != nil {
		log.Fatal(err)
	}
	n, err := notify.NewNotifier(notifTr, "svc.host1", opts...)
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Info(ctx, "svc.started", map[string]string{"host": "host1"}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Messages()[0].EventType, rec.Messages()[0].Topics)
	// Output:
	// svc pong
	// svc.started [notifications]
}

// A command takes oslo.config's --config-file and --config-dir flags.
func ExampleRegisterFlags() {
	fs := flag.NewFlagSet("nova-compute-go", flag.ContinueOnError)
	srcs := config.RegisterFlags(fs)
	if err := fs.Parse([]string{"--config-file", "testdata/nova.conf"}); err != nil {
		log.Fatal(err)
	}
	f, err := srcs.Load(config.WithEnviron(nil))
	if err != nil {
		log.Fatal(err)
	}
	m, _, err := config.FromFile(f)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f)
	fmt.Println(m.TransportURL)
	// Output:
	// config.File(testdata/nova.conf)
	// rabbit://nova:***@rabbit1.example.org:5672,nova:***@rabbit2.example.org:5672/nova
}

// Environment variables override the files, named as oslo.config names
// them.
func ExampleEnvName() {
	fmt.Println(config.EnvName("DEFAULT", "transport_url"))
	fmt.Println(config.EnvName("oslo_messaging_rabbit", "amqp_durable_queues"))

	f, err := config.Parse("nova.conf", []byte("[oslo_messaging_rabbit]\namqp_durable_queues = false\n"),
		config.WithEnviron([]string{"OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES=yes"}))
	if err != nil {
		log.Fatal(err)
	}
	on, err := f.Bool("oslo_messaging_rabbit", "amqp_durable_queues", false)
	loc, _ := f.Location("oslo_messaging_rabbit", "amqp_durable_queues")
	fmt.Println(on, err, loc)
	// Output:
	// OS_DEFAULT__TRANSPORT_URL
	// OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES
	// true <nil> environment variable OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES
}
