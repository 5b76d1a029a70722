// Package raw runs the benchmark modes of omsg bench on bare amqp091-go,
// without oslo's envelope or dispatch, to measure what the broker
// itself allows on the same machine with the same payloads and
// delivery guarantees. omsg bench reports the library's figures as a
// ratio to these.
//
// # Delivery guarantees
//
// They are those of the rabbit driver's defaults, so that the ratio
// measures overhead, not a weaker promise:
//
//   - calls and casts are published to a topic exchange, fanout casts to
//     the topic's fanout exchange, each with publisher confirms: a sender
//     waits for its confirm, and concurrent senders share one confirm
//     channel, where their publishes are pipelined;
//   - a server consumes its topic queue, its topic.server queue and a
//     fanout queue of its own with manual acknowledgement and a prefetch
//     of 64 (the library's default concurrency), acknowledges each
//     request on receipt, before handling it, and handles at most 64 at
//     a time;
//   - a reply goes to the default exchange with the caller's reply queue
//     as routing key, mandatory and confirmed; each client has one reply
//     queue, consumed with manual acknowledgement, where replies are
//     matched to calls by correlation id;
//   - a call's request expires with the call's timeout, as oslo's do;
//   - notifications go to a topic exchange and a queue that the notifier
//     declares, with confirms, and are acknowledged after handling.
//
// Messages carry the properties oslo gives them (JSON content type,
// delivery mode 2), but no queue is durable, so the broker keeps them in
// memory only. The body is the JSON array of the simulator's message,
// [seq, cargo, client_ts, server_ts, return_ts], and nothing else; the
// server answers the array with server_ts set. The --sync control
// messages are told apart by their AMQP type, "sync_start" or
// "sync_done", and carry {"id": ...}.
//
// The broker objects have the shape of oslo's (see topology.go) under
// names of their own, omsg_raw..., so that a raw run never mixes with a
// library or Python run on the same virtual host.
//
// # What is deliberately not done
//
// The code is the floor that a careful programmer writes without a
// library: one goroutine per sender in a closed loop, one goroutine per
// request being answered, and nothing beyond amqp091-go's API: no
// batching of its own, no reconnection, no retries. A connection or
// channel that fails ends the run with an error.
package raw

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-oslo/messaging/internal/bench"
)

// DefaultTimeout applies to each call or send when Config.Timeout is 0,
// as the simulator's --timeout default.
const DefaultTimeout = 3 * time.Second

// prefetch is the basic.qos of servers and the number of requests they
// handle at once: the library's default concurrency.
const prefetch = 64

// RPCServer serves the request/reply pattern until ctx is done, until
// cfg.Duration has passed since it became ready (when positive) or, when
// clients use --sync, until 1 s after the last client that started is
// done. It consumes the queues of cfg.Topic, of cfg.Topic + "." +
// cfg.Server (when Server is set) and a fanout queue of its own; calls
// ready, if not nil, once consuming; records a Received sample for each
// request (server_ts is the time of receipt), waits cfg.WaitBefore, then
// answers the requests that name a reply queue. At the end it cancels
// its consumers, lets the requests being handled reply for up to 5 s,
// deletes its fanout queue and closes its connections.
//
// It returns nil after a normal stop; an error wrapping
// bench.ErrInvalidConfig for an invalid cfg or URL (the latter also
// wraps driver.ErrInvalidURL); one wrapping bench.ErrUnreachable when no
// broker of the URL accepted a connection (refused, unknown host, failed
// handshake or login), or ctx.Err() when ctx ended before it could
// start; and an error naming the cause when a connection or channel
// failed.
func RPCServer(ctx context.Context, cfg *bench.Config, ready func(), rec bench.Recorder) error {
	if err := checkServer(cfg, rec); err != nil {
		return err
	}
	return serveRPC(ctx, cfg, ready, rec)
}

// RPCClient runs cfg.Threads closed-loop senders of calls (or casts with
// cfg.Cast, or fanout casts with cfg.Fanout), sender i to cfg.Targets[i
// modulo their number] ("topic" or "topic.server"; cfg.Topic and
// cfg.Server when there are none). The senders start on the next whole
// second and send for cfg.Duration, or cfg.Messages each when Duration is
// 0, pausing cfg.WaitAfter after each message. Each message is recorded
// as Sent before it is published, then as Failed when its send or call
// fails or takes longer than cfg.Timeout, or as RoundTrip when its reply
// arrives. With cfg.Sync each sender reports its start and end to the
// servers. After sending, RPCClient waits cfg.ExitWait, deletes its reply
// queue and closes its connections.
//
// It returns nil once sending ended, by count, by time or because ctx
// was done; errors as RPCServer's when it could not start (a fanout call
// is an invalid cfg); and an error naming the cause when a connection or
// channel failed during the run, which ends it.
func RPCClient(ctx context.Context, cfg *bench.Config, rec bench.Recorder) error {
	targets, err := checkClient(cfg, rec)
	if err != nil {
		return err
	}
	if cfg.Fanout && !cfg.Cast {
		return invalid("a fanout message cannot be a call (use --is-cast)")
	}
	return runRPCClient(ctx, cfg, targets, rec)
}

