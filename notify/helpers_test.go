package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/memory"
)

const testTimeout = 10 * time.Second

func unique(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// newTransport opens a memory transport on a virtual host of its own.
func newTransport(t *testing.T, opts ...messaging.Option) *messaging.Transport {
	t.Helper()
	tr, err := messaging.Open("memory:///"+unique("vh"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// listener is a Listener served by a test.
type listener struct {
	*Listener
	t      *testing.T
	served chan error
	once   sync.Once
}

// stop shuts the listener down and checks Serve's result; it is also
// run at cleanup.
func (l *listener) stop() {
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			l.t.Errorf("Shutdown: %v", err)
		}
		if err := <-l.served; !errors.Is(err, ErrListenerClosed) {
			l.t.Errorf("Serve = %v, want ErrListenerClosed", err)
		}
	})
}

// serve listens and serves l until the test ends.
func serve(t *testing.T, l *Listener) *listener {
	t.Helper()
	if err := l.Listen(testContext(t)); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	sl := &listener{Listener: l, t: t, served: make(chan error, 1)}
	go func() { sl.served <- l.Serve(context.Background()) }()
	t.Cleanup(sl.stop)
	return sl
}

func startListener(t *testing.T, tr *messaging.Transport, targets []messaging.Target, eps []*Endpoint, opts ...ListenerOption) *listener {
	t.Helper()
	l, err := NewListener(tr, targets, eps, opts...)
	if err != nil {
		t.Fatalf("NewListener: %v", err)
	}
	return serve(t, l)
}

func newNotifier(t *testing.T, tr *messaging.Transport, publisherID string, opts ...NotifierOption) *Notifier {
	t.Helper()
	n, err := NewNotifier(tr, publisherID, opts...)
	if err != nil {
		t.Fatalf("NewNotifier: %v", err)
	}
	return n
}

// sink is a handler that records what it receives; wait blocks until
// it has received n notifications.
type sink struct {
	mu   sync.Mutex
	got  []*Notification
	ctxs []messaging.Metadata
	cond chan struct{} // signalled on every receipt
}

func newSink() *sink { return &sink{cond: make(chan struct{}, 1)} }

func (s *sink) handle(ctx context.Context, n *Notification) error {
	md, _ := messaging.FromIncomingContext(ctx)
	s.mu.Lock()
	s.got = append(s.got, n)
	s.ctxs = append(s.ctxs, md)
	s.mu.Unlock()
	select {
	case s.cond <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *sink) notifications() []*Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Notification{}, s.got...)
}

// wait waits until s holds at least n notifications.
func (s *sink) wait(t *testing.T, n int) {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for s.len() < n {
		select {
		case <-s.cond:
		case <-timer.C:
			t.Fatalf("received %d notifications, want %d", s.len(), n)
		}
	}
}

// payloads returns the payloads received, decoded as strings, sorted.
func payloads(t *testing.T, ns []*Notification) []string {
	t.Helper()
	out := make([]string, len(ns))
	for i, n := range ns {
		if err := json.Unmarshal(n.Payload, &out[i]); err != nil {
			t.Fatalf("payload %s: %v", n.Payload, err)
		}
	}
	sort.Strings(out)
	return out
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	sort.Strings(out)
	return out
}

// fakeConn is a driver.NotifyConn that records what it is asked to
// publish.
type fakeConn struct {
	mu    sync.Mutex
	sent  []fakeSend
	fail  error
	calls int
}

type fakeSend struct {
	addr driver.Address
	n    driver.Notification
	opts driver.NotifyOptions
}

func (c *fakeConn) Ping(context.Context) error { return nil }
func (c *fakeConn) Close() error               { return nil }

func (c *fakeConn) Notify(_ context.Context, addr driver.Address, n *driver.Notification, opts driver.NotifyOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail != nil {
		return c.fail
	}
	c.sent = append(c.sent, fakeSend{addr, *n, opts})
	return nil
}

func (c *fakeConn) ListenNotifications(context.Context, []driver.NotifyTarget, string, driver.ListenOptions) (driver.NotifyListener, error) {
	return nil, errors.New("fake: this test connection records sends and has no listeners")
}

func (c *fakeConn) sends() []fakeSend {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fakeSend{}, c.sent...)
}

// rpcOnlyConn is a driver.Conn without notifications.
type rpcOnlyConn struct{}

func (rpcOnlyConn) Ping(context.Context) error { return nil }
func (rpcOnlyConn) Close() error               { return nil }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
