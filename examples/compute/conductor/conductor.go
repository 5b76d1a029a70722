// Package conductor is the conductor service of the compute example:
// it keeps the table of instances (the example has no database), places
// new instances on the compute hosts that report to it, and relays the
// API's requests to the compute service of each instance's host.
package conductor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	computeapi "github.com/go-oslo/messaging/examples/compute/compute/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
	"github.com/go-oslo/messaging/wire"
)

// Binary is the program name of the conductor service.
const Binary = "compute-conductor"

// ComputeAPI is what the conductor needs of the compute services: the
// methods of the compute rpcapi.API.
type ComputeAPI interface {
	BuildAndRunInstance(ctx context.Context, inst objects.Instance) error
	RebootInstance(ctx context.Context, inst objects.Instance, rebootType string) (objects.Instance, error)
	TerminateInstance(ctx context.Context, inst objects.Instance) error
}

var _ ComputeAPI = (*computeapi.API)(nil)

// Manager holds the conductor's state and RPC methods. It is safe for
// concurrent use.
type Manager struct {
	compute ComputeAPI
	log     *trace.Log
	who     string

	mu        sync.Mutex
	instances map[string]objects.Instance // by ID; deleted ones are kept as tombstones
	hosts     map[string]time.Time        // compute host -> last report
	next      int                         // round-robin position
}

// NewManager returns the manager of the conductor of host, which reaches
// the compute services through compute and writes its trace to log
// (nil: none).
func NewManager(host string, compute ComputeAPI, log *trace.Log) *Manager {
	return &Manager{
		compute:   compute,
		log:       log,
		who:       "conductor[" + host + "]",
		instances: make(map[string]objects.Instance),
		hosts:     make(map[string]time.Time),
	}
}

// Endpoints returns the conductor's RPC endpoint, at rpcapi.APIVersion.
func (m *Manager) Endpoints() []*rpc.Endpoint {
	ep := &rpc.Endpoint{Version: rpcapi.APIVersion}
	// 1.0
	rpc.Handle(ep, "build_instance", m.BuildInstance)
	rpc.Handle(ep, "list_instances", m.ListInstances)
	rpc.Handle(ep, "get_instance", m.GetInstance)
	rpc.Handle(ep, "delete_instance", m.DeleteInstance)
	rpc.Handle(ep, "list_hosts", m.ListHosts)
	rpc.Handle(ep, "report_host", m.ReportHost)
	rpc.Handle(ep, "instance_update", m.InstanceUpdate)
	// 1.1
	rpc.Handle(ep, "reboot_instance", m.RebootInstance)
	return []*rpc.Endpoint{ep}
}

// NewService returns the conductor service of host on tr, serving m.
func NewService(tr *messaging.Transport, host string, m *Manager, opts ...service.Option) (*service.Service, error) {
	return service.New(tr, Binary, objects.ConductorTopic, host, m.Endpoints(), opts...)
}

func requestID(ctx context.Context) string {
	if rc, ok := oslocontext.FromContext(ctx); ok {
		return rc.RequestID
	}
	return "-"
}

func notFound(id string) error {
	return rpc.Expected(rpc.NewRemoteError(objects.ExcNotFound, fmt.Sprintf("instance %s could not be found", id)))
}

func invalidState(inst objects.Instance, action string) error {
	return rpc.Expected(rpc.NewRemoteError(objects.ExcInvalidState,
		fmt.Sprintf("cannot %s instance %s in state %s", action, inst.ID, inst.State)))
}

// BuildInstance is build_instance (1.0): it records a new instance,
// places it on the next known compute host (round robin), casts
// build_and_run_instance to that host, and returns the record.
func (m *Manager) BuildInstance(ctx context.Context, a rpcapi.BuildInstanceArgs) (objects.Instance, error) {
	if strings.TrimSpace(a.Name) == "" || strings.TrimSpace(a.Flavor) == "" {
		return objects.Instance{}, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", "an instance needs a name and a flavor"))
	}
	rc, _ := oslocontext.FromContext(ctx)
	project := ""
	if rc != nil {
		project = rc.ProjectID
	}
	now := time.Now().UTC()
	inst := objects.Instance{
		ID: wire.NewUUID(), Name: a.Name, Flavor: a.Flavor, ProjectID: project,
		State: objects.StateBuilding, Revision: 1, CreatedAt: now, UpdatedAt: now,
	}
	m.mu.Lock()
	hosts := m.sortedHostsLocked()
	if len(hosts) == 0 {
		m.mu.Unlock()
		return objects.Instance{}, rpc.Expected(rpc.NewRemoteError(objects.ExcNoHost, "no compute host has reported to the conductor"))
	}
	inst.Host = hosts[m.next%len(hosts)]
	m.next++
	m.instances[inst.ID] = inst
	m.mu.Unlock()

	m.log.Printf(m.who, "<- call build_instance name=%s flavor=%s (%s)", a.Name, a.Flavor, requestID(ctx))
	m.log.Printf(m.who, "-> cast build_and_run_instance to compute.%s instance=%s", inst.Host, inst.ID)
	if err := m.compute.BuildAndRunInstance(ctx, inst); err != nil {
		failed := inst
		failed.State, failed.Revision, failed.UpdatedAt = objects.StateError, inst.Revision+1, time.Now().UTC()
		m.store(failed)
		return objects.Instance{}, fmt.Errorf("sending instance %s to host %s: %w", inst.ID, inst.Host, err)
	}
	return inst, nil
}

