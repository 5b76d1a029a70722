package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-oslo/messaging"
)

// Errors of the modes.
var (
	// ErrInvalidConfig is wrapped by the error of a mode given a Config
	// it cannot run: no topic, a malformed target, no senders, an
	// unknown --sync, a transport URL that does not parse.
	ErrInvalidConfig = errors.New("bench: invalid configuration")
	// ErrUnreachable is wrapped by the error of a mode that could not
	// reach the broker before starting.
	ErrUnreachable = errors.New("bench: broker unreachable")
)

// DefaultTimeout bounds each call or send of a client whose Config sets
// no Timeout: the simulator's --timeout default.
const DefaultTimeout = 3 * time.Second

// Bounds of the steps of a run that the Config does not bound.
const (
	reachTimeout  = 10 * time.Second // a server's first contact with the broker
	listenTimeout = 30 * time.Second // until a server consumes
	drainTimeout  = 10 * time.Second // a stopping server's running handlers
)

// syncStopDelay is how long a server serves on after its last
// synchronised client said it was done, as the simulator's --sync.
const syncStopDelay = time.Second

type loggerKey struct{}

// ContextWithLogger returns a copy of ctx that makes the modes run with
// ctx log on l: the library's transport, clients and servers. Without
// it they log on slog.Default().
func ContextWithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// connect opens the transport of cfg.URL and checks, within timeout,
// that its broker can be reached; on failure it closes the transport.
func connect(ctx context.Context, cfg *Config, timeout time.Duration) (*messaging.Transport, error) {
	tr, err := messaging.Open(cfg.URL, messaging.WithLogger(loggerFrom(ctx)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := reach(ctx, tr, timeout); err != nil {
		_ = tr.Close()
		return nil, err
	}
	return tr, nil
}

// reach checks, within timeout, that the broker of tr can be reached.
func reach(ctx context.Context, tr *messaging.Transport, timeout time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := tr.Ping(pctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, tr.URL(), err)
	}
}

// Sleep waits for d or until ctx is done, and reports whether d
// elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextSecond returns the next whole second after now: when the
// simulator's senders start.
func nextSecond(now time.Time) time.Time {
	return time.Unix(now.Unix()+1, 0)
}

// finisher is implemented by Recorders that take the end of the run,
// such as *Stats.
type finisher interface{ Finish() }

// finish ends the run of rec, if it keeps one.
func finish(rec Recorder) {
	if f, ok := rec.(finisher); ok {
		f.Finish()
	}
}

// target is a client's target: topic.server, split at the first dot.
type target struct{ topic, server string }

// ParseTarget splits s, a -tg word, into topic and server at its first
// dot, as the simulator does; the server is empty when s has no dot
// (the call goes to any server of the topic).
func ParseTarget(s string) (topic, server string, err error) {
	topic, server, _ = strings.Cut(s, ".")
	if topic == "" {
		return "", "", fmt.Errorf("%w: target %q has no topic (want TOPIC.SERVER)", ErrInvalidConfig, s)
	}
	return topic, server, nil
}

// clientSetup checks the settings common to clients and returns the
// targets of cfg and its cargos, encoded as JSON strings.
func clientSetup(cfg *Config, needTargets bool) ([]target, [][]byte, []int, error) {
	switch {
	case cfg == nil:
		return nil, nil, nil, fmt.Errorf("%w: no configuration", ErrInvalidConfig)
	case cfg.Threads < 1:
		return nil, nil, nil, fmt.Errorf("%w: %d senders (-p), want at least 1", ErrInvalidConfig, cfg.Threads)
	case cfg.Duration < 0:
		return nil, nil, nil, fmt.Errorf("%w: negative duration (-l)", ErrInvalidConfig)
	case cfg.Duration == 0 && cfg.Messages < 1:
		return nil, nil, nil, fmt.Errorf("%w: %d messages per sender (-m) and no duration (-l)", ErrInvalidConfig, cfg.Messages)
	}
	var targets []target
	if needTargets {
		if len(cfg.Targets) == 0 {
			return nil, nil, nil, fmt.Errorf("%w: no target (-tg)", ErrInvalidConfig)
		}
		for _, s := range cfg.Targets {
			tp, srv, err := ParseTarget(s)
			if err != nil {
				return nil, nil, nil, err
			}
			targets = append(targets, target{tp, srv})
		}
	} else if cfg.Topic == "" {
		return nil, nil, nil, fmt.Errorf("%w: no topic (-tp)", ErrInvalidConfig)
	}
	payloads := cfg.Payloads
	if len(payloads) == 0 {
		n := MaxPayloads
		if cfg.Duration == 0 {
			n = cfg.Messages
		}
		payloads = Payloads(n, 0, nil)
	}
	cargos := make([][]byte, len(payloads))
	sizes := make([]int, len(payloads))
	for i, p := range payloads {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: cargo %d: %w", ErrInvalidConfig, i, err)
		}
		cargos[i] = b
		sizes[i] = utf8.RuneCountInString(p)
	}
	return targets, cargos, sizes, nil
}

