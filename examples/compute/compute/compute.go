// Package compute is the compute service of the compute example: one
// runs on every compute host, "boots", reboots and deletes the instances
// the conductor sends it (their state lives in the service's memory, in
// place of a hypervisor), emits the compute.instance.* notifications,
// reports its host to the conductor, and tells every scheduler about
// its instances with a fanout cast.
package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/compute/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	schedulerapi "github.com/go-oslo/messaging/examples/compute/scheduler/rpcapi"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/service"
)

// Binary is the program name of the compute service.
const Binary = "compute-compute"

// DefaultReportInterval is how often a compute service reports its host
// to the conductor and the schedulers.
const DefaultReportInterval = 10 * time.Second

// ConductorAPI is what the compute service needs of the conductor.
type ConductorAPI interface {
	ReportHost(ctx context.Context, host string) error
	InstanceUpdate(ctx context.Context, inst objects.Instance) error
}

// SchedulerAPI is what the compute service needs of the schedulers.
type SchedulerAPI interface {
	UpdateHostState(ctx context.Context, st schedulerapi.HostState) error
}

// Manager holds the state and RPC methods of the compute service of one
// host. It is safe for concurrent use.
type Manager struct {
	host      string
	conductor ConductorAPI
	scheduler SchedulerAPI
	notifier  *notify.Notifier
	log       *trace.Log
	who       string

	// BootDelay is how long "booting" an instance takes; zero boots at
	// once. Set it before the service runs.
	BootDelay time.Duration

	mu        sync.Mutex
	instances map[string]objects.Instance // the instances of this host
}

// NewManager returns the manager of the compute service of host. It
// emits its notifications as publisher "compute.<host>" with the
// messagingv2 driver on tr.
func NewManager(tr *messaging.Transport, host string, conductor ConductorAPI, scheduler SchedulerAPI, log *trace.Log) (*Manager, error) {
	n, err := notify.NewNotifier(tr, "compute."+host,
		notify.WithSinks(notify.LogErrors(notify.MessagingV2())),
		notify.WithTopics(objects.NotificationsTopic))
	if err != nil {
		return nil, fmt.Errorf("compute %s: %w", host, err)
	}
	return &Manager{
		host: host, conductor: conductor, scheduler: scheduler, notifier: n, log: log,
		who:       "compute[" + host + "]",
		instances: make(map[string]objects.Instance),
	}, nil
}

// Endpoints returns the compute service's RPC endpoint, at
// rpcapi.APIVersion.
func (m *Manager) Endpoints() []*rpc.Endpoint {
	ep := &rpc.Endpoint{Version: rpcapi.APIVersion}
	rpc.Handle(ep, "build_and_run_instance", m.BuildAndRunInstance)
	rpc.Handle(ep, "reboot_instance", m.RebootInstance)
	rpc.Handle(ep, "terminate_instance", m.TerminateInstance)
	return []*rpc.Endpoint{ep}
}

// NewService returns the compute service of host on tr, serving m and
// running its periodic report every interval (0: DefaultReportInterval),
// the first at once.
func NewService(tr *messaging.Transport, host string, m *Manager, interval time.Duration, opts ...service.Option) (*service.Service, error) {
	svc, err := service.New(tr, Binary, objects.ComputeTopic, host, m.Endpoints(), opts...)
	if err != nil {
		return nil, err
	}
	if interval == 0 {
		interval = DefaultReportInterval
	}
	if err := svc.AddPeriodicTask("report_state", interval, m.ReportState, service.RunImmediately(true)); err != nil {
		return nil, err
	}
	return svc, nil
}

