package messaging_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

// eventConn is a driver.Conn that records the event handler it is given.
type eventConn struct {
	h     func(driver.Event)
	calls int
}

func (c *eventConn) SetEventHandler(h func(driver.Event)) { c.h, c.calls = h, c.calls+1 }
func (*eventConn) Ping(context.Context) error             { return nil }
func (*eventConn) Close() error                           { return nil }

func TestWithEventHandler(t *testing.T) {
	var got []driver.Event
	c := &eventConn{}
	tr := messaging.NewTransport(c, messaging.WithEventHandler(func(ev driver.Event) { got = append(got, ev) }))
	defer tr.Close()
	if c.calls != 1 || c.h == nil {
		t.Fatalf("SetEventHandler called %d times, handler %v", c.calls, c.h != nil)
	}
	c.h(driver.Event{Kind: driver.EventReconnected, Time: time.Now()})
	if len(got) != 1 || got[0].Kind != driver.EventReconnected {
		t.Errorf("the transport's handler received %+v", got)
	}

	// Without the option, or with a nil handler, the driver is not told.
	for _, opts := range [][]messaging.Option{nil, {messaging.WithEventHandler(nil)}} {
		c := &eventConn{}
		_ = messaging.NewTransport(c, opts...).Close()
		if c.calls != 0 {
			t.Errorf("options %v: SetEventHandler called %d times", opts, c.calls)
		}
	}
}
