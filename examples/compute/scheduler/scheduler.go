// Package scheduler is the scheduler service of the compute example.
// Several may run; each keeps its own view of the compute hosts from the
// update_host_state fanout casts every compute service sends, so that
// all of them see every host. (Placement itself is the conductor's
// round robin in this example.)
package scheduler

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// Binary is the program name of the scheduler service.
const Binary = "compute-scheduler"

// Manager holds a scheduler's view of the hosts and its RPC methods. It
// is safe for concurrent use.
type Manager struct {
	host string
	log  *trace.Log
	who  string

	mu      sync.Mutex
	updates int
	hosts   map[string]rpcapi.HostState
}

// NewManager returns the manager of the scheduler of host, writing its
// trace to log (nil: none).
func NewManager(host string, log *trace.Log) *Manager {
	return &Manager{host: host, log: log, who: "scheduler[" + host + "]", hosts: make(map[string]rpcapi.HostState)}
}

// Endpoints returns the scheduler's RPC endpoint, at rpcapi.APIVersion.
func (m *Manager) Endpoints() []*rpc.Endpoint {
	ep := &rpc.Endpoint{Version: rpcapi.APIVersion}
	rpc.Handle(ep, "update_host_state", m.UpdateHostState)
	rpc.Handle(ep, "get_host_states", m.GetHostStates)
	return []*rpc.Endpoint{ep}
}

// NewService returns the scheduler service of host on tr, serving m.
func NewService(tr *messaging.Transport, host string, m *Manager, opts ...service.Option) (*service.Service, error) {
	return service.New(tr, Binary, objects.SchedulerTopic, host, m.Endpoints(), opts...)
}

// UpdateHostState is update_host_state (1.0), a fanout cast: it keeps
// the newest state of the host.
func (m *Manager) UpdateHostState(_ context.Context, a rpcapi.UpdateHostStateArgs) (struct{}, error) {
	if a.State.Host == "" {
		return struct{}{}, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", "update_host_state without a host"))
	}
	m.mu.Lock()
	m.updates++
	cur, ok := m.hosts[a.State.Host]
	changed := !ok || !slices.Equal(cur.Instances, a.State.Instances)
	if !ok || !a.State.UpdatedAt.Before(cur.UpdatedAt) {
		m.hosts[a.State.Host] = a.State
	}
	m.mu.Unlock()
	if changed {
		m.log.Printf(m.who, "<- fanout update_host_state host=%s instances=%d", a.State.Host, len(a.State.Instances))
	}
	return struct{}{}, nil
}

// GetHostStates is get_host_states (1.0), a call: the scheduler's view.
func (m *Manager) GetHostStates(_ context.Context, _ struct{}) (rpcapi.Status, error) {
	return m.Status(), nil
}

// Status returns the scheduler's view.
func (m *Manager) Status() rpcapi.Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := rpcapi.Status{Scheduler: m.host, Updates: m.updates, Hosts: make([]rpcapi.HostState, 0, len(m.hosts))}
	for _, h := range m.hosts {
		st.Hosts = append(st.Hosts, h)
	}
	slices.SortFunc(st.Hosts, func(a, b rpcapi.HostState) int { return strings.Compare(a.Host, b.Host) })
	return st
}
