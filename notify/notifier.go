package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// safeContextKeys are the request context keys a notification carries:
// every other key, auth_token first of all, is removed before sending,
// as oslo's notifier does.
var safeContextKeys = map[string]bool{
	"user_id": true, "project_id": true, "domain_id": true,
	"user_domain_id": true, "project_domain_id": true, "is_admin": true,
	"request_id": true, "roles": true, "user_name": true,
	"project_name": true, "domain_name": true, "user_domain_name": true,
	"project_domain_name": true, "service_user_id": true,
	"service_user_domain_id": true, "service_user_domain_name": true,
	"service_project_id": true, "service_project_name": true,
	"service_project_domain_id": true, "service_project_domain_name": true,
	"service_roles": true, "global_request_id": true, "system_scope": true,
	"user": true, "domain": true, "user_domain": true, "project_domain": true,
}

// sanitize returns the safe keys of md, in a new map; nil stays nil.
func sanitize(md messaging.Metadata) messaging.Metadata {
	if md == nil {
		return nil
	}
	out := make(messaging.Metadata, len(md))
	for k, v := range md {
		if safeContextKeys[k] {
			out[k] = v
		}
	}
	return out
}

// Notifier sends notifications to its sinks: oslo's Notifier. It is
// safe for concurrent use, and cheap to derive copies of with
// [Notifier.Prepare].
type Notifier struct {
	tr   *messaging.Transport
	cfg  *notifierConfig
	info notifierInfo
	now  func() time.Time
}

// NewNotifier returns a Notifier that publishes as publisherID (oslo's
// publisher_id, such as "compute.host1") to the sinks given with
// [WithSinks]; with none, notifications go nowhere, as with oslo's
// default empty driver list. A typical service notifier is
//
//	n, err := notify.NewNotifier(tr, "compute.host1", notify.WithSinks(notify.MessagingV2()))
//
// It does no I/O. tr may be nil when no sink publishes through a
// transport (a [Recorder] or [Log] sink, say). It fails with an error
// wrapping messaging.ErrInvalidOption for an invalid option, and with
// an error naming the driver when a sink publishes through tr and the
// transport is nil or its driver does not support notifications.
func NewNotifier(tr *messaging.Transport, publisherID string, opts ...NotifierOption) (*Notifier, error) {
	cfg := &notifierConfig{
		topics:     []string{DefaultTopic},
		serializer: messaging.NoOpSerializer{},
		logger:     slog.Default(),
	}
	if tr != nil {
		cfg.logger = tr.Logger()
	}
	info := notifierInfo{publisherID: publisherID, retry: -1}
	for _, o := range opts {
		if err := o.applyNotifier(cfg, &info); err != nil {
			return nil, err
		}
	}
	for _, s := range cfg.sinks {
		if !usesTransport(s) {
			continue
		}
		if tr == nil {
			return nil, errors.New("notify: NewNotifier with a nil transport and a sink that publishes through it")
		}
		if _, ok := tr.Conn().(driver.NotifyConn); !ok {
			return nil, fmt.Errorf("notify: the %T driver does not support notifications", tr.Conn())
		}
		break
	}
	return &Notifier{tr: tr, cfg: cfg, info: info, now: time.Now}, nil
}

// Prepare returns a copy of n with a different publisher id or retries
// ([PublisherID], [Retry]): oslo's prepare(). It never modifies n, and
// the copy shares n's sinks.
func (n *Notifier) Prepare(opts ...PrepareOption) *Notifier {
	c := *n
	for _, o := range opts {
		o(&c.info)
	}
	return &c
}

// PublisherID returns the publisher id the notifier sends.
func (n *Notifier) PublisherID() string { return n.info.publisherID }

// Enabled reports whether the notifier emits notifications anywhere,
// with oslo's is_enabled rule: it is false only when the sinks are
// [Noop] sinks, at least one. With no sinks at all it reports true,
// as oslo does, although nothing is sent then. Services use it to skip
// building costly payloads.
func (n *Notifier) Enabled() bool {
	if len(n.cfg.sinks) == 0 {
		return true
	}
	for _, s := range n.cfg.sinks {
		if _, ok := s.(noopSink); !ok {
			return true
		}
	}
	return false
}

