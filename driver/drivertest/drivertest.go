// Package drivertest is the conformance suite of the driver SPI: the
// tests that every driver implementing [driver.RPCConn] must pass,
// whether it lives in this module or not.
//
// A driver runs the suite from one of its tests:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Config{
//			Open: func(t *testing.T) driver.RPCConn {
//				c, err := mydriver.Driver{}.Open(u)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return c.(driver.RPCConn)
//			},
//			Features: drivertest.Features{Heartbeat: true, Mandatory: true, Persistent: true},
//		})
//	}
//
// The suite can run against a broker shared with other users: every test
// creates its own exchange and topic names, made unique with random
// digits, and leaves the queues it declares behind only as far as the
// driver's own cleanup does. Every wait is bounded, so a broken driver
// fails the suite rather than hanging it. The tests run in parallel with
// one another.
//
// # Tests
//
// Every driver must pass:
//
//   - CallResults, CallFailure: replies of every JSON kind (null, false,
//     0, [], {}, strings, nested values) and failures with all their
//     fields come back unchanged.
//   - RequestFields, Context: every field of call and cast requests, and
//     the context dictionary with its JSON types, arrive unchanged.
//   - CastOnce: a cast is delivered exactly once; replying to it and
//     sending it heartbeats do nothing.
//   - ToServer, SharedTopic, Fanout, ExchangesIsolated: routing to one
//     server, load sharing among the servers of a topic (each gets some,
//     none gets one twice), fanout to every server of a topic only, and
//     isolation of exchanges for topic and server routing.
//   - LargeUnicode: a 1 MiB request and reply with non-ASCII text.
//   - CallTimeout: a call without a server ends with its deadline, with
//     an error matching context.DeadlineExceeded.
//   - ConcurrentCalls, LateReply: replies are routed by message id, also
//     when answered out of order or after the caller gave up.
//   - ListenerClose, ReplyAfterListenerClose, ConnCloseDuringCall,
//     ClosedConn: Close wakes blocked calls with driver.ErrClosed, is
//     idempotent, and leaves the deliveries already returned usable.
//
// And, for the [Features] it declares:
//
//   - Mandatory: mandatory sends without a queue fail at once with
//     driver.ErrUndeliverable.
//   - HeartbeatKeepsCallAlive, HeartbeatTimeout: heartbeats keep a call
//     alive past its monitor timeout; without them the call fails with
//     driver.ErrHeartbeatTimeout long before its deadline.
//   - Persistent: topic and server queues keep, for the next listener,
//     the messages sent while no listener consumed them and those a
//     closed listener had been given but had not returned from Next.
//
// # Notifications
//
// When the connections implement [driver.NotifyConn], the suite also
// checks notifications (the tests skip otherwise):
//
//   - NotifyRoundTrip: every field, in both formats (with and without
//     the envelope), for every priority, payloads of every JSON kind and
//     a context of every JSON type, arrives unchanged.
//   - NotifyPriorities, NotifyBeforeListener: a notification goes to the
//     queue "<topic>.<priority>" of its priority only, which Notify
//     declares, so that it waits there for the first listener.
//   - NotifySharedQueue, NotifyPools, NotifyTopics: listeners without a
//     pool share their queue; each pool gets its own copy, shared by its
//     listeners; topics are independent; one listener consumes several
//     targets on several exchanges, with or without a pool.
//   - NotifyRequeue, NotifyCloseRedelivers, NotifySettleOnce,
//     NotifyPrefetch: a requeued notification is delivered again and
//     acknowledged once; what a closed listener had not acknowledged goes
//     to the next listener and can no longer be settled; a second Ack or
//     Requeue fails; unacknowledged notifications count against the
//     prefetch.
//   - NotifyMalformed (with [Config.Inject]): messages that are not
//     notifications are never returned.
//   - NotifyListenerClose, NotifyClosedConn, NotifyInvalid: Next, Close
//     and closed connections behave as for RPC listeners; unroutable
//     notifications and targets are refused.
//
// Notification queues are named after their topic and priority only:
// with RabbitMQ the queue "<topic>.<priority>" is shared by every
// exchange it is bound to, so the suite gives every topic a unique name
// rather than relying on exchanges to isolate notifications.
package drivertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Config describes the driver under test.
type Config struct {
	// Open returns a new connection to the broker under test; every call
	// must return a different connection to the same broker, as separate
	// processes would have. The suite closes the connections it opens.
	// Open is called from parallel tests, with the test that uses the
	// connection, and may call t.Fatal or t.Skip. It is required.
	Open func(t *testing.T) driver.RPCConn
	// Features lists the optional behaviours the driver supports; the
	// tests of the others are skipped.
	Features Features
	// Prefix starts every exchange and topic name that the suite
	// creates, for brokers whose permissions are granted by name.
	// Default: "drivertest".
	Prefix string
	// Inject, when set, publishes body as it is, with the properties
	// the driver's peers give their messages, to exchange with
	// routingKey, so that the suite can feed listeners messages that are
	// not oslo notifications. It may call t.Fatal. Without it those
	// checks are skipped.
	Inject func(t *testing.T, exchange, routingKey string, body []byte)
}

