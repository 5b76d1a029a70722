package rabbit

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
)

// outgoing is one message to publish.
type outgoing struct {
	declare *exchange // declared first; nil for the default exchange
	// queue, when set, is declared and bound to declare next, as oslo's
	// notifier declares the queue of each notification it sends.
	queue     *queue
	exchange  string
	key       string
	mandatory bool
	msg       amqp.Publishing
	what      string // "cast to topic x", for errors and logs
	// expires, when set, is the caller's deadline: the message's
	// expiration is computed from it at the moment of each publish, so
	// that time spent connecting or declaring before it does not let the
	// request outlive the call.
	expires time.Time
}

// lostError is a publish that failed with its connection or channel.
// When sent is set the message was handed to the broker before the
// failure and its outcome is unknown: trying again may deliver it
// twice. Otherwise it never left, and trying again is safe.
type lostError struct {
	err  error
	sent bool
}

func (e *lostError) Error() string {
	if e.sent {
		return "connection lost before the broker confirmed: " + e.err.Error()
	}
	return "connection lost before publishing: " + e.err.Error()
}
func (e *lostError) Unwrap() error { return e.err }

var errNacked = errors.New("the broker refused the message (basic.nack)")

// closedError is a publish whose channel the broker closed, before
// confirming it, for a permanent reason such as 403 ACCESS_REFUSED.
type closedError struct{ reason *amqp.Error }

func (e *closedError) Error() string {
	return "the broker closed the publishing channel before confirming: " + e.reason.Error()
}
func (e *closedError) Unwrap() error { return e.reason }

// publisher owns a Conn's publishing connection: one AMQP connection
// with a channel in confirm mode, shared by every send of the Conn, and
// a second channel for exchange declarations, so that a refused
// declaration does not break the publishes in flight. It connects on
// first use and again after a failure.
type publisher struct {
	c *Conn

	mu      sync.Mutex
	link    *link
	decl    *declarer // of link
	pc      *pubChan
	pending *connecting // the connection attempt in progress
	closed  bool
}

// connecting is a connection attempt that concurrent senders share.
type connecting struct {
	done chan struct{}
	err  error
}

// get returns a usable publishing channel, connecting if needed. Only
// one attempt runs at a time; concurrent callers wait for it. It
// returns driver.ErrClosed after close.
func (p *publisher) get(ctx context.Context) (*pubChan, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, driver.ErrClosed
		}
		if pc := p.pc; pc != nil && pc.usable() {
			p.mu.Unlock()
			return pc, nil
		}
		if f := p.pending; f != nil {
			p.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.err != nil {
				if isContextError(f.err) && ctx.Err() == nil {
					continue // the attempt ended with another caller's context
				}
				return nil, f.err
			}
			continue
		}
		f := &connecting{done: make(chan struct{})}
		p.pending = f
		l, decl := p.link, p.decl
		p.mu.Unlock()

		pc, err := p.open(ctx, l, decl)

		p.mu.Lock()
		p.pending = nil
		if err == nil && p.closed {
			pc.link.close()
			err = driver.ErrClosed
		}
		if err == nil {
			p.link, p.decl, p.pc = pc.link, pc.decl, pc
		}
		f.err = err
		close(f.done)
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return pc, nil
	}
}

// open opens a confirm channel on l, or on a new connection if l is
// gone. decl is l's declarer.
func (p *publisher) open(ctx context.Context, l *link, decl *declarer) (*pubChan, error) {
	fresh, reconnect := false, false
	if l == nil || !l.alive() {
		if l != nil {
			_ = l.raw.Close()
		}
		var err error
		again := l != nil
		if l, err = p.c.dial(ctx, "publish", ""); err != nil {
			return nil, err
		}
		fresh, reconnect = true, again
		decl = newDeclarer(p.c, l)
	} else {
		// A new channel after a channel error: whatever was declared
		// may be gone (a 404 closes the channel), so declare again.
		decl.reset()
	}
	var ch *amqp.Channel
	err := p.c.guard(ctx, l, func() (err error) {
		if ch, err = l.conn.Channel(); err != nil {
			return err
		}
		return ch.Confirm(false)
	})
	if err != nil {
		switch {
		case fresh:
			l.close()
		case isContextError(err) || errors.Is(err, driver.ErrClosed):
			// Not the connection's fault; guard tears it down if the
			// channel never opens.
		default:
			l.abort("cannot open a channel")
		}
		if isContextError(err) || errors.Is(err, driver.ErrClosed) {
			return nil, err
		}
		return nil, &lostError{err: err}
	}
	pc := &pubChan{
		c:       p.c,
		link:    l,
		ch:      ch,
		closes:  ch.NotifyClose(make(chan *amqp.Error, 1)),
		returns: ch.NotifyReturn(make(chan amqp.Return, notifyBufferSize)),
		sync:    make(chan chan struct{}),
		drained: make(chan struct{}),
		watch:   map[returnKey][]*returned{},
		decl:    decl,
		log:     p.c.s.log,
	}
	// The channel's close notification is not needed: IsClosed and the
	// return channel's closing tell the same. Drain returns for the
	// channel's whole life.
	if !p.c.start(pc.drain) {
		l.close()
		return nil, driver.ErrClosed
	}
	if fresh {
		kind := driver.EventConnected
		if reconnect {
			kind = driver.EventReconnected
		}
		p.c.ev.emit(kind, l.addr, "", nil)
	}
	return pc, nil
}

