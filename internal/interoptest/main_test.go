package interoptest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/rabbit" // rabbit:// and kombu://
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/wire"
)

// Environment variables that enable the suite.
const (
	envURL    = "MESSAGING_RABBIT_URL"
	envPython = pyinterop.EnvVar // OMSG_PYTHON
)

// Bounds of the suite's waits. They are generous, since the suite shares
// a small machine with other test runs; a healthy run is far below them.
const (
	// opTimeout bounds one ordinary step: a call expected to succeed, a
	// server start or stop, a wait for an event.
	opTimeout = 30 * time.Second
	// stopTimeout bounds the stop of a Python RPC server: oslo's stop()
	// and wait() let its poll loop and executor finish, which under load
	// has taken longer than an ordinary step.
	stopTimeout = 90 * time.Second
	// caseTimeout bounds a whole case.
	caseTimeout = 2 * time.Minute
	// peerLifetime bounds the life of every Python process.
	peerLifetime = 5 * time.Minute
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from what the live Python oslo.messaging publishes")

// Counts of the interop cases (leaf subtests run through runCase and
// runNotifyCase), notification cases included.
var cases struct {
	tally
	skipReason   atomic.Value // string: why the suite skipped
	brokenReason atomic.Value // string: why cases could not run
}

// Counts of the notification cases alone (run through runNotifyCase).
var notifyCases tally

// tally counts the outcomes of cases.
type tally struct {
	passed, failed, skipped atomic.Int64
}

// count counts the outcome of the case t.
func (c *tally) count(t *testing.T) {
	switch {
	case t.Failed():
		c.failed.Add(1)
	case t.Skipped():
		c.skipped.Add(1)
	default:
		c.passed.Add(1)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	closeSharedPeer()
	dropVhost()
	printSummary(os.Stdout)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the interop tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// printSummary prints the lines that CI logs keep: the notification
// cases, when some ran, then every case.
func printSummary(w io.Writer) {
	if p, f, s := notifyCases.passed.Load(), notifyCases.failed.Load(), notifyCases.skipped.Load(); p+f+s > 0 {
		line := fmt.Sprintf("notification interop cases run: %d passed, %d failed", p, f)
		if s > 0 {
			line += fmt.Sprintf(", %d skipped", s)
		}
		fmt.Fprintln(w, line)
	}
	p, f, s := cases.passed.Load(), cases.failed.Load(), cases.skipped.Load()
	line := fmt.Sprintf("interop cases run: %d passed, %d failed", p, f)
	if s > 0 {
		line += fmt.Sprintf(", %d skipped", s)
	}
	if why, ok := cases.brokenReason.Load().(string); ok {
		line += " (" + why + ")"
	} else if p+f == 0 {
		if why, ok := cases.skipReason.Load().(string); ok {
			line += " (SKIPPED: " + why + ")"
		}
	}
	fmt.Fprintln(w, line)
}

// runCase runs f as a parallel interop case and counts its outcome.
func runCase(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		t.Cleanup(func() { countCase(t) })
		f(t)
	})
}

// runNotifyCase runs f as a parallel notification interop case, counted
// among all cases and among the notification cases.
func runNotifyCase(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		t.Cleanup(func() {
			countCase(t)
			notifyCases.count(t)
		})
		f(t)
	})
}

// runSerialCase runs f as an interop case that is not parallel.
func runSerialCase(t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		t.Cleanup(func() { countCase(t) })
		f(t)
	})
}

// countCase is registered first by the case helpers, so that it runs
// after every other cleanup of the case and sees their failures too.
func countCase(t *testing.T) { cases.count(t) }

// suite is the run's broker and interpreter.
type suite struct {
	base   *driver.URL // MESSAGING_RABBIT_URL
	python string
	vhost  string
	user   string
}

var the struct {
	once  sync.Once
	s     *suite
	err   error
	vhost string // set once the vhost exists, for dropVhost
	mu    sync.Mutex
}

// setup returns the run's suite, skipping t loudly when the suite is not
// enabled and failing it when the environment is broken.
func setup(t *testing.T) *suite {
	t.Helper()
	var missing []string
	for _, v := range []string{envURL, envPython} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		why := strings.Join(missing, " and ") + " not set"
		cases.skipReason.Store(why)
		t.Skipf("SKIPPING the interop test %s against Python oslo.messaging over RabbitMQ: %s "+
			"(set %s=rabbit://guest:guest@127.0.0.1:5672/ and %s=/usr/bin/python3 to run it)",
			t.Name(), why, envURL, envPython)
	}
	// A broken environment fails the test, and counts as a failed case
	// so that the summary line does not read as a clean run.
	broken := true
	defer func() {
		if broken {
			cases.failed.Add(1)
			cases.brokenReason.CompareAndSwap(nil, "the interop environment is broken; see "+t.Name())
		}
	}()
	pyinterop.Python(t) // fails t if the interpreter cannot import oslo_messaging
	the.once.Do(func() { the.s, the.err = newSuite() })
	if the.err != nil {
		t.Fatalf("interop suite environment is broken: %v", the.err)
	}
	broken = false
	return the.s
}

