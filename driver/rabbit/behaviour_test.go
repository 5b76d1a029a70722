package rabbit

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// inject publishes body to exchange/key with oslo's properties, changed
// by edit.
func inject(t *testing.T, ch *amqp.Channel, exchange, key string, body []byte, edit func(*amqp.Publishing)) {
	t.Helper()
	p, err := publishing(body, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&p)
	}
	if err := ch.PublishWithContext(t.Context(), exchange, key, false, false, p); err != nil {
		t.Fatalf("inject: %v", err)
	}
}

func encodeReq(t *testing.T, r *driver.Request) []byte {
	t.Helper()
	b, err := wire.EncodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRabbitRejectsAndDuplicates feeds a listener messages a Python
// server would refuse, a duplicate and a compressed request.
func TestRabbitRejectsAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("rj")
	ctx := testCtx(t)
	c := e.open()
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: tp, Server: "s"}, driver.ListenOptions{Prefetch: 2})
	if err != nil {
		t.Fatal(err)
	}
	type consumer struct {
		Queue    string `json:"queue_name"`
		Tag      string `json:"consumer_tag"`
		Ack      bool   `json:"ack_required"`
		Prefetch int    `json:"prefetch_count"`
	}
	tags := map[string]string{}
	for _, cs := range ctlJSON[consumer](t, "list_consumers", "-p", e.vhost, "queue_name", "consumer_tag", "ack_required", "prefetch_count") {
		if !strings.HasPrefix(cs.Queue, tp) {
			continue // another test's
		}
		tags[cs.Queue] = cs.Tag
		if !cs.Ack || cs.Prefetch != 2 {
			t.Errorf("consumer %+v: want manual acks and prefetch 2", cs)
		}
	}
	if tags[tp] != "1" || tags[tp+".s"] != "2" || len(tags) != 3 {
		t.Errorf("consumer tags = %v, want rj:1, rj.s:2 and the fanout queue's 3, as oslo", tags)
	}
	raw := e.raw()
	good := func(m string) []byte { return encodeReq(t, &driver.Request{Method: m, UniqueID: wire.NewID()}) }
	inject(t, raw, ex, tp, good("text"), func(p *amqp.Publishing) { p.ContentType = "text/plain" })
	inject(t, raw, ex, tp, good("none"), func(p *amqp.Publishing) { p.ContentType = "" })
	inject(t, raw, ex, tp, []byte(`{"oslo.version": "2.1", "oslo.message": "{}"}`), nil)
	inject(t, raw, ex, tp, []byte(`not json`), nil)
	first := good("first")
	inject(t, raw, ex, tp, first, nil)
	inject(t, raw, ex, tp+".s", first, nil) // the same _unique_id again
	inject(t, raw, ex, tp, good("second"), nil)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(good("zipped"))
	_ = zw.Close()
	inject(t, raw, ex, tp, z.Bytes(), func(p *amqp.Publishing) {
		p.Headers = amqp.Table{"compression": "application/x-gzip"}
		p.ContentEncoding = "binary"
	})
	inject(t, raw, ex, tp, []byte(`{"method": "legacy", "args": {}, "_unique_id": "u-legacy"}`), nil)

	for _, want := range []string{"first", "second", "zipped", "legacy"} {
		d, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got := d.Request().Method; got != want {
			t.Errorf("Next = %q, want %q", got, want)
		}
	}
	nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	d, err := l.Next(nctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next after the last request = %v, %v; want DeadlineExceeded", d, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Next(ctx); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Next after Close = %v, want ErrClosed", err)
	}
	// Rejected messages are not requeued; the duplicate was acknowledged.
	if _, n := e.inspect(tp); n != 0 {
		t.Errorf("queue %s holds %d messages after the listener closed, want 0", tp, n)
	}
}

