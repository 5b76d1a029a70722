package faulttest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testTimeout bounds each wait of the proxy's unit tests.
const testTimeout = 10 * time.Second

// testServer is an upstream for the proxy's unit tests: it runs handle
// on each connection it accepts.
type testServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newTestServer(t *testing.T, handle func(net.Conn)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *testServer) addr() string { return s.ln.Addr().String() }

func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.Close()
}

// sinkResult is what a sink connection received before it ended.
type sinkResult struct {
	data []byte
	err  error // nil for EOF
}

// newSink returns a server that reads each connection to its end and
// reports what it got.
func newSink(t *testing.T) (*testServer, <-chan sinkResult) {
	results := make(chan sinkResult, 16)
	s := newTestServer(t, func(c net.Conn) {
		data, err := io.ReadAll(c)
		_ = c.Close()
		results <- sinkResult{data: data, err: err}
	})
	return s, results
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg to c and reads as many bytes back.
func roundTrip(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo differs from what was sent (%d bytes)", len(msg))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// readErr reads from c until an error, bounded by testTimeout.
func readErr(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return io.EOF
	}
	return err
}

func TestProxyForwards(t *testing.T) {
	up := newTestServer(t, echo)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	msg := randomBytes(300 << 10) // more than the proxy buffers
	roundTrip(t, c, msg)
	roundTrip(t, c, []byte("again"))
	want := int64(len(msg) + len("again"))
	// A counter moves just after its write, so the echo may overtake it.
	eventually(t, func() bool {
		st := p.Stats()
		return st.Accepted == 1 && st.Active == 1 && st.BytesUp == want && st.BytesDown == want
	}, func() string {
		return fmt.Sprintf("Stats() = %+v, want 1 accepted, 1 active, %d bytes each way", p.Stats(), want)
	})
	_ = c.Close()
	// Both halves close in turn, and the proxy forgets the connection.
	eventually(t, func() bool { return p.Stats().Active == 0 },
		func() string { return fmt.Sprintf("after the client closed, Stats() = %+v, want 0 active", p.Stats()) })
}

// eventually polls cond, up to testTimeout, and fails t with msg() if it
// stays false.
func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyResetAll(t *testing.T) {
	up, results := newSink(t)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	// Wait until the proxy has forwarded it, so that the reset is the
	// only thing left to happen.
	eventually(t, func() bool { return p.Stats().BytesUp == 6 }, func() string { return "data not forwarded" })
	p.ResetAll()
	if err := readErr(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read after ResetAll: %v, want ECONNRESET", err)
	}
	select {
	case r := <-results:
		if !errors.Is(r.err, syscall.ECONNRESET) || string(r.data) != "before" {
			t.Errorf("upstream got %q, %v; want \"before\" and ECONNRESET", r.data, r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("upstream connection still open after ResetAll")
	}
	// New connections go through.
	c2 := dial(t, p.Addr())
	if _, err := c2.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	_ = c2.CloseWrite()
	select {
	case r := <-results:
		if r.err != nil || string(r.data) != "after" {
			t.Errorf("upstream got %q, %v; want \"after\" and EOF", r.data, r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("second connection not forwarded")
	}
}

func TestProxyBlackhole(t *testing.T) {
	up := newTestServer(t, echo)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("ping"))

	p.Blackhole(true)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	// Nothing comes back while the link is black-holed, and nothing
	// closes it either.
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [4]byte
	if n, err := c.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read through a blackhole = %d, %v; want a timeout", n, err)
	}
	if st := p.Stats(); st.Active != 1 || st.BytesUp != 4 || st.BytesDown != 4 {
		t.Errorf("Stats() during the blackhole = %+v, want the connection open and only the first 4 bytes forwarded", st)
	}
	// A writer fills the buffers and then blocks.
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	big := make([]byte, 64<<10)
	var werr error
	for range 1000 { // at most 64 MiB
		if _, werr = c.Write(big); werr != nil {
			break
		}
	}
	if !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("writes into a blackhole ended with %v, want them to block until the deadline", werr)
	}
	p.Blackhole(false)
	// The held data arrives, in order, after the blackhole.
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "held" {
		t.Fatalf("after the blackhole, read %q, %v; want \"held\"", b[:], err)
	}
}

func TestProxyBlackholeIn(t *testing.T) {
	up, results := newSink(t)
	p := NewProxy(t, up.addr())
	p.BlackholeIn(Downstream, true)
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("goes up")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	select {
	case r := <-results:
		if string(r.data) != "goes up" {
			t.Errorf("upstream got %q, want \"goes up\"", r.data)
		}
	case <-time.After(testTimeout):
		t.Fatal("upstream did not get the data")
	}
}

func TestProxyLatency(t *testing.T) {
	up := newTestServer(t, echo)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("warm"))
	const lat = 100 * time.Millisecond
	p.Latency(lat)
	start := time.Now()
	roundTrip(t, c, []byte("slow"))
	// The proxy holds each chunk for lat, once each way: a lower bound
	// that holds however slow the machine is.
	if rtt := time.Since(start); rtt < 2*lat {
		t.Errorf("round trip with latency %v took %v, want at least %v", lat, rtt, 2*lat)
	}
	p.Latency(0)
	roundTrip(t, c, []byte("fast again"))
}

func TestProxyBandwidth(t *testing.T) {
	up := newTestServer(t, echo)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	const rate = 64 << 10
	p.Bandwidth(rate)
	start := time.Now()
	roundTrip(t, c, randomBytes(rate/2))
	// Half a second's worth of data each way: the limit makes it take at
	// least that long (a lower bound only).
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("%d bytes at %d B/s went through in %v, want at least 400ms", rate/2, rate, d)
	}
	p.Bandwidth(0)
	roundTrip(t, c, randomBytes(rate))
}

