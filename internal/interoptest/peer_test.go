package interoptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// peer is a running testdata/peer.py: the Python oslo.messaging side.
type peer struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc // kills the process
	stdin  io.WriteCloser
	stderr *tailBuffer

	wmu sync.Mutex // serialises writes to stdin

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan []byte
	routes  map[string]*recorder // "<topic>.<server>" -> recorder
	// listeners gets the events of the Python notification listeners,
	// by listener key.
	listeners map[string]func(line []byte)

	ready    chan struct{} // closed at the "ready" line
	exited   chan struct{} // closed when stdout ends
	reader   sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// startPeer starts a Python peer and waits for its ready line. The
// process lives at most peerLifetime (it exits on its own, and is killed
// a little later if it did not).
func startPeer(ctx context.Context, s *suite, name string) (*peer, error) {
	script, err := filepath.Abs(filepath.Join("testdata", "peer.py"))
	if err != nil {
		return nil, err
	}
	pylib, err := filepath.Abs(filepath.Join("testdata", "pylib"))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(context.Background(), peerLifetime+10*time.Second)
	// -s: no user site-packages. The exception module of the tests comes
	// from PYTHONPATH; no bytecode is written into testdata.
	cmd := exec.CommandContext(pctx, s.python, "-s", "-u", script, strconv.Itoa(int(peerLifetime/time.Second)))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+pylib, "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
	cmd.WaitDelay = 5 * time.Second
	p := &peer{
		name:      name,
		cmd:       cmd,
		cancel:    cancel,
		stderr:    &tailBuffer{max: 64 << 10},
		pending:   map[int64]chan []byte{},
		routes:    map[string]*recorder{},
		listeners: map[string]func([]byte){},
		ready:     make(chan struct{}),
		exited:    make(chan struct{}),
	}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", s.python, err)
	}
	p.reader.Go(func() { p.read(stdout) })
	select {
	case <-p.ready:
		return p, nil
	case <-p.exited:
		err = errors.New("exited before it was ready")
	case <-ctx.Done():
		err = fmt.Errorf("not ready in time: %w", ctx.Err())
	}
	p.kill()
	return nil, fmt.Errorf("python peer %s: %w\nstderr:\n%s", name, err, p.stderr)
}

// read dispatches the peer's output lines until it ends.
func (p *peer) read(stdout io.Reader) {
	defer close(p.exited)
	r := bufio.NewReaderSize(stdout, 1<<16)
	readyClosed := false
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			p.dispatch(line, &readyClosed)
		}
		if err != nil {
			return
		}
	}
}

