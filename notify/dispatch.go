package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("notify: handler panic: %v", e.value) }

func callHandler(ctx context.Context, h HandlerFunc, n *Notification) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, n)
}

func callBatchHandler(ctx context.Context, h BatchHandlerFunc, batch []*Notification) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, batch)
}

// logResult logs a handler's error: a requeue at debug level, a panic
// with its stack, any other error at error level.
func logResult(log *slog.Logger, err error) {
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		log.Error("notify: handler panic", "panic", fmt.Sprint(pe.value), "stack", pe.stack)
	case errors.Is(err, ErrRequeue):
		log.Debug("notify: handler asked for a requeue")
	default:
		log.Error("notify: handler failed", "error", err)
	}
}

// incoming is one received notification being processed.
type incoming struct {
	d        driver.NotifyDelivery
	uniqueID string
	n        *Notification
	input    *filterInput
	index    int // of the priority
	log      *slog.Logger
	requeue  bool
}

// receive checks a delivery and prepares it for dispatch, returning it
// with the context of its handlers. It returns nil when the delivery
// was settled already: a duplicate, or a notification of unknown
// priority.
func (l *Listener) receive(ctx context.Context, d driver.NotifyDelivery) (*incoming, context.Context) {
	dn := d.Notification()
	log := l.cfg.logger.With("event_type", dn.EventType, "publisher_id", dn.PublisherID, "message_id", dn.MessageID)
	if l.seen.contains(dn.UniqueID, time.Now()) {
		log.Debug("notify: ignoring a duplicate notification", "unique_id", dn.UniqueID)
		if err := d.Ack(); err != nil {
			log.Warn("notify: acknowledging a duplicate failed", "error", err)
		}
		return nil, nil
	}
	p := Priority(strings.ToLower(dn.Priority))
	in := &incoming{d: d, uniqueID: dn.UniqueID, index: p.index(), log: log}
	if in.index < 0 {
		log.Warn("notify: unknown priority; notification dropped", "priority", dn.Priority)
		l.settle(in)
		return nil, nil
	}
	md := messaging.Metadata{}
	for k, v := range dn.Context {
		md[k] = v
	}
	in.n = &Notification{
		MessageID:   dn.MessageID,
		PublisherID: dn.PublisherID,
		EventType:   dn.EventType,
		Priority:    p,
		Payload:     dn.Payload,
		Timestamp:   dn.Timestamp,
		Context:     md,
	}
	in.input = &filterInput{n: in.n}
	hctx, err := l.cfg.serializer.DeserializeContext(messaging.NewIncomingContext(ctx, md), md)
	if err == nil {
		payload := dn.Payload
		if len(payload) == 0 {
			payload = []byte("null")
		}
		in.n.Payload, err = l.cfg.serializer.DeserializeEntity(hctx, payload)
	}
	if err != nil {
		log.Error("notify: deserializing the notification failed", "error", err)
		in.requeue = true
	}
	return in, hctx
}

// settle acknowledges or requeues a processed notification, and
// remembers the _unique_id of what it acknowledges.
func (l *Listener) settle(in *incoming) {
	if in.requeue && l.cfg.allowRequeue {
		if err := in.d.Requeue(); err != nil {
			in.log.Warn("notify: requeueing failed", "error", err)
		}
		return
	}
	if err := in.d.Ack(); err != nil {
		in.log.Warn("notify: acknowledging failed", "error", err)
	}
	// Remembered even if the acknowledgement failed: a copy delivered
	// again has been processed already.
	l.seen.add(in.uniqueID, time.Now())
}

// handle processes one delivery: oslo's NotificationDispatcher.
func (l *Listener) handle(ctx context.Context, d driver.NotifyDelivery) {
	in, hctx := l.receive(ctx, d)
	if in == nil {
		return
	}
	if !in.requeue {
		for _, ep := range l.endpoints {
			h := ep.single[in.index]
			if h == nil || !ep.filter.match(in.input) {
				continue
			}
			if err := callHandler(hctx, h, in.n); err != nil {
				logResult(in.log, err)
				in.requeue = true
				break
			}
		}
	}
	l.settle(in)
}

// handleBatch processes one batch: oslo's BatchNotificationDispatcher.
func (l *Listener) handleBatch(ctx context.Context, batch []driver.NotifyDelivery) {
	var groups [len(priorities)][]*incoming
	var all []*incoming
	for _, d := range batch {
		in, _ := l.receive(ctx, d)
		if in == nil {
			continue
		}
		all = append(all, in)
		if !in.requeue {
			groups[in.index] = append(groups[in.index], in)
		}
	}
	for i, group := range groups {
		if len(group) == 0 {
			continue
		}
		for _, ep := range l.endpoints {
			h := ep.batch[i]
			if h == nil {
				continue
			}
			var ns []*Notification
			for _, in := range group {
				if ep.filter.match(in.input) {
					ns = append(ns, in.n)
				}
			}
			if len(ns) == 0 {
				continue
			}
			if err := callBatchHandler(ctx, h, ns); err != nil {
				logResult(l.cfg.logger.With("priority", string(priorities[i]), "batch", len(ns)), err)
				for _, in := range group {
					in.requeue = true
				}
				break
			}
		}
	}
	for _, in := range all {
		l.settle(in)
	}
}
