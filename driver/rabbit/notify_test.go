package rabbit

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// newNote returns a notification with every field set.
func newNote(priority, payload string) *driver.Notification {
	return &driver.Notification{MessageID: wire.NewUUID(), PublisherID: "compute.host1", EventType: "compute.instance.create.end",
		Priority: priority, Payload: json.RawMessage(payload), Timestamp: "2026-11-21 04:49:35.023246",
		Context: map[string]any{"user_id": "u1", "project_id": "p1"}, UniqueID: wire.NewID()}
}

// nextNote returns the next notification of l, failing the test after
// 10 s.
func nextNote(t *testing.T, l driver.NotifyListener) driver.NotifyDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	d, err := l.Next(ctx)
	if err != nil {
		t.Fatalf("NotifyListener.Next: %v", err)
	}
	return d
}

// noNote fails the test if a notification reaches l within 300 ms.
func noNote(t *testing.T, l driver.NotifyListener, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if d, err := l.Next(ctx); err == nil {
		t.Errorf("%s: unexpected notification %+v", what, *d.Notification())
	}
}

// listenNotes starts a notification listener closed when the test ends.
func listenNotes(t *testing.T, c *Conn, pool string, opts driver.ListenOptions, targets ...driver.NotifyTarget) driver.NotifyListener {
	t.Helper()
	l, err := c.ListenNotifications(testCtx(t), targets, pool, opts)
	if err != nil {
		t.Fatalf("ListenNotifications: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

type consumerInfo struct {
	Queue    string `json:"queue_name"`
	Tag      string `json:"consumer_tag"`
	Ack      bool   `json:"ack_required"`
	Prefetch int    `json:"prefetch_count"`
}

// consumers returns the consumers of the queues whose names start with
// prefix, by queue.
func (e *env) consumers(prefix string) map[string][]consumerInfo {
	e.t.Helper()
	out := map[string][]consumerInfo{}
	for _, cs := range ctlJSON[consumerInfo](e.t, "list_consumers", "-p", e.vhost, "queue_name", "consumer_tag", "ack_required", "prefetch_count") {
		if strings.HasPrefix(cs.Queue, prefix) {
			out[cs.Queue] = append(out[cs.Queue], cs)
		}
	}
	return out
}

// TestRabbitNotifyTopology checks what Notify and ListenNotifications
// declare against oslo's notifier and notification listener: the
// control exchange, the queue <topic>.<priority> with the flags and
// arguments of topic queues and no x-expires, the pool queue bound to
// every <topic>.<priority> of its targets, and the consumers.
func TestRabbitNotifyTopology(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []string
		durable bool
		args    string
	}{
		{name: "defaults"},
		{name: "durable", opts: []string{"amqp_durable_queues", "true", "rabbit_qos_prefetch_count", "7"}, durable: true},
		{name: "quorum", opts: []string{"rabbit_quorum_queue", "true", "rabbit_quorum_delivery_limit", "5"},
			durable: true, args: "x-delivery-limit:signedint:5,x-queue-type:longstr:quorum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := testCtx(t)
			c := e.open(tc.opts...)
			ex, ex2, tp, tp2, pool := e.name("nex"), e.name("nex2"), e.name("ntopo"), e.name("ntopo2"), e.name("npool")

			// The notifier declares the exchange and the queue of what it
			// sends, lower-casing the priority.
			if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, newNote("INFO", `{}`), driver.NotifyOptions{Envelope: true}); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			// Unpooled: two queues, two consumers. Pooled: one queue bound
			// three times, one consumer.
			plain := listenNotes(t, c, "", driver.ListenOptions{}, driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info", "error"}})
			listenNotes(t, c, pool, driver.ListenOptions{Prefetch: 3},
				driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info", "error"}},
				driver.NotifyTarget{Exchange: ex2, Topic: tp2, Priorities: []string{"warn"}})
			if d := nextNote(t, plain); d.Notification().Priority != "INFO" {
				t.Errorf("unpooled listener got %+v", *d.Notification())
			} else if err := d.Ack(); err != nil {
				t.Errorf("Ack: %v", err)
			}

			xs := e.exchanges()
			for _, name := range []string{ex, ex2} {
				if x := xs[name]; x.Type != "topic" || x.Durable != tc.durable || x.AutoDelete {
					t.Errorf("exchange %s = %+v, want topic durable=%v auto_delete=false", name, x, tc.durable)
				}
			}
			qs := e.queues()
			for _, name := range []string{tp + ".info", tp + ".error", pool} {
				q, ok := qs[name]
				if !ok || q.Durable != tc.durable || q.AutoDelete || args(q) != tc.args {
					t.Errorf("queue %s = %+v (args %q), want durable=%v auto_delete=false args %q (no x-expires)",
						name, q, args(q), tc.durable, tc.args)
				}
			}
			if _, ok := qs[tp2+".warn"]; ok {
				t.Errorf("queue %s.warn declared by a pool listener", tp2)
			}
			want := map[binfo]bool{
				{ex, tp + ".info", tp + ".info"}:   false,
				{ex, tp + ".error", tp + ".error"}: false,
				{ex, pool, tp + ".info"}:           false,
				{ex, pool, tp + ".error"}:          false,
				{ex2, pool, tp2 + ".warn"}:         false,
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

			prefetch := 0
			if tc.name == "durable" {
				prefetch = 7 // rabbit_qos_prefetch_count, for listeners without their own
			}
			cs := e.consumers(tp)
			for _, q := range []string{tp + ".info", tp + ".error"} {
				if len(cs[q]) != 1 || !cs[q][0].Ack || cs[q][0].Prefetch != prefetch {
					t.Errorf("consumers of %s = %+v, want one with manual acks and prefetch %d", q, cs[q], prefetch)
				}
			}
			if tags := cs[tp+".info"][0].Tag + cs[tp+".error"][0].Tag; tags != "12" {
				t.Errorf("consumer tags of %s.info and .error: %q, want 1 and 2, as oslo", tp, tags)
			}
			pc := e.consumers(pool)[pool]
			if len(pc) != 1 || !pc[0].Ack || pc[0].Prefetch != 3 || pc[0].Tag != "1" {
				t.Errorf("consumers of the pool queue = %+v, want one, tag 1, manual acks, prefetch 3", pc)
			}
		})
	}
}

// TestRabbitNotifyWireFormat captures what Notify publishes with a plain
// AMQP consumer and checks routing, properties and bodies against
// oslo's, in both formats and compressed.
func TestRabbitNotifyWireFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	ex, tp := e.name("nwf"), e.name("nwf")
	captured := capture(t, e.raw(), ex, "topic", false, false, "#")
	c := e.open()

	for _, tc := range []struct {
		priority string
		envelope bool
	}{{"INFO", true}, {"ERROR", false}, {"Warn", true}} {
		n := newNote(tc.priority, `{"a": [1, "é"]}`)
		if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, n, driver.NotifyOptions{Envelope: tc.envelope}); err != nil {
			t.Fatal(err)
		}
		d := recv(t, captured, "notification")
		if key := tp + "." + strings.ToLower(tc.priority); d.Exchange != ex || d.RoutingKey != key {
			t.Errorf("notification routed to %q/%q, want %s/%s", d.Exchange, d.RoutingKey, ex, key)
		}
		checkProps(t, "notification", d, false)
		want, err := wire.EncodeNotification(n, tc.envelope)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Body, want) {
			t.Errorf("notification body = %s\nwant %s", d.Body, want)
		}
	}

	// An empty _unique_id is filled in the message, not in the caller's
	// notification.
	n := newNote("INFO", `null`)
	n.UniqueID = ""
	if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, n, driver.NotifyOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := wire.DecodeNotification(recv(t, captured, "notification").Body)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got.UniqueID) || n.UniqueID != "" {
		t.Errorf("published _unique_id %q (caller's now %q), want 32 hex digits and the caller's left empty", got.UniqueID, n.UniqueID)
	}

	// Compressed as oslo's kombu_compression=gzip.
	gz := e.open("kombu_compression", "gzip")
	n = newNote("INFO", `"compressed"`)
	if err := gz.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, n, driver.NotifyOptions{Envelope: true}); err != nil {
		t.Fatal(err)
	}
	d := recv(t, captured, "compressed notification")
	if d.Headers["compression"] != "application/x-gzip" || d.ContentType != "application/json" || d.DeliveryMode != 2 {
		t.Errorf("compressed notification: headers %v, content type %q, delivery mode %d", d.Headers, d.ContentType, d.DeliveryMode)
	}
	zr, err := zlib.NewReader(bytes.NewReader(d.Body))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	want, _ := wire.EncodeNotification(n, true)
	if err != nil || !bytes.Equal(body, want) {
		t.Errorf("decompressed body = %s, %v\nwant %s", body, err, want)
	}

	for _, bad := range []driver.Address{{Exchange: ex, Topic: tp, Server: "s"}, {Exchange: ex, Topic: tp, Fanout: true}, {Exchange: ex}} {
		if err := c.Notify(ctx, bad, newNote("INFO", `{}`), driver.NotifyOptions{}); !errors.Is(err, messaging.ErrInvalidTarget) {
			t.Errorf("Notify(%+v) = %v, want ErrInvalidTarget", bad, err)
		}
	}
}

