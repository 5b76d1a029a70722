package faulttest

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// integrationTimeout bounds each integration test; the node's start is
// bounded on its own.
const integrationTimeout = 60 * time.Second

func integrationCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), integrationTimeout)
	t.Cleanup(cancel)
	return ctx
}

// amqpDial opens a plain AMQP connection named name, closed when t ends.
func amqpDial(t *testing.T, url, name string, heartbeat time.Duration) *amqp.Connection {
	t.Helper()
	c, err := amqp.DialConfig(url, amqp.Config{
		Heartbeat:  heartbeat,
		Dial:       amqp.DefaultDial(5 * time.Second),
		Properties: amqp.Table{"connection_name": name},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	// Bounded: a paused node or a black-holed proxy never answers the
	// close.
	t.Cleanup(func() { _ = c.CloseDeadline(time.Now().Add(5 * time.Second)) })
	return c
}

func channel(t *testing.T, c *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitClosed waits, up to bound, for the connection's close
// notification.
func waitClosed(t *testing.T, closed <-chan *amqp.Error, bound time.Duration) *amqp.Error {
	t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case err := <-closed:
		return err
	case <-timer.C:
		t.Fatalf("connection still open after %v", bound)
		return nil
	}
}

// waitBlocked waits, up to 20 s, for a connection.blocked (or unblocked)
// notification.
func waitBlocked(t *testing.T, blocked <-chan amqp.Blocking, active bool) amqp.Blocking {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for {
		select {
		case b := <-blocked:
			if b.Active == active {
				return b
			}
		case <-timer.C:
			t.Fatalf("no connection.blocked with Active=%v", active)
			return amqp.Blocking{}
		}
	}
}

func findConn(conns []ConnectionInfo, name string) (ConnectionInfo, bool) {
	for _, c := range conns {
		if c.Name == name {
			return c, true
		}
	}
	return ConnectionInfo{}, false
}

func findQueue(queues []QueueInfo, name string) (QueueInfo, bool) {
	for _, q := range queues {
		if q.Name == name {
			return q, true
		}
	}
	return QueueInfo{}, false
}

func TestIntegrationNode(t *testing.T) {
	n := StartNode(t, NodeOptions{Name: "ftnode", TLS: &TLSOptions{External: true}})
	ctx := integrationCtx(t)
	if !strings.HasPrefix(n.Name(), "ftnode") || n.URL() != "rabbit://guest:guest@127.0.0.1:"+strconv.Itoa(n.Port())+"/" ||
		n.ManagementPort() != 0 || !n.Running() {
		t.Errorf("node %s: URL %s, management port %d, running %v", n.Name(), n.URL(), n.ManagementPort(), n.Running())
	}

	t.Run("connections and queues", func(t *testing.T) {
		c := amqpDial(t, n.AMQPURL(), "ft-client", 0)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		ch := channel(t, c)
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("ft-durable", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "ft-durable", true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("kept")})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("publish not confirmed: %v %v", ok, err)
		}

		conns, err := n.ListConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ci, ok := findConn(conns, "ft-client")
		localPort := c.LocalAddr().(*net.TCPAddr).Port
		if !ok || ci.User != "guest" || ci.VHost != "/" || ci.PeerPort != localPort || ci.State != "running" ||
			!strings.HasPrefix(ci.PID, "<"+n.Name()+".") {
			t.Errorf("ListConnections() = %+v, want ft-client from port %d", conns, localPort)
		}
		queues, err := n.ListQueues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if q, ok := findQueue(queues, "ft-durable"); !ok || q != (QueueInfo{VHost: "/", Name: "ft-durable", Messages: 1}) {
			t.Errorf("ListQueues() = %+v, want ft-durable with one message", queues)
		}

		if k, err := n.CloseConnections(ctx, "nobody"); k != 0 || err != nil {
			t.Errorf("CloseConnections(nobody) = %d, %v", k, err)
		}
		if k, err := n.CloseConnections(ctx, "ft-cli"); k != 1 || err != nil {
			t.Fatalf("CloseConnections(ft-cli) = %d, %v; want 1", k, err)
		}
		if e := waitClosed(t, closed, 15*time.Second); e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "faulttest") {
			t.Errorf("closed with %v, want 320 CONNECTION_FORCED - faulttest", e)
		}
		c2 := amqpDial(t, n.AMQPURL(), "ft-other", 0)
		closed2 := c2.NotifyClose(make(chan *amqp.Error, 1))
		if k, err := n.CloseConnections(ctx, ""); k != 1 || err != nil {
			t.Fatalf("CloseConnections(\"\") = %d, %v; want 1", k, err)
		}
		if e := waitClosed(t, closed2, 15*time.Second); e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("closed with %v, want 320", e)
		}
	})

	t.Run("alarms block publishers", func(t *testing.T) {
		c := amqpDial(t, n.AMQPURL(), "ft-alarm", 0)
		blocked := c.NotifyBlocked(make(chan amqp.Blocking, 8))
		ch := channel(t, c)
		for _, alarm := range []struct {
			resource string
			set      func(context.Context, bool) error
		}{{"memory", n.SetMemoryAlarm}, {"disk", n.SetDiskAlarm}} {
			if err := alarm.set(ctx, true); err != nil {
				t.Fatal(err)
			}
			if got, err := n.Alarms(ctx); err != nil || !slices.Equal(got, []string{alarm.resource}) {
				t.Errorf("Alarms() = %v, %v; want [%s]", got, err, alarm.resource)
			}
			// A connection is blocked once it publishes.
			if err := ch.PublishWithContext(ctx, "", "nowhere", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if b := waitBlocked(t, blocked, true); !strings.Contains(b.Reason, alarm.resource) {
				t.Errorf("blocked because %q, want %s", b.Reason, alarm.resource)
			}
			conns, err := n.ListConnections(ctx)
			if ci, _ := findConn(conns, "ft-alarm"); err != nil || ci.State != "blocked" {
				t.Errorf("connection under the %s alarm: %+v, %v; want it blocked", alarm.resource, ci, err)
			}
			if err := alarm.set(ctx, false); err != nil {
				t.Fatal(err)
			}
			waitBlocked(t, blocked, false)
		}
		if got, err := n.Alarms(ctx); err != nil || len(got) != 0 {
			t.Errorf("Alarms() after clearing = %v, %v", got, err)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := n.Ctl(short, "status")
		cancel()
		if err == nil {
			t.Error("rabbitmqctl status answered by a paused node")
		}
		if err := n.Resume(); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Ctl(ctx, "status"); err != nil {
			t.Errorf("status after Resume: %v", err)
		}
	})

	t.Run("kill and restart", func(t *testing.T) {
		c := amqpDial(t, n.AMQPURL(), "ft-victim", 0)
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		if err := n.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		if n.Running() {
			t.Error("Running() after Kill")
		}
		if e := waitClosed(t, closed, 15*time.Second); e == nil {
			t.Error("connection closed cleanly by a killed node")
		}
		if err := probeAMQP(n.AMQPURL()); err == nil {
			t.Error("a killed node accepted a connection")
		}
		if err := n.Kill(ctx); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Kill of a dead node = %v, want ErrNotRunning", err)
		}
		if err := n.Pause(); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Pause of a dead node = %v, want ErrNotRunning", err)
		}
		if err := n.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		// Same port, same data: the confirmed persistent message survived.
		queues, err := n.ListQueues(ctx)
		if q, _ := findQueue(queues, "ft-durable"); err != nil || q.Messages != 1 {
			t.Errorf("after Kill and Restart, ListQueues() = %+v, %v; want ft-durable with its message", queues, err)
		}
	})

	t.Run("stop and start the application", func(t *testing.T) {
		if err := n.StopApp(ctx); err != nil {
			t.Fatal(err)
		}
		if err := probeAMQP(n.AMQPURL()); err == nil {
			t.Error("a stopped application accepted a connection")
		}
		if err := n.StartApp(ctx); err != nil {
			t.Fatal(err)
		}
		if err := probeAMQP(n.AMQPURL()); err != nil {
			t.Errorf("after StartApp: %v", err)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		f := n.TLS()
		cfg, err := f.ClientConfig("localhost")
		if err != nil {
			t.Fatal(err)
		}
		c, err := amqp.DialTLS("amqps://guest:guest@"+f.Addr()+"/", cfg)
		if err != nil {
			t.Fatalf("TLS as guest: %v", err)
		}
		_ = c.Close()
		c, err = amqp.DialTLS_ExternalAuth("amqps://"+f.Addr()+"/", cfg)
		if err != nil {
			t.Fatalf("TLS with EXTERNAL: %v", err)
		}
		defer c.Close()
		ch := channel(t, c)
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Errorf("EXTERNAL user cannot declare: %v", err)
		}
		conns, err := n.ListConnections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		users := map[string]bool{}
		for _, ci := range conns {
			users[ci.User] = true
		}
		if !users[f.ClientName] {
			t.Errorf("connections %+v, want one of user %s", conns, f.ClientName)
		}
		wrong, _ := f.ClientConfig("wrong.invalid")
		var hostErr x509.HostnameError
		bad, err := amqp.DialTLS("amqps://guest:guest@"+f.Addr()+"/", wrong)
		if err == nil {
			_ = bad.Close()
		}
		if !errors.As(err, &hostErr) {
			t.Errorf("TLS to the wrong name: %v, want a hostname error", err)
		}
	})
}