// BuildAndRunInstance is build_and_run_instance (1.0), a cast: it boots
// the instance, emitting compute.instance.create.start and .end, sends
// the active record to the conductor and the host's state to the
// schedulers.
func (m *Manager) BuildAndRunInstance(ctx context.Context, a rpcapi.InstanceArgs) (struct{}, error) {
	inst := a.Instance
	if inst.Host != m.host {
		return struct{}{}, rpc.Expected(rpc.NewRemoteError("builtins.ValueError",
			fmt.Sprintf("instance %s is for host %s, not %s", inst.ID, inst.Host, m.host)))
	}
	m.log.Printf(m.who, "<- cast build_and_run_instance %s name=%s (%s)", inst.ID, inst.Name, requestID(ctx))
	m.mu.Lock()
	if _, dup := m.instances[inst.ID]; dup {
		m.mu.Unlock()
		return struct{}{}, nil // a duplicate delivery: already built
	}
	m.instances[inst.ID] = inst
	m.mu.Unlock()

	m.emit(ctx, objects.EventCreateStart, inst)
	if m.BootDelay > 0 {
		t := time.NewTimer(m.BootDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	inst = m.change(inst, func(i *objects.Instance) { i.State = objects.StateActive })
	m.emit(ctx, objects.EventCreateEnd, inst)
	return struct{}{}, errors.Join(m.sendUpdate(ctx, inst), m.sendHostState(ctx))
}

// RebootInstance is reboot_instance (1.0), a call: it reboots an active
// instance of this host, emitting compute.instance.reboot.start and
// .end, and returns its record.
func (m *Manager) RebootInstance(ctx context.Context, a rpcapi.RebootInstanceArgs) (objects.Instance, error) {
	m.log.Printf(m.who, "<- call reboot_instance %s type=%s (%s)", a.Instance.ID, a.RebootType, requestID(ctx))
	m.mu.Lock()
	inst, ok := m.instances[a.Instance.ID]
	if !ok {
		m.mu.Unlock()
		return objects.Instance{}, rpc.Expected(rpc.NewRemoteError(objects.ExcNotFound,
			fmt.Sprintf("instance %s is not on host %s", a.Instance.ID, m.host)))
	}
	if inst.State != objects.StateActive {
		m.mu.Unlock()
		return objects.Instance{}, rpc.Expected(rpc.NewRemoteError(objects.ExcInvalidState,
			fmt.Sprintf("cannot reboot instance %s in state %s", inst.ID, inst.State)))
	}
	inst.Revision = max(inst.Revision, a.Instance.Revision) + 1
	inst.State, inst.UpdatedAt = objects.StateRebooting, time.Now().UTC()
	m.instances[inst.ID] = inst
	m.mu.Unlock()

	m.emit(ctx, objects.EventRebootStart, inst)
	inst = m.change(inst, func(i *objects.Instance) {
		i.State = objects.StateActive
		i.Reboots++
	})
	m.emit(ctx, objects.EventRebootEnd, inst)
	return inst, nil
}

// TerminateInstance is terminate_instance (1.0), a cast: it deletes the
// instance from this host, emitting compute.instance.delete.start and
// .end, sends the deleted record to the conductor and the host's state
// to the schedulers.
func (m *Manager) TerminateInstance(ctx context.Context, a rpcapi.InstanceArgs) (struct{}, error) {
	m.log.Printf(m.who, "<- cast terminate_instance %s (%s)", a.Instance.ID, requestID(ctx))
	m.mu.Lock()
	inst, ok := m.instances[a.Instance.ID]
	if !ok {
		inst = a.Instance // unknown here: still report it deleted, so the conductor's record ends
	}
	inst.Revision = max(inst.Revision, a.Instance.Revision)
	inst.State = objects.StateDeleting
	delete(m.instances, inst.ID)
	m.mu.Unlock()

	m.emit(ctx, objects.EventDeleteStart, inst)
	inst.State, inst.Revision, inst.UpdatedAt = objects.StateDeleted, inst.Revision+1, time.Now().UTC()
	m.emit(ctx, objects.EventDeleteEnd, inst)
	return struct{}{}, errors.Join(m.sendUpdate(ctx, inst), m.sendHostState(ctx))
}

// ReportState is the periodic task report_state: it casts report_host
// to the conductor and the host's state to every scheduler.
func (m *Manager) ReportState(ctx context.Context) error {
	if err := m.conductor.ReportHost(ctx, m.host); err != nil {
		return fmt.Errorf("report_host: %w", err)
	}
	return m.scheduler.UpdateHostState(ctx, m.hostState())
}

// Instances returns the instances of this host, for tests and
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

// change applies fn to the host's record of inst with a new revision,
// stores and returns it.
func (m *Manager) change(inst objects.Instance, fn func(*objects.Instance)) objects.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.instances[inst.ID]; ok {
		inst = cur
	}
	fn(&inst)
	inst.Revision++
	inst.UpdatedAt = time.Now().UTC()
	m.instances[inst.ID] = inst
	return inst
}

func (m *Manager) hostState() schedulerapi.HostState {
	m.mu.Lock()
	ids := make([]string, 0, len(m.instances))
	for id := range m.instances {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	slices.Sort(ids)
	return schedulerapi.HostState{Host: m.host, Instances: ids, UpdatedAt: time.Now().UTC()}
}

// emit sends a notification with the request context of ctx; a failure
// is logged by the notifier's sink, as oslo never fails its caller for
// a notification.
func (m *Manager) emit(ctx context.Context, event string, inst objects.Instance) {
	if rc, ok := oslocontext.FromContext(ctx); ok {
		ctx = messaging.NewOutgoingContext(ctx, rc.Metadata())
	}
	m.log.Printf(m.who, "-> notify %s %s", event, inst.ID)
	_ = m.notifier.Info(ctx, event, inst)
}

// sendUpdate casts the record of inst to the conductor. Its error
// fails the handler, whose error the RPC server logs.
func (m *Manager) sendUpdate(ctx context.Context, inst objects.Instance) error {
	m.log.Printf(m.who, "-> cast instance_update %s state=%s to conductor", inst.ID, inst.State)
	if err := m.conductor.InstanceUpdate(ctx, inst); err != nil {
		return fmt.Errorf("instance_update %s: %w", inst.ID, err)
	}
	return nil
}

// sendHostState casts the host's state to every scheduler.
func (m *Manager) sendHostState(ctx context.Context) error {
	st := m.hostState()
	m.log.Printf(m.who, "-> fanout cast update_host_state instances=%d to every scheduler", len(st.Instances))
	if err := m.scheduler.UpdateHostState(ctx, st); err != nil {
		return fmt.Errorf("update_host_state: %w", err)
	}
	return nil
}

func requestID(ctx context.Context) string {
	if rc, ok := oslocontext.FromContext(ctx); ok {
		return rc.RequestID
	}
	return "-"
}