// NotifyServer consumes the notification queue of cfg.Topic until ctx is
// done or cfg.Duration has passed (when positive), recording a Received sample for each message and acknowledging
// it after handling. With cfg.Requeue, the first message seen with each
// seq is requeued, after a pause of cfg.WaitBefore, as the simulator's
// notification endpoint does (which waits only then). It calls ready, if
// not nil, once consuming. It returns as RPCServer does.
func NotifyServer(ctx context.Context, cfg *bench.Config, ready func(), rec bench.Recorder) error {
	if err := checkServer(cfg, rec); err != nil {
		return err
	}
	return serveNotify(ctx, cfg, ready, rec)
}

// NotifyClient runs cfg.Threads closed-loop senders of notifications to
// cfg.Topic, each confirmed by the broker, as RPCClient runs casts. It
// declares the notification queue first, as oslo's notifier does, so
// that nothing is lost before a server consumes. It returns as RPCClient
// does.
func NotifyClient(ctx context.Context, cfg *bench.Config, rec bench.Recorder) error {
	if _, err := checkClient(cfg, rec); err != nil {
		return err
	}
	if cfg.Topic == "" {
		return invalid("a topic is required")
	}
	return runNotifyClient(ctx, cfg, rec)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("raw: %w: %s", bench.ErrInvalidConfig, fmt.Sprintf(format, args...))
}

func checkCommon(cfg *bench.Config, rec bench.Recorder) error {
	switch {
	case cfg == nil:
		return invalid("no configuration")
	case rec == nil:
		return invalid("no recorder")
	case cfg.Duration < 0:
		return invalid("negative duration %v", cfg.Duration)
	case cfg.Timeout < 0:
		return invalid("negative timeout %v", cfg.Timeout)
	case cfg.WaitAfter < 0:
		return invalid("negative wait after each message %v", cfg.WaitAfter)
	case cfg.WaitBefore < 0:
		return invalid("negative wait before each answer %v", cfg.WaitBefore)
	case cfg.ExitWait < 0:
		return invalid("negative exit wait %v", cfg.ExitWait)
	}
	return nil
}

func checkServer(cfg *bench.Config, rec bench.Recorder) error {
	if err := checkCommon(cfg, rec); err != nil {
		return err
	}
	if cfg.Topic == "" {
		return invalid("a topic is required")
	}
	return nil
}

// target is where a sender sends: topic, or topic.server.
type target struct {
	topic, server string
}

// key is the routing key of the target on the RPC exchange.
func (t target) key() string {
	if t.server == "" {
		return t.topic
	}
	return t.topic + "." + t.server
}

func checkClient(cfg *bench.Config, rec bench.Recorder) ([]target, error) {
	if err := checkCommon(cfg, rec); err != nil {
		return nil, err
	}
	switch {
	case cfg.Threads < 1:
		return nil, invalid("%d threads: at least 1 is needed", cfg.Threads)
	case cfg.Messages < 0:
		return nil, invalid("negative message count %d", cfg.Messages)
	case len(cfg.Payloads) == 0:
		return nil, invalid("no payloads")
	}
	switch cfg.Sync {
	case "", "call", "fanout":
	default:
		return nil, invalid("sync %q: want call or fanout", cfg.Sync)
	}
	words := cfg.Targets
	if len(words) == 0 {
		if cfg.Topic == "" {
			return nil, invalid("no target and no topic")
		}
		w := cfg.Topic
		if cfg.Server != "" {
			w += "." + cfg.Server
		}
		words = []string{w}
	}
	targets := make([]target, 0, len(words))
	for _, w := range words {
		topic, server, _ := strings.Cut(w, ".")
		if topic == "" {
			return nil, invalid("target %q has no topic", w)
		}
		targets = append(targets, target{topic: topic, server: server})
	}
	return targets, nil
}

// timeout is the limit of each call or send.
func timeout(cfg *bench.Config) time.Duration {
	if cfg.Timeout == 0 {
		return DefaultTimeout
	}
	return cfg.Timeout
}