// close closes the publishing connection.
func (p *publisher) close() {
	p.mu.Lock()
	p.closed = true
	l := p.link
	p.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// pubChan is a confirm-mode channel with its bookkeeping.
type pubChan struct {
	c       *Conn
	link    *link
	ch      *amqp.Channel
	returns <-chan amqp.Return
	sync    chan chan struct{}
	drained chan struct{} // closed when drain returns
	decl    *declarer
	log     *slog.Logger

	wmu   sync.Mutex
	watch map[returnKey][]*returned // mandatory publishes awaiting their outcome

	retired atomic.Bool // no new publishes: see retire

	// closes receives why the broker closed the channel (such as 403
	// ACCESS_REFUSED for a routing key the user may not write to); the
	// library sends it before it fails the publishes waiting for their
	// confirms. closeErr keeps it once read.
	closes   <-chan *amqp.Error
	closeMu  sync.Mutex
	closeErr *amqp.Error
}

// closeReason returns the error with which the broker closed the
// channel, or nil.
func (pc *pubChan) closeReason() *amqp.Error {
	pc.closeMu.Lock()
	defer pc.closeMu.Unlock()
	if pc.closeErr == nil {
		select {
		case e, ok := <-pc.closes:
			if ok {
				pc.closeErr = e
			}
		default:
		}
	}
	return pc.closeErr
}

// declarer declares exchanges for the publisher on a channel of its own,
// so that a refused declaration (which closes its channel) does not
// break the publishes in flight.
type declarer struct {
	c    *Conn
	link *link
	// busy holds a token while a declaration uses ch. Callers wait for
	// it with their context, so that a declaration the broker does not
	// answer (a blocked connection) holds up no caller past its
	// deadline; the declaring goroutine, which may outlive its caller,
	// gives the token back when the declaration ends or its connection
	// is torn down.
	busy chan struct{}
	ch   *amqp.Channel // used only while holding busy

	mu       sync.Mutex // guards declared; never held across I/O
	declared map[string]bool
}

func newDeclarer(c *Conn, l *link) *declarer {
	return &declarer{c: c, link: l, busy: make(chan struct{}, 1), declared: map[string]bool{}}
}

func (d *declarer) isDeclared(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.declared[key]
}

func (d *declarer) reset() {
	d.mu.Lock()
	clear(d.declared)
	d.mu.Unlock()
}

// returnKey identifies a published message in a basic.return, which
// carries no delivery tag: its exchange, routing key and a hash of its
// body (the bodies of oslo messages differ by their ids).
type returnKey struct {
	exchange, key string
	sum           uint64
}

// returnSeed seeds the body hashes of returnKey.
var returnSeed = maphash.MakeSeed()

func makeReturnKey(exchange, key string, body []byte) returnKey {
	return returnKey{exchange: exchange, key: key, sum: maphash.Bytes(returnSeed, body)}
}

// returned records a basic.return for one mandatory publish.
type returned struct {
	set  bool
	code uint16
	text string
}

func (pc *pubChan) usable() bool {
	return pc.link.alive() && !pc.ch.IsClosed() && !pc.retired.Load()
}

// retireGrace is how long a retired channel stays open for the confirms
// of the publishes still in flight on it.
const retireGrace = 5 * time.Second

// retire makes the publisher open a new channel for the next publishes
// and closes this one retireGrace later. RabbitMQ can nack every
// publish of a channel for good: one opened while the quorum queues it
// publishes to elect a new leader is nacked long after a new channel on
// the same connection is acked.
func (pc *pubChan) retire() {
	if pc.retired.Swap(true) {
		return
	}
	time.AfterFunc(retireGrace, func() { _ = pc.ch.Close() })
}

// drain consumes the channel's basic.return notifications until the
// channel closes, and answers sync requests once every return received
// so far has been recorded.
func (pc *pubChan) drain() {
	defer close(pc.drained)
	for {
		select {
		case r, ok := <-pc.returns:
			if !ok {
				return
			}
			pc.record(&r)
		case req := <-pc.sync:
			for more := true; more; {
				select {
				case r, ok := <-pc.returns:
					if !ok {
						close(req)
						return
					}
					pc.record(&r)
				default:
					more = false
				}
			}
			close(req)
		}
	}
}

func (pc *pubChan) record(r *amqp.Return) {
	k := makeReturnKey(r.Exchange, r.RoutingKey, r.Body)
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	for _, w := range pc.watch[k] {
		if !w.set {
			w.set, w.code, w.text = true, r.ReplyCode, r.ReplyText
			return
		}
	}
	pc.log.Debug("rabbit: basic.return for a message nobody waits for", "exchange", r.Exchange, "routing_key", r.RoutingKey)
}

// syncReturns waits until drain has recorded every basic.return that
// the client library received before this call. The broker sends a
// message's return before its confirm, and the library hands both over
// in that order, so after a confirm this tells whether it was returned.
func (pc *pubChan) syncReturns() {
	req := make(chan struct{})
	select {
	case pc.sync <- req:
		<-req
	case <-pc.drained:
	}
}

func (pc *pubChan) expectReturn(k returnKey) *returned {
	w := &returned{}
	pc.wmu.Lock()
	pc.watch[k] = append(pc.watch[k], w)
	pc.wmu.Unlock()
	return w
}

func (pc *pubChan) forgetReturn(k returnKey, w *returned) {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	list := pc.watch[k]
	for i, x := range list {
		if x == w {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(pc.watch, k)
	} else {
		pc.watch[k] = list
	}
}

func (pc *pubChan) returnOf(w *returned) (bool, uint16, string) {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	return w.set, w.code, w.text
}

// declare declares ex once per publishing channel; auto-delete
// exchanges, which the broker may remove at any time, are declared
// before every publish.
func (d *declarer) declare(ctx context.Context, ex *exchange) error {
	return d.run(ctx, "exchange\x00"+ex.name, !ex.autoDelete, fmt.Sprintf("exchange %q", ex.name),
		func(ch *amqp.Channel) error { return declareExchange(ch, ex) })
}

// declareQueue declares q and binds it to its exchange, which must be
// declared already, once per publishing channel, as oslo's notifier
// does for the queue of each (exchange, routing key) it sends to.
// Auto-delete queues are declared before every publish.
func (d *declarer) declareQueue(ctx context.Context, q *queue) error {
	key := "queue\x00" + exchangeOf(q) + "\x00" + q.key + "\x00" + q.name
	return d.run(ctx, key, !q.autoDelete, fmt.Sprintf("queue %q", q.name),
		func(ch *amqp.Channel) error { return declareBoundQueue(ch, q) })
}

// run runs the declaration f on the declarer's channel, opening one if
// needed, unless cache is set and key was declared on this publishing
// channel already. what names the declared object in errors.
func (d *declarer) run(ctx context.Context, key string, cache bool, what string, f func(*amqp.Channel) error) error {
	if cache && d.isDeclared(key) {
		return nil
	}
	select {
	case d.busy <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	started, err := d.c.guardStart(ctx, d.link, func() error {
		defer func() { <-d.busy }()
		if cache && d.isDeclared(key) {
			return nil
		}
		if d.ch == nil || d.ch.IsClosed() {
			ch, err := d.link.conn.Channel()
			if err != nil {
				return err
			}
			d.ch = ch
		}
		if err := f(d.ch); err != nil {
			return err
		}
		if cache {
			d.mu.Lock()
			d.declared[key] = true
			d.mu.Unlock()
		}
		return nil
	})
	if !started {
		<-d.busy
	}
	switch {
	case err == nil:
		return nil
	case isContextError(err), errors.Is(err, driver.ErrClosed):
		return err
	case permanent(err):
		return fmt.Errorf("declare %s: %w", what, err)
	default:
		return &lostError{err: fmt.Errorf("declare %s: %w", what, err)}
	}
}

// publish sends out and waits for the broker's confirm. It returns an
// error wrapping driver.ErrUndeliverable when a mandatory message was
// returned, a *lostError when the outcome is unknown, errNacked, a
// permanent broker refusal, or ctx.Err().
func (pc *pubChan) publish(ctx context.Context, out *outgoing) error {
	if out.declare != nil {
		if err := pc.decl.declare(ctx, out.declare); err != nil {
			return err
		}
	}
	if out.queue != nil {
		if err := pc.decl.declareQueue(ctx, out.queue); err != nil {
			return err
		}
	}
	var (
		key returnKey
		ret *returned
	)
	if out.mandatory {
		key = makeReturnKey(out.exchange, out.key, out.msg.Body)
		ret = pc.expectReturn(key)
		defer pc.forgetReturn(key, ret)
	}
	if !out.expires.IsZero() {
		ms := time.Until(out.expires).Milliseconds()
		if ms < 1 {
			return context.DeadlineExceeded
		}
		out.msg.Expiration = strconv.FormatInt(ms, 10)
	}
	if pc.c.s.stampUserID {
		out.msg.UserId = pc.link.user
	}
	var dc *amqp.DeferredConfirmation
	err := pc.c.guardWrite(ctx, pc.link, len(out.msg.Body), func() (err error) {
		dc, err = pc.ch.PublishWithDeferredConfirm(out.exchange, out.key, out.mandatory, false, out.msg)
		return err
	})
	if err != nil {
		if isContextError(err) {
			return err
		}
		return &lostError{err: err}
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if !dc.Acked() {
		if pc.ch.IsClosed() {
			if reason := pc.closeReason(); reason != nil && permanent(reason) {
				// The broker closed the channel for a reason that
				// sending again will not cure, because of this
				// publish or of another one in flight: which, it does
				// not say, so the outcome stays unknown.
				return &closedError{reason: reason}
			}
			cause := pc.link.cause()
			if cause == nil {
				cause = amqp.ErrClosed
			}
			return &lostError{err: cause, sent: true}
		}
		pc.retire()
		return errNacked
	}
	if out.mandatory {
		pc.syncReturns()
		if set, code, text := pc.returnOf(ret); set {
			return fmt.Errorf("rabbit: %s: %w: basic.return %d %s (exchange %q, routing key %q)",
				out.what, driver.ErrUndeliverable, code, text, out.exchange, out.key)
		}
	}
	return nil
}

// send publishes out on the Conn's publishing connection, reconnecting
// and publishing again after connection failures as retry allows: a
// negative retry tries until ctx is done, 0 once, n n+1 times. A message
// whose confirm was lost is sent again only when resend is set, within
// those retries, with the same body (and so the same _unique_id);
// otherwise send fails with an error wrapping driver.ErrUnconfirmed. It
// returns nil once the broker confirmed the message; an error wrapping
// driver.ErrUndeliverable for a returned mandatory message; an error
// wrapping driver.ErrDeliveryFailure when the retries are exhausted or
// the broker refused a declaration; driver.ErrClosed; or ctx.Err().
func (c *Conn) send(ctx context.Context, out *outgoing, retry int, resend bool) error {
	failures := 0
	for {
		pc, err := c.pub.get(ctx)
		if err == nil {
			if err = pc.publish(ctx, out); err == nil {
				return nil
			}
		}
		var closed *closedError
		switch {
		case errors.Is(err, driver.ErrUndeliverable), errors.Is(err, driver.ErrClosed):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &closed):
			// Not sent again, even with resend: the broker would refuse
			// it again.
			c.s.log.Warn("rabbit: the broker closed the publishing channel", "what", out.what, "err", closed.reason)
			return fmt.Errorf("rabbit: %s: %w: %w", out.what, driver.ErrUnconfirmed, err)
		case permanent(err):
			return fmt.Errorf("rabbit: %s: %w: %w", out.what, driver.ErrDeliveryFailure, err)
		}
		var lost *lostError
		if errors.As(err, &lost) && lost.sent && !resend {
			return fmt.Errorf("rabbit: %s: %w: %w", out.what, driver.ErrUnconfirmed, err)
		}
		failures++
		if retry >= 0 && failures > retry {
			return fmt.Errorf("rabbit: %s: %w after %d attempt(s): %w", out.what, driver.ErrDeliveryFailure, failures, err)
		}
		c.s.log.Warn("rabbit: publish failed, retrying", "what", out.what, "attempt", failures, "err", err)
		if !sleep(ctx, c.s.retryDelay(failures)) {
			return fmt.Errorf("%w (after %d failed attempt(s), the last: %w)", ctx.Err(), failures, err)
		}
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