// Features are the optional behaviours of a driver. The zero value
// declares none of them.
type Features struct {
	// Heartbeat: the driver passes SendOptions.MonitorTimeout on to the
	// server as the request's MonitorTimeout, forwards
	// Delivery.Heartbeat to the caller, and fails Call with
	// driver.ErrHeartbeatTimeout when the monitor expires.
	Heartbeat bool
	// Mandatory: sends with SendOptions.Mandatory to a topic that no
	// queue is bound to fail at once with driver.ErrUndeliverable.
	Mandatory bool
	// Persistent: the topic and server queues declared by Listen outlive
	// their listener, and keep the messages sent while no listener
	// consumes them for the next listener.
	Persistent bool
}

// Bounds of the waits of the suite.
const (
	// waitTimeout bounds every wait for something that must happen.
	waitTimeout = 20 * time.Second
	// promptly bounds the wait for something that must happen at once.
	promptly = 5 * time.Second
	// quietWait is how long the suite watches for deliveries that must
	// not happen.
	quietWait = 200 * time.Millisecond
)

// Run runs the conformance suite against the driver described by cfg,
// as parallel subtests of t. It returns once the subtests are started;
// t completes when they are done.
func Run(t *testing.T, cfg Config) {
	if cfg.Open == nil {
		t.Fatal("drivertest: Config.Open is nil")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "drivertest"
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(newSuite(t, cfg))
		})
	}
}

// tests lists the tests of the suite, in the order they are started.
var tests = []struct {
	name string
	fn   func(s *suite)
}{
	{"CallResults", testCallResults},
	{"CallFailure", testCallFailure},
	{"RequestFields", testRequestFields},
	{"Context", testContext},
	{"CastOnce", testCastOnce},
	{"ToServer", testToServer},
	{"SharedTopic", testSharedTopic},
	{"Fanout", testFanout},
	{"ExchangesIsolated", testExchangesIsolated},
	{"LargeUnicode", testLargeUnicode},
	{"CallTimeout", testCallTimeout},
	{"ConcurrentCalls", testConcurrentCalls},
	{"LateReply", testLateReply},
	{"ListenerClose", testListenerClose},
	{"ReplyAfterListenerClose", testReplyAfterListenerClose},
	{"ConnCloseDuringCall", testConnCloseDuringCall},
	{"ClosedConn", testClosedConn},
	{"Mandatory", testMandatory},
	{"HeartbeatKeepsCallAlive", testHeartbeatKeepsCallAlive},
	{"HeartbeatTimeout", testHeartbeatTimeout},
	{"Persistent", testPersistent},
	{"NotifyRoundTrip", testNotifyRoundTrip},
	{"NotifyPriorities", testNotifyPriorities},
	{"NotifyBeforeListener", testNotifyBeforeListener},
	{"NotifySharedQueue", testNotifySharedQueue},
	{"NotifyPools", testNotifyPools},
	{"NotifyTopics", testNotifyTopics},
	{"NotifyRequeue", testNotifyRequeue},
	{"NotifyCloseRedelivers", testNotifyCloseRedelivers},
	{"NotifySettleOnce", testNotifySettleOnce},
	{"NotifyPrefetch", testNotifyPrefetch},
	{"NotifyMalformed", testNotifyMalformed},
	{"NotifyListenerClose", testNotifyListenerClose},
	{"NotifyClosedConn", testNotifyClosedConn},
	{"NotifyInvalid", testNotifyInvalid},
}

