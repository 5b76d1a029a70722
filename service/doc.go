// Package service runs an RPC service the way OpenStack services run: the
// Go form of oslo.service's Service and launcher, as Nova, Cinder or
// Neutron build every one of their daemons on them.
//
// # Architecture
//
// An OpenStack service has four parts; this package provides the second
// and ties the others together:
//
//  1. The command, a main package per daemon (nova-compute,
//     nova-conductor, ...), opens the transport, builds the manager and
//     the service, and runs it.
//  2. The [Service], named by its binary, serves its manager's endpoints
//     on a topic and a host, runs the manager's periodic tasks, and
//     handles the process's signals.
//  3. The manager holds the service's state and its RPC methods,
//     registered on one or more rpc.Endpoint values with a namespace and a
//     version.
//  4. The RPC API, a small client package per service (the rpcapi
//     module of OpenStack projects), wraps rpc.Client calls in typed
//     functions; the other services import it to call this one.
//
// A compute service in this shape:
//
//	// compute/manager.go: the RPC methods.
//	type Manager struct{ /* hypervisor, database, ... */ }
//
//	func (m *Manager) StartInstance(ctx context.Context, a StartArgs) (struct{}, error) {
//		rc, _ := oslocontext.FromContext(ctx) // the caller's user, project, request id
//		...
//	}
//
//	func (m *Manager) Endpoints() []*rpc.Endpoint {
//		ep := &rpc.Endpoint{Namespace: "compute", Version: "5.0"}
//		rpc.Handle(ep, "start_instance", m.StartInstance)
//		return []*rpc.Endpoint{ep}
//	}
//
//	// compute/rpcapi.go: what other services call.
//	type API struct{ c *rpc.Client }
//
//	func NewAPI(tr *messaging.Transport) (*API, error) {
//		c, err := rpc.NewClient(tr, messaging.Target{Topic: "compute", Namespace: "compute", Version: "5.0"},
//			rpc.WithSerializer(oslocontext.Serializer{}))
//		return &API{c: c}, err
//	}
//
//	func (a *API) StartInstance(ctx context.Context, host, instance string) error {
//		return a.c.Prepare(rpc.ToServer(host)).Cast(ctx, "start_instance", StartArgs{Instance: instance})
//	}
//
//	// cmd/nova-compute/main.go: the command.
//	func main() {
//		tr, err := messaging.Open(os.Getenv("TRANSPORT_URL"), messaging.WithControlExchange("nova"))
//		...
//		defer tr.Close()
//		host, _ := os.Hostname()
//		m := &compute.Manager{...}
//		svc, err := service.New(tr, "nova-compute", "compute", host, m.Endpoints(),
//			service.WithReload(m.ReloadConfig))
//		...
//		svc.AddPeriodicTask("update_available_resource", time.Minute, m.UpdateAvailableResource)
//		if err := svc.Run(context.Background()); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// Callers pass an oslocontext.RequestContext in their ctx
// (oslocontext.NewContext); the services' serializer,
// oslocontext.Serializer, sends it with the message, gives it to the
// handler, and sends it on with the calls the handler makes with its
// ctx.
//
// # Signals and lifecycle
//
// [Service.Run] listens (and fails at once if it cannot), serves, runs
// the periodic tasks, and handles signals until told to stop:
//
//   - SIGHUP calls the reload function of [WithReload], and the service
//     keeps running;
//   - SIGTERM and SIGINT stop the service gracefully: the server stops
//     consuming, the running requests finish and send their replies
//     within the drain timeout ([WithDrainTimeout], 60s by default), the
//     periodic tasks are cancelled, and Run returns nil once everything
//     has stopped; a second SIGTERM or SIGINT cuts the drain short;
//   - [Service.Stop] and the end of Run's context stop it the same way.
//
// [WithSignals] replaces the process's signals by a channel, for tests
// and for programs that handle signals themselves.
//
// # Periodic tasks
//
// [Service.AddPeriodicTask] adds a task that runs every interval on a
// goroutine of its own, as oslo's periodic_task decorator does: runs are
// spaced from the start of the previous run, never overlap (runs that
// fall due during a slow run are skipped), errors and panics are logged
// and the task goes on.
//
// # Differences from oslo.service
//
//   - SIGINT stops gracefully, as SIGTERM does, where oslo exits at once.
//   - Without a reload function SIGHUP is ignored; oslo restarts the
//     service in a daemon and stops it in a terminal.
//   - Each periodic task runs on its own goroutine, so a slow task does
//     not delay the others, and has no random jitter: use InitialDelay
//     to spread the tasks of many hosts.
//   - A drain that does not finish makes Run return an error
//     (ErrDrainIncomplete) once every goroutine has returned, where oslo
//     exits the process.
//   - One service per process, with no worker processes: run more
//     processes, or more goroutines with rpc.WithMaxConcurrency.
//
// # Logging
//
// The service logs with log/slog (the transport's logger unless
// [WithLogger]), adding the attributes "binary", "topic" and "host";
// periodic tasks add "task" and the run's "request_id".
package service
