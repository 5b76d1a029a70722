package raw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging/internal/bench"
)

// Control messages of --sync, told apart by their AMQP type.
const (
	typeSyncStart = "sync_start"
	typeSyncDone  = "sync_done"
)

// syncStop is the simulator's ServerControlEndpoint: it counts the
// clients that reported their start and, when the last one is done,
// stops the server one second later.
type syncStop struct {
	mu      sync.Mutex
	clients map[string]bool
	timer   *time.Timer
}

// handle applies one control message; stop is called, once, a second
// after the last started client is done.
func (s *syncStop) handle(typ string, body []byte, stop func()) {
	var m struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients == nil {
		s.clients = map[string]bool{}
	}
	switch typ {
	case typeSyncStart:
		s.clients[m.ID] = true
	case typeSyncDone:
		delete(s.clients, m.ID)
		if len(s.clients) == 0 && s.timer == nil {
			s.timer = time.AfterFunc(time.Second, stop)
		}
	}
}

// cancelTimer stops a pending stop.
func (s *syncStop) cancelTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
}

// rpcServer is the state of RPCServer: a consuming connection and a
// publishing connection for the replies.
type rpcServer struct {
	cfg *bench.Config
	rec bench.Recorder

	lis, pub         *connection
	lch, pch         *amqp.Channel
	lcloses, pcloses chan *amqp.Error
	drained          sync.WaitGroup // the goroutine that drains pch's returns
	fanoutQueue      string
	tags             []string
	deliveries       [3]<-chan amqp.Delivery // nil when unused

	slots    chan struct{}  // bounds the requests being handled
	handlers sync.WaitGroup // the requests being answered
	sync     syncStop
}

func serveRPC(ctx context.Context, cfg *bench.Config, ready func(), rec bench.Recorder) error {
	eps, err := endpoints(cfg.URL)
	if err != nil {
		return err
	}
	s := &rpcServer{
		cfg:     cfg,
		rec:     rec,
		lcloses: make(chan *amqp.Error, 1),
		pcloses: make(chan *amqp.Error, 1),
		slots:   make(chan struct{}, prefetch),
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The requests being handled when the server stops may still reply,
	// for a while: their context is cancelled by teardown only.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	if err := s.setup(ctx, eps); err != nil {
		s.teardown(ctx, hcancel)
		return err
	}
	if ready != nil {
		ready()
	}
	loopCtx, stop := withDuration(runCtx, cfg.Duration)
	err = s.loop(loopCtx, hctx, cancel)
	stop()
	cancel(nil)
	s.teardown(ctx, hcancel)
	if err != nil {
		return err
	}
	var broken *brokenError
	if errors.As(context.Cause(runCtx), &broken) {
		return broken
	}
	return nil
}

