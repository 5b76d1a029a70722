package faulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/internal/brokertest"
)

// Paths of the RabbitMQ programs. They are called directly: the wrappers
// in /usr/sbin switch to the rabbitmq user and share the system node's
// Erlang cookie.
const (
	ServerPath = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	CtlPath    = "/usr/lib/rabbitmq/bin/rabbitmqctl"
)

// Bounds of the waits of a Node, applied on top of the callers' contexts.
const (
	// DefaultStartTimeout bounds the wait for a node to accept AMQP
	// connections after it is started.
	DefaultStartTimeout = 60 * time.Second
	// CtlTimeout bounds each rabbitmqctl command.
	CtlTimeout = 30 * time.Second
	// stopTimeout bounds the wait for a node to exit after a stop
	// command, before it is killed.
	stopTimeout = 20 * time.Second
)

// RabbitMQ's defaults, which the alarm switches restore.
const (
	defaultMemoryWatermark = "0.4"
	defaultDiskFreeLimit   = "50000000"
)

// ErrNotRunning is returned by the methods of a Node that need its
// process when the node is stopped or was killed.
var ErrNotRunning = errors.New("faulttest: node is not running")

// NodeOptions configures a private node. The zero value is a plain node
// without plugins or TLS.
type NodeOptions struct {
	// Name begins the node's name, which goes on with random hex and
	// "@" and the short host name. Letters, digits, "-" and "_" only.
	// Default: "faulttest".
	Name string
	// Plugins are enabled at boot, e.g. "rabbitmq_management" (whose
	// HTTP listener gets a free port of its own: see
	// [Node.ManagementPort]). Default: none.
	Plugins []string
	// Config lines are appended to the node's rabbitmq.conf.
	Config []string
	// TLS, when not nil, adds a TLS listener with certificates made for
	// the node.
	TLS *TLSOptions
	// Cookie is the Erlang cookie: nodes that form a cluster share it.
	// Default: a random one.
	Cookie string
	// StartTimeout bounds the wait for the node to accept AMQP
	// connections at each start. Default: [DefaultStartTimeout].
	StartTimeout time.Duration
}

// Node is a private RabbitMQ node, started by [StartNode] for one test
// and stopped, with its files removed, when the test ends. Its AMQP
// listener and Erlang distribution listen on 127.0.0.1 only, on free
// ports kept across restarts; its user guest/guest may connect from
// anywhere (loopback_users = none). Methods are safe for concurrent
// use; the ones that change the node's process (Start, Stop, Kill,
// Restart, Pause, Resume) run one at a time.
type Node struct {
	name         string // full node name, name@host
	port         int
	distPort     int
	mgmtPort     int // 0 without the management plugin
	dir          string
	env          []string // of the server
	ctlEnv       []string // of rabbitmqctl
	tls          *TLSFiles
	startTimeout time.Duration

	life     sync.Mutex // serializes the lifecycle methods; guards the fields below
	proc     *process   // nil when not running
	needUser bool       // the EXTERNAL user is still to be created
}

// process is one run of the server. The node's cmd is the beam process
// itself: the start script execs the Erlang VM.
type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	err    error         // cmd.Wait's result, set before done is closed
	paused bool
}

// StartNode starts a private node and waits, up to opts.StartTimeout,
// until it accepts AMQP connections. It fails t if the node cannot
// start, and skips t, saying so, when MESSAGING_RABBIT_URL is not set
// (integration runs set it). The test's cleanup stops the node
// (rabbitmqctl stop, then SIGKILL to its process group if it lingers)
// and removes its files. On Linux the node is also killed if the test
// binary dies without cleaning up (a timeout's panic, say).
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	requireIntegration(t)
	n, err := newNode(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("faulttest: node %s up on 127.0.0.1:%d in %v", n.name, n.port, time.Since(start).Round(time.Millisecond))
	return n
}

