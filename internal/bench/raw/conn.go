package raw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/bench"
)

const (
	dialTimeout     = 30 * time.Second // TCP connect and AMQP handshake
	teardownTimeout = 5 * time.Second  // cancelling, deleting, closing
	heartbeat       = 60 * time.Second // as the rabbit driver's default
)

// endpoint is one broker address with its credentials.
type endpoint struct {
	addr, user, pass, vhost string
}

// endpoints returns the brokers of a rabbit:// (or kombu://) URL, read
// as oslo reads it (guest/guest, port 5672 and virtual host "/" by
// default), or of an amqp:// URL, read as amqp091-go reads it. Its
// errors wrap bench.ErrInvalidConfig and driver.ErrInvalidURL.
func endpoints(raw string) ([]endpoint, error) {
	eps, err := parseEndpoints(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", bench.ErrInvalidConfig, err)
	}
	return eps, nil
}

func parseEndpoints(raw string) ([]endpoint, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("raw: URL %q: %w: want rabbit:// or amqp://", redactURL(raw), driver.ErrInvalidURL)
	}
	switch strings.ToLower(scheme) {
	case "amqp":
		u, err := amqp.ParseURI(raw)
		if err != nil {
			// The parser's message quotes the URL, password included.
			msg := err.Error()
			quoted := strconv.Quote(raw)
			msg = strings.ReplaceAll(msg, quoted[1:len(quoted)-1], redactURL(raw))
			msg = strings.ReplaceAll(msg, raw, redactURL(raw))
			return nil, fmt.Errorf("raw: %w: %s", driver.ErrInvalidURL, msg)
		}
		vhost := u.Vhost
		if vhost == "" {
			vhost = "/"
		}
		return []endpoint{{
			addr: net.JoinHostPort(u.Host, strconv.Itoa(u.Port)),
			user: u.Username, pass: u.Password, vhost: vhost,
		}}, nil
	case "rabbit", "kombu":
		u, err := driver.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("raw: %w", err)
		}
		if v := strings.ToLower(u.Query["ssl"]); v != "" && v != "0" && v != "false" && v != "no" && v != "off" {
			return nil, fmt.Errorf("raw: %w: TLS (ssl=%s) is not supported by the raw benchmark", driver.ErrInvalidURL, u.Query["ssl"])
		}
		vhost := u.VirtualHost
		if vhost == "" {
			vhost = "/"
		}
		hosts := u.Hosts
		if len(hosts) == 0 {
			hosts = []driver.Host{{}}
		}
		eps := make([]endpoint, 0, len(hosts))
		for _, h := range hosts {
			e := endpoint{user: h.Username, pass: h.Password, vhost: vhost}
			host, port := h.Hostname, h.Port
			if host == "" {
				host = "localhost"
			}
			if port == 0 {
				port = 5672
			}
			if e.user == "" {
				e.user = "guest"
			}
			if e.pass == "" {
				e.pass = "guest"
			}
			e.addr = net.JoinHostPort(host, strconv.Itoa(port))
			eps = append(eps, e)
		}
		return eps, nil
	default:
		return nil, fmt.Errorf("raw: %w: scheme %q: want rabbit:// or amqp://", driver.ErrInvalidURL, scheme)
	}
}

// redactURL hides the credentials of a URL that could not be parsed,
// for error messages.
func redactURL(raw string) string {
	i := strings.LastIndexByte(raw, '@')
	if i < 0 {
		return raw
	}
	scheme, _, ok := strings.Cut(raw[:i], "://")
	if !ok {
		return "***" + raw[i:]
	}
	return scheme + "://***" + raw[i:]
}

// connection is one AMQP connection with its socket, which is closed to
// abort blocked I/O when a context ends.
type connection struct {
	conn *amqp.Connection
	raw  net.Conn
}

// dial connects to the first broker of eps that accepts, within ctx
// and dialTimeout. name is the connection's name in the broker's
// management tools. A failure wraps bench.ErrUnreachable, or ctx.Err().
func dial(ctx context.Context, eps []endpoint, name string) (*connection, error) {
	var errs []error
	for _, e := range eps {
		s, err := dialOne(ctx, e, name)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("raw: connect to %s: %w", e.addr, ctx.Err())
		}
		errs = append(errs, fmt.Errorf("%s: %w", e.addr, err))
	}
	return nil, fmt.Errorf("raw: %w: %w", bench.ErrUnreachable, errors.Join(errs...))
}

func dialOne(ctx context.Context, e endpoint, name string) (*connection, error) {
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	props := amqp.NewConnectionProperties()
	props["connection_name"] = name
	conn, err := amqp.Open(raw, amqp.Config{
		SASL:       []amqp.Authentication{&amqp.AMQPlainAuth{Username: e.user, Password: e.pass}},
		Vhost:      e.vhost,
		Heartbeat:  heartbeat,
		Properties: props,
		Locale:     "en_US",
	})
	if !stop() {
		_ = raw.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return &connection{conn: conn, raw: raw}, nil
}

// guard runs f, which does network steps on c, and closes c's socket if
// ctx ends first, so that f returns. It then returns an error wrapping
// ctx.Err().
func (c *connection) guard(ctx context.Context, f func() error) error {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	err := f()
	if !stop() {
		return fmt.Errorf("raw: %w", ctx.Err())
	}
	return err
}

// close closes the connection, waiting at most teardownTimeout for the
// broker, then the socket.
func (c *connection) close() {
	_ = c.conn.CloseDeadline(time.Now().Add(teardownTimeout))
	_ = c.raw.Close()
}

// teardownContext bounds the steps taken after ctx ended.
func teardownContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
}

// channelError is the error of a channel that closed: the broker's reason
// when it gave one, else amqp.ErrClosed.
func channelError(closes <-chan *amqp.Error) error {
	select {
	case e, ok := <-closes:
		if ok && e != nil {
			return e
		}
	default:
	}
	return amqp.ErrClosed
}
