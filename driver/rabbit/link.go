package rabbit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
)

// Time limits of the driver's own network steps.
const (
	dialTimeout      = 30 * time.Second // TCP connect, TLS and AMQP handshake
	teardownTimeout  = 5 * time.Second  // closing a connection, cancelling, deleting
	notifyBufferSize = 64               // capacity of every Notify* channel
)

// A link is one AMQP connection. Its watcher goroutine drains the
// connection's notifications for the connection's whole life and closes
// done when the connection is gone, for whatever reason.
type link struct {
	conn  *amqp.Connection
	raw   net.Conn // the socket, closed to abort blocked I/O
	addr  string   // host:port, for logs and events
	queue string   // the queue the connection is for, for events, or ""
	user  string   // the user name it logged in with ("" with EXTERNAL)
	log   *slog.Logger
	ev    *eventQueue

	done chan struct{}
	mu   sync.Mutex
	err  error // why the connection closed, set before done is closed

	// blocked is set while the broker has blocked the connection
	// (connection.blocked, a memory or disk alarm).
	blocked atomic.Bool
}

// alive reports whether the connection is still open.
func (l *link) alive() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// cause returns why the connection closed, or nil.
func (l *link) cause() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// abort closes the socket at once: blocked reads and writes fail and the
// connection shuts down. It is how operations that outlive their
// context are stopped, since the client library's I/O ignores contexts.
func (l *link) abort(why string) {
	l.mu.Lock()
	if l.err == nil {
		l.err = errors.New(why)
	}
	l.mu.Unlock()
	_ = l.raw.Close()
}

// close closes the connection with the AMQP handshake, bounded by
// teardownTimeout, then the socket.
func (l *link) close() {
	_ = l.conn.CloseDeadline(time.Now().Add(teardownTimeout))
	_ = l.raw.Close()
}

// watch runs on the Conn's WaitGroup until the connection closes.
func (l *link) watch(closes <-chan *amqp.Error, blocks <-chan amqp.Blocking) {
	defer close(l.done)
	for {
		select {
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			l.blocked.Store(b.Active)
			if b.Active {
				l.log.Warn("rabbit: broker blocked the connection", "addr", l.addr, "reason", b.Reason)
			} else {
				l.log.Info("rabbit: broker unblocked the connection", "addr", l.addr)
			}
		case e, ok := <-closes:
			l.mu.Lock()
			if l.err == nil {
				if ok && e != nil {
					l.err = e
				} else {
					l.err = amqp.ErrClosed
				}
			}
			err := l.err
			l.mu.Unlock()
			if ok && e != nil {
				l.log.Warn("rabbit: connection lost", "addr", l.addr, "err", err)
				l.ev.emit(driver.EventDisconnected, l.addr, l.queue, err)
			}
			return
		}
	}
}

// dial opens a connection, trying each host of the ring once, from the
// current one: a failed host moves the ring on, so that the Conn's
// connections converge on the host that works. The connection's watcher
// runs on c.wg. ctx bounds the whole attempt. It returns the last
// host's error when none accepts. queue names the queue the connection
// is for in events, or is "".
func (c *Conn) dial(ctx context.Context, purpose, queue string) (*link, error) {
	var err error
	for range c.ring.len() {
		pos, h := c.ring.current()
		addr := net.JoinHostPort(h.Hostname, strconv.Itoa(h.Port))
		var l *link
		l, err = c.dialHost(ctx, h.Hostname, addr, h.Username, h.Password, purpose, queue)
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil || errors.Is(err, driver.ErrClosed) {
			return nil, err
		}
		c.ring.failed(pos)
		c.s.log.Debug("rabbit: connection attempt failed", "addr", addr, "purpose", purpose, "err", err)
	}
	return nil, err
}