// sendFunc sends the message in body and returns the reply of a call,
// nil for a cast or a notification.
type sendFunc func(ctx context.Context, body []byte) (json.RawMessage, error)

// sender is one of a client's closed-loop senders.
type sender struct {
	id     int
	cfg    *Config
	rec    Recorder
	cargos [][]byte
	sizes  []int
	// prefix and suffix enclose the message array in the body sent:
	// {"message": and } for RPC, nothing for notifications.
	prefix, suffix string
	send           sendFunc
	// syncStart and syncDone, for --sync, report the sender's start and
	// end to the server; they report whether they succeeded.
	syncStart, syncDone func(ctx context.Context) bool
}

// run sends messages from start until deadline (cfg.Duration) or for
// cfg.Messages messages, or until ctx is done. Errors are recorded.
func (s *sender) run(ctx context.Context, start time.Time) {
	if !Sleep(ctx, time.Until(start)) {
		return
	}
	timeout := s.cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var deadline time.Time
	if s.cfg.Duration > 0 {
		deadline = start.Add(s.cfg.Duration)
	}
	pos := rand.IntN(len(s.cargos))
	synced := false
	for seq := int64(0); ctx.Err() == nil; seq++ {
		if deadline.IsZero() && seq >= int64(s.cfg.Messages) {
			break
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		if s.syncStart != nil && !synced {
			synced = s.syncStart(ctx)
		}
		s.one(ctx, seq, pos, timeout)
		pos = (pos + 1) % len(s.cargos)
		if s.cfg.WaitAfter > 0 && !Sleep(ctx, s.cfg.WaitAfter) {
			break
		}
	}
	if synced && s.syncDone != nil {
		s.syncDone(ctx)
	}
}

// one sends message seq with cargo pos and records its outcome.
func (s *sender) one(ctx context.Context, seq int64, pos int, timeout time.Duration) {
	cargo, size := s.cargos[pos], s.sizes[pos]
	clientTS := Now()
	body := make([]byte, 0, len(s.prefix)+len(cargo)+len(s.suffix)+48)
	body = append(body, s.prefix...)
	body = appendMessage(body, seq, cargo, clientTS)
	body = append(body, s.suffix...)
	s.rec.Record(Sample{Kind: Sent, Sender: s.id, Seq: seq, Size: size, ClientTS: clientTS})

	cctx, cancel := context.WithTimeout(ctx, timeout)
	reply, err := s.send(cctx, body)
	cancel()
	if err != nil {
		s.rec.Record(Sample{Kind: Failed, Sender: s.id, Seq: seq, Size: size, ClientTS: clientTS, Err: err})
		return
	}
	if reply == nil {
		return
	}
	returnTS := Now()
	m, err := parseMessage(reply)
	if err != nil {
		s.rec.Record(Sample{Kind: Failed, Sender: s.id, Seq: seq, Size: size, ClientTS: clientTS,
			Err: fmt.Errorf("bench: the reply to message %d: %w", seq, err)})
		return
	}
	s.rec.Record(Sample{Kind: RoundTrip, Sender: s.id, Seq: m.seq, Size: size,
		ClientTS: m.clientTS, ServerTS: m.serverTS, ReturnTS: returnTS})
}
