package messaging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/go-oslo/messaging/driver"
)

var (
	driversMu sync.RWMutex
	drivers   = map[string]driver.Driver{}
)

// driverPackages names the packages that provide the known schemes, for
// the hint in ErrUnknownDriver errors.
var driverPackages = map[string]string{
	"memory": "github.com/go-oslo/messaging/driver/memory",
	"fake":   "github.com/go-oslo/messaging/driver/memory",
	"rabbit": "github.com/go-oslo/messaging/driver/rabbit",
	"kombu":  "github.com/go-oslo/messaging/driver/rabbit",
}

// Register makes a driver available to Open under the URL scheme. It is
// meant to be called from a driver package's init function, and panics
// if d is nil or scheme is empty or already registered.
func Register(scheme string, d driver.Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if d == nil {
		panic("messaging: Register driver is nil")
	}
	if scheme == "" {
		panic("messaging: Register scheme is empty")
	}
	if _, dup := drivers[scheme]; dup {
		panic("messaging: Register called twice for scheme " + scheme)
	}
	drivers[scheme] = d
}

// Drivers returns the sorted list of registered schemes.
func Drivers() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]string, 0, len(drivers))
	for s := range drivers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Option configures a Transport.
type Option func(*Transport)

// WithControlExchange sets the exchange used by targets that name none:
// oslo's control_exchange (Nova uses "nova"). Default: "openstack". An
// empty name keeps the default.
func WithControlExchange(name string) Option {
	return func(t *Transport) {
		if name != "" {
			t.exchange = name
		}
	}
}

// WithLogger sets the logger of the transport, of its driver (if the
// driver implements driver.LoggerSetter) and of the clients and servers
// built on it. Default: slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(t *Transport) {
		if l != nil {
			t.logger, t.loggerSet = l, true
		}
	}
}

// WithEventHandler sets a function that receives the driver's events:
// connections lost and re-established, replies dropped or arriving too
// late (see driver.Event). It is passed to the driver if it implements
// driver.EventNotifier, and ignored otherwise. The driver calls h on a
// goroutine of its own, one event at a time, and not after the
// Transport's Close has returned; h should return quickly. Package
// metrics' EventHandler counts the events. A nil h is ignored.
func WithEventHandler(h func(driver.Event)) Option {
	return func(t *Transport) {
		if h != nil {
			t.events = h
		}
	}
}

// Transport is a handle on a broker, shared by any number of clients and
// servers: oslo.messaging's Transport. It is safe for concurrent use.
type Transport struct {
	conn      driver.Conn
	url       *driver.URL
	exchange  string
	logger    *slog.Logger
	loggerSet bool               // by WithLogger
	events    func(driver.Event) // by WithEventHandler
}

// Open returns a Transport for rawURL, whose scheme (the part before any
// "+") selects a registered driver. It parses and validates the URL and
// does no network I/O; use [Transport.Ping] to check that the broker is
// reachable.
//
// Errors wrap ErrInvalidURL for a malformed URL, ErrUnknownDriver when no
// driver is registered for the scheme (the message names the package to
// import), or the driver's own error for options it does not accept.
// Errors never contain the URL's passwords.
func Open(rawURL string, opts ...Option) (*Transport, error) {
	u, err := driver.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	name, _, _ := strings.Cut(u.Scheme, "+")
	driversMu.RLock()
	d, ok := drivers[name]
	driversMu.RUnlock()
	if !ok {
		if pkg, known := driverPackages[name]; known {
			return nil, fmt.Errorf("%w %q (forgotten import _ %q?)", ErrUnknownDriver, name, pkg)
		}
		return nil, fmt.Errorf("%w %q (registered: %s)", ErrUnknownDriver, name, strings.Join(Drivers(), ", "))
	}
	c, err := d.Open(u)
	if err != nil {
		return nil, fmt.Errorf("messaging: open %s: %w", u, err)
	}
	t := newTransport(c, opts)
	t.url = u
	return t, nil
}

// NewTransport returns a Transport on an already opened driver
// connection, bypassing the registry, as sql.OpenDB does. The Transport
// owns c: closing the Transport closes c.
func NewTransport(c driver.Conn, opts ...Option) *Transport {
	return newTransport(c, opts)
}

func newTransport(c driver.Conn, opts []Option) *Transport {
	t := &Transport{conn: c, exchange: DefaultExchange, logger: slog.Default()}
	for _, o := range opts {
		o(t)
	}
	if ls, ok := c.(driver.LoggerSetter); ok && t.loggerSet {
		ls.SetLogger(t.logger)
	}
	if en, ok := c.(driver.EventNotifier); ok && t.events != nil {
		en.SetEventHandler(t.events)
	}
	return t
}

// Conn returns the driver connection, for packages rpc and notify and
// for drivers' optional capabilities.
func (t *Transport) Conn() driver.Conn { return t.conn }

// ControlExchange returns the exchange used by targets that name none.
func (t *Transport) ControlExchange() string { return t.exchange }

// Logger returns the transport's logger.
func (t *Transport) Logger() *slog.Logger { return t.logger }

// URL returns the redacted transport URL, or "" for a Transport made by
// NewTransport.
func (t *Transport) URL() string {
	if t.url == nil {
		return ""
	}
	return t.url.String()
}

// Format prints the Transport as messaging.Transport(URL) with its
// redacted URL, whatever the verb, so that no format prints its
// password.
func (t *Transport) Format(f fmt.State, _ rune) {
	if t == nil {
		_, _ = io.WriteString(f, "messaging.Transport(nil)")
		return
	}
	_, _ = io.WriteString(f, "messaging.Transport("+t.URL()+")")
}

// Address returns the driver address of target, with the control
// exchange applied when target names no exchange.
func (t *Transport) Address(target Target) driver.Address {
	ex := target.Exchange
	if ex == "" {
		ex = t.exchange
	}
	return driver.Address{Exchange: ex, Topic: target.Topic, Server: target.Server, Fanout: target.Fanout}
}

// Ping checks that the broker is reachable, connecting if needed. It
// blocks until it knows or ctx is done.
func (t *Transport) Ping(ctx context.Context) error { return t.conn.Ping(ctx) }

// Close closes the driver connection; calls in progress on clients and
// servers of this transport fail with ErrClosed. Close is idempotent.
func (t *Transport) Close() error { return t.conn.Close() }
