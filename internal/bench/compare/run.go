package compare

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// pythonCheckTimeout bounds the check that Python can import
// oslo.messaging.
const pythonCheckTimeout = time.Minute

// pollInterval is how often queues are looked at while waiting for a
// server (simulator.py) or for the queues to empty.
const pollInterval = 250 * time.Millisecond

// runner runs the cells of a comparison.
type runner struct {
	o       Options
	url     string // the URL given to the programs
	broker  broker
	dir     string // temporary directory: pybench.py, JSON files
	id      string // random, in every topic
	python  []string
	cleanup []func(context.Context) error
}

// Run runs the scenarios of o, one cell after the other: for each
// scenario, bare amqp091-go (omsg bench raw), this library (omsg bench)
// and Python oslo.messaging (pybench.py, or simulator.py) on the same
// broker with the same payloads. A cell starts the scenario's servers,
// waits for them to be ready, runs the client for o.Duration, waits for
// the servers' queues to empty, stops the servers with SIGINT and reads
// the JSON statistics of every program. Every program is bounded in
// time and killed when ctx is done.
//
// When rabbitmqctl can be run, the comparison creates a virtual host
// of its own, gives the URL's user every permission on it and deletes
// it at the end; otherwise it uses the URL's virtual host, with topics
// no other program uses.
//
// A failed cell is reported in the Report, not as an error. Run returns
// an error wrapping ErrInvalidOptions for options it cannot run and
// ErrUnreachable when the broker cannot be reached; when ctx ends
// during the run, it returns the report of the cells run so far with
// ctx.Err().
func Run(ctx context.Context, o Options) (*Report, error) {
	o, u, err := o.normalize()
	if err != nil {
		return nil, err
	}
	scenarios, err := selectScenarios(o.Scenarios)
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, url: o.URL}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r.id = hex.EncodeToString(id[:])
	rep := &Report{
		Date:        time.Now().UTC(),
		PayloadSize: o.PayloadSize,
		Duration:    o.Duration.Seconds(),
		Machine:     machine(),
	}
	defer func() {
		// Tear down even when ctx is done, within bounds.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ctlTimeout)
		defer cancel()
		for i := len(r.cleanup) - 1; i >= 0; i-- {
			if err := r.cleanup[i](tctx); err != nil {
				rep.Notes = append(rep.Notes, "cleanup: "+err.Error())
			}
		}
	}()
	if err := r.setupBroker(ctx, u, rep); err != nil {
		return nil, err
	}
	r.dir, err = os.MkdirTemp("", "omsg-bench-compare-")
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	r.cleanup = append(r.cleanup, func(context.Context) error { return os.RemoveAll(r.dir) })
	r.setupPython(ctx, rep)

	for _, sc := range scenarios {
		for _, sys := range systems {
			if ctx.Err() != nil {
				rep.Cells = append(rep.Cells, Cell{Scenario: sc.name, System: sys, Status: StatusNotRun, Error: "interrupted"})
				continue
			}
			fmt.Fprintf(o.Progress, "omsg bench compare: %s: %s...\n", sc.name, sys)
			c := r.runCell(ctx, sc, sys, rep)
			switch c.Status {
			case StatusOK:
				fmt.Fprintf(o.Progress, "omsg bench compare: %s: %s: done in %.1f s\n", sc.name, sys, c.Seconds)
			default:
				fmt.Fprintf(o.Progress, "omsg bench compare: %s: %s: %s: %s\n", sc.name, sys, c.Status, oneLine(c.Error))
			}
			rep.Cells = append(rep.Cells, c)
		}
	}
	rep.Rows = buildRows(scenarios, rep.Cells)
	return rep, ctx.Err()
}