// suite is the environment of one test: its configuration and its
// unique names.
type suite struct {
	t        *testing.T
	cfg      Config
	exchange string // unique to the test
	topic    string // unique to the test
}

func newSuite(t *testing.T, cfg Config) *suite {
	s := &suite{t: t, cfg: cfg}
	s.exchange = s.name("ex")
	s.topic = s.name("topic")
	return s
}

// name returns a new name that no other test uses.
func (s *suite) name(kind string) string {
	return s.cfg.Prefix + "." + kind + "." + wire.NewID()[:16]
}

// addr returns the address of the test's topic, on its exchange, at
// server (empty for any server).
func (s *suite) addr(server string) driver.Address {
	return driver.Address{Exchange: s.exchange, Topic: s.topic, Server: server}
}

// ctx returns a context that ends after d, or when the test ends.
func (s *suite) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(s.t.Context(), d)
	s.t.Cleanup(cancel)
	return ctx
}

// open opens a connection that is closed when the test ends.
func (s *suite) open() driver.RPCConn {
	s.t.Helper()
	c := s.cfg.Open(s.t)
	if c == nil {
		s.t.Fatal("Config.Open returned nil")
	}
	s.t.Cleanup(func() {
		if err := c.Close(); err != nil {
			s.t.Errorf("Conn.Close() = %v", err)
		}
	})
	return c
}

// listen starts a listener on c that is closed when the test ends.
func (s *suite) listen(c driver.RPCConn, addr driver.Address) driver.Listener {
	s.t.Helper()
	l, err := c.Listen(s.ctx(waitTimeout), addr, driver.ListenOptions{})
	if err != nil {
		s.t.Fatalf("Listen(%+v) = %v", addr, err)
	}
	s.t.Cleanup(func() {
		if err := l.Close(); err != nil {
			s.t.Errorf("Listener.Close() = %v", err)
		}
	})
	return l
}

// server opens a connection and starts a listener on it for addr.
func (s *suite) server(addr driver.Address) driver.Listener {
	s.t.Helper()
	return s.listen(s.open(), addr)
}

// serve runs h for every request that reaches l, one at a time, in a
// goroutine that stops when the test ends. ctx is that of the goroutine.
func (s *suite) serve(l driver.Listener, h func(ctx context.Context, d driver.Delivery)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			d, err := l.Next(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, driver.ErrClosed) {
					s.t.Errorf("Listener.Next() = %v", err)
				}
				return
			}
			h(ctx, d)
		}
	})
	s.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// echo is a handler that answers every call with its arguments.
func echo(ctx context.Context, d driver.Delivery) {
	_ = d.Reply(ctx, &driver.Reply{Result: d.Request().Args})
}

// next returns the next request that reaches l, failing the test if
// none arrives in time.
func (s *suite) next(l driver.Listener) driver.Delivery {
	s.t.Helper()
	d, err := l.Next(s.ctx(waitTimeout))
	if err != nil {
		s.t.Fatalf("Listener.Next() = %v", err)
	}
	return d
}

// call makes a call and fails the test if it does not succeed.
func (s *suite) call(c driver.RPCConn, addr driver.Address, req *driver.Request) *driver.Reply {
	s.t.Helper()
	r, err := c.Call(s.ctx(waitTimeout), addr, req, driver.SendOptions{})
	if err != nil {
		s.t.Fatalf("Call(%s, %s) = %v", describe(addr), req.Method, err)
	}
	return r
}

// cast makes a cast and fails the test if it does not succeed.
func (s *suite) cast(c driver.RPCConn, addr driver.Address, req *driver.Request) {
	s.t.Helper()
	if err := c.Cast(s.ctx(waitTimeout), addr, req, driver.SendOptions{}); err != nil {
		s.t.Fatalf("Cast(%s, %s) = %v", describe(addr), req.Method, err)
	}
}

// receive takes the requests that reach the listeners ls until want of
// them arrived in total, and then for quietWait more, and returns them
// by listener. It fails the test if fewer arrive within waitTimeout.
func (s *suite) receive(ls []driver.Listener, want int) [][]driver.Delivery {
	s.t.Helper()
	return receiveFrom(s, "requests", ls, want, nil)
}

// listener is what the driver's Listener and NotifyListener have in
// common, D being the type of their deliveries.
type listener[D any] interface {
	Next(ctx context.Context) (D, error)
	Close() error
}