func (c *Conn) dialHost(ctx context.Context, hostname, addr, user, pass, purpose, queue string) (*link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &connectError{addr: addr, err: err}
	}
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })

	conn := raw
	if c.s.tls != nil {
		tc := c.s.tls.Clone()
		if tc.ServerName == "" {
			tc.ServerName = hostname
		}
		tconn := tls.Client(raw, tc)
		if err := tconn.HandshakeContext(ctx); err != nil {
			stop()
			_ = raw.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &connectError{addr: addr, err: fmt.Errorf("TLS handshake: %w", err)}
		}
		conn = tconn
	}

	var auth amqp.Authentication
	switch c.s.login {
	case LoginPlain:
		auth = &amqp.PlainAuth{Username: user, Password: pass}
	case LoginExternal:
		auth = &amqp.ExternalAuth{}
	default:
		auth = &amqp.AMQPlainAuth{Username: user, Password: pass}
	}
	props := amqp.NewConnectionProperties()
	props["connection_name"] = c.s.connectionName()
	ac, err := amqp.Open(conn, amqp.Config{
		SASL:       []amqp.Authentication{auth},
		Vhost:      c.s.vhost,
		Heartbeat:  c.s.heartbeat,
		Properties: props,
		Locale:     "en_US",
	})
	ctxDone := !stop()
	if err != nil || ctxDone {
		_ = raw.Close()
		if ctxDone {
			return nil, ctx.Err()
		}
		return nil, &connectError{addr: addr, err: err}
	}

	// The client library arms its heartbeat read deadline only after a
	// frame that follows the handshake: a link black-holed right after
	// it would never be found dead. Arm one now; the library's first
	// frame re-arms it.
	if hb := ac.Config.Heartbeat; hb > 0 {
		_ = raw.SetReadDeadline(time.Now().Add(3 * hb))
	}
	l := &link{conn: ac, raw: raw, addr: addr, queue: queue, log: c.s.log, ev: c.ev, done: make(chan struct{})}
	if c.s.login != LoginExternal {
		l.user = user
	}
	closes := ac.NotifyClose(make(chan *amqp.Error, 1))
	blocks := ac.NotifyBlocked(make(chan amqp.Blocking, notifyBufferSize))
	if !c.start(func() { l.watch(closes, blocks) }) {
		_ = raw.Close()
		return nil, driver.ErrClosed
	}
	c.s.log.Debug("rabbit: connected", "addr", addr, "vhost", c.s.vhost, "purpose", purpose)
	return l, nil
}

// connectError is a failed connection attempt; it never holds a password.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string {
	return "rabbit: cannot connect to AMQP server on " + e.addr + ": " + e.err.Error()
}

func (e *connectError) Unwrap() error { return e.err }

// abortGrace is how long an operation may stay blocked on the network
// after its context ended before its connection is torn down.
const abortGrace = 2 * time.Second

// guard runs f, a blocking call on l, so that it does not outlive ctx:
// the client library's socket writes (a publish held back by a broker
// alarm) and RPCs ignore contexts. f runs on a goroutine of its own; if
// ctx ends first, guard returns ctx.Err() at once, and if f is still
// blocked abortGrace later, l is torn down, which ends f. Connections
// are thus not torn down for operations that were merely slow.
func (c *Conn) guard(ctx context.Context, l *link, f func() error) error {
	_, err := c.guardStart(ctx, l, f)
	return err
}

// guardStart is guard that also reports whether f was started: it is
// not when ctx is already done or the Conn is closing.
func (c *Conn) guardStart(ctx context.Context, l *link, f func() error) (started bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	done := make(chan struct{})
	var ferr error
	if !c.start(func() { ferr = f(); close(done) }) {
		return false, driver.ErrClosed
	}
	select {
	case <-done:
		return true, ferr
	case <-ctx.Done():
	}
	time.AfterFunc(abortGrace, func() {
		select {
		case <-done:
		default:
			l.log.Warn("rabbit: closing a connection whose operation outlived its context", "addr", l.addr)
			l.abort("operation outlived its context")
		}
	})
	return true, ctx.Err()
}

// inlineLimit is the largest message that guardWrite publishes on the
// caller's goroutine: one that fits in the socket's buffers, so that its
// write cannot block for long unless the broker has stopped reading.
const inlineLimit = 64 << 10

// guardWrite is guard for writing a message of size bytes on l, such as
// a publish. While the broker has not blocked the connection, a small
// write does not block: f then runs on the caller's goroutine, saving a
// goroutine and two context switches per message, and a watchdog still
// tears l down if f is blocked abortGrace after ctx ends. Otherwise it
// is guard.
func (c *Conn) guardWrite(ctx context.Context, l *link, size int, f func() error) error {
	if size > inlineLimit || l.blocked.Load() {
		return c.guard(ctx, l, f)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var running atomic.Bool
	running.Store(true)
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(abortGrace, func() {
			if running.Load() {
				l.log.Warn("rabbit: closing a connection whose write outlived its context", "addr", l.addr)
				l.abort("write outlived its context")
			}
		})
	})
	err := f()
	running.Store(false)
	stop()
	return err
}

// permanent reports whether err is a refusal by the broker that trying
// again will not cure: access refused, inequivalent arguments
// (PRECONDITION_FAILED), exclusive-use locks, disallowed vhosts, bad
// credentials; and a broker certificate the client does not accept.
func permanent(err error) bool {
	if errors.Is(err, amqp.ErrCredentials) || errors.Is(err, amqp.ErrVhost) || errors.Is(err, amqp.ErrSASL) {
		return true
	}
	// A certificate the client does not accept stays unaccepted.
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) {
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Server {
		switch ae.Code {
		case amqp.AccessRefused, amqp.ResourceLocked, amqp.PreconditionFailed, amqp.NotAllowed, amqp.NotImplemented:
			return true
		}
	}
	return false
}
