package rabbit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Conn is a connection to a RabbitMQ broker (or a cluster of them, with
// failover) that speaks oslo.messaging's protocol. It implements
// driver.RPCConn and driver.NotifyConn. It is safe for concurrent use.
//
// A Conn uses separate AMQP connections for publishing (one, shared by
// every call, cast, reply and notification), for the reply queue of its
// calls (one, opened at the first Call) and for each [Conn.Listen] and
// [Conn.ListenNotifications]. Each reconnects on its own after a
// failure.
type Conn struct {
	s    *settings
	ring *hostRing
	base context.Context //nolint:containedctx // lifetime of the Conn, cancelled by Close; never a request context
	stop context.CancelFunc
	pub  *publisher
	dead *deadQueues
	ev   *eventQueue

	closeOnce sync.Once

	gmu      sync.Mutex
	wg       sync.WaitGroup // every goroutine the Conn starts
	stopping bool           // no more goroutines: Close is waiting for wg

	rmu     sync.Mutex
	replies *replyWaiter // nil until the first Call

	lmu       sync.Mutex
	listeners map[*consumer]struct{} // of RPC and notification listeners
}

// New returns a Conn configured by cfg. It does no network I/O and
// starts no goroutines: the Conn connects on first use. It returns an
// error wrapping messaging.ErrInvalidOption for an invalid Config.
func New(cfg Config) (*Conn, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		s:         s,
		ring:      newHostRing(s.hosts, s.shuffle),
		dead:      newDeadQueues(),
		listeners: map[*consumer]struct{}{},
	}
	c.base, c.stop = context.WithCancel(context.Background())
	c.pub = &publisher{c: c}
	c.ev = &eventQueue{c: c}
	return c, nil
}

// Format prints the Conn as rabbit.Conn(host:port,... /vhost), never
// with a user name or password, whatever the verb.
func (c *Conn) Format(f fmt.State, _ rune) {
	if c == nil || c.s == nil {
		_, _ = io.WriteString(f, "rabbit.Conn(nil)")
		return
	}
	var b strings.Builder
	b.WriteString("rabbit.Conn(")
	for i, h := range c.s.hosts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(net.JoinHostPort(h.Hostname, strconv.Itoa(h.Port)))
	}
	b.WriteString(" /" + c.s.vhost + ")")
	_, _ = io.WriteString(f, b.String())
}

// SetLogger makes the driver log to l. It implements
// driver.LoggerSetter: messaging.Open calls it, before any other method,
// when the transport is given a logger. A nil l is ignored.
func (c *Conn) SetLogger(l *slog.Logger) {
	if l != nil {
		c.s.log = l
	}
}

// Ping checks that the broker can be reached by connecting the
// publishing connection if it is not connected. It tries each host of
// the URL once, and blocks until one accepts, all refuse, or ctx is
// done. It returns driver.ErrClosed after Close, an error wrapping
// ctx.Err(), or the last connection error.
func (c *Conn) Ping(ctx context.Context) error {
	ctx, done := c.bind(ctx)
	defer done()
	_, err := c.pub.get(ctx)
	return c.fail(ctx, "ping", err)
}

