package rabbit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		dropVhost()
		os.Exit(code)
	}))
}

// testTimeout bounds every integration test.
const testTimeout = 30 * time.Second

// brokerURL returns the broker of the integration tests, or skips.
func brokerURL(t *testing.T) *driver.URL {
	t.Helper()
	raw := os.Getenv("MESSAGING_RABBIT_URL")
	if raw == "" {
		t.Skip("MESSAGING_RABBIT_URL not set: SKIPPING this RabbitMQ integration test " +
			"(set e.g. MESSAGING_RABBIT_URL=rabbit://guest:guest@127.0.0.1:5672/)")
	}
	u, err := driver.ParseURL(raw)
	if err != nil {
		t.Fatalf("MESSAGING_RABBIT_URL: %v", err)
	}
	if len(u.Hosts) == 0 {
		u.Hosts = []driver.Host{{Hostname: "localhost", Port: 5672}}
	}
	return u
}

// The integration tests share one virtual host, made for this run and
// deleted by TestMain; each test names its exchanges and topics with an
// id of its own.
var vhost struct {
	once sync.Once
	name string
	err  error
}

func dropVhost() {
	if vhost.name != "" {
		ctl(nil, "delete_vhost", vhost.name)
	}
}

// env is one integration test's view of the broker.
type env struct {
	t     *testing.T
	base  *driver.URL
	vhost string
	id    string
}

// newEnv returns the test's env, creating the run's virtual host at the
// first call.
func newEnv(t *testing.T) *env {
	t.Helper()
	base := brokerURL(t)
	vhost.once.Do(func() {
		name := "omsg-rabbit-test-" + wire.NewID()[:12]
		if _, err := ctlErr("add_vhost", name); err != nil {
			vhost.err = err
			return
		}
		vhost.name = name
		user := base.Hosts[0].Username
		if user == "" {
			user = DefaultUser
		}
		_, vhost.err = ctlErr("set_permissions", "-p", name, user, ".*", ".*", ".*")
	})
	if vhost.err != nil {
		t.Fatalf("cannot make the test virtual host: %v", vhost.err)
	}
	return &env{t: t, base: base, vhost: vhost.name, id: wire.NewID()[:10]}
}

// name returns prefix made unique to the test.
func (e *env) name(prefix string) string { return prefix + "-" + e.id }

// url returns the transport URL of the test's vhost with the query
// options kv ("key", "value", ...).
func (e *env) url(kv ...string) string {
	u := *e.base
	u.VirtualHost = e.vhost
	u.Query = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		u.Query[kv[i]] = kv[i+1]
	}
	return u.Unredacted()
}

// open returns a Conn on the test's vhost, closed when the test ends.
func (e *env) open(kv ...string) *Conn {
	e.t.Helper()
	return openURL(e.t, e.url(kv...))
}