func TestProxyCutAfter(t *testing.T) {
	t.Run("upstream", func(t *testing.T) {
		up, results := newSink(t)
		p := NewProxy(t, up.addr())
		p.CutAfterIn(Upstream, 10)
		c := dial(t, p.Addr())
		if _, err := c.Write([]byte("0123456789abcdefghij")); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			if string(r.data) != "0123456789" {
				t.Errorf("upstream got %q, want exactly the first 10 bytes", r.data)
			}
		case <-time.After(testTimeout):
			t.Fatal("connection not cut")
		}
		if err := readErr(c); err == nil {
			t.Error("client connection still open after the cut")
		}
	})
	t.Run("both ways, armed on a current connection, then disarmed", func(t *testing.T) {
		up := newTestServer(t, echo)
		p := NewProxy(t, up.addr())
		c := dial(t, p.Addr())
		roundTrip(t, c, []byte("before"))
		p.CutAfter(5) // "abc" up and 2 bytes of it back
		if _, err := c.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		got, err := io.ReadAll(c)
		if string(got) != "ab" {
			t.Errorf("read %q, %v after the cut; want \"ab\" then the end", got, err)
		}
		p.CutAfter(0)
		c2 := dial(t, p.Addr())
		roundTrip(t, c2, randomBytes(1000))
	})
}

func TestProxyDisableEnable(t *testing.T) {
	up := newTestServer(t, echo)
	p := NewProxy(t, up.addr())
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("up"))

	p.Disable()
	if err := readErr(c); !errors.Is(err, io.EOF) {
		t.Errorf("current connection after Disable: %v, want EOF", err)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), testTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Errorf("dial while disabled: %v, want ECONNREFUSED", err)
	}
	if err := p.Enable(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Addr()), []byte("back"))
	if st := p.Stats(); st.Accepted != 2 {
		t.Errorf("Stats().Accepted = %d, want 2", st.Accepted)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	p := NewProxy(t, addr)
	// The reset may come while the client is still connecting.
	c, err := net.DialTimeout("tcp", p.Addr(), testTimeout)
	if err == nil {
		err = readErr(c)
		_ = c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection to a proxy whose upstream is down: %v, want ECONNRESET", err)
	}
	eventually(t, func() bool { st := p.Stats(); return st.DialErrors == 1 && st.Accepted == 1 },
		func() string { return fmt.Sprintf("Stats() = %+v, want 1 accepted and 1 dial error", p.Stats()) })
}

func TestProxyURL(t *testing.T) {
	p := NewProxy(t, "127.0.0.1:5672")
	_, port, _ := net.SplitHostPort(p.Addr())
	via := "127.0.0.1:" + port
	for _, tc := range []struct{ in, want string }{
		{"rabbit://guest:guest@127.0.0.1:5672/", "rabbit://guest:guest@" + via + "/"},
		{"rabbit://u:p@127.0.0.1/vh?heartbeat=2", "rabbit://u:p@" + via + "/vh?heartbeat=2"},
		{"rabbit://a:b@127.0.0.1:5672,c:d@127.0.0.1:5673/", "rabbit://a:b@" + via + ",c:d@127.0.0.1:5673/"},
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:guest@" + via + "/"},
	} {
		got, err := p.URL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("URL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"rabbit://localhost:5672/", "rabbit://127.0.0.1:5673/", "no scheme"} {
		if got, err := p.URL(in); err == nil {
			t.Errorf("URL(%q) = %q, want an error", in, got)
		}
	}
}

func TestProxyClose(t *testing.T) {
	up := newTestServer(t, echo)
	p, err := newProxy(up.addr())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	roundTrip(t, c, []byte("x"))
	p.Blackhole(true) // goroutines waiting on the blackhole end too
	p.Close()
	p.Close()
	if err := readErr(c); err == nil {
		t.Error("connection open after Close")
	}
	if err := p.Enable(); err == nil {
		t.Error("Enable after Close succeeded")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), testTimeout); err == nil {
		_ = c.Close()
		t.Error("closed proxy accepted a connection")
	}
	if _, err := newProxy("no port"); err == nil {
		t.Error("newProxy(\"no port\") succeeded")
	}
	if s := Direction(3).String(); s != "Direction(3)" {
		t.Errorf("Direction(3).String() = %q", s)
	}
}
