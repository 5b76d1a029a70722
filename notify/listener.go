package notify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/ctxutil"
)

// Listener states.
const (
	stateNew = iota
	stateServing
	stateClosed
)

// Listener consumes the notifications of its targets and dispatches
// them to endpoints: oslo's notification listener (and, made with
// [NewBatchListener], its batch listener).
//
// Its lifecycle is rpc.Server's, after net/http: [Listener.Listen]
// starts consuming (oslo's start()); [Listener.Serve] blocks while
// dispatching; [Listener.Shutdown] stops consuming and waits for the
// running handlers and their acknowledgements; [Listener.Close] stops
// at once, cancelling handlers. A Listener serves once. Its methods are
// safe for concurrent use.
//
// Handlers run on goroutines owned by Serve, at most
// WithMaxConcurrency at a time (for a batch listener, that many
// batches); Serve returns only after all of them have.
type Listener struct {
	tr           *messaging.Transport
	conn         driver.NotifyConn
	targets      []messaging.Target
	subs         []driver.NotifyTarget
	cfg          listenerConfig
	endpoints    []endpoint
	batchSize    int // 0 for a listener without batches
	batchTimeout time.Duration
	seen         *dedup

	mu        sync.Mutex // guards the fields below
	state     int
	listening bool // Listen started
	listener  driver.NotifyListener
	closed    bool               // Close was called
	cancel    context.CancelFunc // cancels handler contexts
	stopNext  context.CancelFunc // stops taking notifications
	quit      chan struct{}      // closed by Shutdown and Close
	done      chan struct{}      // closed when Serve returns
}

// NewListener returns a listener that consumes the notifications of
// targets (each needs a Topic; Exchange defaults to the transport's
// control exchange; other fields are ignored) at the priorities the
// endpoints handle, and dispatches them to the endpoints in order. It
// does no I/O; call [Listener.Serve] to start.
//
// It fails with an error wrapping messaging.ErrInvalidTarget when there
// is no target or a target has no topic (oslo: "A target must have
// topic specified"), messaging.ErrInvalidOption for an invalid option,
// a nil endpoint, a malformed filter or endpoints that handle no
// priority, and an error naming the driver when the transport does not
// support notifications.
func NewListener(tr *messaging.Transport, targets []messaging.Target, endpoints []*Endpoint, opts ...ListenerOption) (*Listener, error) {
	eps := make([]endpoint, 0, len(endpoints))
	for i, e := range endpoints {
		if e == nil {
			return nil, fmt.Errorf("%w: endpoint %d is nil", messaging.ErrInvalidOption, i)
		}
		ep, err := e.compile(i)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", messaging.ErrInvalidOption, err)
		}
		eps = append(eps, ep)
	}
	return newListener(tr, targets, eps, 0, 0, opts)
}

// NewBatchListener returns a listener like [NewListener] whose
// endpoints receive notifications in batches (oslo's batch listener):
// a batch is dispatched once it holds batchSize notifications, or
// batchTimeout after its first notification arrived, whichever comes
// first; a zero batchTimeout waits for full batches. The notifications
// of a batch are grouped by priority, and each group goes to the
// endpoints as in [NewListener]; a requeue asked for by an endpoint
// requeues the whole group. batchSize must be at least 1 and
// batchTimeout not negative, else the error wraps
// messaging.ErrInvalidOption.
func NewBatchListener(tr *messaging.Transport, targets []messaging.Target, endpoints []*BatchEndpoint, batchSize int, batchTimeout time.Duration, opts ...ListenerOption) (*Listener, error) {
	if batchSize < 1 {
		return nil, fmt.Errorf("%w: batch size %d is below 1", messaging.ErrInvalidOption, batchSize)
	}
	if batchTimeout < 0 {
		return nil, fmt.Errorf("%w: batch timeout %v is negative", messaging.ErrInvalidOption, batchTimeout)
	}
	eps := make([]endpoint, 0, len(endpoints))
	for i, e := range endpoints {
		if e == nil {
			return nil, fmt.Errorf("%w: endpoint %d is nil", messaging.ErrInvalidOption, i)
		}
		ep, err := e.compile(i)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", messaging.ErrInvalidOption, err)
		}
		eps = append(eps, ep)
	}
	return newListener(tr, targets, eps, batchSize, batchTimeout, opts)
}

