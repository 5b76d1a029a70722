// Package api is the REST API of the compute example, the front door
// that users call over HTTP: it turns each request into calls to the
// conductor service through the conductor's rpcapi, with a request
// context per HTTP request.
//
// Routes (JSON bodies and responses):
//
//	POST   /v1/instances              {"name": ..., "flavor": ...} -> 202 {"instance": ...}
//	GET    /v1/instances              -> 200 {"instances": [...]}
//	GET    /v1/instances/{id}         -> 200 {"instance": ...}
//	POST   /v1/instances/{id}/reboot  {"type": "SOFT"|"HARD"} (optional) -> 200 {"instance": ...}
//	DELETE /v1/instances/{id}         -> 202 {"instance": ...}
//	GET    /v1/hosts                  -> 200 {"hosts": [...]}
//
// Errors are {"error": {"code": N, "message": ...}}: 400 for a bad
// request, 404 for an unknown instance, 409 for an instance whose state
// forbids the action or a reboot the conductor RPC version cap forbids,
// 503 when no compute host is known, 504 when the conductor does not
// answer in time.
//
// The headers X-User-Id and X-Project-Id name the caller (default
// "demo"), as an authentication middleware would after checking a
// token; every response carries the request's id in
// X-Openstack-Request-Id, the id every service logs and sends on.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	conductorapi "github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/internal/trace"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// Binary is the program name of the API service.
const Binary = "compute-api"

// RequestTimeout bounds the RPC calls of one HTTP request.
const RequestTimeout = 30 * time.Second

// DefaultUser is the user and project of requests without X-User-Id or
// X-Project-Id.
const DefaultUser = "demo"

// maxBody bounds request bodies.
const maxBody = 1 << 20

// ConductorAPI is what the API needs of the conductor: the methods of
// the conductor rpcapi.API.
type ConductorAPI interface {
	BuildInstance(ctx context.Context, name, flavor string) (objects.Instance, error)
	ListInstances(ctx context.Context) ([]objects.Instance, error)
	GetInstance(ctx context.Context, id string) (objects.Instance, error)
	RebootInstance(ctx context.Context, id, rebootType string) (objects.Instance, error)
	DeleteInstance(ctx context.Context, id string) (objects.Instance, error)
	ListHosts(ctx context.Context) ([]conductorapi.Host, error)
	// CanReboot reports whether the version cap allows reboot_instance.
	CanReboot() bool
}

var _ ConductorAPI = (*conductorapi.API)(nil)

// CreateRequest is the body of POST /v1/instances.
type CreateRequest struct {
	Name   string `json:"name"`
	Flavor string `json:"flavor"`
}

// RebootRequest is the optional body of POST /v1/instances/{id}/reboot.
type RebootRequest struct {
	Type string `json:"type"`
}

// InstanceResponse is the body of the responses about one instance.
type InstanceResponse struct {
	Instance objects.Instance `json:"instance"`
}

// InstancesResponse is the body of GET /v1/instances.
type InstancesResponse struct {
	Instances []objects.Instance `json:"instances"`
}

// HostsResponse is the body of GET /v1/hosts.
type HostsResponse struct {
	Hosts []conductorapi.Host `json:"hosts"`
}

// ErrorResponse is the body of an error response.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type handler struct {
	conductor ConductorAPI
	log       *trace.Log
	who       string
}

// NewHandler returns the REST API's handler, calling conductor and
// writing its trace to log (nil: none) as name.
func NewHandler(name string, conductor ConductorAPI, log *trace.Log) http.Handler {
	h := &handler{conductor: conductor, log: log, who: name}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/instances", h.create)
	mux.HandleFunc("GET /v1/instances", h.list)
	mux.HandleFunc("GET /v1/instances/{id}", h.show)
	mux.HandleFunc("POST /v1/instances/{id}/reboot", h.reboot)
	mux.HandleFunc("DELETE /v1/instances/{id}", h.remove)
	mux.HandleFunc("GET /v1/hosts", h.hosts)
	return h.withContext(mux)
}