// TestRabbitMandatory checks that mandatory sends to a topic without a
// queue fail at once, and that other sends do not.
func TestRabbitMandatory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("some")
	ctx := testCtx(t)
	c := e.open()
	addr := driver.Address{Exchange: ex, Topic: "nobody"}
	start := time.Now()
	err := c.Cast(ctx, addr, &driver.Request{Method: "m"}, driver.SendOptions{Mandatory: true})
	if !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("mandatory Cast = %v, want ErrUndeliverable", err)
	}
	_, err = c.Call(ctx, addr, newCall("m", `{}`), driver.SendOptions{Mandatory: true})
	if !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("mandatory Call = %v, want ErrUndeliverable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("mandatory sends took %v, want an immediate failure", d)
	}
	if err := c.Cast(ctx, addr, &driver.Request{Method: "m"}, driver.SendOptions{}); err != nil {
		t.Errorf("Cast without mandatory = %v, want nil (dropped by the broker)", err)
	}
	// Concurrent mandatory casts, some routable, some not, each get
	// their own outcome.
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: tp, Server: "s"}, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, func(driver.Delivery) {})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			topic := tp
			if i%2 == 1 {
				topic = "none-" + e.id
			}
			err := c.Cast(ctx, driver.Address{Exchange: ex, Topic: topic}, &driver.Request{Method: "m", UniqueID: wire.NewID()},
				driver.SendOptions{Mandatory: true})
			if (topic == "none-"+e.id) != errors.Is(err, driver.ErrUndeliverable) || (topic == tp && err != nil) {
				t.Errorf("mandatory Cast to %s = %v", topic, err)
			}
		})
	}
	wg.Wait()
}

// TestRabbitMissingReplyQueue checks the reply retries to a missing
// reply queue and the cache of gone queues.
func TestRabbitMissingReplyQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("mr")
	ctx := testCtx(t)
	c := e.open("kombu_missing_consumer_retry_timeout", "1")
	l, err := c.Listen(ctx, driver.Address{Exchange: ex, Topic: tp, Server: "s"}, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw := e.raw()
	gone := "reply_" + wire.NewID()
	for range 2 {
		inject(t, raw, ex, tp, encodeReq(t, &driver.Request{Method: "m", MsgID: wire.NewID(), ReplyTo: gone, UniqueID: wire.NewID()}), nil)
	}
	d1, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d1.Reply(ctx, &driver.Reply{Result: json.RawMessage(`1`)})
	if took := time.Since(start); !errors.Is(err, driver.ErrUndeliverable) || took < time.Second || took > 5*time.Second {
		t.Errorf("Reply to a missing queue = %v after %v, want ErrUndeliverable after about 1 s", err, took)
	}
	d2, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	err = d2.Reply(ctx, &driver.Reply{})
	if took := time.Since(start); !errors.Is(err, driver.ErrUndeliverable) || took > 500*time.Millisecond {
		t.Errorf("second Reply to the gone queue = %v after %v, want ErrUndeliverable at once", err, took)
	}
	if err := d2.Reply(ctx, &driver.Reply{}); err == nil {
		t.Error("a second Reply on one delivery succeeded")
	}
}