func newSuite() (*suite, error) {
	u, err := driver.ParseURL(os.Getenv(envURL))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envURL, err)
	}
	if len(u.Hosts) == 0 {
		u.Hosts = []driver.Host{{Hostname: "localhost"}}
	}
	s := &suite{base: u, python: os.Getenv(envPython), user: u.Hosts[0].Username}
	if s.user == "" {
		s.user = "guest"
	}
	name := "omsg-interop-" + wire.NewID()[:12]
	if _, err := rabbitmqctl(context.Background(), "add_vhost", name); err != nil {
		return nil, err
	}
	the.mu.Lock()
	the.vhost = name
	the.mu.Unlock()
	s.vhost = name
	if _, err := rabbitmqctl(context.Background(), "set_permissions", "-p", name, s.user, ".*", ".*", ".*"); err != nil {
		return nil, err
	}
	// The broker must be reachable over AMQP, not only through
	// rabbitmqctl.
	conn, err := amqp.DialConfig(s.amqpURL(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return nil, fmt.Errorf("broker of %s unreachable: %w", envURL, err)
	}
	_ = conn.Close()
	return s, nil
}

// dropVhost deletes the run's virtual host, if this run made one.
func dropVhost() {
	the.mu.Lock()
	name := the.vhost
	the.vhost = ""
	the.mu.Unlock()
	if name == "" {
		return
	}
	if out, err := rabbitmqctl(context.Background(), "delete_vhost", name); err != nil {
		fmt.Fprintf(os.Stderr, "interoptest: cannot delete the virtual host %s: %v\n%s", name, err, out)
	}
}

// rabbitmqctl runs rabbitmqctl (or $RABBITMQCTL) with a bounded
// lifetime.
func rabbitmqctl(ctx context.Context, args ...string) (string, error) {
	bin := os.Getenv("RABBITMQCTL")
	if bin == "" {
		bin = "rabbitmqctl"
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// url returns the transport URL of the run's vhost with the query
// options kv ("key", "value", ...). Python and Go use the same URLs.
func (s *suite) url(kv ...string) string { return s.urlScheme(s.base.Scheme, kv...) }

// urlScheme is url with another scheme (kombu for rabbit).
func (s *suite) urlScheme(scheme string, kv ...string) string {
	u := *s.base
	u.Scheme = scheme
	u.VirtualHost = s.vhost
	u.Query = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		u.Query[kv[i]] = kv[i+1]
	}
	return u.Unredacted()
}

// amqpURL is the plain AMQP URL of the run's vhost, for the raw client
// that captures messages.
func (s *suite) amqpURL() string {
	h := s.base.Hosts[0]
	pass := h.Password
	if pass == "" {
		pass = "guest"
	}
	host := h.Hostname
	if host == "" {
		host = "localhost"
	}
	port := h.Port
	if port == 0 {
		port = 5672
	}
	return fmt.Sprintf("amqp://%s:%s@%s/%s", url.QueryEscape(s.user), url.QueryEscape(pass),
		net.JoinHostPort(host, strconv.Itoa(port)), url.PathEscape(s.vhost))
}

// env is one case's view of the suite: names unique to the case, the Go
// transports it opens, and a logger that shows the library's logs when
// the case fails.
type env struct {
	t   *testing.T
	s   *suite
	id  string
	log *slog.Logger
	pys []*pyServer // stopped together when the case ends
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := setup(t)
	return &env{t: t, s: s, id: wire.NewID()[:10], log: caseLogger(t)}
}

// name returns prefix made unique to the case.
func (e *env) name(prefix string) string { return prefix + "_" + e.id }

// transport opens a Go transport on the run's vhost with the URL query
// options kv, closed when the case ends.
func (e *env) transport(kv ...string) *messaging.Transport {
	e.t.Helper()
	tr, err := messaging.Open(e.s.url(kv...), messaging.WithLogger(e.log))
	if err != nil {
		e.t.Fatalf("messaging.Open: %v", err)
	}
	e.t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			e.t.Errorf("Transport.Close: %v", err)
		}
	})
	return tr
}

// ctx returns a context bounded by d and by the case.
func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// caseLogger returns a logger that keeps the library's logs of a case
// and prints them to the case's log only if the case fails, so that
// expected failures (a handler raising on purpose) do not clutter the
// output.
func caseLogger(t *testing.T) *slog.Logger {
	w := &logBuffer{}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
		if t.Failed() && w.b.Len() > 0 {
			t.Logf("library logs:\n%s", w.b.String())
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type logBuffer struct {
	mu   sync.Mutex
	b    strings.Builder
	done bool
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && w.b.Len() < 1<<20 {
		w.b.Write(p)
	}
	return len(p), nil
}

// within reports whether d is in [lo, hi].
func within(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
