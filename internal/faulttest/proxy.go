package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// Direction is one way through a [Proxy].
type Direction int

// Directions through a proxy.
const (
	// Upstream is from the clients to the upstream (the node).
	Upstream Direction = iota + 1
	// Downstream is from the upstream to the clients.
	Downstream
)

// String returns "upstream" or "downstream".
func (d Direction) String() string {
	switch d {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

func (d Direction) valid() bool { return d == Upstream || d == Downstream }

// Sizes of a proxy's buffers: each direction of each connection holds
// at most pipeDepth chunks of chunkSize bytes.
const (
	chunkSize = 16 << 10
	pipeDepth = 8
	// dialTimeout bounds the connection to the upstream for each
	// accepted client.
	dialTimeout = 5 * time.Second
)

// ProxyStats are a proxy's counters since it was made.
type ProxyStats struct {
	Accepted   int64 // client connections accepted
	DialErrors int64 // accepted connections reset because the upstream could not be reached
	Active     int   // connections open now
	BytesUp    int64 // bytes forwarded from clients to the upstream
	BytesDown  int64 // bytes forwarded from the upstream to clients
}

// Proxy is an in-process TCP proxy from a free port on 127.0.0.1 to an
// upstream address, with faults to inject between clients and a node.
// It is made by [NewProxy] and closed when the test ends. Faults apply
// at once to current connections and to new ones. Each direction of
// each connection buffers at most 128 KiB: a proxy that holds data
// (blackhole, latency, bandwidth) makes the sender's writes block, as a
// congested network does. Methods are safe for concurrent use.
type Proxy struct {
	upstream string
	addr     string

	mu        sync.Mutex // guards the fields below
	ln        net.Listener
	stopDial  context.CancelFunc // ends the current accept loop's dials
	links     map[*link]struct{}
	closed    bool
	disabled  bool
	hold      [2]bool // blackholed directions, by Direction-1
	latency   time.Duration
	rate      int64    // bytes per second and direction; 0: unlimited
	cut       [3]int64 // cut budgets of new connections: both, up, down; 0: none
	changed   chan struct{}
	closeOnce sync.Once

	wg         sync.WaitGroup // accept loops and pipes
	accepted   atomic.Int64
	dialErrors atomic.Int64
	bytes      [2]atomic.Int64 // by Direction-1
}

// NewProxy returns a proxy to upstream (host:port) listening on a free
// port of 127.0.0.1. It fails t if it cannot listen, and closes the
// proxy when the test ends. It does not dial upstream until a client
// connects.
func NewProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p, err := newProxy(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func newProxy(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("faulttest: proxy upstream %q: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faulttest: proxy: %w", err)
	}
	p := &Proxy{
		upstream: upstream,
		addr:     ln.Addr().String(),
		links:    map[*link]struct{}{},
		changed:  make(chan struct{}),
	}
	p.mu.Lock()
	p.serveLocked(ln)
	p.mu.Unlock()
	return p, nil
}

// Addr returns the address clients connect to, 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.addr }

// Upstream returns the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// URL rewrites the transport (or amqp://) URL raw so that its hosts
// whose host:port is the proxy's upstream (a missing port is 5672) go
// through the proxy instead; other hosts are left alone, so that the
// URL of a cluster can be rewritten by one proxy per node. It returns an
// error if raw does not parse or no host matched.
func (p *Proxy) URL(raw string) (string, error) {
	u, err := driver.ParseURL(raw)
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(p.addr)
	pn, _ := strconv.Atoi(port)
	found := false
	for i, h := range u.Hosts {
		hp := h.Port
		if hp == 0 {
			hp = 5672
		}
		if net.JoinHostPort(h.Hostname, strconv.Itoa(hp)) == p.upstream {
			u.Hosts[i].Hostname, u.Hosts[i].Port = host, pn
			found = true
		}
	}
	if !found {
		return "", fmt.Errorf("faulttest: no host of %v is the proxy's upstream %s", u, p.upstream)
	}
	return u.Unredacted(), nil
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	active := len(p.links)
	p.mu.Unlock()
	return ProxyStats{
		Accepted:   p.accepted.Load(),
		DialErrors: p.dialErrors.Load(),
		Active:     active,
		BytesUp:    p.bytes[Upstream-1].Load(),
		BytesDown:  p.bytes[Downstream-1].Load(),
	}
}

// ResetAll resets every current connection: both of its sockets, the
// client's and the upstream's, are closed with SO_LINGER 0, so that both
// peers get a TCP RST. New connections are accepted as before.
func (p *Proxy) ResetAll() {
	for _, l := range p.snapshot() {
		l.close(true)
	}
}

// Blackhole stops (on) or resumes forwarding in both directions, without
// closing anything: a half-open link, where no FIN or RST tells the
// peers, whose writes block once the buffers are full and whose reads
// wait. Held data is forwarded, in order, when the blackhole ends. New
// connections are accepted but get nothing through either.
//
// amqp091-go (v1.16.0) arms its heartbeat read deadline only when it
// reads a frame after the connection's handshake: a connection
// black-holed before it reads one (before its first channel opens, say)
// is never found dead by its heartbeats.
func (p *Proxy) Blackhole(on bool) {
	p.BlackholeIn(Upstream, on)
	p.BlackholeIn(Downstream, on)
}

// BlackholeIn is Blackhole for one direction, e.g. Downstream to lose a
// node's replies and confirms while the clients' publishes get through.
// It does nothing for an invalid direction.
func (p *Proxy) BlackholeIn(d Direction, on bool) {
	if !d.valid() {
		return
	}
	p.set(func() { p.hold[d-1] = on })
}

// Latency delays every chunk of data, in each direction, by d from the
// time the proxy read it (so a round trip takes 2d more). 0 removes the
// delay; it applies to data not yet forwarded.
func (p *Proxy) Latency(d time.Duration) {
	p.set(func() { p.latency = max(d, 0) })
}

// Bandwidth limits each direction of each connection to bytesPerSec; 0
// or less removes the limit.
func (p *Proxy) Bandwidth(bytesPerSec int64) {
	p.set(func() { p.rate = max(bytesPerSec, 0) })
}

// CutAfter makes every connection, current and new, close once it has
// forwarded n more bytes in its two directions together; n <= 0
// disarms it. A current connection counts from the call, a new one from
// its start. The bytes before the cut are delivered, then both sockets
// are closed: a FIN, or an RST where the proxy left data unread.
func (p *Proxy) CutAfter(n int64) { p.cutAfter(0, n) }

// CutAfterIn is CutAfter counting only the bytes of one direction, e.g.
// Upstream to cut a consumer after its first acknowledgements. It does
// nothing for an invalid direction.
func (p *Proxy) CutAfterIn(d Direction, n int64) {
	if d.valid() {
		p.cutAfter(int(d), n)
	}
}

func (p *Proxy) cutAfter(scope int, n int64) {
	n = max(n, 0)
	p.mu.Lock()
	p.cut[scope] = n
	links := p.snapshotLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.mu.Lock()
		l.budget[scope] = armed(n)
		l.mu.Unlock()
	}
}

// armed converts a cut setting to a link budget: -1 means unarmed.
func armed(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// Disable closes the listener, so that new connections are refused
// (ECONNREFUSED), and closes every current connection (FIN to both
// peers). Enable undoes it.
func (p *Proxy) Disable() {
	p.mu.Lock()
	if p.closed || p.disabled {
		p.mu.Unlock()
		return
	}
	p.disabled = true
	p.stopServingLocked()
	links := p.snapshotLocked()
	p.mu.Unlock()
	for _, l := range links {
		l.close(false)
	}
}

// Enable listens again, on the same address, after Disable. It returns
// an error if the address was taken meanwhile or the proxy is closed.
func (p *Proxy) Enable() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("faulttest: proxy closed")
	}
	if !p.disabled {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("faulttest: proxy enable: %w", err)
	}
	p.disabled = false
	p.serveLocked(ln)
	return nil
}

