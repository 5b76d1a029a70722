package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/notify"
)

// The batches of BatchNotifyServer, as the simulator's
// batch-notify-server makes them.
const (
	BatchSize    = 1000
	BatchTimeout = 5 * time.Second
)

// EventType is the event type of the notifications of NotifyClient.
const EventType = "compute.start"

// NotifyServer runs the simulator's notify-server: a notification
// listener on the topic cfg.Topic of the transport cfg.URL, with an
// endpoint for the info priority, whose payload is the simulator's
// message [seq, cargo, client_ts, server_ts, return_ts]. Every
// notification is recorded as a Received sample with server_ts the
// time it was received. With cfg.Requeue, a notification whose seq was
// not seen before is requeued, after cfg.WaitBefore if positive, and
// handled when it comes again (the listener allows requeueing). Other
// notifications are acknowledged; a payload that is not a message is
// logged and acknowledged.
//
// ready, its stop, the finishing of the run and the errors are those of
// RPCServer, without the --sync stop.
func NotifyServer(ctx context.Context, cfg *Config, ready func(), rec Recorder) error {
	return notifyServer(ctx, cfg, ready, rec, false)
}

// BatchNotifyServer runs the simulator's batch-notify-server: as
// NotifyServer, but its endpoint receives batches of up to BatchSize
// notifications, dispatched after BatchTimeout at the latest; the
// notifications of a batch are recorded with the same server_ts. As in
// the simulator, cfg.Requeue and cfg.WaitBefore do not apply.
func BatchNotifyServer(ctx context.Context, cfg *Config, ready func(), rec Recorder) error {
	return notifyServer(ctx, cfg, ready, rec, true)
}

func notifyServer(ctx context.Context, cfg *Config, ready func(), rec Recorder, batch bool) error {
	switch {
	case cfg == nil || rec == nil:
		return fmt.Errorf("%w: no configuration or recorder", ErrInvalidConfig)
	case cfg.Topic == "":
		return fmt.Errorf("%w: no topic (-tp)", ErrInvalidConfig)
	}
	tr, err := connect(ctx, cfg, reachTimeout)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrInvalidConfig) {
			return nil
		}
		return err
	}
	defer tr.Close()
	log := loggerFrom(ctx)
	h := &notifyHandler{rec: rec, log: log, wait: cfg.WaitBefore, requeue: cfg.Requeue, seen: map[int64]struct{}{}}
	targets := []messaging.Target{{Topic: cfg.Topic}}
	var l *notify.Listener
	if batch {
		l, err = notify.NewBatchListener(tr, targets, []*notify.BatchEndpoint{{Info: h.batch}},
			BatchSize, BatchTimeout, notify.WithLogger(log))
	} else {
		l, err = notify.NewListener(tr, targets, []*notify.Endpoint{{Info: h.info}},
			notify.WithAllowRequeue(cfg.Requeue), notify.WithLogger(log))
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return serveUntil(ctx, cfg, l, ready, rec, nil)
}

// notifyHandler is the simulator's NotifyEndpoint and
// BatchNotifyEndpoint.
type notifyHandler struct {
	rec     Recorder
	log     *slog.Logger
	wait    time.Duration
	requeue bool

	mu   sync.Mutex // guards seen
	seen map[int64]struct{}
}

// record records the message of n, received at serverTS, and returns
// its seq; ok is false when n's payload is not a message.
func (h *notifyHandler) record(n *notify.Notification, serverTS float64) (seq int64, ok bool) {
	m, err := parseMessage(n.Payload)
	if err != nil {
		h.log.Warn("bench: a notification without a simulator message", "message_id", n.MessageID, "error", err)
		return 0, false
	}
	h.rec.Record(Sample{Kind: Received, Seq: m.seq, Size: m.size, ClientTS: m.clientTS, ServerTS: serverTS})
	return m.seq, true
}

// info handles one notification.
func (h *notifyHandler) info(ctx context.Context, n *notify.Notification) error {
	seq, ok := h.record(n, Now())
	if !ok || !h.requeue {
		return nil
	}
	h.mu.Lock()
	_, seen := h.seen[seq]
	h.seen[seq] = struct{}{}
	h.mu.Unlock()
	if seen {
		return nil
	}
	Sleep(ctx, h.wait)
	return notify.ErrRequeue
}

// batch handles a batch of notifications.
func (h *notifyHandler) batch(_ context.Context, batch []*notify.Notification) error {
	serverTS := Now()
	for _, n := range batch {
		h.record(n, serverTS)
	}
	return nil
}

// NotifyClient runs the simulator's notify-client: cfg.Threads
// closed-loop senders on one notify.Notifier (messagingv2) of the
// transport cfg.URL, sender i publishing as "publisher-<i>" the
// notifications of event type EventType at priority info, whose payload
// is the message [seq, cargo, client_ts, 0, 0], to the topic cfg.Topic.
// Each send is bounded by cfg.Timeout; the rest is as RPCClient: the
// start on the next whole second, cfg.Duration or cfg.Messages, the
// cargos, cfg.WaitAfter, the samples (Sent, and Failed for a failed
// send), the finishing of the run, cfg.ExitWait and the errors.
func NotifyClient(ctx context.Context, cfg *Config, rec Recorder) error {
	if rec == nil {
		return fmt.Errorf("%w: no recorder", ErrInvalidConfig)
	}
	_, cargos, sizes, err := clientSetup(cfg, false)
	if err != nil {
		return err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr, err := connect(ctx, cfg, timeout)
	if err != nil {
		return err
	}
	defer tr.Close()
	base, err := notify.NewNotifier(tr, "publisher-0", notify.WithSinks(notify.MessagingV2()),
		notify.WithTopics(cfg.Topic), notify.WithLogger(loggerFrom(ctx)))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	start := nextSecond(time.Now())
	var wg sync.WaitGroup
	for i := range cfg.Threads {
		n := base.Prepare(notify.PublisherID("publisher-" + strconv.Itoa(i)))
		s := &sender{id: i, cfg: cfg, rec: rec, cargos: cargos, sizes: sizes}
		s.send = func(ctx context.Context, body []byte) (json.RawMessage, error) {
			return nil, n.Info(ctx, EventType, json.RawMessage(body))
		}
		wg.Go(func() { s.run(ctx, start) })
	}
	wg.Wait()
	finish(rec)
	Sleep(ctx, cfg.ExitWait)
	return nil
}