// Notify sends payload as a notification of eventType at priority p to
// every sink, and returns once every sink has: the messaging sinks
// return when the broker has accepted the message on every topic, so
// Notify blocks while the broker is unreachable, until ctx is done
// unless [WithRetry] bounds the retries.
//
// The request context is the metadata of ctx (see
// messaging.NewOutgoingContext), of which only oslo's safe keys
// (user_id, project_id, request_id, roles, global_request_id, ...) are
// sent: auth_token and every other key are removed first. payload must
// be JSON-encodable after the serializer's entity hook.
//
// p may be given in any case ("INFO" is PriorityInfo); an unknown
// priority returns an error wrapping ErrInvalidPriority. Errors of the
// serializer and of encoding the payload are returned before any sink
// is called. Sink errors are all returned, joined with errors.Join:
// unlike oslo, which logs them, Notify reports failures; wrap a sink
// with [LogErrors] for oslo's log-and-continue behaviour. A
// notification sent to several topics or sinks may have reached some
// of them when an error is returned.
func (n *Notifier) Notify(ctx context.Context, p Priority, eventType string, payload any) error {
	m, err := n.message(ctx, p, eventType, payload)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range n.cfg.sinks {
		if err := s.Send(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// message builds the Message of one notification.
func (n *Notifier) message(ctx context.Context, p Priority, eventType string, payload any) (*Message, error) {
	p, err := ParsePriority(string(p))
	if err != nil {
		return nil, err
	}
	md, _ := messaging.FromOutgoingContext(ctx)
	v, err := n.cfg.serializer.SerializeEntity(ctx, payload)
	if err != nil {
		return nil, fmt.Errorf("notify: serializing payload: %w", err)
	}
	raw, err := marshalJSON(v)
	if err != nil {
		return nil, fmt.Errorf("notify: encoding payload: %w", err)
	}
	// As in oslo, the serializer sees the sanitised dictionary (nil when
	// the context carries none, so that a serializer can supply a typed
	// context's dictionary). Its output is sanitised too: whatever it
	// adds, only oslo's safe keys are sent, never a token.
	sctx, err := n.cfg.serializer.SerializeContext(ctx, sanitize(md))
	if err != nil {
		return nil, fmt.Errorf("notify: serializing context: %w", err)
	}
	sctx = sanitize(sctx)
	return &Message{
		Notification: Notification{
			MessageID:   wire.NewUUID(),
			PublisherID: n.info.publisherID,
			EventType:   eventType,
			Priority:    p,
			Payload:     raw,
			Timestamp:   formatTimestamp(n.now()),
			Context:     sctx,
		},
		Topics:            n.cfg.topics,
		Exchange:          n.cfg.exchange,
		Retry:             n.info.retry,
		ResendUnconfirmed: n.info.retrySet,
		Transport:         n.tr,
		Logger:            n.cfg.logger,
	}, nil
}

// marshalJSON encodes v as JSON without escaping <, > and &, as
// Python's json module does.
func marshalJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Audit sends a notification at audit priority, as [Notifier.Notify].
func (n *Notifier) Audit(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityAudit, eventType, payload)
}

// Debug sends a notification at debug priority, as [Notifier.Notify].
func (n *Notifier) Debug(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityDebug, eventType, payload)
}

// Info sends a notification at info priority, as [Notifier.Notify].
func (n *Notifier) Info(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityInfo, eventType, payload)
}

// Warn sends a notification at warn priority ("WARN" on the wire), as
// [Notifier.Notify].
func (n *Notifier) Warn(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityWarn, eventType, payload)
}

// Warning is [Notifier.Warn], as oslo's warning is its warn: it sends
// "WARN".
func (n *Notifier) Warning(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityWarn, eventType, payload)
}

// Error sends a notification at error priority, as [Notifier.Notify].
func (n *Notifier) Error(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityError, eventType, payload)
}

// Critical sends a notification at critical priority, as
// [Notifier.Notify].
func (n *Notifier) Critical(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PriorityCritical, eventType, payload)
}

// Sample sends a notification at sample priority, for frequent, small
// measurements, as [Notifier.Notify].
func (n *Notifier) Sample(ctx context.Context, eventType string, payload any) error {
	return n.Notify(ctx, PrioritySample, eventType, payload)
}