// setup connects, declares the server's queues and starts consuming.
func (s *rpcServer) setup(ctx context.Context, eps []endpoint) (err error) {
	if s.lis, err = dial(ctx, eps, "omsg bench raw rpc-server listen"); err != nil {
		return err
	}
	if s.pub, err = dial(ctx, eps, "omsg bench raw rpc-server publish"); err != nil {
		return err
	}
	err = s.pub.guard(ctx, func() error {
		if s.pch, err = s.pub.conn.Channel(); err != nil {
			return err
		}
		s.pch.NotifyClose(s.pcloses)
		// A reply whose queue is gone comes back: it is dropped, and its
		// caller times out.
		returns := s.pch.NotifyReturn(make(chan amqp.Return, prefetch))
		s.drained.Go(func() {
			for range returns {
			}
		})
		return s.pch.Confirm(false)
	})
	if err != nil {
		return fmt.Errorf("raw: publishing channel: %w", err)
	}

	topic := s.cfg.Topic
	type bound struct {
		name, exchange, key string
		args                amqp.Table
	}
	queues := []bound{{topicQueueName(topic), rpcExchange, topic, nil}}
	if s.cfg.Server != "" {
		key := topic + "." + s.cfg.Server
		queues = append(queues, bound{topicQueueName(key), rpcExchange, key, nil})
	}
	s.fanoutQueue = newFanoutQueueName(topic)
	queues = append(queues, bound{s.fanoutQueue, fanoutExchangeName(topic), topic, transientArgs()})
	err = s.lis.guard(ctx, func() error {
		if s.lch, err = s.lis.conn.Channel(); err != nil {
			return err
		}
		s.lch.NotifyClose(s.lcloses)
		if err := s.lch.Qos(prefetch, 0, false); err != nil {
			return err
		}
		if err := declareRPCExchange(s.lch); err != nil {
			return err
		}
		if err := declareFanoutExchange(s.lch, topic); err != nil {
			return err
		}
		for _, q := range queues {
			if err := declareBound(s.lch, q.name, q.args, q.exchange, q.key); err != nil {
				return fmt.Errorf("declare queue %s: %w", q.name, err)
			}
		}
		for i, q := range queues {
			tag := strconv.Itoa(i + 1)
			d, err := s.lch.Consume(q.name, tag, false, false, false, false, nil)
			if err != nil {
				return fmt.Errorf("consume queue %s: %w", q.name, err)
			}
			s.tags = append(s.tags, tag)
			s.deliveries[i] = d
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("raw: rpc-server: %w", err)
	}
	return nil
}

// loop takes the requests until ctx is done or a consumer ends. The
// requests are handled with hctx.
func (s *rpcServer) loop(ctx, hctx context.Context, cancel context.CancelCauseFunc) error {
	for {
		var (
			d  amqp.Delivery
			ok bool
		)
		select {
		case <-ctx.Done():
			return nil
		case d, ok = <-s.deliveries[0]:
		case d, ok = <-s.deliveries[1]:
		case d, ok = <-s.deliveries[2]:
		}
		if !ok {
			return fmt.Errorf("raw: rpc-server: a consumer ended: %w", channelError(s.lcloses))
		}
		if err := s.take(ctx, hctx, cancel, &d); err != nil {
			return err
		}
	}
}

// take acknowledges a request on receipt, records it and, when it must
// wait or be answered, hands it to a goroutine.
func (s *rpcServer) take(ctx, hctx context.Context, cancel context.CancelCauseFunc, d *amqp.Delivery) error {
	received := now()
	if d.Type == typeSyncStart || d.Type == typeSyncDone {
		if err := d.Ack(false); err != nil {
			return fmt.Errorf("raw: rpc-server: acknowledge: %w", err)
		}
		s.sync.handle(d.Type, d.Body, func() { cancel(nil) })
		if d.ReplyTo != "" {
			replyTo, corr := d.ReplyTo, d.CorrelationId
			s.handlers.Go(func() { s.reply(hctx, cancel, replyTo, corr, []byte("null")) })
		}
		return nil
	}
	m, err := decodeMessage(d.Body)
	if err != nil {
		_ = d.Reject(false) // not a benchmark message, as oslo rejects what is not its own
		return nil          //nolint:nilerr // the server goes on
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil // not acknowledged: the broker requeues it
	}
	if err := d.Ack(false); err != nil {
		<-s.slots
		return fmt.Errorf("raw: rpc-server: acknowledge: %w", err)
	}
	m.ServerTS = received
	s.rec.Record(bench.Sample{Kind: bench.Received, Seq: m.Seq, Size: len(m.Cargo), ClientTS: m.ClientTS, ServerTS: m.ServerTS})
	if d.ReplyTo == "" && s.cfg.WaitBefore == 0 {
		<-s.slots
		return nil
	}
	replyTo, corr := d.ReplyTo, d.CorrelationId
	s.handlers.Go(func() {
		defer func() { <-s.slots }()
		if !bench.Sleep(hctx, s.cfg.WaitBefore) || replyTo == "" {
			return
		}
		body, err := m.encode()
		if err != nil {
			return
		}
		s.reply(hctx, cancel, replyTo, corr, body)
	})
	return nil
}

// reply publishes a reply, mandatory, to the default exchange and waits
// for its confirm. A failed publishing channel stops the server.
func (s *rpcServer) reply(ctx context.Context, cancel context.CancelCauseFunc, replyTo, corr string, body []byte) {
	dc, err := s.pch.PublishWithDeferredConfirm("", replyTo, true, false, amqp.Publishing{
		ContentType:   contentType,
		DeliveryMode:  deliveryMode,
		CorrelationId: corr,
		Body:          body,
	})
	if err != nil {
		if s.pch.IsClosed() {
			cancel(&brokenError{fmt.Errorf("raw: rpc-server: publishing channel closed: %w", channelError(s.pcloses))})
		}
		return
	}
	select {
	case <-dc.Done():
	case <-ctx.Done():
		return
	}
	if !dc.Acked() && s.pch.IsClosed() {
		cancel(&brokenError{fmt.Errorf("raw: rpc-server: publishing channel closed before a confirm: %w", channelError(s.pcloses))})
	}
}

// teardown cancels the consumers, lets the requests being handled
// reply for up to teardownTimeout then cancels them with hcancel,
// deletes the fanout queue and closes the connections, each step within
// teardownTimeout. The requests received and not acknowledged go back to
// their queues.
func (s *rpcServer) teardown(ctx context.Context, hcancel context.CancelFunc) {
	s.sync.cancelTimer()
	if s.lch != nil {
		step(ctx, s.lis, func() error {
			for _, tag := range s.tags {
				_ = s.lch.Cancel(tag, false)
			}
			return nil
		})
	}
	handled := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(handled)
	}()
	grace := time.NewTimer(teardownTimeout)
	select {
	case <-handled:
	case <-grace.C:
	}
	grace.Stop()
	hcancel()
	if s.pub != nil {
		// A reply blocked in a write is unblocked by closing the socket.
		step(ctx, s.pub, func() error { <-handled; return nil })
	}
	<-handled
	if s.lch != nil {
		step(ctx, s.lis, func() error {
			_, err := s.lch.QueueDelete(s.fanoutQueue, false, false, false)
			_ = s.lch.Close()
			return err
		})
	}
	if s.lis != nil {
		s.lis.close()
	}
	if s.pub != nil {
		s.pub.close()
	}
	s.drained.Wait()
}

// step runs a teardown step on conn within teardownTimeout.
func step(ctx context.Context, conn *connection, f func() error) {
	tctx, cancel := teardownContext(ctx)
	defer cancel()
	_ = conn.guard(tctx, f)
}

// notifyServer is the state of NotifyServer: one consuming connection.
type notifyServer struct {
	cfg *bench.Config
	rec bench.Recorder

	lis        *connection
	ch         *amqp.Channel
	closes     chan *amqp.Error
	deliveries <-chan amqp.Delivery

	slots    chan struct{}
	handlers sync.WaitGroup // the requeues waiting cfg.WaitBefore
	seen     map[int64]bool // the seqs requeued once
}

const notifyTag = "1"

func serveNotify(ctx context.Context, cfg *bench.Config, ready func(), rec bench.Recorder) error {
	eps, err := endpoints(cfg.URL)
	if err != nil {
		return err
	}
	s := &notifyServer{
		cfg:    cfg,
		rec:    rec,
		closes: make(chan *amqp.Error, 1),
		slots:  make(chan struct{}, prefetch),
		seen:   map[int64]bool{},
	}
	if err := s.setup(ctx, eps); err != nil {
		s.teardown(ctx)
		return err
	}
	if ready != nil {
		ready()
	}
	loopCtx, stop := withDuration(ctx, cfg.Duration)
	err = s.loop(loopCtx)
	stop()
	s.teardown(ctx)
	return err
}

// withDuration returns ctx, ended after d when d is positive.
func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

func (s *notifyServer) setup(ctx context.Context, eps []endpoint) (err error) {
	if s.lis, err = dial(ctx, eps, "omsg bench raw notify-server"); err != nil {
		return err
	}
	err = s.lis.guard(ctx, func() error {
		if s.ch, err = s.lis.conn.Channel(); err != nil {
			return err
		}
		s.ch.NotifyClose(s.closes)
		if err := s.ch.Qos(prefetch, 0, false); err != nil {
			return err
		}
		if err := declareNotify(s.ch, s.cfg.Topic); err != nil {
			return err
		}
		s.deliveries, err = s.ch.Consume(notifyQueueName(s.cfg.Topic), notifyTag, false, false, false, false, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("raw: notify-server: %w", err)
	}
	return nil
}

// loop takes the notifications until ctx is done or the consumer ends.
func (s *notifyServer) loop(ctx context.Context) error {
	for {
		var (
			d  amqp.Delivery
			ok bool
		)
		select {
		case <-ctx.Done():
			return nil
		case d, ok = <-s.deliveries:
		}
		if !ok {
			return fmt.Errorf("raw: notify-server: the consumer ended: %w", channelError(s.closes))
		}
		received := now()
		m, err := decodeMessage(d.Body)
		if err != nil {
			_ = d.Reject(false)
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil // not acknowledged: the broker requeues it
		}
		s.rec.Record(bench.Sample{Kind: bench.Received, Seq: m.Seq, Size: len(m.Cargo), ClientTS: m.ClientTS, ServerTS: received})
		if !s.cfg.Requeue || s.seen[m.Seq] {
			err := d.Ack(false)
			<-s.slots
			if err != nil {
				return fmt.Errorf("raw: notify-server: acknowledge: %w", err)
			}
			continue
		}
		s.seen[m.Seq] = true
		s.handlers.Go(func() {
			defer func() { <-s.slots }()
			if bench.Sleep(ctx, s.cfg.WaitBefore) {
				_ = d.Nack(false, true)
			}
		})
	}
}

// teardown cancels the consumer, waits for the handlers and closes the
// connection. The notification queue stays, as oslo's does.
func (s *notifyServer) teardown(ctx context.Context) {
	if s.ch != nil {
		step(ctx, s.lis, func() error {
			err := s.ch.Cancel(notifyTag, false)
			s.handlers.Wait()
			return err
		})
	}
	s.handlers.Wait()
	if s.lis != nil {
		s.lis.close()
	}
}
