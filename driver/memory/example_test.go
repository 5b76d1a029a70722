package memory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/wire"
)

// A call and its reply through the driver interface, on a private
// broker: one connection for the server, one for the client, as two
// processes would have.
func Example() {
	b := memory.NewBroker()
	server, client := b.Conn(), b.Conn()
	defer server.Close()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	target := driver.Address{Exchange: "openstack", Topic: "compute", Server: "host1"}
	l, err := server.Listen(ctx, target, driver.ListenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	var wg sync.WaitGroup
	wg.Go(func() {
		d, err := l.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		req := d.Request()
		fmt.Printf("server: %s %s\n", req.Method, req.Args)
		if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`{"rebooted": true}`)}); err != nil {
			fmt.Println(err)
		}
	})
	reply, err := client.Call(ctx, target, &driver.Request{
		Method: "reboot_instance",
		Args:   json.RawMessage(`{"instance_id": "i-1"}`),
		MsgID:  wire.NewID(),
	}, driver.SendOptions{})
	wg.Wait()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("client: %s\n", reply.Result)
	// Output:
	// server: reboot_instance {"instance_id": "i-1"}
	// client: {"rebooted": true}
}

// The driver behind messaging.Open: "memory://" and oslo's "fake://"
// URLs, one broker per virtual host.
func ExampleDriver() {
	tr, err := messaging.Open("fake:///example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn := tr.Conn().(driver.RPCConn)
	target := tr.Address(messaging.Target{Topic: "scheduler", Server: "host1"})
	l, err := conn.Listen(ctx, target, driver.ListenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	req := &driver.Request{Method: "update_stats", Args: json.RawMessage(`{"free_ram_mb": 2048}`), UniqueID: wire.NewID()}
	if err := conn.Cast(ctx, target, req, driver.SendOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	d, err := l.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(target.Exchange, d.Request().Method, d.Request().IsCall())
	// Output: openstack update_stats false
}

// A notification sent before any listener exists waits in the queue
// "<topic>.<priority>" that Notify declares; a listener then takes it
// and acknowledges it once handled.
func ExampleConn_Notify() {
	b := memory.NewBroker()
	notifier, consumer := b.Conn(), b.Conn()
	defer notifier.Close()
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	n := &driver.Notification{
		MessageID:   wire.NewUUID(),
		PublisherID: "compute.host1",
		EventType:   "compute.instance.create.end",
		Priority:    "INFO",
		Payload:     json.RawMessage(`{"instance_id": "i-1"}`),
		Timestamp:   time.Date(2026, 11, 21, 4, 49, 35, 23246000, time.UTC).Format("2006-01-02 15:04:05.000000"),
		UniqueID:    wire.NewID(),
	}
	addr := driver.Address{Exchange: "openstack", Topic: "notifications"}
	if err := notifier.Notify(ctx, addr, n, driver.NotifyOptions{Envelope: true}); err != nil {
		fmt.Println(err)
		return
	}

	targets := []driver.NotifyTarget{{Exchange: "openstack", Topic: "notifications", Priorities: []string{"info"}}}
	l, err := consumer.ListenNotifications(ctx, targets, "", driver.ListenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	d, err := l.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	got := d.Notification()
	fmt.Println(got.Priority, got.EventType, string(got.Payload), got.Timestamp)
	if err := d.Ack(); err != nil {
		fmt.Println(err)
	}
	// Output: INFO compute.instance.create.end {"instance_id": "i-1"} 2026-11-21 04:49:35.023246
}