// withContext gives each request a request context and a deadline.
func (h *handler) withContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := oslocontext.New()
		rc.UserID = headerOr(r, "X-User-Id", DefaultUser)
		rc.ProjectID = headerOr(r, "X-Project-Id", DefaultUser)
		rc.Roles = []string{"member"}
		w.Header().Set("X-Openstack-Request-Id", rc.RequestID)
		ctx, cancel := context.WithTimeout(oslocontext.NewContext(r.Context(), rc), RequestTimeout)
		defer cancel()
		h.log.Printf(h.who, "<- HTTP %s %s (%s)", r.Method, r.URL.Path, rc.RequestID)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func headerOr(r *http.Request, key, def string) string {
	if v := strings.TrimSpace(r.Header.Get(key)); v != "" {
		return v
	}
	return def
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if !decode(w, r, &req, false) {
		return
	}
	if strings.TrimSpace(req.Name) == "" || strings.TrimSpace(req.Flavor) == "" {
		writeError(w, http.StatusBadRequest, "name and flavor are required")
		return
	}
	h.log.Printf(h.who, "-> call build_instance to conductor")
	inst, err := h.conductor.BuildInstance(r.Context(), req.Name, req.Flavor)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Location", "/v1/instances/"+inst.ID)
	writeJSON(w, http.StatusAccepted, InstanceResponse{Instance: inst})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	insts, err := h.conductor.ListInstances(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	if insts == nil {
		insts = []objects.Instance{}
	}
	writeJSON(w, http.StatusOK, InstancesResponse{Instances: insts})
}

func (h *handler) show(w http.ResponseWriter, r *http.Request) {
	inst, err := h.conductor.GetInstance(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, InstanceResponse{Instance: inst})
}

func (h *handler) reboot(w http.ResponseWriter, r *http.Request) {
	var req RebootRequest
	if !decode(w, r, &req, true) {
		return
	}
	switch req.Type = strings.ToUpper(req.Type); req.Type {
	case "":
		req.Type = conductorapi.RebootSoft
	case conductorapi.RebootSoft, conductorapi.RebootHard:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reboot type %q is neither SOFT nor HARD", req.Type))
		return
	}
	if !h.conductor.CanReboot() {
		h.log.Printf(h.who, "-- reboot_instance needs conductor RPC 1.1, above this API's version cap: not sent")
		h.fail(w, conductorapi.ErrVersionCapped)
		return
	}
	h.log.Printf(h.who, "-> call reboot_instance (version 1.1) to conductor")
	inst, err := h.conductor.RebootInstance(r.Context(), r.PathValue("id"), req.Type)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, InstanceResponse{Instance: inst})
}

func (h *handler) remove(w http.ResponseWriter, r *http.Request) {
	h.log.Printf(h.who, "-> call delete_instance to conductor")
	inst, err := h.conductor.DeleteInstance(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, InstanceResponse{Instance: inst})
}

func (h *handler) hosts(w http.ResponseWriter, r *http.Request) {
	hosts, err := h.conductor.ListHosts(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	if hosts == nil {
		hosts = []conductorapi.Host{}
	}
	writeJSON(w, http.StatusOK, HostsResponse{Hosts: hosts})
}

// fail writes the response for an error of the conductor.
func (h *handler) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	msg := "internal error"
	var re *rpc.RemoteError
	switch {
	case errors.Is(err, objects.ErrNotFound):
		code, msg = http.StatusNotFound, remoteMessage(err)
	case errors.Is(err, objects.ErrInvalidState):
		code, msg = http.StatusConflict, remoteMessage(err)
	case errors.Is(err, conductorapi.ErrVersionCapped):
		code = http.StatusConflict
		msg = "reboot is not available: the conductor RPC API is capped below version 1.1 during an upgrade"
	case errors.Is(err, objects.ErrNoHost):
		code, msg = http.StatusServiceUnavailable, remoteMessage(err)
	case errors.As(err, &re) && re.Name() == "builtins.ValueError":
		code, msg = http.StatusBadRequest, re.Message
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, "the conductor did not answer in time"
	}
	h.log.Printf(h.who, "!! %d: %v", code, err)
	writeError(w, code, msg)
}

// remoteMessage returns the message of the remote error in err, without
// the RPC prefixes.
func remoteMessage(err error) string {
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		return re.Message
	}
	return err.Error()
}

// decode reads a JSON body into v; an empty body is accepted when
// optional. It writes a 400 response and returns false on failure.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil || (optional && errors.Is(err, io.EOF)) {
		return true
	}
	writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: ErrorBody{Code: code, Message: msg}})
}

// Server serves the REST API over HTTP until stopped.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	stopOnce sync.Once
	stopc    chan struct{}
	ready    chan struct{}
}

// NewServer listens on addr ("127.0.0.1:8774"; port 0 picks a free
// port) for the handler h; Run serves.
func NewServer(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Binary, err)
	}
	return &Server{
		srv:   &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:    ln,
		stopc: make(chan struct{}),
		ready: make(chan struct{}),
	}, nil
}

// URL returns the base URL of the API, "http://host:port".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Ready returns a channel closed once Run serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Stop asks Run to stop gracefully.
func (s *Server) Stop() { s.stopOnce.Do(func() { close(s.stopc) }) }

// Run serves until Stop or the end of ctx, then shuts down gracefully,
// letting the requests in progress finish within RequestTimeout. It
// returns nil after a graceful stop.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	close(s.ready)
	select {
	case err := <-served:
		return fmt.Errorf("%s: %w", Binary, err)
	case <-ctx.Done():
	case <-s.stopc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RequestTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		_ = s.srv.Close() // the requests still running are cut off
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