// ListInstances is list_instances (1.0): the instances not deleted,
// oldest first.
func (m *Manager) ListInstances(ctx context.Context, _ struct{}) ([]objects.Instance, error) {
	m.log.Printf(m.who, "<- call list_instances (%s)", requestID(ctx))
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]objects.Instance, 0, len(m.instances))
	for _, inst := range m.instances {
		if inst.State != objects.StateDeleted {
			out = append(out, inst)
		}
	}
	slices.SortFunc(out, func(a, b objects.Instance) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// GetInstance is get_instance (1.0).
func (m *Manager) GetInstance(ctx context.Context, a rpcapi.InstanceArgs) (objects.Instance, error) {
	m.log.Printf(m.who, "<- call get_instance %s (%s)", a.InstanceID, requestID(ctx))
	inst, ok := m.lookup(a.InstanceID)
	if !ok {
		return objects.Instance{}, notFound(a.InstanceID)
	}
	return inst, nil
}

// RebootInstance is reboot_instance (1.1): it calls reboot_instance on
// the instance's host and returns the rebooted instance.
func (m *Manager) RebootInstance(ctx context.Context, a rpcapi.RebootInstanceArgs) (objects.Instance, error) {
	m.log.Printf(m.who, "<- call reboot_instance %s type=%s (version 1.1, %s)", a.InstanceID, a.RebootType, requestID(ctx))
	inst, ok := m.lookup(a.InstanceID)
	if !ok {
		return objects.Instance{}, notFound(a.InstanceID)
	}
	if inst.State != objects.StateActive {
		return objects.Instance{}, invalidState(inst, "reboot")
	}
	rt := a.RebootType
	if rt == "" {
		rt = rpcapi.RebootSoft
	}
	m.log.Printf(m.who, "-> call reboot_instance to compute.%s instance=%s", inst.Host, inst.ID)
	out, err := m.compute.RebootInstance(ctx, inst, rt)
	if err != nil {
		return objects.Instance{}, err
	}
	return m.store(out), nil
}

// DeleteInstance is delete_instance (1.0): it marks the instance
// deleting, casts terminate_instance to its host, and returns the
// record.
func (m *Manager) DeleteInstance(ctx context.Context, a rpcapi.InstanceArgs) (objects.Instance, error) {
	m.log.Printf(m.who, "<- call delete_instance %s (%s)", a.InstanceID, requestID(ctx))
	m.mu.Lock()
	inst, ok := m.instances[a.InstanceID]
	if !ok || inst.State == objects.StateDeleted {
		m.mu.Unlock()
		return objects.Instance{}, notFound(a.InstanceID)
	}
	if inst.State == objects.StateBuilding || inst.State == objects.StateRebooting {
		m.mu.Unlock()
		return objects.Instance{}, invalidState(inst, "delete")
	}
	inst.State, inst.Revision, inst.UpdatedAt = objects.StateDeleting, inst.Revision+1, time.Now().UTC()
	m.instances[inst.ID] = inst
	m.mu.Unlock()

	m.log.Printf(m.who, "-> cast terminate_instance to compute.%s instance=%s", inst.Host, inst.ID)
	if err := m.compute.TerminateInstance(ctx, inst); err != nil {
		return objects.Instance{}, fmt.Errorf("sending the deletion of %s to host %s: %w", inst.ID, inst.Host, err)
	}
	return inst, nil
}

// ListHosts is list_hosts (1.0): the compute hosts that reported, by
// name.
func (m *Manager) ListHosts(ctx context.Context, _ struct{}) ([]rpcapi.Host, error) {
	m.log.Printf(m.who, "<- call list_hosts (%s)", requestID(ctx))
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]rpcapi.Host, 0, len(m.hosts))
	for _, h := range m.sortedHostsLocked() {
		out = append(out, rpcapi.Host{Host: h, LastSeen: m.hosts[h]})
	}
	return out, nil
}

// ReportHost is report_host (1.0), a cast: it records that a compute
// host is alive.
func (m *Manager) ReportHost(_ context.Context, a rpcapi.ReportHostArgs) (struct{}, error) {
	if a.Host == "" {
		return struct{}{}, rpc.Expected(rpc.NewRemoteError("builtins.ValueError", "report_host without a host"))
	}
	m.mu.Lock()
	_, known := m.hosts[a.Host]
	m.hosts[a.Host] = time.Now().UTC()
	m.mu.Unlock()
	if !known {
		m.log.Printf(m.who, "<- cast report_host: compute host %s is new", a.Host)
	}
	return struct{}{}, nil
}

// InstanceUpdate is instance_update (1.0), a cast: it stores the record
// a compute host sends, unless the conductor has a newer one.
func (m *Manager) InstanceUpdate(ctx context.Context, a rpcapi.InstanceUpdateArgs) (struct{}, error) {
	got := m.store(a.Instance)
	if got.Revision == a.Instance.Revision {
		m.log.Printf(m.who, "<- cast instance_update %s state=%s host=%s (%s)", a.Instance.ID, a.Instance.State, a.Instance.Host, requestID(ctx))
	}
	return struct{}{}, nil
}

// Instances returns every record, deleted ones included, for tests and
// diagnostics.
func (m *Manager) Instances() map[string]objects.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]objects.Instance, len(m.instances))
	for k, v := range m.instances {
		out[k] = v
	}
	return out
}

// store keeps inst unless the table has a newer revision, and returns
// the record kept.
func (m *Manager) store(inst objects.Instance) objects.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.instances[inst.ID]; ok && cur.Revision >= inst.Revision {
		return cur
	}
	m.instances[inst.ID] = inst
	return inst
}

func (m *Manager) lookup(id string) (objects.Instance, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.instances[id]
	if !ok || inst.State == objects.StateDeleted {
		return objects.Instance{}, false
	}
	return inst, true
}

func (m *Manager) sortedHostsLocked() []string {
	hosts := make([]string, 0, len(m.hosts))
	for h := range m.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return hosts
}