func newListener(tr *messaging.Transport, targets []messaging.Target, eps []endpoint, batchSize int, batchTimeout time.Duration, opts []ListenerOption) (*Listener, error) {
	if tr == nil {
		return nil, errors.New("notify: NewListener with a nil transport")
	}
	conn, ok := tr.Conn().(driver.NotifyConn)
	if !ok {
		return nil, fmt.Errorf("notify: the %T driver does not support notifications", tr.Conn())
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: a notification listener needs at least one target", messaging.ErrInvalidTarget)
	}
	var prios []string
	for i, p := range priorities {
		for _, ep := range eps {
			if ep.handles(i) {
				prios = append(prios, string(p))
				break
			}
		}
	}
	if len(prios) == 0 {
		return nil, fmt.Errorf("%w: no endpoint handles any priority", messaging.ErrInvalidOption)
	}
	l := &Listener{
		tr:           tr,
		conn:         conn,
		targets:      append([]messaging.Target{}, targets...),
		endpoints:    eps,
		batchSize:    batchSize,
		batchTimeout: batchTimeout,
		seen:         newDedup(dedupWindow, dedupMax),
		cfg: listenerConfig{
			maxConcurrency: DefaultMaxConcurrency,
			serializer:     messaging.NoOpSerializer{},
			logger:         tr.Logger(),
		},
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for _, t := range targets {
		if t.Topic == "" {
			return nil, fmt.Errorf("%w: a target must have topic specified: %v", messaging.ErrInvalidTarget, t)
		}
		l.subs = append(l.subs, driver.NotifyTarget{Exchange: tr.Address(t).Exchange, Topic: t.Topic, Priorities: prios})
	}
	for _, o := range opts {
		if err := o.applyListener(&l.cfg); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Targets returns the listener's targets.
func (l *Listener) Targets() []messaging.Target {
	return append([]messaging.Target{}, l.targets...)
}

// prefetch is the number of unacknowledged notifications the driver
// may hand over: one per handler, or for a batch listener the batches
// being handled and the one being collected.
func (l *Listener) prefetch() int {
	if l.batchSize == 0 {
		return l.cfg.maxConcurrency
	}
	n := (l.cfg.maxConcurrency + 1) * l.batchSize
	if n > math.MaxUint16 || n <= 0 {
		n = math.MaxUint16 // AMQP's largest prefetch count
	}
	return n
}

// Listen declares the listener's queues and starts consuming, and
// returns once notifications can be received: oslo's start().
// Notifications that arrive before Serve is called wait, within the
// prefetch bound. Calling Listen is optional (Serve listens if needed),
// but a program that must not miss the notifications sent right after
// starting a listener on a new pool should call Listen first.
//
// It returns ErrListenerClosed if the listener was shut down, also
// while Listen was still connecting, an error if it is already
// listening, and the driver's error if consuming cannot start.
func (l *Listener) Listen(ctx context.Context) error {
	l.mu.Lock()
	if l.state == stateClosed {
		l.mu.Unlock()
		return ErrListenerClosed
	}
	if l.listening {
		l.mu.Unlock()
		return errors.New("notify: listener already listening")
	}
	l.listening = true
	quit := l.quit
	l.mu.Unlock()

	// Shutdown and Close end a Listen still connecting.
	ctx, cancel := ctxutil.CancelOn(ctx, quit)
	defer cancel()
	lis, err := l.conn.ListenNotifications(ctx, l.subs, l.cfg.pool, driver.ListenOptions{Prefetch: l.prefetch()})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.listening = false
		if l.closingLocked() {
			return ErrListenerClosed
		}
		return fmt.Errorf("notify: listen %v: %w", l.targets, err)
	}
	if l.closingLocked() {
		_ = lis.Close()
		return ErrListenerClosed
	}
	l.listener = lis
	return nil
}

// Serve dispatches notifications until [Listener.Shutdown] or
// [Listener.Close] is called, when it returns ErrListenerClosed, or
// until ctx is done, when it returns ctx.Err(). It calls
// [Listener.Listen] first unless that was done. Handler contexts derive
// from ctx. Serve returns only after every handler it started has
// returned, and then stops consuming: notifications received but not
// yet acknowledged go back to their queue.
//
// It returns ErrListenerClosed at once if the listener was already shut
// down, an error if Serve was already called or Listen is still in
// progress, and the driver's error if consuming cannot start or stops
// for good (an error matching messaging.ErrClosed when the transport is
// closed).
func (l *Listener) Serve(ctx context.Context) error {
	l.mu.Lock()
	switch l.state {
	case stateServing:
		l.mu.Unlock()
		return errors.New("notify: Serve called twice")
	case stateClosed:
		l.mu.Unlock()
		return ErrListenerClosed
	}
	if l.listening && l.listener == nil {
		l.mu.Unlock()
		return errors.New("notify: Serve called while Listen is in progress")
	}
	l.state = stateServing
	hctx, cancel := context.WithCancel(ctx)
	nctx, stopNext := context.WithCancel(ctx)
	l.cancel, l.stopNext = cancel, stopNext
	needListen := !l.listening
	l.mu.Unlock()
	defer close(l.done)
	defer cancel()
	defer stopNext()

	if needListen {
		if err := l.Listen(ctx); err != nil {
			return err
		}
	}
	l.mu.Lock()
	lis := l.listener
	l.mu.Unlock()

	var wg sync.WaitGroup
	var err error
	if l.batchSize > 0 {
		err = l.batchLoop(ctx, nctx, hctx, lis, &wg)
	} else {
		err = l.loop(ctx, nctx, hctx, lis, &wg)
	}
	wg.Wait()
	_ = lis.Close()
	return err
}

// stopped returns Serve's error once it stops taking notifications:
// ErrListenerClosed after Shutdown or Close, else ctx.Err(), else the
// driver's err.
func (l *Listener) stopped(ctx context.Context, err error) error {
	switch {
	case l.closing():
		return ErrListenerClosed
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return fmt.Errorf("notify: serve %v: %w", l.targets, err)
	}
}

// loop takes notifications one by one and handles each on its own
// goroutine, at most maxConcurrency at once.
func (l *Listener) loop(ctx, nctx, hctx context.Context, lis driver.NotifyListener, wg *sync.WaitGroup) error {
	slots := make(chan struct{}, l.cfg.maxConcurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-nctx.Done():
			return l.stopped(ctx, nctx.Err())
		}
		d, err := lis.Next(nctx)
		if err != nil {
			<-slots
			return l.stopped(ctx, err)
		}
		wg.Go(func() {
			defer func() { <-slots }()
			l.handle(hctx, d)
		})
	}
}

// batchLoop collects batches and handles each on its own goroutine, at
// most maxConcurrency at once. On Shutdown the batch being collected is
// handled; on Close, or when ctx ends, it is left unacknowledged.
func (l *Listener) batchLoop(ctx, nctx, hctx context.Context, lis driver.NotifyListener, wg *sync.WaitGroup) error {
	slots := make(chan struct{}, l.cfg.maxConcurrency)
	var batch []driver.NotifyDelivery
	var deadline time.Time
	flush := func() {
		if len(batch) == 0 || hctx.Err() != nil {
			return
		}
		select {
		case slots <- struct{}{}:
		case <-hctx.Done():
			return
		}
		b := batch
		batch = nil
		wg.Go(func() {
			defer func() { <-slots }()
			l.handleBatch(hctx, b)
		})
	}
	for {
		var d driver.NotifyDelivery
		var err error
		if len(batch) == 0 || l.batchTimeout == 0 {
			d, err = lis.Next(nctx)
		} else {
			bctx, cancel := context.WithDeadline(nctx, deadline)
			d, err = lis.Next(bctx)
			expired := bctx.Err() != nil && nctx.Err() == nil
			cancel()
			if err != nil && expired {
				flush()
				continue
			}
		}
		if err != nil {
			if l.shuttingDown() {
				flush()
			}
			return l.stopped(ctx, err)
		}
		if len(batch) == 0 {
			deadline = time.Now().Add(l.batchTimeout)
		}
		batch = append(batch, d)
		if len(batch) >= l.batchSize {
			flush()
		}
	}
}

func (l *Listener) closing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closingLocked()
}