// setupBroker checks that the broker answers, creates the comparison's
// virtual host when rabbitmqctl can, and sets r.broker and r.url.
func (r *runner) setupBroker(ctx context.Context, u *driver.URL, rep *Report) error {
	if r.o.broker != nil {
		r.broker = r.o.broker
		rep.Broker = "given"
		return nil
	}
	conn, err := dial(ctx, u)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if v, ok := conn.Properties["version"].(string); ok {
		rep.Machine.RabbitMQ = v
	}
	_ = conn.Close()

	vhost := u.VirtualHost
	if vhost == "" {
		vhost = "/"
	}
	b := &rabbitBroker{vhost: vhost}
	ctl, why := r.findCtl(ctx)
	if ctl != nil {
		if rep.Machine.RabbitMQ == "" {
			if out, err := ctl.run(ctx, "version"); err == nil {
				rep.Machine.RabbitMQ = strings.TrimSpace(out)
			}
		}
		own, err := r.createVhost(ctx, ctl, u)
		switch {
		case err != nil:
			why = err.Error()
		default:
			u = own
			b.vhost, b.ctl = own.VirtualHost, ctl
		}
	}
	conn, err = dial(ctx, u)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	b.conn = conn
	stop := context.AfterFunc(ctx, func() { _ = b.close() }) // unblocks the declarations
	r.cleanup = append(r.cleanup, func(context.Context) error {
		stop()
		return b.close()
	})
	r.broker = b
	r.url = u.Unredacted()
	if b.ctl != nil {
		rep.Broker = fmt.Sprintf("virtual host %s, created for the run and deleted after it", b.vhost)
	} else {
		rep.Broker = fmt.Sprintf("virtual host %q of the URL, topics omsg_bench_%s_* (rabbitmqctl not used: %s)", b.vhost, r.id, why)
	}
	return nil
}

// findCtl returns rabbitmqctl when it can be run, else nil and why not.
func (r *runner) findCtl(ctx context.Context) (*rabbitctl, string) {
	path := r.o.Rabbitmqctl
	if path == "" {
		path = "rabbitmqctl"
	}
	if !strings.ContainsRune(path, filepath.Separator) {
		if _, err := exec.LookPath(path); err != nil {
			return nil, "not found"
		}
	}
	ctl := &rabbitctl{path: path}
	if _, err := ctl.run(ctx, "list_vhosts", "-q", "name"); err != nil {
		return nil, err.Error()
	}
	return ctl, ""
}

// createVhost creates the virtual host of the comparison, gives the
// URL's user every permission on it and returns the URL to it. It
// registers the deletion of the virtual host as a cleanup.
func (r *runner) createVhost(ctx context.Context, ctl *rabbitctl, u *driver.URL) (*driver.URL, error) {
	name := "omsg-bench-" + r.id
	if _, err := ctl.run(ctx, "add_vhost", name); err != nil {
		return nil, err
	}
	remove := func(ctx context.Context) error {
		_, err := ctl.run(ctx, "delete_vhost", name)
		return err
	}
	user := "guest"
	if len(u.Hosts) > 0 && u.Hosts[0].Username != "" {
		user = u.Hosts[0].Username
	}
	own := *u
	own.VirtualHost = name
	if _, err := ctl.run(ctx, "set_permissions", "-p", name, user, ".*", ".*", ".*"); err != nil {
		return nil, errors.Join(err, remove(context.WithoutCancel(ctx)))
	}
	// rabbitmqctl may manage another broker than the URL's.
	conn, err := dial(ctx, &own)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("the virtual host made by rabbitmqctl is not on the URL's broker: %w", err),
			remove(context.WithoutCancel(ctx)))
	}
	_ = conn.Close()
	r.cleanup = append(r.cleanup, remove)
	return &own, nil
}

// setupPython checks that Python can import oslo.messaging and writes
// pybench.py, or notes why Python will not run.
func (r *runner) setupPython(ctx context.Context, rep *Report) {
	rep.Python = PythonInfo{Interpreter: r.o.Python, Program: "pybench.py"}
	if r.o.Simulator != "" {
		rep.Python.Program = r.o.Simulator
	}
	if r.o.NoPython {
		rep.Python.Reason = "disabled (--no-python)"
		return
	}
	imports := "oslo_messaging"
	if r.o.Simulator == "" {
		imports += ", eventlet"
	}
	script := "import " + imports + "\nfrom importlib.metadata import version\nprint(version('oslo.messaging'))\n"
	cctx, cancel := context.WithTimeout(ctx, pythonCheckTimeout)
	defer cancel()
	c, err := startChild(cctx, "python", []string{r.o.Python, "-c", script}, r.o.env)
	if err == nil {
		err = c.wait(cctx, pythonCheckTimeout)
	}
	if err != nil {
		rep.Python.Reason = fmt.Sprintf("%s cannot import %s: %v", r.o.Python, imports, err)
		return
	}
	rep.Machine.OsloMessaging = firstLine(c.stdout.String())
	program := r.o.Simulator
	if program == "" {
		program = filepath.Join(r.dir, "pybench.py")
		if err := os.WriteFile(program, PyBench, 0o600); err != nil {
			rep.Python.Reason = fmt.Sprintf("writing pybench.py: %v", err)
			return
		}
	}
	r.python = []string{r.o.Python, program}
	rep.Python.Ran = true
}