// openURL returns a Conn for raw that logs to t, closed when the test
// ends.
func openURL(t *testing.T, raw string) *Conn {
	t.Helper()
	u, err := driver.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromURL(u)
	if err != nil {
		t.Fatalf("ConfigFromURL: %v", err)
	}
	cfg.Logger = testLogger(t)
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testLogger returns a logger of warnings and errors that writes to the
// test's log until the test's cleanups are over.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// amqpURL is the plain AMQP URL of the test's vhost, for the observer.
func (e *env) amqpURL() string {
	h := e.base.Hosts[0]
	user, pass := h.Username, h.Password
	if user == "" {
		user = DefaultUser
	}
	if pass == "" {
		pass = DefaultPassword
	}
	port := h.Port
	if port == 0 {
		port = DefaultPort
	}
	return fmt.Sprintf("amqp://%s:%s@%s/%s", url.QueryEscape(user), url.QueryEscape(pass),
		net.JoinHostPort(h.Hostname, strconv.Itoa(port)), url.PathEscape(e.vhost))
}

// raw returns a channel of a plain AMQP connection to the test's vhost,
// for observing and injecting messages.
func (e *env) raw() *amqp.Channel {
	e.t.Helper()
	return e.rawFor(e.t)
}

// rawFor is raw for t, a subtest of the env's test: the connection is
// closed when t ends.
func (e *env) rawFor(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(e.amqpURL())
	if err != nil {
		t.Fatalf("raw dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("raw channel: %v", err)
	}
	return ch
}

// inspect reports whether queue name exists, and its messages, with a
// passive declaration (quicker than rabbitmqctl).
func (e *env) inspect(name string) (exists bool, messages int) {
	e.t.Helper()
	conn, err := amqp.Dial(e.amqpURL())
	if err != nil {
		e.t.Fatalf("raw dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	var ae *amqp.Error
	switch {
	case err == nil:
		return true, q.Messages
	case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		return false, 0
	}
	e.t.Fatalf("inspect queue %s: %v", name, err)
	return false, 0
}

// ctl runs rabbitmqctl; t nil means best effort.
func ctl(t *testing.T, args ...string) string {
	if t != nil {
		t.Helper()
	}
	out, err := ctlErr(args...)
	if err != nil && t != nil {
		t.Fatal(err)
	}
	return out
}

func ctlErr(args ...string) (string, error) {
	bin := os.Getenv("RABBITMQCTL")
	if bin == "" {
		bin = "rabbitmqctl"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ctlJSON runs a rabbitmqctl list command with JSON output.
func ctlJSON[T any](t *testing.T, args ...string) []T {
	t.Helper()
	out := ctl(t, append(args, "--formatter", "json", "--quiet")...)
	var v []T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

type qinfo struct {
	Name       string  `json:"name"`
	Durable    bool    `json:"durable"`
	AutoDelete bool    `json:"auto_delete"`
	Arguments  [][]any `json:"arguments"`
	Messages   int     `json:"messages"`
	Consumers  int     `json:"consumers"`
}

func (e *env) queues() map[string]qinfo {
	e.t.Helper()
	out := map[string]qinfo{}
	for _, q := range ctlJSON[qinfo](e.t, "list_queues", "-p", e.vhost, "name", "durable", "auto_delete", "arguments", "messages", "consumers") {
		out[q.Name] = q
	}
	return out
}

type xinfo struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"auto_delete"`
}

func (e *env) exchanges() map[string]xinfo {
	e.t.Helper()
	out := map[string]xinfo{}
	for _, x := range ctlJSON[xinfo](e.t, "list_exchanges", "-p", e.vhost, "name", "type", "durable", "auto_delete") {
		out[x.Name] = x
	}
	return out
}

type binfo struct {
	Source      string `json:"source_name"`
	Destination string `json:"destination_name"`
	Key         string `json:"routing_key"`
}

func (e *env) bindings() []binfo {
	e.t.Helper()
	return ctlJSON[binfo](e.t, "list_bindings", "-p", e.vhost, "source_name", "destination_name", "routing_key")
}

// args renders rabbitmqctl's argument list as sorted "key:type:value"
// strings.
func args(q qinfo) string {
	var parts []string
	for _, a := range q.Arguments {
		parts = append(parts, fmt.Sprintf("%v:%v:%v", a...))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// proxy is a TCP proxy to the broker that can stop forwarding either
// way: clients to broker, to make publishes block in the socket the way
// a broker alarm does, or broker to clients, to lose confirms. It can
// also cut every connection.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	held   [2]bool // [0]: client to broker, [1]: broker to client
	conns  []net.Conn
	wg     sync.WaitGroup
	resume chan struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, resume: make(chan struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		// A small fixed buffer, so that a paused proxy makes the
		// client's writes block soon.
		_ = c.(*net.TCPConn).SetReadBuffer(8 << 10)
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.copy(up, c, 0) })
		p.wg.Go(func() { p.copy(c, up, 1) })
	}
}

// copy forwards src to dst while direction dir is not held.
func (p *proxy) copy(dst, src net.Conn, dir int) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		held, resume := p.held[dir], p.resume
		p.mu.Unlock()
		if held {
			<-resume
		}
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			held, resume = p.held[dir], p.resume
			p.mu.Unlock()
			if held {
				<-resume // hold what arrived; cut drops it
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pause stops forwarding from clients to the broker.
func (p *proxy) pause() { p.hold(0) }

// deafen stops forwarding from the broker to clients.
func (p *proxy) deafen() { p.hold(1) }

func (p *proxy) hold(dir int) {
	p.mu.Lock()
	p.held[dir] = true
	p.mu.Unlock()
}

// cut closes every proxied connection and forwards again.
func (p *proxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.held = [2]bool{}
	close(p.resume)
	p.resume = make(chan struct{})
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// viaProxy returns a proxy to the test's broker and an env whose URLs go
// through it.
func (e *env) viaProxy() (*proxy, *env) {
	e.t.Helper()
	h := e.base.Hosts[0]
	port := h.Port
	if port == 0 {
		port = DefaultPort
	}
	p := newProxy(e.t, net.JoinHostPort(h.Hostname, strconv.Itoa(port)))
	u := *e.base
	u.Hosts = []driver.Host{{Hostname: "127.0.0.1", Port: p.ln.Addr().(*net.TCPAddr).Port, Username: h.Username, Password: h.Password}}
	return p, &env{t: e.t, base: &u, vhost: e.vhost, id: e.id}
}

// fastRetry returns the URL options that make a connection reconnect
// and retry without delay, for the tests that cut it, followed by kv.
func fastRetry(kv ...string) []string {
	return append([]string{"kombu_reconnect_delay", "0", "rabbit_retry_interval", "0"}, kv...)
}

// testCtx returns a context bounded by testTimeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