// Close stops the proxy: it closes the listener and every connection
// and waits for its goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.stopServingLocked()
		links := p.snapshotLocked()
		p.mu.Unlock()
		for _, l := range links {
			l.close(false)
		}
		p.wg.Wait()
	})
}

// set changes settings with f and wakes the waiting pipes.
func (p *Proxy) set(f func()) {
	p.mu.Lock()
	f()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *Proxy) snapshot() []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snapshotLocked()
}

func (p *Proxy) snapshotLocked() []*link {
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	return links
}

func (p *Proxy) serveLocked(ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	p.ln, p.stopDial = ln, cancel
	p.wg.Go(func() { p.serve(ctx, ln) })
}

func (p *Proxy) stopServingLocked() {
	if p.ln != nil {
		_ = p.ln.Close()
		p.stopDial()
		p.ln, p.stopDial = nil, nil
	}
}

// serve accepts clients on ln until it is closed; ctx ends with it.
func (p *Proxy) serve(ctx context.Context, ln net.Listener) {
	var backoff *time.Timer
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, say: wait a little.
			if backoff == nil {
				backoff = time.NewTimer(50 * time.Millisecond)
			} else {
				backoff.Reset(50 * time.Millisecond)
			}
			select {
			case <-ctx.Done():
				return
			case <-backoff.C:
			}
			continue
		}
		p.accepted.Add(1)
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		var d net.Dialer
		s, err := d.DialContext(dctx, "tcp", p.upstream)
		cancel()
		if err != nil {
			p.dialErrors.Add(1)
			reset(c)
			continue
		}
		p.start(c.(*net.TCPConn), s.(*net.TCPConn))
	}
}

// reset closes c with a TCP RST.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// link is one proxied connection.
type link struct {
	p              *Proxy
	client, server *net.TCPConn
	done           chan struct{} // closed by close
	once           sync.Once

	mu       sync.Mutex // guards the fields below
	budget   [3]int64   // bytes left before a cut: both, up, down; -1: unarmed
	finished int        // directions that ended with EOF
}

