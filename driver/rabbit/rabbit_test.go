package rabbit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// serve runs h on every request of l in a goroutine until l closes; the
// test's cleanup closes l and joins the goroutine.
func serve(t *testing.T, l driver.Listener, h func(driver.Delivery)) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			d, err := l.Next(context.Background())
			if err != nil {
				if !errors.Is(err, driver.ErrClosed) {
					t.Errorf("Next: %v", err)
				}
				return
			}
			h(d)
		}
	})
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
}

// echo replies to calls with their arguments and sends casts to casts.
func echo(casts chan<- *driver.Request) func(driver.Delivery) {
	return func(d driver.Delivery) {
		req := d.Request()
		if !req.IsCall() {
			casts <- req
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res := req.Args
		if res == nil {
			res = json.RawMessage(`{}`)
		}
		if err := d.Reply(ctx, &driver.Reply{Result: res}); err != nil {
			casts <- &driver.Request{Method: "reply failed: " + err.Error()}
		}
	}
}

func newCall(method, args string) *driver.Request {
	return &driver.Request{Method: method, Args: json.RawMessage(args), MsgID: wire.NewID(), UniqueID: wire.NewID(),
		Context: map[string]any{"user_id": "u1"}}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestRabbitCallCastTopology checks call, cast and fanout cast between
// two Conns, then the topology they declared against oslo's.
func TestRabbitCallCastTopology(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []string
		durable bool
		ttl     string // x-expires argument, "" for none
		extra   string // extra topic queue arguments
	}{
		{name: "defaults", ttl: "x-expires:signedint:1800000"},
		{name: "durable", opts: []string{"amqp_durable_queues", "true", "rabbit_transient_queues_ttl", "60"}, durable: true, ttl: "x-expires:signedint:60000"},
		{name: "quorum", opts: []string{"rabbit_quorum_queue", "true", "rabbit_quorum_delivery_limit", "5", "rabbit_transient_queues_ttl", "0"},
			durable: true, extra: "x-delivery-limit:signedint:5,x-queue-type:longstr:quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := testCtx(t)
			server, client := e.open(tc.opts...), e.open(tc.opts...)
			ex, topic := e.name("ex"), e.name("topo")
			addr := driver.Address{Exchange: ex, Topic: topic, Server: "srv1"}
			l, err := server.Listen(ctx, addr, driver.ListenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			casts := make(chan *driver.Request, 10)
			serve(t, l, echo(casts))

			rep, err := client.Call(ctx, addr, newCall("echo", `{"a": [1, "b"]}`), driver.SendOptions{})
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if string(rep.Result) != `{"a": [1, "b"]}` && string(rep.Result) != `{"a":[1,"b"]}` {
				t.Errorf("Call result = %s", rep.Result)
			}
			topicOnly := driver.Address{Exchange: ex, Topic: topic}
			if _, err := client.Call(ctx, topicOnly, newCall("echo", `{}`), driver.SendOptions{}); err != nil {
				t.Fatalf("Call to the topic: %v", err)
			}
			cast := newCall("c", `{"x": 1}`)
			cast.MsgID = ""
			if err := client.Cast(ctx, addr, cast, driver.SendOptions{}); err != nil {
				t.Fatalf("Cast: %v", err)
			}
			if got := recv(t, casts, "cast"); got.Method != "c" || got.UniqueID != cast.UniqueID || got.Context["user_id"] != "u1" {
				t.Errorf("cast received = %+v", got)
			}
			fan := driver.Address{Exchange: ex, Topic: topic, Fanout: true}
			if err := client.Cast(ctx, fan, &driver.Request{Method: "f"}, driver.SendOptions{}); err != nil {
				t.Fatalf("fanout Cast: %v", err)
			}
			if got := recv(t, casts, "fanout cast"); got.Method != "f" || got.UniqueID == "" {
				t.Errorf("fanout cast received = %+v", got)
			}

			xs := e.exchanges()
			if x := xs[ex]; x.Type != "topic" || x.Durable != tc.durable || x.AutoDelete {
				t.Errorf("exchange %s = %+v, want topic durable=%v auto_delete=false", ex, x, tc.durable)
			}
			if x := xs[topic+"_fanout"]; x.Type != "fanout" || x.Durable || !x.AutoDelete {
				t.Errorf("exchange %s_fanout = %+v, want fanout durable=false auto_delete=true", topic, x)
			}
			qs := e.queues()
			for _, name := range []string{topic, topic + ".srv1"} {
				q, ok := qs[name]
				if !ok || q.Durable != tc.durable || q.AutoDelete || args(q) != tc.extra {
					t.Errorf("queue %s = %+v (args %q), want durable=%v auto_delete=false args %q", name, q, args(q), tc.durable, tc.extra)
				}
			}
			fanoutRE := regexp.MustCompile(`^` + regexp.QuoteMeta(topic) + `_fanout_[0-9a-f]{32}$`)
			replyQ := client.replies.queue
			if !regexp.MustCompile(`^reply_[0-9a-f]{32}$`).MatchString(replyQ) {
				t.Errorf("reply queue name %q, want reply_<32 hex>", replyQ)
			}
			var fanoutQ string
			for name, q := range qs {
				switch {
				case fanoutRE.MatchString(name):
					fanoutQ = name
				case name == replyQ:
				default:
					continue
				}
				if q.Durable || q.AutoDelete || args(q) != tc.ttl {
					t.Errorf("queue %s = %+v (args %q), want durable=false auto_delete=false args %q", name, q, args(q), tc.ttl)
				}
			}
			if _, ok := qs[replyQ]; fanoutQ == "" || !ok {
				t.Fatalf("queues %v: want %s_fanout_<hex> and %s", qs, topic, replyQ)
			}
			want := map[binfo]bool{
				{ex, topic, topic}:                     false,
				{ex, topic + ".srv1", topic + ".srv1"}: false,
				{topic + "_fanout", fanoutQ, topic}:    false,
				{"", replyQ, replyQ}:                   false,
			}
			for _, b := range e.bindings() {
				if _, ok := want[b]; ok {
					want[b] = true
				}
			}
			for b, seen := range want {
				if !seen {
					t.Errorf("binding %+v missing", b)
				}
			}
		})
	}
}

// capture binds a queue of its own to exchange with key and returns the
// deliveries it gets.
func capture(t *testing.T, ch *amqp.Channel, exchange, kind string, durable, autoDelete bool, key string) <-chan amqp.Delivery {
	t.Helper()
	if err := ch.ExchangeDeclare(exchange, kind, durable, autoDelete, false, false, nil); err != nil {
		t.Fatalf("declare %s: %v", exchange, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, key, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loseConfirm has send publish, through p, a message whose confirm is
// lost with the connection: p stops forwarding the broker's answers,
// and once the message, what, reaches the broker (seen on copies) it
// cuts every connection. It returns that copy of the message and the
// error of send.
func loseConfirm(t *testing.T, p *proxy, copies <-chan amqp.Delivery, what string, send func() error) (amqp.Delivery, error) {
	t.Helper()
	p.deafen()
	res := make(chan error, 1)
	go func() { res <- send() }()
	first := recv(t, copies, what+" at the broker")
	p.cut() // the confirm is lost with the connection
	return first, recv(t, res, "the sending of "+what)
}

// expectResent checks that the message first, what, reaches the broker
// again, on copies, with the same body.
func expectResent(t *testing.T, copies <-chan amqp.Delivery, first amqp.Delivery, what string) {
	t.Helper()
	if second := recv(t, copies, what+" sent again"); !bytes.Equal(first.Body, second.Body) {
		t.Errorf("%s sent again differs:\n%s\n%s", what, first.Body, second.Body)
	}
}

func checkProps(t *testing.T, what string, d amqp.Delivery, expiration bool) {
	t.Helper()
	if d.ContentType != "application/json" || d.ContentEncoding != "utf-8" || d.DeliveryMode != 2 || d.Priority != 0 {
		t.Errorf("%s properties: content_type %q encoding %q delivery_mode %d priority %d", what, d.ContentType, d.ContentEncoding, d.DeliveryMode, d.Priority)
	}
	if d.CorrelationId != "" || d.ReplyTo != "" || d.MessageId != "" || !d.Timestamp.IsZero() || d.Type != "" || d.AppId != "" || len(d.Headers) != 0 {
		t.Errorf("%s carries properties oslo does not send: %+v", what, d)
	}
	if expiration {
		ms, err := strconv.Atoi(d.Expiration)
		if err != nil || ms < 1 || ms > 2000 {
			t.Errorf("%s expiration = %q, want the call timeout in ms (<= 2000)", what, d.Expiration)
		}
	} else if d.Expiration != "" {
		t.Errorf("%s expiration = %q, want none", what, d.Expiration)
	}
}

// TestRabbitWireFormat captures what the driver publishes, with a plain
// AMQP client, and checks routing and properties against oslo's.
func TestRabbitWireFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	c := e.open()
	raw := e.raw()
	ex, wf := e.name("nova"), e.name("wf")
	topic := capture(t, raw, ex, "topic", false, false, "#")
	fanout := capture(t, raw, wf+"_fanout", "fanout", false, true, "")

	addr := driver.Address{Exchange: ex, Topic: wf, Server: "h1"}
	cast := &driver.Request{Method: "do_cast", Args: json.RawMessage(`{"a": 1}`), Version: "1.3", Namespace: "ns1",
		UniqueID: wire.NewID(), Context: map[string]any{"request_id": "req-1"}}
	if err := c.Cast(ctx, addr, cast, driver.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	d := recv(t, topic, "cast")
	if d.Exchange != ex || d.RoutingKey != wf+".h1" {
		t.Errorf("cast routed to %q/%q, want %s/%s.h1", d.Exchange, d.RoutingKey, ex, wf)
	}
	checkProps(t, "cast", d, false)
	want, _ := wire.EncodeRequest(cast)
	if !bytes.Equal(d.Body, want) {
		t.Errorf("cast body = %s\nwant %s", d.Body, want)
	}

	// A call to a topic with no server: the request is published with the
	// call's timeout as expiration, then the call times out.
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	call := newCall("do_call", `{}`)
	_, err := c.Call(cctx, driver.Address{Exchange: ex, Topic: wf}, call, driver.SendOptions{MonitorTimeout: 10 * time.Second})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), call.MsgID) || !strings.Contains(err.Error(), wf) {
		t.Errorf("Call to no server = %v, want DeadlineExceeded naming the msg id and topic", err)
	}
	d = recv(t, topic, "call")
	if d.Exchange != ex || d.RoutingKey != wf {
		t.Errorf("call routed to %q/%q, want %s/%s", d.Exchange, d.RoutingKey, ex, wf)
	}
	checkProps(t, "call", d, true)
	got, err := wire.DecodeRequest(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.MsgID != call.MsgID || !strings.HasPrefix(got.ReplyTo, "reply_") || got.MonitorTimeout == nil || *got.MonitorTimeout != 10 {
		t.Errorf("call request = %+v, want msg id, reply queue and _timeout 10", got)
	}

	if err := c.Cast(ctx, driver.Address{Exchange: ex, Topic: wf, Fanout: true}, &driver.Request{Method: "fan", UniqueID: wire.NewID()}, driver.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	d = recv(t, fanout, "fanout cast")
	if d.Exchange != wf+"_fanout" || d.RoutingKey != "" {
		t.Errorf("fanout routed to %q/%q, want %s_fanout and an empty key", d.Exchange, d.RoutingKey, wf)
	}
	checkProps(t, "fanout", d, false)

	// Replies and heartbeats: a request injected with a reply queue of
	// ours reaches a Listener, whose Delivery answers there.
	srv := e.name("srvwf")
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: srv, Server: "h1"}, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rq, err := raw.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := raw.Consume(rq.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	timeout := 4.0
	req := &driver.Request{Method: "m", MsgID: wire.NewID(), ReplyTo: rq.Name, MonitorTimeout: &timeout, UniqueID: wire.NewID()}
	body, _ := wire.EncodeRequest(req)
	pub, _ := publishing(body, false, 0)
	if err := raw.PublishWithContext(ctx, ex, srv+".h1", false, false, pub); err != nil {
		t.Fatal(err)
	}
	dl, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if err := dl.Reply(ctx, &driver.Reply{Result: json.RawMessage(`[1, 2]`)}); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	if err := dl.Heartbeat(ctx); err != nil {
		t.Fatalf("Heartbeat after Reply: %v", err)
	}
	for i, wantEnding := range []bool{false, true} {
		d := recv(t, replies, "reply")
		if d.Exchange != "" || d.RoutingKey != rq.Name {
			t.Errorf("reply %d routed to %q/%q, want the default exchange and %s", i, d.Exchange, d.RoutingKey, rq.Name)
		}
		checkProps(t, "reply", d, false)
		m, err := wire.DecodeReply(d.Body)
		if err != nil || m.Ending != wantEnding || m.MsgID != req.MsgID || m.UniqueID == "" {
			t.Errorf("reply %d = %+v, %v; want ending %v for msg id %s", i, m, err, wantEnding, req.MsgID)
		}
		if wantEnding && string(m.Result) != "[1, 2]" {
			t.Errorf("reply result = %s, want [1, 2]", m.Result)
		}
	}
	select {
	case d := <-replies:
		t.Errorf("heartbeat after the final reply was sent: %s", d.Body)
	default:
	}
}
