// Package billing is the billing service of the compute example: it
// consumes the compute.instance.* notifications in a listener pool of
// its own, "billing-usage", records when each instance started and stopped
// being billable, and answers get_usage over RPC.
package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/billing/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// Binary is the program name of the billing service.
const Binary = "compute-billing"

// Pool is the notification listener pool of the billing service: every
// pool gets its own copy of each notification, so billing misses none
// whatever other listeners consume.
//
// On RabbitMQ a pool's queue is named after the pool, in the same
// namespace as the RPC queues: a pool called "billing" would share the
// queue of the RPC topic "billing", and each consumer would receive the
// other's messages. Hence a name that no RPC topic uses.
const Pool = "billing-usage"

// ShutdownTimeout bounds the wait for the notification handlers when the
// service stops.
const ShutdownTimeout = 30 * time.Second

// Manager holds the usage records and the RPC and notification
// handlers. It is safe for concurrent use.
type Manager struct {
	log *trace.Log
	who string

	mu    sync.Mutex
	usage map[string]*rpcapi.Usage
}

// NewManager returns the manager of the billing service of host,
// writing its trace to log (nil: none).
func NewManager(host string, log *trace.Log) *Manager {
	return &Manager{log: log, who: "billing[" + host + "]", usage: make(map[string]*rpcapi.Usage)}
}

// Endpoints returns the billing service's RPC endpoint.
func (m *Manager) Endpoints() []*rpc.Endpoint {
	ep := &rpc.Endpoint{Version: rpcapi.APIVersion}
	rpc.Handle(ep, "get_usage", m.GetUsage)
	return []*rpc.Endpoint{ep}
}

// NotificationEndpoint returns the endpoint of the billing listener: the
// info notifications whose event type starts with compute.instance.
func (m *Manager) NotificationEndpoint() *notify.Endpoint {
	return &notify.Endpoint{
		Filter: notify.Filter{EventType: `^compute\.instance\.`},
		Info:   m.Record,
	}
}

// Record handles one compute.instance.* notification.
func (m *Manager) Record(_ context.Context, n *notify.Notification) error {
	inst, ok := decodeInstance(n.Payload)
	if !ok {
		// Not an instance: nothing to bill, and no point in a redelivery.
		m.log.Printf(m.who, "!! %s from %s without an instance payload: dropped", n.EventType, n.PublisherID)
		return nil
	}
	at, err := n.Time()
	if err != nil {
		at = time.Now().UTC()
	}
	m.mu.Lock()
	u := m.usage[inst.ID]
	if u == nil {
		u = &rpcapi.Usage{InstanceID: inst.ID}
		m.usage[inst.ID] = u
	}
	u.Name, u.ProjectID, u.Flavor, u.Host = inst.Name, inst.ProjectID, inst.Flavor, inst.Host
	u.Events = append(u.Events, n.EventType)
	switch n.EventType {
	case objects.EventCreateEnd:
		u.Started = &at
	case objects.EventDeleteEnd:
		u.Ended = &at
	}
	m.mu.Unlock()
	m.log.Printf(m.who, "<- notification %s %s from %s", n.EventType, inst.ID, n.PublisherID)
	return nil
}

// decodeInstance decodes a notification payload that is an instance.
func decodeInstance(payload json.RawMessage) (objects.Instance, bool) {
	var inst objects.Instance
	if json.Unmarshal(payload, &inst) != nil || inst.ID == "" {
		return objects.Instance{}, false
	}
	return inst, true
}

// GetUsage is get_usage (1.0): the usage records by instance ID.
func (m *Manager) GetUsage(_ context.Context, _ struct{}) ([]rpcapi.Usage, error) {
	return m.Usage(), nil
}

// Usage returns copies of the usage records, sorted by instance ID.
func (m *Manager) Usage() []rpcapi.Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]rpcapi.Usage, 0, len(m.usage))
	for _, u := range m.usage {
		c := *u
		c.Events = slices.Clone(u.Events)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b rpcapi.Usage) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out
}

// Service is the billing service: an RPC service and a notification
// listener that start and stop together.
type Service struct {
	svc   *service.Service
	lis   *notify.Listener
	ready chan struct{}
}

// NewService returns the billing service of host on tr, serving m. opts
// configure its RPC service (signals, logger, ...).
func NewService(tr *messaging.Transport, host string, m *Manager, opts ...service.Option) (*Service, error) {
	svc, err := service.New(tr, Binary, objects.BillingTopic, host, m.Endpoints(), opts...)
	if err != nil {
		return nil, err
	}
	lis, err := notify.NewListener(tr, []messaging.Target{{Topic: objects.NotificationsTopic}},
		[]*notify.Endpoint{m.NotificationEndpoint()}, notify.WithPool(Pool))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Binary, err)
	}
	return &Service{svc: svc, lis: lis, ready: make(chan struct{})}, nil
}

// Ready returns a channel closed once the listener consumes and the RPC
// service serves.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Stop asks Run to stop gracefully, as the RPC service's Stop.
func (s *Service) Stop() { s.svc.Stop() }

// Run starts the listener, runs the RPC service until it stops (on
// SIGTERM, SIGINT, Stop or the end of ctx, as service.Service.Run), and
// then stops the listener, waiting for its handlers for at most
// ShutdownTimeout.
func (s *Service) Run(ctx context.Context) error {
	if err := s.lis.Listen(ctx); err != nil {
		return fmt.Errorf("%s: listening for notifications: %w", Binary, err)
	}
	served := make(chan error, 1)
	go func() { served <- s.lis.Serve(context.WithoutCancel(ctx)) }()

	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-s.svc.Ready():
			close(s.ready)
		case <-done:
		}
	}()
	runErr := s.svc.Run(ctx)
	close(done)
	<-watched

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutErr := s.lis.Shutdown(sctx)
	if shutErr != nil {
		_ = s.lis.Close()
	}
	serveErr := <-served
	if errors.Is(serveErr, notify.ErrListenerClosed) {
		serveErr = nil
	}
	return errors.Join(runErr, shutErr, serveErr)
}