// TestRabbitNotifyRejectsAndDuplicates feeds a notification listener
// messages a Python listener would refuse, compressed notifications and
// the same notification twice: the refused ones are rejected without
// requeueing, and the duplicate is returned, since the driver leaves
// duplicate filtering to its caller.
func TestRabbitNotifyRejectsAndDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("nrj"), e.name("nrj")
	c := e.open()
	l := listenNotes(t, c, "", driver.ListenOptions{}, driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info"}})
	raw := e.raw()
	key := tp + ".info"
	enc := func(n *driver.Notification, env bool) []byte {
		b, err := wire.EncodeNotification(n, env)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := func(event string) []byte { n := newNote("INFO", `{}`); n.EventType = event; return enc(n, true) }
	inject(t, raw, ex, key, good("text"), func(p *amqp.Publishing) { p.ContentType = "text/plain" })
	inject(t, raw, ex, key, good("none"), func(p *amqp.Publishing) { p.ContentType = "" })
	inject(t, raw, ex, key, []byte(`{"oslo.version": "3.0", "oslo.message": "{}"}`), nil)
	inject(t, raw, ex, key, []byte(`not json`), nil)
	inject(t, raw, ex, key, good("bad compression"), func(p *amqp.Publishing) { p.Headers = amqp.Table{"compression": "application/x-lzma"} })
	twice := newNote("INFO", `{}`)
	twice.EventType = "twice"
	inject(t, raw, ex, key, enc(twice, true), nil)
	inject(t, raw, ex, key, enc(twice, false), nil) // the same _unique_id, without the envelope
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(good("zipped"))
	_ = zw.Close()
	inject(t, raw, ex, key, z.Bytes(), func(p *amqp.Publishing) {
		p.Headers = amqp.Table{"compression": "application/x-gzip"}
		p.ContentEncoding = "binary"
	})

	for _, want := range []string{"twice", "twice", "zipped"} {
		d := nextNote(t, l)
		if got := d.Notification().EventType; got != want {
			t.Errorf("Next = %q, want %q", got, want)
		}
		if want == "twice" && d.Notification().UniqueID != twice.UniqueID {
			t.Errorf("_unique_id %q, want %q", d.Notification().UniqueID, twice.UniqueID)
		}
		if err := d.Ack(); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
	noNote(t, l, "after the last valid notification")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, n := e.inspect(key); n != 0 {
		t.Errorf("queue %s holds %d messages after the listener closed, want 0: rejects are not requeued", key, n)
	}
}

// TestRabbitNotifyReconnect cuts the listener's connection while it
// holds an unacknowledged notification: the delivery can no longer be
// settled, deliveries of the lost channel still buffered are skipped,
// and the listener resumes consuming and gets every notification again.
func TestRabbitNotifyReconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("nrc"), e.name("nrc")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	lc := viaProxy.open(fastRetry("rabbit_retry_backoff", "1")...)
	c := e.open()
	l := listenNotes(t, lc, "", driver.ListenOptions{}, driver.NotifyTarget{Exchange: ex, Topic: tp, Priorities: []string{"info"}})
	addr := driver.Address{Exchange: ex, Topic: tp}
	sent := map[string]bool{}
	for i := range 3 {
		n := newNote("INFO", `{}`)
		n.EventType = "n" + string(rune('0'+i))
		sent[n.UniqueID] = false
		if err := c.Notify(ctx, addr, n, driver.NotifyOptions{Envelope: true}); err != nil {
			t.Fatal(err)
		}
	}
	d := nextNote(t, l)
	p.cut()
	deadline := time.Now().Add(10 * time.Second)
	for d.(*notifyDelivery).in.sess.usable() {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not notice the lost connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Ack(); err == nil || errors.Is(err, driver.ErrClosed) {
		t.Errorf("Ack of a delivery of the lost channel = %v, want an error that is not ErrClosed", err)
	}
	if err := d.Ack(); err == nil || !strings.Contains(err.Error(), "already") {
		t.Errorf("second Ack = %v, want an error saying it was already acknowledged", err)
	}
	for range 3 {
		d := nextNote(t, l)
		id := d.Notification().UniqueID
		if seen, ok := sent[id]; !ok || seen {
			t.Errorf("received %+v: unknown or twice", *d.Notification())
		}
		sent[id] = true
		if err := d.Ack(); err != nil {
			t.Errorf("Ack after the reconnection: %v", err)
		}
	}
	noNote(t, l, "after every notification was acknowledged")
	if _, n := e.inspect(tp + ".info"); n != 0 {
		t.Errorf("queue %s.info holds %d messages, want 0", tp, n)
	}
}

// TestRabbitNotifyQueueMismatch declares the notification queue with
// other arguments first: the broker's refusal of the notifier's
// declaration fails the notification at once, and only that one.
func TestRabbitNotifyQueueMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("nqm"), e.name("nqm")
	ctx := testCtx(t)
	raw := e.raw()
	if err := raw.ExchangeDeclare(ex, "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.QueueDeclare(tp+".info", false, false, false, false, amqp.Table{"x-max-length": int32(10)}); err != nil {
		t.Fatal(err)
	}
	c := e.open()
	err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, newNote("INFO", `{}`), driver.NotifyOptions{Retry: -1})
	if !errors.Is(err, driver.ErrDeliveryFailure) || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Errorf("Notify to a queue declared with other arguments = %v, want ErrDeliveryFailure (PRECONDITION_FAILED)", err)
	}
	if err := c.Notify(ctx, driver.Address{Exchange: ex, Topic: tp}, newNote("ERROR", `{}`), driver.NotifyOptions{}); err != nil {
		t.Errorf("Notify to another queue after the refusal = %v", err)
	}
}