func (p *Proxy) start(client, server *net.TCPConn) {
	l := &link{p: p, client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.disabled {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	for i, n := range p.cut {
		l.budget[i] = armed(n)
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	l.pipe(Upstream, client, server)
	l.pipe(Downstream, server, client)
}

// close closes both sockets, with RST if reset, once.
func (l *link) close(rst bool) {
	l.once.Do(func() {
		close(l.done)
		if rst {
			reset(l.client)
			reset(l.server)
		} else {
			_ = l.client.Close()
			_ = l.server.Close()
		}
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}

// chunk is data read from one side, with the time it was read.
type chunk struct {
	data []byte
	at   time.Time
}

// pipe starts forwarding src to dst: a reader and a writer goroutine
// with at most pipeDepth chunks between them.
func (l *link) pipe(d Direction, src, dst *net.TCPConn) {
	chunks := make(chan chunk, pipeDepth)
	free := make(chan []byte, pipeDepth)
	for range pipeDepth {
		free <- make([]byte, chunkSize)
	}
	var readErr error // written by the reader before it closes chunks
	l.p.wg.Go(func() {
		defer close(chunks)
		readErr = l.read(d, src, chunks, free)
	})
	l.p.wg.Go(func() {
		if !l.write(d, dst, chunks, free) {
			l.close(false)
			return
		}
		// chunks is closed: the source ended.
		if errors.Is(readErr, io.EOF) {
			// Pass the FIN on, and close the link when both ways ended.
			_ = dst.CloseWrite()
			l.mu.Lock()
			l.finished++
			both := l.finished == 2
			l.mu.Unlock()
			if both {
				l.close(false)
			}
			return
		}
		// A reset or a closed socket: pass a reset on.
		l.close(true)
	})
}

// read reads src into free buffers and queues them as chunks, until src
// fails or the link closes; it returns src's error.
func (l *link) read(d Direction, src *net.TCPConn, chunks chan<- chunk, free <-chan []byte) error {
	for {
		if !l.waitOpen(d) {
			return net.ErrClosed
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-l.done:
			return net.ErrClosed
		}
		n, err := src.Read(buf[:cap(buf)])
		if n > 0 {
			select {
			case chunks <- chunk{data: buf[:n], at: time.Now()}:
			case <-l.done:
				return net.ErrClosed
			}
		}
		if err != nil {
			return err
		}
	}
}

// write forwards chunks to dst, applying the proxy's faults, until
// chunks is closed (it returns true) or the link closes, dst fails or a
// cut is due (false).
func (l *link) write(d Direction, dst *net.TCPConn, chunks <-chan chunk, free chan<- []byte) bool {
	for c := range chunks {
		if !l.delay(c.at) || !l.waitOpen(d) {
			return false
		}
		data := c.data
		for len(data) > 0 {
			n, cut := l.take(d, len(data))
			if n > 0 {
				if _, err := dst.Write(data[:n]); err != nil {
					return false
				}
				l.p.bytes[d-1].Add(int64(n))
				data = data[n:]
			}
			if cut {
				return false
			}
		}
		free <- c.data[:cap(c.data)]
	}
	return true
}

// take returns how many of want bytes may be written now in direction
// d, after waiting for the bandwidth limit, and whether the connection
// must be cut once they are written.
func (l *link) take(d Direction, want int) (int, bool) {
	l.p.mu.Lock()
	rate := l.p.rate
	l.p.mu.Unlock()
	n := want
	if rate > 0 {
		// Pieces of a twentieth of a second.
		n = int(min(int64(want), max(rate/20, 1)))
	}
	l.mu.Lock()
	for _, scope := range []int{0, int(d)} {
		if b := l.budget[scope]; b >= 0 && int64(n) > b {
			n = int(b)
		}
	}
	cut := false
	for _, scope := range []int{0, int(d)} {
		if l.budget[scope] >= 0 {
			l.budget[scope] -= int64(n)
			cut = cut || l.budget[scope] == 0
		}
	}
	l.mu.Unlock()
	if rate > 0 && n > 0 {
		if !l.sleep(time.Duration(int64(n) * int64(time.Second) / rate)) {
			return 0, true
		}
	}
	return n, cut
}

// waitOpen waits while direction d is blackholed; it returns false if
// the link closed meanwhile.
func (l *link) waitOpen(d Direction) bool {
	for {
		l.p.mu.Lock()
		held, changed := l.p.hold[d-1], l.p.changed
		l.p.mu.Unlock()
		if !held {
			return true
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

// delay waits until the proxy's latency has passed since at, following
// changes of the latency; it returns false if the link closed meanwhile.
func (l *link) delay(at time.Time) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.p.mu.Lock()
		lat, changed := l.p.latency, l.p.changed
		l.p.mu.Unlock()
		wait := time.Until(at.Add(lat))
		if wait <= 0 {
			return true
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
			return true
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

// sleep waits for d; it returns false if the link closed meanwhile.
func (l *link) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-l.done:
		return false
	}
}
