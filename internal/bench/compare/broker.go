package compare

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/driver"
)

// Bounds of the broker operations.
const (
	dialTimeout = 10 * time.Second // TCP connect and AMQP handshake
	ctlTimeout  = time.Minute      // one rabbitmqctl command
)

// queueStat is a queue and its depth.
type queueStat struct {
	name      string
	messages  int // ready and unacknowledged; ready only when unknown
	consumers int
}

// broker is what a comparison needs of the broker: the depth of the
// queues of a cell.
type broker interface {
	// queues returns the queues whose names contain substr. A broker
	// that cannot list its queues returns those of known that exist.
	queues(ctx context.Context, substr string, known []string) ([]queueStat, error)
	// ready returns the number of messages ready for delivery in the
	// named queues; a queue that no longer exists counts as empty.
	ready(ctx context.Context, names []string) (int, error)
}

// isRabbitScheme reports whether scheme names a RabbitMQ transport.
func isRabbitScheme(scheme string) bool {
	base, _, _ := strings.Cut(scheme, "+")
	return base == "rabbit" || base == "kombu"
}

// amqpURIs returns the amqp091 URIs of the brokers of u, with oslo's
// defaults: guest/guest, port 5672 (5671 with ssl) and virtual host "/".
func amqpURIs(u *driver.URL) []amqp.URI {
	useTLS := false
	switch strings.ToLower(u.Query["ssl"]) {
	case "1", "true", "yes", "on":
		useTLS = true
	}
	vhost := u.VirtualHost
	if vhost == "" {
		vhost = "/"
	}
	hosts := u.Hosts
	if len(hosts) == 0 {
		hosts = []driver.Host{{}}
	}
	uris := make([]amqp.URI, 0, len(hosts))
	for _, h := range hosts {
		uri := amqp.URI{Scheme: "amqp", Host: h.Hostname, Port: h.Port, Username: h.Username, Password: h.Password, Vhost: vhost}
		if useTLS {
			uri.Scheme = "amqps"
		}
		if uri.Host == "" {
			uri.Host = "localhost"
		}
		if uri.Port == 0 {
			uri.Port = 5672
			if useTLS {
				uri.Port = 5671
			}
		}
		if uri.Username == "" && uri.Password == "" {
			uri.Username, uri.Password = "guest", "guest"
		}
		uris = append(uris, uri)
	}
	return uris
}

// dial connects to the first broker of u that answers. Errors never
// contain the password.
func dial(ctx context.Context, u *driver.URL) (*amqp.Connection, error) {
	var errs []error
	for _, uri := range amqpURIs(u) {
		cfg := amqp.Config{
			Heartbeat: 10 * time.Second,
			Locale:    "en_US",
			Dial: func(network, addr string) (net.Conn, error) {
				d := net.Dialer{Timeout: dialTimeout}
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				// Cleared by amqp091 once the handshake is done.
				if err := conn.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
					_ = conn.Close()
					return nil, err
				}
				return conn, nil
			},
		}
		if uri.Scheme == "amqps" {
			cfg.TLSClientConfig = &tls.Config{ServerName: uri.Host, MinVersion: tls.VersionTLS12}
		}
		conn, err := amqp.DialConfig(uri.String(), cfg)
		if err == nil {
			return conn, nil
		}
		addr := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
		errs = append(errs, fmt.Errorf("%s (vhost %q): %s", addr, uri.Vhost, redact(err.Error(), uri.Password)))
	}
	return nil, errors.Join(errs...)
}

// redact replaces secret in s.
func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

// rabbitctl runs rabbitmqctl.
type rabbitctl struct{ path string }

// run runs rabbitmqctl with args, bounded by ctlTimeout, and returns its
// standard output.
func (c rabbitctl) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.WaitDelay = time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return "", fmt.Errorf("rabbitmqctl %s: %w: %s", args[0], err, msg)
	}
	return string(out), nil
}

// rabbitBroker is the broker of a comparison: rabbitmqctl when it can
// be used, passive queue declarations otherwise. It is safe for
// concurrent use.
type rabbitBroker struct {
	ctl   *rabbitctl // nil: rabbitmqctl cannot be used
	vhost string

	mu   sync.Mutex // guards the fields below
	conn *amqp.Connection
	ch   *amqp.Channel
}

// queues implements broker.
func (b *rabbitBroker) queues(ctx context.Context, substr string, known []string) ([]queueStat, error) {
	if b.ctl == nil {
		return b.passive(ctx, known)
	}
	out, err := b.ctl.run(ctx, "list_queues", "-q", "--no-table-headers", "-p", b.vhost, "name", "messages", "consumers")
	if err != nil {
		return nil, err
	}
	return parseQueues(out, substr)
}

// parseQueues parses the output of rabbitmqctl list_queues name messages
// consumers and keeps the queues whose names contain substr.
func parseQueues(out, substr string) ([]queueStat, error) {
	var qs []queueStat
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) != 3 || !strings.Contains(f[0], substr) {
			continue
		}
		m, err1 := strconv.Atoi(strings.TrimSpace(f[1]))
		c, err2 := strconv.Atoi(strings.TrimSpace(f[2]))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("rabbitmqctl list_queues: unexpected line %q", line)
		}
		qs = append(qs, queueStat{name: f[0], messages: m, consumers: c})
	}
	return qs, nil
}

// passive returns the queues of names that exist, by passive
// declarations.
func (b *rabbitBroker) passive(ctx context.Context, names []string) ([]queueStat, error) {
	var qs []queueStat
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q, ok, err := b.declarePassive(name)
		if err != nil {
			return nil, err
		}
		if ok {
			qs = append(qs, queueStat{name: name, messages: q.Messages, consumers: q.Consumers})
		}
	}
	return qs, nil
}

// ready implements broker.
func (b *rabbitBroker) ready(ctx context.Context, names []string) (int, error) {
	qs, err := b.passive(ctx, names)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, q := range qs {
		n += q.messages
	}
	return n, nil
}

// declarePassive declares queue name passively: ok is false when it does
// not exist. A channel closed by the broker's "not found" is reopened.
func (b *rabbitBroker) declarePassive(name string) (amqp.Queue, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil || b.ch.IsClosed() {
		ch, err := b.conn.Channel()
		if err != nil {
			return amqp.Queue{}, false, fmt.Errorf("broker: open channel: %w", err)
		}
		b.ch = ch
	}
	q, err := b.ch.QueueDeclarePassive(name, false, false, false, false, nil)
	var ae *amqp.Error
	switch {
	case err == nil:
		return q, true, nil
	case errors.As(err, &ae) && ae.Code == amqp.NotFound:
		b.ch = nil // closed by the broker
		return amqp.Queue{}, false, nil
	default:
		return amqp.Queue{}, false, fmt.Errorf("broker: declare %q: %w", name, err)
	}
}

// close closes the connection.
func (b *rabbitBroker) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn, b.ch = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}
