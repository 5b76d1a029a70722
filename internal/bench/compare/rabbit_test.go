package compare

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/brokertest"
)

// TestRabbitCompareVhost runs the comparison with the fake programs on
// the real broker: it must create a virtual host of its own, watch its
// queues with rabbitmqctl and delete it at the end.
func TestRabbitCompareVhost(t *testing.T) {
	url, _ := brokertest.Vhost(t, "compare")
	o, _, _ := fakeOptions(t, "")
	o.URL, o.broker = url, nil
	o.Scenarios = []string{"call"}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("cells failed: %+v", rep.Cells)
	}
	name, ok := strings.CutPrefix(rep.Broker, "virtual host ")
	if !ok || !strings.HasPrefix(name, "omsg-bench-") {
		t.Fatalf("Broker = %q, want a virtual host of its own", rep.Broker)
	}
	name, _, _ = strings.Cut(name, ",")
	if rep.Machine.RabbitMQ == "" {
		t.Error("no RabbitMQ version")
	}
	for vh := range strings.SplitSeq(brokertest.Ctl(t, "list_vhosts", "-q", "name"), "\n") {
		if strings.TrimSpace(vh) == name {
			t.Errorf("virtual host %s left behind", name)
		}
	}
}

// TestRabbitCompareWithoutCtl runs the comparison without rabbitmqctl:
// it must use the URL's virtual host and passive declarations.
func TestRabbitCompareWithoutCtl(t *testing.T) {
	url, vhost := brokertest.Vhost(t, "compare")
	o, _, _ := fakeOptions(t, "")
	o.URL, o.broker = url, nil
	o.Rabbitmqctl = "/nonexistent/rabbitmqctl"
	o.Scenarios = []string{"notify"}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("cells failed: %+v", rep.Cells)
	}
	if want := `virtual host "` + vhost + `" of the URL`; !strings.HasPrefix(rep.Broker, want) {
		t.Errorf("Broker = %q, want it to start with %q", rep.Broker, want)
	}
	// The queues a passive declaration finds are watched too.
	r := &runner{o: o}
	u, err := driver.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := dial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	b := &rabbitBroker{conn: conn, vhost: vhost}
	defer b.close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("omsg_bench_x.info", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx, "", "omsg_bench_x.info", false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	r.broker = b
	r.o.DrainTimeout = 300 * time.Millisecond
	note := r.drain(ctx, "omsg_bench_x", []string{"omsg_bench_x", "omsg_bench_x.info"})
	if !strings.Contains(note, "1 messages still queued") {
		t.Errorf("drain with a message queued: note %q", note)
	}
	if _, err := ch.QueuePurge("omsg_bench_x.info", false); err != nil {
		t.Fatal(err)
	}
	if note := r.drain(ctx, "omsg_bench_x", []string{"omsg_bench_x", "omsg_bench_x.info"}); note != "" {
		t.Errorf("drain of empty queues: note %q", note)
	}
	_ = ch.Close()
}