// receiveFrom takes the deliveries that reach the listeners ls until
// want of them arrived in total, and then for quietWait more, and
// returns them by listener. If each is not nil, it is called on every
// delivery, from the goroutine of its listener, as soon as it arrives.
// It fails the test, naming the deliveries what, if fewer arrive within
// waitTimeout.
func receiveFrom[D any, L listener[D]](s *suite, what string, ls []L, want int, each func(i int, d D)) [][]D {
	s.t.Helper()
	type got struct {
		i int
		d D
	}
	ctx, cancel := context.WithTimeout(s.t.Context(), waitTimeout)
	ch := make(chan got)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i, l := range ls {
		wg.Go(func() {
			for {
				d, err := l.Next(ctx)
				if err != nil {
					if ctx.Err() == nil {
						s.t.Errorf("listener %d: Next() = %v", i, err)
					}
					return
				}
				if each != nil {
					each(i, d)
				}
				select {
				case ch <- got{i, d}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	out := make([][]D, len(ls))
	add := func(g got) { out[g.i] = append(out[g.i], g.d) }
	for n := 0; n < want; n++ {
		select {
		case g := <-ch:
			add(g)
		case <-ctx.Done():
			s.t.Errorf("received %d %s in %v, want %d", n, what, waitTimeout, want)
			return out
		}
	}
	quiet := time.NewTimer(quietWait)
	defer quiet.Stop()
	for {
		select {
		case g := <-ch:
			add(g)
		case <-quiet.C:
			return out
		}
	}
}

// jsonOf returns the JSON encoding of v.
func jsonOf(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%v) = %v", v, err)
	}
	return b
}

// castReq returns a cast request for method with args, a JSON object.
func castReq(method string, args json.RawMessage) *driver.Request {
	return &driver.Request{Method: method, Args: args, UniqueID: wire.NewID()}
}

// callReq returns a call request for method with args, a JSON object.
func callReq(method string, args json.RawMessage) *driver.Request {
	r := castReq(method, args)
	r.MsgID = wire.NewID()
	return r
}

// seqArgs returns the arguments {"seq": n}.
func seqArgs(n int) json.RawMessage {
	return json.RawMessage(`{"seq": ` + strconv.Itoa(n) + `}`)
}

// seq returns the "seq" argument of a request made with seqArgs, or -1.
func seq(t *testing.T, d driver.Delivery) int {
	t.Helper()
	var a struct {
		Seq *int `json:"seq"`
	}
	if err := json.Unmarshal(d.Request().Args, &a); err != nil {
		t.Errorf("request args %s: %v", show(d.Request().Args), err)
		return -1
	}
	if a.Seq == nil {
		t.Errorf("request args %s: no seq", show(d.Request().Args))
		return -1
	}
	return *a.Seq
}

// jsonEqual reports whether two JSON texts hold the same value; an empty
// text is null.
func jsonEqual(a, b []byte) bool {
	va, erra := decodeJSON(a)
	vb, errb := decodeJSON(b)
	return erra == nil && errb == nil && reflect.DeepEqual(va, vb)
}

func decodeJSON(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return normalizeNumbers(v), nil
}

// normalizeNumbers replaces json.Numbers by float64s, so that 1, 1.0 and
// 1e0 compare equal.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalizeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalizeNumbers(x[k])
		}
	}
	return v
}

// show returns a JSON text for a message, shortened.
func show(b []byte) string {
	const max = 200
	if len(b) == 0 {
		return "<empty>"
	}
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// describe returns addr as exchange/topic[.server] for test messages.
func describe(addr driver.Address) string {
	s := addr.Exchange + "/" + addr.Topic
	if addr.Server != "" {
		s += "." + addr.Server
	}
	if addr.Fanout {
		s += " (fanout)"
	}
	return s
}

// skipUnless skips the test unless the driver declares feature.
func (s *suite) skipUnless(declared bool, feature string) {
	s.t.Helper()
	if !declared {
		s.t.Skipf("the driver does not declare Features.%s", feature)
	}
}

// within fails the test if start is more than d ago.
func within(t *testing.T, what string, start time.Time, d time.Duration) {
	t.Helper()
	if e := time.Since(start); e > d {
		t.Errorf("%s took %v, want at most %v", what, e, d)
	}
}