// command returns the command line of sys running a mode with the
// global flags globals and the mode's flags.
func (r *runner) command(sys System, globals []string, mode string, flags []string) []string {
	var argv []string
	switch sys {
	case Raw:
		argv = []string{r.o.Omsg, "bench", "raw"}
	case Ours:
		argv = []string{r.o.Omsg, "bench"}
	case Python:
		argv = append([]string(nil), r.python...)
	}
	argv = append(argv, globals...)
	argv = append(argv, mode)
	return append(argv, flags...)
}

// simulator reports whether sys is simulator.py, which neither prints
// the ready line nor takes --payload-size.
func (r *runner) simulator(sys System) bool { return sys == Python && r.o.Simulator != "" }

// seconds formats d as the programs' -l takes it; whole seconds for
// simulator.py, which takes an integer.
func seconds(d time.Duration, whole bool) string {
	if whole {
		return strconv.Itoa(int(math.Ceil(d.Seconds())))
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// runCell runs scenario sc on sys.
func (r *runner) runCell(ctx context.Context, sc *scenario, sys System, rep *Report) Cell {
	cell := Cell{Scenario: sc.name, System: sys, Status: StatusOK}
	if sys == Python && !rep.Python.Ran {
		cell.Status, cell.Error = StatusNotRun, "Python not run: "+rep.Python.Reason
		return cell
	}
	start := time.Now()
	data, notes, err := r.runPrograms(ctx, sc, sys)
	cell.Seconds = time.Since(start).Seconds()
	cell.Notes = notes
	if err != nil {
		cell.Status, cell.Error = StatusFailed, err.Error()
		return cell
	}
	evaluate(sc, data, &cell)
	return cell
}

// evaluate fills cell with the figures of sc from data, or fails it when
// they cannot be used.
func evaluate(sc *scenario, data *cellData, cell *Cell) {
	if err := sc.check(data); err != nil {
		cell.Status, cell.Error = StatusFailed, err.Error()
		return
	}
	cell.Status = StatusOK
	cell.Values = map[string]float64{}
	for _, m := range sc.metrics {
		if v, ok := m.value(data); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			cell.Values[m.name] = v
		}
	}
	cell.Approximate = data.approx
	if e := data.client.Summary.Error; e != nil && e.Count > 0 {
		cell.Notes = append(cell.Notes, fmt.Sprintf("%d of %d sends failed", e.Count, data.client.Summary.Client.Count))
	}
}

// runPrograms runs the servers and the client of a cell and reads
// their statistics.
func (r *runner) runPrograms(ctx context.Context, sc *scenario, sys System) (*cellData, []string, error) {
	topic := fmt.Sprintf("omsg_bench_%s_%s_%s", r.id, strings.ReplaceAll(sc.name, "-", "_"), sys)
	dir := filepath.Join(r.dir, topic)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, nil, err
	}
	sim := r.simulator(sys)
	// Servers stop on SIGINT; -l only bounds a server left behind.
	bound := r.o.ReadyTimeout + r.o.Duration + r.o.ClientTimeout + r.o.DrainTimeout + r.o.StopTimeout + time.Minute

	var servers []*child
	stopped := false
	stopAll := func() []error {
		stopped = true
		errs := make([]error, len(servers))
		var wg sync.WaitGroup
		for i, c := range servers {
			wg.Go(func() { errs[i] = c.stop(r.o.StopTimeout) })
		}
		wg.Wait()
		return errs
	}
	defer func() {
		if !stopped {
			stopAll()
		}
	}()

	var known []string
	for i, s := range sc.servers {
		globals := []string{"--url", r.url, "-tp", topic, "-s", s.name, "-l", seconds(bound, true),
			"-j", filepath.Join(dir, fmt.Sprintf("server-%d.json", i+1))}
		c, err := startChild(ctx, "server "+s.name, r.command(sys, globals, s.mode, nil), r.o.env)
		if err != nil {
			return nil, nil, err
		}
		servers = append(servers, c)
		known = append(known, serverQueues(topic, s)...)
	}
	for i, c := range servers {
		var err error
		if sim {
			err = r.waitConsumers(ctx, topic, serverQueues(topic, sc.servers[i])[0], c)
		} else {
			err = c.waitReady(ctx, r.o.ReadyTimeout)
		}
		if err != nil {
			return nil, nil, err
		}
	}

	clientJSON := filepath.Join(dir, "client.json")
	globals := []string{"--url", r.url, "-tp", topic, "-tg", topic + "." + sc.servers[0].name,
		"-l", seconds(r.o.Duration, sim), "-j", clientJSON}
	if !sim {
		globals = append(globals, "--payload-size", strconv.Itoa(r.o.PayloadSize))
	}
	client, err := startChild(ctx, "client", r.command(sys, globals, sc.clientMode, sc.clientArgs), r.o.env)
	if err != nil {
		return nil, nil, err
	}
	// The client starts on the next whole second.
	clientErr := client.wait(ctx, r.o.Duration+time.Second+r.o.ClientTimeout)

	var notes []string
	if clientErr == nil {
		if note := r.drain(ctx, topic, known); note != "" {
			notes = append(notes, note)
		}
	}
	serverErrs := stopAll()
	if clientErr != nil {
		return nil, notes, clientErr
	}
	if err := errors.Join(serverErrs...); err != nil {
		return nil, notes, err
	}
	if err := ctx.Err(); err != nil {
		return nil, notes, err
	}

	data := &cellData{duration: r.o.Duration.Seconds()}
	if sim {
		data.duration = math.Ceil(data.duration)
	}
	if data.client, err = readClient(clientJSON); err != nil {
		return nil, notes, fmt.Errorf("client: %w", err)
	}
	for i := range servers {
		s, err := readServer(filepath.Join(dir, fmt.Sprintf("server-%d.json", i+1)))
		if err != nil {
			return nil, notes, fmt.Errorf("server %s: %w", sc.servers[i].name, err)
		}
		data.servers = append(data.servers, s)
	}
	return data, notes, nil
}