// shuttingDown reports whether Shutdown, and not Close, stopped the
// listener.
func (l *Listener) shuttingDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closingLocked() && !l.closed
}

func (l *Listener) closingLocked() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

// stopLocked moves the listener to the closed state and stops taking
// notifications. It reports whether Serve had been started.
func (l *Listener) stopLocked() (started bool) {
	started = l.state == stateServing
	l.state = stateClosed
	if !l.closingLocked() {
		close(l.quit)
	}
	if l.stopNext != nil {
		l.stopNext()
	}
	return started
}

// Shutdown stops taking notifications, then waits until the running
// handlers have returned and their notifications are acknowledged or
// requeued (a batch listener first dispatches the batch it was
// collecting), or until ctx is done, when it returns ctx.Err() and
// leaves the handlers running (call Close to cancel them). Serve then
// stops consuming; notifications the driver had prefetched go back to
// their queue. Shutdown is idempotent; on a listener that never served
// it only marks it closed, and stops a consumer started by Listen.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	started := l.stopLocked()
	if !started && l.listener != nil {
		_ = l.listener.Close() // Listen without Serve
	}
	l.mu.Unlock()
	if !started {
		select {
		case <-l.done:
		default:
			return nil // never served
		}
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops consuming at once and cancels the contexts of running
// handlers. It does not wait for them: Serve returns once they have.
// Notifications not yet acknowledged, including those being handled,
// go back to their queue and are delivered again (at least once).
// Close is idempotent and returns nil.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.stopLocked()
	if l.listener != nil {
		_ = l.listener.Close()
	}
	cancel := l.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return nil
}