// requireIntegration skips t outside integration runs and fails it when
// RabbitMQ is not installed.
func requireIntegration(t testing.TB) {
	t.Helper()
	if os.Getenv(brokertest.EnvURL) == "" {
		t.Skip(brokertest.EnvURL + " not set: SKIPPING this test, which starts private RabbitMQ nodes " +
			"(integration runs set it, e.g. make test)")
	}
	if _, err := os.Stat(ServerPath); err != nil {
		t.Fatalf("faulttest: RabbitMQ is not installed (%v): install the rabbitmq-server package (make setup)", err)
	}
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// newNode lays out the node's files and registers its cleanup; it does
// not start it.
func newNode(t testing.TB, opts NodeOptions) (*Node, error) {
	prefix := opts.Name
	if prefix == "" {
		prefix = "faulttest"
	}
	if !nodeNameRE.MatchString(prefix) {
		return nil, fmt.Errorf("faulttest: node name %q: only letters, digits, - and _ are allowed", prefix)
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("faulttest: host name: %w", err)
	}
	host, _, _ = strings.Cut(host, ".")
	cookie := opts.Cookie
	if cookie == "" {
		cookie = strings.ToUpper(randomHex(16))
	}

	wantMgmt := false
	for _, p := range opts.Plugins {
		if !nodeNameRE.MatchString(p) {
			return nil, fmt.Errorf("faulttest: plugin name %q is not valid", p)
		}
		wantMgmt = wantMgmt || p == "rabbitmq_management"
	}
	nports := 2
	if opts.TLS != nil {
		nports++
	}
	if wantMgmt {
		nports++
	}
	ports, err := freePorts(nports)
	if err != nil {
		return nil, err
	}

	n := &Node{
		name:         prefix + randomHex(4) + "@" + host,
		port:         ports[0],
		distPort:     ports[1],
		dir:          t.TempDir(),
		startTimeout: opts.StartTimeout,
	}
	if n.startTimeout <= 0 {
		n.startTimeout = DefaultStartTimeout
	}
	home := filepath.Join(n.dir, "home")
	for _, d := range []string{home, filepath.Join(n.dir, "mnesia"), filepath.Join(n.dir, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("faulttest: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(cookie), 0o400); err != nil {
		return nil, fmt.Errorf("faulttest: cookie: %w", err)
	}

	conf := []string{
		"listeners.tcp.1 = 127.0.0.1:" + strconv.Itoa(n.port),
		"loopback_users = none",
	}
	plugins := append([]string(nil), opts.Plugins...)
	next := 2
	if opts.TLS != nil {
		files, lines, err := writeTLS(filepath.Join(n.dir, "tls"), ports[next], *opts.TLS)
		if err != nil {
			return nil, err
		}
		next++
		n.tls = files
		conf = append(conf, lines...)
		if opts.TLS.External {
			n.needUser = true
			plugins = appendMissing(plugins, "rabbitmq_auth_mechanism_ssl")
		}
	}
	if wantMgmt {
		n.mgmtPort = ports[next]
		conf = append(conf,
			"management.tcp.ip = 127.0.0.1",
			"management.tcp.port = "+strconv.Itoa(n.mgmtPort))
	}
	conf = append(conf, opts.Config...)
	files := map[string]string{
		"rabbitmq.conf":     strings.Join(conf, "\n") + "\n",
		"enabled_plugins":   "[" + strings.Join(plugins, ",") + "].\n",
		"rabbitmq-env.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o600); err != nil {
			return nil, fmt.Errorf("faulttest: %w", err)
		}
	}

	common := []string{
		"PATH=/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + home,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		// Our own (empty) file instead of /etc/rabbitmq/rabbitmq-env.conf,
		// which names the system node.
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(n.dir, "rabbitmq-env.conf"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	}
	n.ctlEnv = common
	n.env = append(append([]string(nil), common...),
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(n.dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(n.dir, "node.pid"),
		// Makes the start script exec the VM (so that the process we
		// start is beam itself), while -noinput keeps it off stdin.
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput -kernel inet_dist_use_interface {127,0,0,1}",
	)
	t.Cleanup(func() {
		if err := n.shutdown(); err != nil {
			t.Errorf("faulttest: stopping node %s: %v", n.name, err)
		}
	})
	return n, nil
}

func appendMissing(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePorts returns n distinct ports that were free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("faulttest: free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Name returns the node's Erlang name, name@host.
func (n *Node) Name() string { return n.name }

// Port returns the node's AMQP port on 127.0.0.1.
func (n *Node) Port() int { return n.port }

// Addr returns the node's AMQP address, 127.0.0.1:port, e.g. as a
// [Proxy]'s upstream.
func (n *Node) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// URL returns the transport URL of the node's default virtual host as
// guest: rabbit://guest:guest@127.0.0.1:port/.
func (n *Node) URL() string { return "rabbit://guest:guest@" + n.Addr() + "/" }

// AMQPURL returns the node's URL for amqp091-go:
// amqp://guest:guest@127.0.0.1:port/.
func (n *Node) AMQPURL() string { return "amqp://guest:guest@" + n.Addr() + "/" }

// ManagementPort returns the port of the management plugin's HTTP API
// on 127.0.0.1, or 0 when the plugin was not asked for.
func (n *Node) ManagementPort() int { return n.mgmtPort }

// TLS returns the node's TLS listener and certificate files, or nil
// when [NodeOptions.TLS] was nil.
func (n *Node) TLS() *TLSFiles { return n.tls }

// Dir returns the directory of the node's files: its rabbitmq.conf, its
// data under mnesia and its logs under log.
func (n *Node) Dir() string { return n.dir }

// Running reports whether the node's process is running (which it is
// also when paused or after StopApp).
func (n *Node) Running() bool {
	n.life.Lock()
	defer n.life.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// Start starts the node, with the ports and data it had, if it is not
// running, and waits until it accepts AMQP connections, up to ctx and
// the start timeout. It returns nil if the node was running.
func (n *Node) Start(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	if n.runningLocked() {
		return nil
	}
	return n.startLocked(ctx)
}

func (n *Node) startLocked(ctx context.Context) error {
	console, err := os.OpenFile(filepath.Join(n.dir, "log", "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("faulttest: %w", err)
	}
	defer console.Close() // the child has its own copy
	cmd := exec.Command(ServerPath)
	cmd.Dir = n.dir
	cmd.Env = n.env
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("faulttest: start %s: %w", n.name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	n.proc = p
	go func() { // joined by whoever waits on p.done: stop, kill, shutdown
		p.err = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, n.startTimeout)
	defer cancel()
	if err := n.waitReady(ctx, p); err != nil {
		// Leave no half-started node behind.
		_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
		}
		return fmt.Errorf("faulttest: node %s did not start: %w\n%s", n.name, err, n.logTail())
	}
	if n.needUser {
		if err := n.addExternalUser(ctx); err != nil {
			return err
		}
		n.needUser = false
	}
	return nil
}

// waitReady polls until the node accepts an AMQP connection (and its TLS
// port, if any, a TCP connection), the process exits or ctx ends.
func (n *Node) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = probeAMQP(n.AMQPURL())
		if last == nil && n.tls != nil {
			var c net.Conn
			if c, last = net.DialTimeout("tcp", n.tls.Addr(), time.Second); last == nil {
				_ = c.Close()
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("the server exited: %w", p.err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// probeName is the connection_name of the probes of probeAMQP.
const probeName = "faulttest-probe"

// probeAMQP opens and closes an AMQP connection, bounded to 2 s.
func probeAMQP(url string) error {
	c, err := amqp.DialConfig(url, amqp.Config{
		Dial:       amqp.DefaultDial(2 * time.Second),
		Properties: amqp.Table{"connection_name": probeName},
	})
	if err != nil {
		return err
	}
	return c.Close()
}

// logTail returns the end of the node's console and log files.
func (n *Node) logTail() string {
	var b strings.Builder
	for _, name := range []string{"console.log", n.name + ".log"} {
		data, err := os.ReadFile(filepath.Join(n.dir, "log", name))
		if err != nil {
			continue
		}
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "--- %s (end) ---\n%s\n", name, data)
	}
	return b.String()
}

// Stop stops the node gracefully (rabbitmqctl stop), keeping its data,
// and waits until its process has exited; if it does not exit within
// ctx or 20 s it is killed. Stopping a stopped node returns nil.
func (n *Node) Stop(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	return n.stopLocked(ctx)
}

func (n *Node) stopLocked(ctx context.Context) error {
	if !n.runningLocked() {
		return nil
	}
	p := n.proc
	if p.paused {
		if err := p.cmd.Process.Signal(sigCont); err == nil {
			p.paused = false
		}
	}
	_, ctlErr := n.Ctl(ctx, "stop")
	wait, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	select {
	case <-p.done:
		return nil
	case <-wait.Done():
	}
	// It lingers: kill its process group, with a bound of its own so that
	// an expired ctx still gets the node killed.
	_ = signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
		if ctlErr != nil {
			return fmt.Errorf("faulttest: node %s did not stop and was killed: %w", n.name, ctlErr)
		}
		return fmt.Errorf("faulttest: node %s did not stop and was killed", n.name)
	case <-timer.C:
		return fmt.Errorf("faulttest: node %s (pid %d) survived SIGKILL", n.name, p.cmd.Process.Pid)
	}
}

// Kill sends SIGKILL to the node's beam process (a crash: no graceful
// close of connections, unsynced data may be lost) and waits, up to ctx,
// until it has exited. It returns ErrNotRunning if the node is not
// running.
func (n *Node) Kill(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	if !n.runningLocked() {
		return ErrNotRunning
	}
	p := n.proc
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("faulttest: kill %s: %w", n.name, err)
	}
	select {
	case <-p.done:
		p.paused = false
		return nil
	case <-ctx.Done():
		return fmt.Errorf("faulttest: waiting for %s to die: %w", n.name, ctx.Err())
	}
}

// Restart stops the node if it is running (gracefully, as Stop does)
// and starts it again with the same ports and data, waiting until it
// accepts AMQP connections. After Kill, it only starts it.
func (n *Node) Restart(ctx context.Context) error {
	n.life.Lock()
	defer n.life.Unlock()
	if err := n.stopLocked(ctx); err != nil {
		return err
	}
	return n.startLocked(ctx)
}

// Pause stops the node's beam process with SIGSTOP: it keeps its
// sockets open but neither answers nor sends heartbeats, like a hung
// peer. rabbitmqctl commands time out while it is paused. It returns
// ErrNotRunning if the node is not running.
func (n *Node) Pause() error { return n.signal(sigStop, true) }

// Resume continues a paused node with SIGCONT. It returns ErrNotRunning
// if the node is not running.
func (n *Node) Resume() error { return n.signal(sigCont, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.life.Lock()
	defer n.life.Unlock()
	if !n.runningLocked() {
		return ErrNotRunning
	}
	if err := n.proc.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("faulttest: %v to %s: %w", sig, n.name, err)
	}
	n.proc.paused = paused
	return nil
}

// shutdown is the test cleanup: stop the node whatever its state.
func (n *Node) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), CtlTimeout)
	defer cancel()
	n.life.Lock()
	defer n.life.Unlock()
	return n.stopLocked(ctx)
}
