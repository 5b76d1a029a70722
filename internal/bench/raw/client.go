package raw

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/internal/bench"
)

// brokenError is a failure of a connection or channel: the senders stop
// at the first one, since nothing reconnects.
type brokenError struct{ err error }

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

var errNacked = errors.New("raw: the broker refused the message (basic.nack)")

// client is the sending side: a confirm channel on a connection of its
// own and, for calls, a reply queue consumed on a second connection.
type client struct {
	pub    *connection
	ch     *amqp.Channel
	closes chan *amqp.Error // of ch

	// Calls only.
	rep     *connection
	rch     *amqp.Channel
	rcloses chan *amqp.Error // of rch
	queue   string           // the reply queue
	mu      sync.Mutex
	calls   map[string]chan []byte // by correlation id
	lost    chan struct{}          // closed when the reply consumer ends
	wg      sync.WaitGroup         // the reply consumer
	next    atomic.Uint64          // correlation ids
}

const replyTag = "reply"

// newClient connects, runs declare on the publishing channel and puts it
// in confirm mode; with replies, it declares and consumes a reply queue.
func newClient(ctx context.Context, eps []endpoint, name string, replies bool, declare func(*amqp.Channel) error) (c *client, err error) {
	c = &client{closes: make(chan *amqp.Error, 1)}
	if c.pub, err = dial(ctx, eps, name+" publish"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.close(ctx)
		}
	}()
	err = c.pub.guard(ctx, func() error {
		if c.ch, err = c.pub.conn.Channel(); err != nil {
			return err
		}
		c.ch.NotifyClose(c.closes)
		if err := declare(c.ch); err != nil {
			return fmt.Errorf("declare: %w", err)
		}
		return c.ch.Confirm(false)
	})
	if err != nil {
		return nil, fmt.Errorf("raw: publishing channel: %w", err)
	}
	if !replies {
		return c, nil
	}
	if c.rep, err = dial(ctx, eps, name+" reply"); err != nil {
		return nil, err
	}
	c.queue = newReplyQueueName()
	c.calls = map[string]chan []byte{}
	c.rcloses = make(chan *amqp.Error, 1)
	var deliveries <-chan amqp.Delivery
	err = c.rep.guard(ctx, func() error {
		if c.rch, err = c.rep.conn.Channel(); err != nil {
			return err
		}
		c.rch.NotifyClose(c.rcloses)
		if _, err := c.rch.QueueDeclare(c.queue, false, false, false, false, transientArgs()); err != nil {
			return err
		}
		deliveries, err = c.rch.Consume(c.queue, replyTag, false, false, false, false, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("raw: reply queue %s: %w", c.queue, err)
	}
	c.lost = make(chan struct{})
	c.wg.Go(func() { c.route(deliveries) })
	return c, nil
}

// route acknowledges each reply and hands it to the call waiting for its
// correlation id, if any, until the consumer ends.
func (c *client) route(deliveries <-chan amqp.Delivery) {
	defer close(c.lost)
	for d := range deliveries {
		_ = d.Ack(false)
		c.mu.Lock()
		got := c.calls[d.CorrelationId]
		c.mu.Unlock()
		if got != nil {
			select {
			case got <- d.Body:
			default:
			}
		}
	}
}

// publish publishes p and waits for its confirm.
func (c *client) publish(ctx context.Context, exchange, key string, p amqp.Publishing) error {
	dc, err := c.ch.PublishWithDeferredConfirm(exchange, key, false, false, p)
	if err != nil {
		if c.ch.IsClosed() {
			return &brokenError{fmt.Errorf("raw: publishing channel closed: %w", channelError(c.closes))}
		}
		return fmt.Errorf("raw: publish: %w", err)
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if !dc.Acked() {
		if c.ch.IsClosed() {
			return &brokenError{fmt.Errorf("raw: publishing channel closed before the confirm: %w", channelError(c.closes))}
		}
		return errNacked
	}
	return nil
}

// call publishes body as a request to key on the RPC exchange and waits
// for its reply. The request expires when ctx's deadline passes.
func (c *client) call(ctx context.Context, key, typ string, body []byte) ([]byte, error) {
	id := strconv.FormatUint(c.next.Add(1), 10)
	got := make(chan []byte, 1)
	c.mu.Lock()
	c.calls[id] = got
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
	}()
	p := amqp.Publishing{
		ContentType:   contentType,
		DeliveryMode:  deliveryMode,
		ReplyTo:       c.queue,
		CorrelationId: id,
		Type:          typ,
		Body:          body,
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms < 1 {
			return nil, context.DeadlineExceeded
		}
		p.Expiration = strconv.FormatInt(ms, 10)
	}
	if err := c.publish(ctx, rpcExchange, key, p); err != nil {
		return nil, err
	}
	select {
	case b := <-got:
		return b, nil
	case <-c.lost:
		return nil, &brokenError{fmt.Errorf("raw: reply consumer ended: %w", channelError(c.rcloses))}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cast publishes body to exchange with key and waits for its confirm.
func (c *client) cast(ctx context.Context, exchange, key, typ string, body []byte) error {
	return c.publish(ctx, exchange, key, amqp.Publishing{
		ContentType:  contentType,
		DeliveryMode: deliveryMode,
		Type:         typ,
		Body:         body,
	})
}

// close cancels the reply consumer, deletes the reply queue and closes
// the connections, within teardownTimeout.
func (c *client) close(ctx context.Context) {
	tctx, cancel := teardownContext(ctx)
	defer cancel()
	if c.rep != nil {
		if c.rch != nil {
			_ = c.rep.guard(tctx, func() error {
				_ = c.rch.Cancel(replyTag, false)
				_, err := c.rch.QueueDelete(c.queue, false, false, false)
				return err
			})
		}
		c.rep.close()
		c.wg.Wait()
	}
	if c.pub != nil {
		c.pub.close()
	}
}

// abort closes the sockets at once, unblocking any sender.
func (c *client) abort() {
	_ = c.pub.raw.Close()
	if c.rep != nil {
		_ = c.rep.raw.Close()
	}
}

// sendFunc sends one message body for a sender and returns the reply's
// body for calls, nil otherwise.
type sendFunc func(ctx context.Context, sender int, body []byte) ([]byte, error)

// syncFunc sends a sender's sync_start or sync_done control message.
type syncFunc func(ctx context.Context, sender int, typ string, body []byte) error

// run runs the senders and waits for them. When ctx ends, senders that
// do not return within teardownTimeout (a publish blocked by the broker)
// are unblocked by closing the sockets.
func (c *client) run(ctx context.Context, cfg *bench.Config, rec bench.Recorder, send sendFunc, ctl syncFunc) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = runSenders(ctx, cfg, rec, send, ctl)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		t := time.NewTimer(teardownTimeout)
		select {
		case <-done:
		case <-t.C:
			c.abort()
			<-done
		}
		t.Stop()
	}
	return err
}

// runSenders starts cfg.Threads senders on the next whole second and
// waits for them. It returns the first connection or channel failure.
func runSenders(ctx context.Context, cfg *bench.Config, rec bench.Recorder, send sendFunc, ctl syncFunc) error {
	start := time.Now().Truncate(time.Second).Add(time.Second)
	if !bench.Sleep(ctx, time.Until(start)) {
		return nil
	}
	var end time.Time
	if cfg.Duration > 0 {
		end = start.Add(cfg.Duration)
	}
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range cfg.Threads {
		wg.Go(func() {
			if err := runSender(ctx, cfg, rec, i, end, send, ctl); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	return first
}

// runSender is sender i's closed loop.
func runSender(ctx context.Context, cfg *bench.Config, rec bench.Recorder, i int, end time.Time, send sendFunc, ctl syncFunc) error {
	limit := timeout(cfg)
	payloads := cfg.Payloads
	pos := rand.IntN(len(payloads))
	id := syncID(i)
	synced := false
	for seq := int64(0); ; seq++ {
		select {
		case <-ctx.Done():
			return nil // stopped: not a failure
		default:
		}
		if end.IsZero() {
			if seq >= int64(cfg.Messages) {
				break
			}
		} else if !time.Now().Before(end) {
			break
		}
		if cfg.Sync != "" && !synced {
			synced = ctl(ctx, i, typeSyncStart, id) == nil
		}
		m := message{Seq: seq, Cargo: payloads[pos], ClientTS: now()}
		pos = (pos + 1) % len(payloads)
		rec.Record(bench.Sample{Kind: bench.Sent, Sender: i, Seq: m.Seq, Size: len(m.Cargo), ClientTS: m.ClientTS})
		reply, err := sendOne(ctx, limit, i, &m, send)
		if err != nil {
			if ctx.Err() != nil {
				return nil //nolint:nilerr // interrupted by the stop: not a failure
			}
			rec.Record(bench.Sample{Kind: bench.Failed, Sender: i, Seq: m.Seq, Size: len(m.Cargo), ClientTS: m.ClientTS, Err: err})
			var broken *brokenError
			if errors.As(err, &broken) {
				return err
			}
		} else if reply != nil {
			rec.Record(bench.Sample{
				Kind: bench.RoundTrip, Sender: i, Seq: reply.Seq, Size: len(reply.Cargo),
				ClientTS: reply.ClientTS, ServerTS: reply.ServerTS, ReturnTS: reply.ReturnTS,
			})
		}
		if cfg.WaitAfter > 0 && !bench.Sleep(ctx, cfg.WaitAfter) {
			return nil
		}
	}
	if synced && bench.Sleep(ctx, time.Second) {
		_ = ctl(ctx, i, typeSyncDone, id)
	}
	return nil
}

// sendOne sends m within limit and decodes the reply, if any, with its
// return_ts set.
func sendOne(ctx context.Context, limit time.Duration, i int, m *message, send sendFunc) (*message, error) {
	body, err := m.encode()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	b, err := send(ctx, i, body)
	if err != nil {
		return nil, fmt.Errorf("raw: message %d: %w", m.Seq, err)
	}
	if b == nil {
		return nil, nil
	}
	returned := now()
	reply, err := decodeMessage(b)
	if err != nil {
		return nil, fmt.Errorf("raw: reply to message %d: %w", m.Seq, err)
	}
	reply.ReturnTS = returned
	return reply, nil
}

// syncID is the body of sender i's control messages: the simulator's
// host-based id.
func syncID(i int) []byte {
	host, _ := os.Hostname()
	return fmt.Appendf(nil, `{"id": %q}`, fmt.Sprintf("%d %s@%s", i, newID()[:12], host))
}

func runRPCClient(ctx context.Context, cfg *bench.Config, targets []target, rec bench.Recorder) error {
	eps, err := endpoints(cfg.URL)
	if err != nil {
		return err
	}
	calls := !cfg.Cast
	fanouts := cfg.Fanout || cfg.Sync == "fanout"
	declare := func(ch *amqp.Channel) error {
		if err := declareRPCExchange(ch); err != nil {
			return err
		}
		if !fanouts {
			return nil
		}
		for _, t := range targets {
			if err := declareFanoutExchange(ch, t.topic); err != nil {
				return err
			}
		}
		return nil
	}
	c, err := newClient(ctx, eps, "omsg bench raw rpc-client", calls || cfg.Sync == "call", declare)
	if err != nil {
		return err
	}
	defer c.close(ctx)
	send := func(ctx context.Context, i int, body []byte) ([]byte, error) {
		t := targets[i%len(targets)]
		switch {
		case cfg.Fanout:
			return nil, c.cast(ctx, fanoutExchangeName(t.topic), "", "", body)
		case cfg.Cast:
			return nil, c.cast(ctx, rpcExchange, t.key(), "", body)
		default:
			return c.call(ctx, t.key(), "", body)
		}
	}
	ctl := func(ctx context.Context, i int, typ string, body []byte) error {
		t := targets[i%len(targets)]
		ctx, cancel := context.WithTimeout(ctx, timeout(cfg))
		defer cancel()
		if cfg.Sync == "fanout" {
			return c.cast(ctx, fanoutExchangeName(t.topic), "", typ, body)
		}
		_, err := c.call(ctx, t.key(), typ, body)
		return err
	}
	err = c.run(ctx, cfg, rec, send, ctl)
	bench.Sleep(ctx, cfg.ExitWait)
	return err
}

func runNotifyClient(ctx context.Context, cfg *bench.Config, rec bench.Recorder) error {
	eps, err := endpoints(cfg.URL)
	if err != nil {
		return err
	}
	declare := func(ch *amqp.Channel) error { return declareNotify(ch, cfg.Topic) }
	c, err := newClient(ctx, eps, "omsg bench raw notify-client", false, declare)
	if err != nil {
		return err
	}
	defer c.close(ctx)
	key := notifyKey(cfg.Topic)
	send := func(ctx context.Context, _ int, body []byte) ([]byte, error) {
		return nil, c.cast(ctx, notifyExchange, key, "", body)
	}
	noSync := func(context.Context, int, string, []byte) error { return nil }
	cfgNoSync := *cfg
	cfgNoSync.Sync = ""
	err = c.run(ctx, &cfgNoSync, rec, send, noSync)
	bench.Sleep(ctx, cfg.ExitWait)
	return err
}