// serverQueues returns the names oslo.messaging gives the queues of a
// server, the one it consumes first.
func serverQueues(topic string, s serverSpec) []string {
	if s.mode == "rpc-server" {
		return []string{topic + "." + s.name, topic}
	}
	return []string{topic + ".info"}
}

// waitConsumers waits until queue has a consumer: the readiness of
// simulator.py, which does not say when it is ready.
func (r *runner) waitConsumers(ctx context.Context, topic, queue string, c *child) error {
	deadline := time.Now().Add(r.o.ReadyTimeout)
	for {
		qs, err := r.broker.queues(ctx, topic, []string{queue})
		if err != nil {
			return fmt.Errorf("%s: waiting for its queue: %w", c.name, err)
		}
		for _, q := range qs {
			if q.name == queue && q.consumers > 0 {
				return nil
			}
		}
		select {
		case <-c.done:
			return c.exitError()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not consuming from %s within %v%s", c.name, queue, r.o.ReadyTimeout, c.stderrTail())
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// drain waits until the queues of topic are empty, for at most
// o.DrainTimeout. It returns a note when they are not, or when their
// depth is unknown.
func (r *runner) drain(ctx context.Context, topic string, known []string) string {
	deadline := time.Now().Add(r.o.DrainTimeout)
	for {
		qs, err := r.broker.queues(ctx, topic, known)
		if err != nil {
			return "queue depth unknown, servers stopped without waiting: " + err.Error()
		}
		var busy []string
		total := 0
		for _, q := range qs {
			if q.messages > 0 {
				busy = append(busy, q.name)
				total += q.messages
			}
		}
		if len(busy) == 0 {
			return ""
		}
		if !time.Now().Before(deadline) {
			return fmt.Sprintf("%d messages still queued %v after the client ended (%s)", total, r.o.DrainTimeout, strings.Join(busy, ", "))
		}
		// Watch the ready messages cheaply, then look again at all.
		for time.Now().Before(deadline) {
			n, err := r.broker.ready(ctx, busy)
			if err != nil || n == 0 {
				break
			}
			if sleep(ctx, pollInterval/2) != nil {
				break
			}
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return "interrupted while the queues emptied"
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// machine describes this machine.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Kernel: runtime.GOOS}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