// Cast publishes req to addr (the control exchange with routing key
// topic or topic.server, or the topic's fanout exchange) and returns
// once the broker has confirmed it. It does not wait for the method to
// run. Concurrent casts are pipelined on one channel.
//
// With opts.Mandatory, a message that no queue would receive fails at
// once with an error wrapping driver.ErrUndeliverable. opts.Retry bounds
// the reconnections (negative: until ctx is done); once exhausted the
// error wraps driver.ErrDeliveryFailure, as it does when the broker
// refuses to declare the exchange. A cast whose confirm was lost with
// the connection fails with an error wrapping driver.ErrUnconfirmed,
// unless opts.ResendUnconfirmed allows sending it again within
// opts.Retry, with the same _unique_id. Other errors wrap ctx.Err() or
// are driver.ErrClosed.
func (c *Conn) Cast(ctx context.Context, addr driver.Address, req *driver.Request, opts driver.SendOptions) error {
	if c.closed() {
		return driver.ErrClosed
	}
	if err := checkAddress(addr); err != nil {
		return err
	}
	if req == nil {
		return errors.New("rabbit: cast: nil request")
	}
	r := *req
	if r.UniqueID == "" {
		r.UniqueID = wire.NewID()
	}
	body, err := wire.EncodeRequest(&r)
	if err != nil {
		return fmt.Errorf("rabbit: cast %s: %w", r.Method, err)
	}
	msg, err := publishing(body, c.s.compress, 0)
	if err != nil {
		return fmt.Errorf("rabbit: cast %s: %w", r.Method, err)
	}
	// oslo never sets the mandatory flag on fanout casts: a fanout to a
	// topic without servers is dropped, whatever the caller asked.
	out := &outgoing{mandatory: opts.Mandatory && !addr.Fanout, msg: msg}
	if addr.Fanout {
		out.declare = fanoutExchange(addr.Topic)
		out.exchange, out.key = out.declare.name, ""
		out.what = fmt.Sprintf("fanout cast %s to topic %q", r.Method, addr.Topic)
	} else {
		out.declare = c.s.controlExchange(exchangeName(addr))
		out.exchange, out.key = out.declare.name, routingKey(addr)
		out.what = fmt.Sprintf("cast %s to %q", r.Method, out.key)
	}
	ctx, done := c.bind(ctx)
	defer done()
	if err := c.send(ctx, out, opts.Retry, opts.ResendUnconfirmed); err != nil {
		return c.fail(ctx, out.what, err)
	}
	return nil
}

// Call publishes req to addr and blocks until the final reply arrives.
// req.MsgID must be set; Call sets req.ReplyTo to the Conn's reply
// queue, req.MonitorTimeout from opts.MonitorTimeout when positive, and
// req.UniqueID when empty. The reply queue is declared and consumed, on
// its own connection, before the first call is published, and again
// after a reconnection before any new call is published. The ctx
// deadline becomes the request's AMQP expiration, as oslo's call
// timeout does.
//
// Call returns the reply, whose Failure is set when the remote method
// failed; an error wrapping driver.ErrHeartbeatTimeout when
// opts.MonitorTimeout passed without a reply or heartbeat; an error
// wrapping ctx.Err() that names the message id and topic; an error
// wrapping driver.ErrUndeliverable (opts.Mandatory) or
// driver.ErrDeliveryFailure from publishing, as for Cast; or
// driver.ErrClosed when the Conn is closed before the reply arrives.
func (c *Conn) Call(ctx context.Context, addr driver.Address, req *driver.Request, opts driver.SendOptions) (*driver.Reply, error) {
	if c.closed() {
		return nil, driver.ErrClosed
	}
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if addr.Fanout {
		return nil, fmt.Errorf("rabbit: a call cannot be used with fanout: %w", messaging.ErrInvalidTarget)
	}
	if req == nil || req.MsgID == "" {
		return nil, errors.New("rabbit: call: the request has no message id")
	}
	ctx, done := c.bind(ctx)
	defer done()
	key := routingKey(addr)
	what := fmt.Sprintf("call %s (msg_id %s) to %q", req.Method, req.MsgID, key)

	w, err := c.replyWaiter()
	if err != nil {
		return nil, err
	}
	if err := w.waitReady(ctx, opts.Retry); err != nil {
		return nil, c.fail(ctx, what, err)
	}
	req.ReplyTo = w.queue
	if opts.MonitorTimeout > 0 {
		t := opts.MonitorTimeout.Seconds()
		req.MonitorTimeout = &t
	}
	if req.UniqueID == "" {
		req.UniqueID = wire.NewID()
	}
	body, err := wire.EncodeRequest(req)
	if err != nil {
		return nil, fmt.Errorf("rabbit: %s: %w", what, err)
	}
	var ttl time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if ttl = time.Until(dl); ttl <= 0 {
			return nil, c.fail(ctx, what, context.DeadlineExceeded)
		}
	}
	msg, err := publishing(body, c.s.compress, ttl)
	if err != nil {
		return nil, fmt.Errorf("rabbit: %s: %w", what, err)
	}
	ex := c.s.controlExchange(exchangeName(addr))
	out := &outgoing{declare: ex, exchange: ex.name, key: key, mandatory: opts.Mandatory, msg: msg, what: what}
	if dl, ok := ctx.Deadline(); ok {
		out.expires = dl
	}

	pc := w.register(req.MsgID)
	defer w.unregister(req.MsgID, pc)
	if err := c.send(ctx, out, opts.Retry, opts.ResendUnconfirmed); err != nil {
		return nil, c.fail(ctx, what, err)
	}
	return pc.wait(ctx, c, opts.MonitorTimeout, what, w.queue)
}