// TestRabbitNotifyLostConfirm loses the confirm of a notification that
// reached the broker, with the connection: Notify fails with
// ErrUnconfirmed unless ResendUnconfirmed allows sending it again, and
// then the same body, with the same _unique_id, is published twice.
func TestRabbitNotifyLostConfirm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ex, tp := e.name("nlc"), e.name("nlc")
	ctx := testCtx(t)
	p, viaProxy := e.viaProxy()
	c := viaProxy.open(fastRetry()...)
	copies := capture(t, e.raw(), ex, "topic", false, false, tp+".info")
	addr := driver.Address{Exchange: ex, Topic: tp}
	for _, resend := range []bool{false, true} {
		if err := c.Notify(ctx, addr, newNote("INFO", `"warm-up"`), driver.NotifyOptions{}); err != nil {
			t.Fatal(err)
		}
		recv(t, copies, "warm-up notification")
		n := newNote("INFO", `"once"`)
		first, err := loseConfirm(t, p, copies, "the notification", func() error {
			return c.Notify(ctx, addr, n, driver.NotifyOptions{Envelope: true, Retry: -1, ResendUnconfirmed: resend})
		})
		if !resend {
			if !errors.Is(err, driver.ErrUnconfirmed) {
				t.Errorf("Notify with a lost confirm = %v, want ErrUnconfirmed", err)
			}
		} else {
			if err != nil {
				t.Errorf("Notify with ResendUnconfirmed and a lost confirm = %v, want nil", err)
			}
			expectResent(t, copies, first, "the notification")
		}
		select {
		case d := <-copies:
			t.Errorf("resend %v: one copy too many at the broker: %s", resend, d.Body)
		case <-time.After(300 * time.Millisecond):
		}
	}
}