func (p *peer) dispatch(line []byte, readyClosed *bool) {
	var head struct {
		ID    *int64 `json:"id"`
		Event string `json:"event"`
		Key   string `json:"key"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		fmt.Fprintf(p.stderr, "interoptest: unparsable peer line: %q\n", truncate(string(line), 200))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case head.ID != nil:
		if ch, ok := p.pending[*head.ID]; ok {
			delete(p.pending, *head.ID)
			ch <- line
		}
	case head.Event == "ready":
		if !*readyClosed {
			*readyClosed = true
			close(p.ready)
		}
	case head.Event == "request":
		if rec := p.routes[head.Key]; rec != nil {
			var ev event
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.UseNumber()
			if err := dec.Decode(&ev); err == nil {
				ev.Lang = "python"
				rec.add(ev)
			}
		}
	case head.Event == "notification" || head.Event == "batch":
		if f := p.listeners[head.Key]; f != nil {
			f(line)
		}
	}
}

// route sends the events of the Python server key ("<topic>.<server>")
// to rec.
func (p *peer) route(key string, rec *recorder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routes[key] = rec
}

// listen sends the events of the Python notification listener key to
// f, which runs with the peer's lock held; a nil f drops them.
func (p *peer) listen(key string, f func(line []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f == nil {
		delete(p.listeners, key)
		return
	}
	p.listeners[key] = f
}

// pyReq is a command for the peer; see testdata/peer.py.
type pyReq struct {
	ID          int64    `json:"id"`
	Op          string   `json:"op"`
	URL         string   `json:"url,omitempty"`
	Exmods      []string `json:"exmods,omitempty"`
	Exchange    string   `json:"exchange,omitempty"`
	Topic       string   `json:"topic,omitempty"`
	Server      string   `json:"server,omitempty"`
	Fanout      bool     `json:"fanout,omitempty"`
	Namespace   string   `json:"namespace,omitempty"`
	Version     string   `json:"version,omitempty"`
	Timeout     float64  `json:"timeout,omitempty"`
	Monitor     float64  `json:"call_monitor_timeout,omitempty"`
	AtLeastOnce bool     `json:"at_least_once,omitempty"`
	Method      string   `json:"method,omitempty"`
	// Args and Ctxt are JSON objects; their key order is kept, since
	// Python keeps the order of the dicts it decodes.
	Args any `json:"args,omitempty"`
	Ctxt any `json:"ctxt,omitempty"`

	// Notifications (ops notify, start_listener, stop_listener).
	Driver        string       `json:"driver,omitempty"` // messaging or messagingv2
	Topics        []string     `json:"topics,omitempty"`
	PublisherID   string       `json:"publisher_id,omitempty"`
	Notifications []pyNote     `json:"notifications,omitempty"`
	Key           string       `json:"key,omitempty"` // the listener's
	Pool          string       `json:"pool,omitempty"`
	AllowRequeue  bool         `json:"allow_requeue,omitempty"`
	BatchSize     int          `json:"batch_size,omitempty"`
	BatchTimeout  float64      `json:"batch_timeout,omitempty"`
	Endpoints     []pyEndpoint `json:"endpoints,omitempty"`
}

// pyOutcome is the peer's answer.
type pyOutcome struct {
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Error   *pyError        `json:"error"`
	Elapsed float64         `json:"elapsed"`
}

func (o *pyOutcome) elapsed() time.Duration { return time.Duration(o.Elapsed * float64(time.Second)) }

func (o *pyOutcome) String() string {
	if o.OK {
		return "returned " + truncate(string(o.Result), 300)
	}
	return "raised " + o.Error.String()
}

// pyError describes a Python exception.
type pyError struct {
	Class   string          `json:"class"`
	Module  string          `json:"module"`
	MRO     []string        `json:"mro"` // "module.Class" of the class and its bases
	Message string          `json:"message"`
	ExcType *string         `json:"exc_type"` // RemoteError's
	Value   *string         `json:"value"`    // RemoteError's
	Code    json.RawMessage `json:"code"`
}

// is reports whether the exception is an instance of the Python class
// name ("module.Class").
func (e *pyError) is(name string) bool { return e != nil && slices.Contains(e.MRO, name) }

func (e *pyError) String() string {
	if e == nil {
		return "<no exception>"
	}
	return fmt.Sprintf("%s.%s(%q)", e.Module, e.Class, truncate(e.Message, 300))
}

// firstLine is the first line of str(exception): the message, without
// the traceback that oslo appends to rebuilt remote exceptions.
func (e *pyError) firstLine() string {
	line, _, _ := strings.Cut(e.Message, "\n")
	return line
}

// do sends req and waits for the answer until ctx is done.
func (p *peer) do(ctx context.Context, req pyReq) (*pyOutcome, error) {
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.nextID++
	req.ID = p.nextID
	p.pending[req.ID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, req.ID)
		p.mu.Unlock()
	}()

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("encoding the %s command: %w", req.Op, err)
	}
	p.wmu.Lock()
	_, err := p.stdin.Write(b.Bytes())
	p.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("python peer %s: writing the %s command: %w", p.name, req.Op, err)
	}
	select {
	case line := <-ch:
		var out pyOutcome
		if err := json.Unmarshal(line, &out); err != nil {
			return nil, fmt.Errorf("python peer %s: answer to %s: %w: %s", p.name, req.Op, err, truncate(string(line), 300))
		}
		return &out, nil
	case <-p.exited:
		return nil, fmt.Errorf("python peer %s exited during %s\nstderr:\n%s", p.name, req.Op, p.stderr)
	case <-ctx.Done():
		return nil, fmt.Errorf("python peer %s: no answer to %s %s in time: %w", p.name, req.Op, req.Method, ctx.Err())
	}
}

// stop asks the peer to stop its servers and exit, kills it if it does
// not within a bound, and reaps it. It is idempotent.
func (p *peer) stop() error {
	p.stopOnce.Do(func() {
		p.wmu.Lock()
		_, _ = p.stdin.Write([]byte(`{"op": "exit"}` + "\n"))
		_ = p.stdin.Close()
		p.wmu.Unlock()
		t := time.NewTimer(30 * time.Second)
		select {
		case <-p.exited:
		case <-t.C:
			p.stderr.WriteString("interoptest: the peer did not exit in 30s; killed\n")
			p.cancel()
		}
		t.Stop()
		p.stopErr = p.reap()
	})
	return p.stopErr
}

// kill kills the peer at once and reaps it.
func (p *peer) kill() {
	p.stopOnce.Do(func() {
		p.cancel()
		_ = p.stdin.Close()
		_ = p.reap() // killed on purpose: its exit status says so
	})
}

func (p *peer) reap() error {
	err := p.cmd.Wait()
	p.reader.Wait()
	p.cancel()
	if err != nil {
		return fmt.Errorf("python peer %s: %w\nstderr:\n%s", p.name, err, p.stderr)
	}
	return nil
}

// newPeer starts a peer of the case's own, stopped when the case ends.
func (e *env) newPeer(name string) *peer {
	e.t.Helper()
	p, err := startPeer(e.ctx(opTimeout), e.s, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := p.stop(); err != nil {
			e.t.Errorf("%v", err)
		}
		if e.t.Failed() {
			e.t.Logf("python peer %s stderr (tail):\n%s", p.name, p.stderr)
		}
	})
	return p
}

// The shared peer serves every case that needs no process of its own.
var shared struct {
	mu  sync.Mutex
	p   *peer
	err error
}

// sharedPeer returns the run's shared peer, starting it at first use.
func (e *env) sharedPeer() *peer {
	e.t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p != nil {
		select {
		case <-shared.p.exited:
			// It died or reached its lifetime (a long -count run):
			// reap it and start another.
			if err := shared.p.stop(); err != nil {
				e.t.Logf("previous shared peer: %v", err)
			}
			shared.p = nil
		default:
		}
	}
	if shared.p == nil && shared.err == nil {
		shared.p, shared.err = startPeer(e.ctx(opTimeout), e.s, "shared")
	}
	if shared.err != nil {
		e.t.Fatal(shared.err)
	}
	p := shared.p
	e.t.Cleanup(func() {
		if tail := p.stderr.String(); e.t.Failed() && tail != "" {
			e.t.Logf("shared python peer stderr (tail):\n%s", tail)
		}
	})
	return p
}

// closeSharedPeer stops the shared peer; TestMain calls it.
func closeSharedPeer() {
	shared.mu.Lock()
	p := shared.p
	shared.p = nil
	shared.mu.Unlock()
	if p != nil {
		if err := p.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "interoptest: %v\n", err)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) WriteString(s string) { _, _ = w.Write([]byte(s)) }

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("…(%d bytes)", len(s))
}

// pyDo runs req on p and fails t if the peer does not answer.
func pyDo(t *testing.T, ctx context.Context, p *peer, req pyReq) *pyOutcome {
	t.Helper()
	out, err := p.do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCtx returns a context for a Python call whose own timeout is
// timeout seconds: long enough for the peer to report the outcome.
func (e *env) waitCtx(timeout float64) context.Context {
	if timeout <= 0 {
		timeout = 60
	}
	return e.ctx(time.Duration(timeout*float64(time.Second)) + opTimeout)
}