// Listen declares the queues of a server of addr.Topic — the topic queue
// shared with the topic's other servers, the server's own queue
// addr.Topic + "." + addr.Server (when Server is set), and a private
// queue on the topic's fanout exchange — on a connection of its own,
// and starts consuming them. It retries failed connections until ctx is
// done and returns once consuming has started.
//
// The listener's basic.qos prefetch is opts.Prefetch, or the Config's
// PrefetchCount when opts.Prefetch is 0; with neither there is no
// basic.qos and the broker sends everything at once, as to oslo's
// servers. Requests are acknowledged when Next takes them, so the
// prefetch bounds what waits for Next. It
// returns driver.ErrClosed after Close, an error wrapping
// driver.ErrDeliveryFailure when the broker refuses a declaration, or an
// error wrapping ctx.Err().
func (c *Conn) Listen(ctx context.Context, addr driver.Address, opts driver.ListenOptions) (driver.Listener, error) {
	if c.closed() {
		return nil, driver.ErrClosed
	}
	if err := checkAddress(addr); err != nil {
		return nil, err
	}
	if opts.Prefetch < 0 || opts.Prefetch > 65535 {
		return nil, fmt.Errorf("rabbit: listen: prefetch %d: %w", opts.Prefetch, messaging.ErrInvalidOption)
	}
	ctx, done := c.bind(ctx)
	defer done()
	l, err := c.listen(ctx, addr, opts)
	if err != nil {
		return nil, c.fail(ctx, fmt.Sprintf("listen on topic %q", addr.Topic), err)
	}
	return l, nil
}

// Close closes the Conn: listeners, notification listeners included,
// stop consuming (the broker requeues what they had not acknowledged)
// and delete their fanout queues, the reply queue is deleted, calls in
// progress fail with driver.ErrClosed, every connection is closed and
// every goroutine the Conn started, the event handler's included, has
// returned. Network steps are
// bounded by a few seconds. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.stop()
		c.gmu.Lock()
		c.stopping = true
		c.gmu.Unlock()
		c.lmu.Lock()
		ls := make([]*consumer, 0, len(c.listeners))
		for l := range c.listeners {
			ls = append(ls, l)
		}
		c.lmu.Unlock()
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(l.stop)
		}
		wg.Wait()
		// The reply waiter sees c.base done, deletes its queue and
		// closes its connection.
		c.pub.close()
		c.wg.Wait()
		c.ev.close()
	})
	return nil
}

func (c *Conn) closed() bool { return c.base.Err() != nil }

// start runs f on a goroutine that Close waits for, unless Close has
// begun, in which case it reports false.
func (c *Conn) start(f func()) bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.stopping {
		return false
	}
	c.wg.Go(f)
	return true
}

// bind returns ctx, also cancelled when the Conn closes.
func (c *Conn) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.base, cancel)
	return ctx, func() { stop(); cancel() }
}

// fail gives err, from an operation on ctx (made by bind), its final
// form: driver.ErrClosed when the Conn closed, an error naming the
// operation and wrapping the caller's context error, or err.
func (c *Conn) fail(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, driver.ErrClosed) || (c.closed() && isContextError(err)) {
		return fmt.Errorf("rabbit: %s: %w", what, driver.ErrClosed)
	}
	if isContextError(err) {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = cerr
		}
		return fmt.Errorf("rabbit: %s: %w", what, err)
	}
	return err
}

func checkAddress(addr driver.Address) error {
	if addr.Topic == "" {
		return fmt.Errorf("rabbit: a topic is required: %w", messaging.ErrInvalidTarget)
	}
	return nil
}

func exchangeName(addr driver.Address) string {
	if addr.Exchange == "" {
		return messaging.DefaultExchange
	}
	return addr.Exchange
}