// TestRabbitCloseDeletesQueues checks what Listener.Close and Conn.Close
// leave behind, and that they fail what is pending.
func TestRabbitCloseDeletesQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("cl")
	ctx := testCtx(t)
	server, client := e.open(), e.open()
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan driver.Delivery, 1)
	serve(t, l, func(d driver.Delivery) {
		if d.Request().Method == "hold" {
			held <- d
			return
		}
		_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"ok"`)})
	})
	if _, err := client.Call(ctx, addr, newCall("echo", `{}`), driver.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	replyQ := client.replies.queue
	fanoutQ := l.(*listener).queues[2].name
	if ok, _ := e.inspect(replyQ); !ok {
		t.Fatalf("reply queue %s missing", replyQ)
	}
	if ok, _ := e.inspect(fanoutQ); !ok {
		t.Fatalf("fanout queue %s missing", fanoutQ)
	}

	type result struct {
		rep *driver.Reply
		err error
	}
	res := make(chan result, 1)
	go func() {
		rep, err := client.Call(ctx, addr, newCall("hold", `{}`), driver.SendOptions{})
		res <- result{rep, err}
	}()
	d := recv(t, held, "held request")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.inspect(fanoutQ); ok {
		t.Errorf("fanout queue %s left after Listener.Close", fanoutQ)
	}
	// A delivery taken before Close can still be answered.
	if err := d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`"late"`)}); err != nil {
		t.Errorf("Reply after Listener.Close: %v", err)
	}
	if r := recv(t, res, "held call"); r.err != nil || string(r.rep.Result) != `"late"` {
		t.Errorf("held Call = %v, %v; want \"late\"", r.rep, r.err)
	}

	// Nobody listens any more: a call waits until Close fails it.
	go func() {
		_, err := client.Call(ctx, addr, newCall("orphan", `{}`), driver.SendOptions{})
		res <- result{nil, err}
	}()
	// The call is published once the queue holds it.
	for i := 0; ; i++ {
		if _, n := e.inspect(tp + ".s"); n > 0 {
			break
		}
		if i == 50 {
			t.Fatal("the orphan call never reached the queue")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, res, "orphan call"); !errors.Is(r.err, driver.ErrClosed) {
		t.Errorf("Call pending at Close = %v, want ErrClosed", r.err)
	}
	if ok, _ := e.inspect(replyQ); ok {
		t.Errorf("reply queue %s left after Conn.Close", replyQ)
	}
	if err := client.Cast(ctx, addr, &driver.Request{Method: "m"}, driver.SendOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Cast after Close = %v, want ErrClosed", err)
	}
	if _, err := client.Listen(ctx, addr, driver.ListenOptions{}); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Listen after Close = %v, want ErrClosed", err)
	}
	if err := client.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestRabbitCallMonitor checks heartbeats and the monitor timeout.
func TestRabbitCallMonitor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("mon")
	ctx := testCtx(t)
	c := e.open()
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := c.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	serve(t, l, func(d driver.Delivery) {
		if d.Request().Method != "slow" {
			return // "mute": no reply, no heartbeat
		}
		wg.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for range 8 {
				<-tick.C
				if err := d.Heartbeat(ctx); err != nil {
					t.Errorf("Heartbeat: %v", err)
				}
			}
			_ = d.Reply(ctx, &driver.Reply{Result: json.RawMessage(`42`)})
		})
	})
	// The method takes 1.6 s, longer than the monitor timeout, and
	// heartbeats every 0.2 s.
	opts := driver.SendOptions{MonitorTimeout: time.Second}
	rep, err := c.Call(ctx, addr, newCall("slow", `{}`), opts)
	if err != nil || string(rep.Result) != "42" {
		t.Errorf("Call with heartbeats = %v, %v; want 42", rep, err)
	}
	start := time.Now()
	_, err = c.Call(ctx, addr, newCall("mute", `{}`), opts)
	if took := time.Since(start); !errors.Is(err, driver.ErrHeartbeatTimeout) || !errors.Is(err, context.DeadlineExceeded) ||
		took < time.Second || took > 5*time.Second {
		t.Errorf("Call to a mute server = %v after %v, want ErrHeartbeatTimeout after 1 s", err, took)
	}
}

// TestRabbitReplyForms feeds the reply queue what old and odd servers
// send: the two-message form, replies for unknown calls, legacy bodies
// and junk.
func TestRabbitReplyForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("rf")
	ctx := testCtx(t)
	c := e.open()
	raw := e.raw()
	addr := driver.Address{Exchange: ex, Topic: tp}
	reqs := capture(t, raw, ex, "topic", false, false, tp)
	for _, tc := range []struct {
		name    string
		replies func(msgID string) [][]byte
		want    string
		failure string
	}{
		{"two messages", func(id string) [][]byte {
			a, _ := wire.EncodeReply(&driver.Reply{Result: json.RawMessage(`"first"`)}, id, wire.NewID(), false)
			b, _ := wire.EncodeReply(nil, id, wire.NewID(), true)
			return [][]byte{a, b}
		}, `"first"`, ""},
		{"legacy and junk", func(id string) [][]byte {
			other, _ := wire.EncodeReply(&driver.Reply{Result: json.RawMessage(`"other"`)}, wire.NewID(), wire.NewID(), true)
			return [][]byte{other, []byte(`junk`), []byte(`{"result": {"a": 1}, "ending": true, "_msg_id": "` + id + `"}`)}
		}, `{"a": 1}`, ""},
		{"failure", func(id string) [][]byte {
			f, _ := wire.EncodeReply(&driver.Reply{Failure: &driver.Failure{Class: "ValueError", Module: "builtins", Message: "bad"}}, id, wire.NewID(), true)
			return [][]byte{f}
		}, "", "ValueError"},
	} {
		req := newCall("m", `{}`)
		done := make(chan struct{})
		var rep *driver.Reply
		var err error
		go func() {
			defer close(done)
			rep, err = c.Call(ctx, addr, req, driver.SendOptions{})
		}()
		d := recv(t, reqs, "request")
		got, derr := wire.DecodeRequest(d.Body)
		if derr != nil {
			t.Fatal(derr)
		}
		for _, body := range tc.replies(got.MsgID) {
			inject(t, raw, "", got.ReplyTo, body, nil)
		}
		<-done
		switch {
		case err != nil:
			t.Errorf("%s: Call = %v", tc.name, err)
		case tc.failure != "" && (rep.Failure == nil || rep.Failure.Class != tc.failure):
			t.Errorf("%s: reply = %+v, want failure %s", tc.name, rep, tc.failure)
		case tc.failure == "" && string(rep.Result) != tc.want:
			t.Errorf("%s: result = %s, want %s", tc.name, rep.Result, tc.want)
		}
	}
}

// TestRabbitCompression runs calls and casts between gzip-compressing
// Conns and checks what goes over the wire.
func TestRabbitCompression(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("gz")
	ctx := testCtx(t)
	server, client := e.open("kombu_compression", "gzip"), e.open("kombu_compression", "gzip")
	plain := e.open()
	raw := e.raw()
	seen := capture(t, raw, ex, "topic", false, false, "#")
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	casts := make(chan *driver.Request, 4)
	serve(t, l, echo(casts))
	args := `{"text": "` + strings.Repeat("compress me ", 100) + `"}`
	for _, c := range []*Conn{client, plain} {
		rep, err := c.Call(ctx, addr, newCall("echo", args), driver.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ Text string }
		if err := json.Unmarshal(rep.Result, &v); err != nil || !strings.HasPrefix(v.Text, "compress me") {
			t.Errorf("compressed round trip = %s, %v", rep.Result, err)
		}
	}
	d := recv(t, seen, "compressed request")
	if d.Headers["compression"] != "application/x-gzip" || d.ContentType != "application/json" {
		t.Errorf("compressed request headers %v, content type %q", d.Headers, d.ContentType)
	}
	zr, err := zlib.NewReader(bytes.NewReader(d.Body))
	if err != nil {
		t.Fatalf("request body is not a zlib stream: %v", err)
	}
	_ = zr.Close()
	if d := recv(t, seen, "plain request"); len(d.Headers) != 0 {
		t.Errorf("uncompressed request has headers %v", d.Headers)
	}
}

// TestRabbitPing checks Ping, and that Open does no I/O.
func TestRabbitPing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	c := e.open()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	bad := openURL(t, "rabbit://guest:pw@"+dead+"/") // no I/O: succeeds
	if err := bad.Ping(ctx); err == nil || strings.Contains(err.Error(), "pw@") {
		t.Errorf("Ping of a closed port = %v, want an error without the password", err)
	}
	start := time.Now()
	err = bad.Cast(ctx, driver.Address{Exchange: "x", Topic: "t"}, &driver.Request{Method: "m"}, driver.SendOptions{Retry: 1})
	if !errors.Is(err, driver.ErrDeliveryFailure) || time.Since(start) > 5*time.Second {
		t.Errorf("Cast with Retry 1 to a closed port = %v after %v, want ErrDeliveryFailure", err, time.Since(start))
	}
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = bad.Cast(sctx, driver.Address{Exchange: "x", Topic: "t"}, &driver.Request{Method: "m"}, driver.SendOptions{Retry: -1})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cast retrying forever = %v, want DeadlineExceeded", err)
	}
	// A URL whose first host is down fails over to the next.
	h := e.base.Hosts[0]
	fu := *e.base
	fu.VirtualHost = e.vhost
	fu.Hosts = []driver.Host{{Hostname: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}, h}
	fo := openURL(t, fu.Unredacted())
	if err := fo.Ping(ctx); err != nil {
		t.Errorf("Ping with a dead host = %v", err)
	}
	if _, err := fo.Call(ctx, driver.Address{Exchange: "x", Topic: "none"}, newCall("m", `{}`), driver.SendOptions{Mandatory: true}); !errors.Is(err, driver.ErrUndeliverable) {
		t.Errorf("Call over a failed-over connection = %v, want ErrUndeliverable", err)
	}
	// Through the registry, under both schemes.
	for _, scheme := range []string{"rabbit", "kombu"} {
		tr, err := messaging.Open(scheme + strings.TrimPrefix(e.url(), "rabbit"))
		if err != nil {
			t.Fatalf("messaging.Open(%s): %v", scheme, err)
		}
		if _, ok := tr.Conn().(*Conn); !ok {
			t.Errorf("messaging.Open(%s) made a %T", scheme, tr.Conn())
		}
		if err := tr.Ping(ctx); err != nil {
			t.Errorf("Transport.Ping(%s) = %v", scheme, err)
		}
		_ = tr.Close()
	}
	_ = c.Close()
	if err := c.Ping(ctx); !errors.Is(err, driver.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
}

// TestRabbitReconnect cuts every connection of a client and a server
// and checks that calls, casts and fanouts resume on the same queues.
// The sends opt into re-sending unconfirmed messages: the first publish
// after the cut may go out on the dead connection before the client
// notices, and without the opt-in it would fail with ErrUnconfirmed
// (TestRabbitLostConfirm covers that).
func TestRabbitReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("rc")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	opts := fastRetry("rabbit_retry_backoff", "1")
	server, client := viaProxy.open(opts...), viaProxy.open(opts...)
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	casts := make(chan *driver.Request, 10)
	serve(t, l, echo(casts))
	call := func() {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := client.Call(cctx, addr, newCall("echo", `{"n": 1}`), driver.SendOptions{Retry: -1, ResendUnconfirmed: true}); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	call()
	mine := []string{client.replies.queue, l.(*listener).queues[2].name}
	p.cut()
	call()
	if err := client.Cast(ctx, driver.Address{Exchange: ex, Topic: tp, Fanout: true}, &driver.Request{Method: "fan"}, driver.SendOptions{Retry: -1, ResendUnconfirmed: true}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, casts, "fanout after reconnect"); got.Method != "fan" {
		t.Errorf("fanout after reconnect = %+v", got)
	}
	for _, name := range mine {
		if ok, _ := e.inspect(name); !ok {
			t.Errorf("queue %s was not reused after the reconnection", name)
		}
	}
}

func TestRabbitBlockedPublishHonoursContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("blk")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	c := viaProxy.open(fastRetry()...)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	p.pause()
	// Casts of 2 MiB each: the first ones wait for confirms that cannot
	// come, until the socket buffers are full and a write blocks. Every
	// one must end with its context.
	blob := &driver.Request{Method: "big", Args: json.RawMessage(`{"blob": "` + strings.Repeat("x", 2<<20) + `"}`)}
	torn := func() error {
		c.pub.mu.Lock()
		defer c.pub.mu.Unlock()
		return c.pub.link.cause()
	}
	for i := 0; i < 10 && torn() == nil; i++ {
		bctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		err := c.Cast(bctx, driver.Address{Exchange: ex, Topic: tp}, blob, driver.SendOptions{Retry: -1})
		cancel()
		if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 3*time.Second {
			t.Errorf("blocked Cast %d = %v after %v, want DeadlineExceeded after 0.5 s", i, err, took)
		}
	}
	if cause := torn(); cause == nil || !strings.Contains(cause.Error(), "outlived its context") {
		t.Errorf("publishing connection closed by %v, want a teardown of the blocked write", cause)
	}
	p.cut() // unpause
	if err := c.Cast(ctx, driver.Address{Exchange: ex, Topic: tp}, &driver.Request{Method: "small"}, driver.SendOptions{Retry: -1}); err != nil {
		t.Errorf("Cast after the blockage = %v", err)
	}
}

// TestRabbitLostConfirm loses the confirm of a cast that reached the
// broker, with the connection, and checks that it fails with
// ErrUnconfirmed unless the caller allows re-sending unconfirmed
// messages, and then it is sent again with the same _unique_id, which
// the listener filters out.
func TestRabbitLostConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("lost")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	client := viaProxy.open(fastRetry()...)
	server := e.open()
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := server.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *driver.Request, 10)
	serve(t, l, echo(got))
	copies := capture(t, e.raw(), ex, "topic", false, false, tp+".s")

	for _, tc := range []struct {
		retry  int
		resend bool
	}{{0, false}, {-1, false}, {-1, true}} {
		retry := tc.retry
		if err := client.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		if err := client.Cast(ctx, addr, &driver.Request{Method: "warmup"}, driver.SendOptions{}); err != nil {
			t.Fatal(err)
		}
		recv(t, copies, "warm-up cast")
		recv(t, got, "warm-up cast")
		req := &driver.Request{Method: "once", UniqueID: wire.NewID()}
		first, err := loseConfirm(t, p, copies, "the cast", func() error {
			return client.Cast(ctx, addr, req, driver.SendOptions{Retry: retry, ResendUnconfirmed: tc.resend})
		})
		want := 1
		if !tc.resend {
			if !errors.Is(err, driver.ErrUnconfirmed) {
				t.Errorf("Cast with Retry %d and a lost confirm = %v, want ErrUnconfirmed", retry, err)
			}
		} else {
			want = 2
			if err != nil {
				t.Errorf("Cast with Retry -1, ResendUnconfirmed and a lost confirm = %v, want nil", err)
			}
			expectResent(t, copies, first, "the cast")
		}
		if r := recv(t, got, "the cast at the server"); r.UniqueID != req.UniqueID {
			t.Errorf("server got %+v", r)
		}
		select {
		case d := <-copies:
			t.Errorf("Retry %d: more than %d copies at the broker: %s", retry, want, d.Body)
		case r := <-got:
			t.Errorf("Retry %d: the server got the cast twice: %+v", retry, r)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// TestRabbitDurableMismatch declares the control exchange as durable
// where it exists as transient: the broker's refusal surfaces at once.
func TestRabbitDurableMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("ex"), e.name("dm")
	ctx := testCtx(t)
	plain, durable := e.open(), e.open("amqp_durable_queues", "true")
	addr := driver.Address{Exchange: ex, Topic: tp, Server: "s"}
	l, err := plain.Listen(ctx, addr, driver.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = durable.Listen(ctx, addr, driver.ListenOptions{})
	if !errors.Is(err, driver.ErrDeliveryFailure) || !strings.Contains(err.Error(), "inequivalent arg 'durable'") {
		t.Errorf("durable Listen on a transient exchange = %v, want ErrDeliveryFailure naming the durable mismatch", err)
	}
	err = durable.Cast(ctx, addr, &driver.Request{Method: "m"}, driver.SendOptions{Retry: -1})
	if !errors.Is(err, driver.ErrDeliveryFailure) || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Errorf("durable Cast to a transient exchange = %v, want ErrDeliveryFailure", err)
	}
	// The refusal closed only the declaration channel.
	if err := durable.Cast(ctx, driver.Address{Exchange: e.name("other"), Topic: tp}, &driver.Request{Method: "m"}, driver.SendOptions{}); err != nil {
		t.Errorf("Cast to another exchange after the refusal = %v", err)
	}
}
