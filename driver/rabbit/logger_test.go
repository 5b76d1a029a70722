package rabbit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

// syncBuffer is a bytes.Buffer safe for the driver's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The transport's logger reaches the driver: its retries are logged
// there, not on slog.Default. Port 1 on loopback refuses at once.
func TestTransportLoggerReachesDriver(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := messaging.Open("rabbit://guest:guest@127.0.0.1:1/?rabbit_retry_interval=0&kombu_reconnect_delay=0", messaging.WithLogger(l))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn := tr.Conn().(driver.RPCConn)
	if err := conn.Cast(ctx, driver.Address{Exchange: "x", Topic: "t"}, &driver.Request{Method: "m"}, driver.SendOptions{Retry: 2}); err == nil {
		t.Fatal("Cast to a closed port succeeded")
	}
	if !strings.Contains(buf.String(), "rabbit:") {
		t.Errorf("the driver logged nothing to the transport's logger; got %q", buf.String())
	}
}
