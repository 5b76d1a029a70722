package oslocontext

import (
	"context"
	"maps"
	"slices"

	"github.com/go-oslo/messaging/wire"
)

// RequestContext is the security and request context of one request:
// oslo.context's RequestContext. Each field names the key that carries
// it in oslo's context dictionary; see [FromMetadata] for the aliases
// that are accepted too.
//
// An empty string stands for Python's None: it is sent as null. The zero
// value is a context with no identity, no request id and
// IsAdminProject false; [New] makes one with oslo's defaults.
//
// A RequestContext is a plain value: it is not safe for concurrent
// modification, and one taken from a context.Context (see [FromContext])
// should be copied with [RequestContext.Clone] before being changed.
type RequestContext struct {
	// UserID is the Keystone user id: "user" (to_dict's key) and
	// "user_id" (the services' key).
	UserID string
	// ProjectID is the Keystone project id: "project_id" and "project".
	ProjectID string
	// DomainID is the domain of a domain-scoped token: "domain".
	DomainID string
	// UserDomainID is the domain of the user: "user_domain".
	UserDomainID string
	// ProjectDomainID is the domain of the project: "project_domain".
	ProjectDomainID string
	// SystemScope is the system scope of a token, "all" for the whole
	// deployment: "system_scope".
	SystemScope string

	// UserName is "user_name".
	UserName string
	// ProjectName is "project_name".
	ProjectName string
	// DomainName is "domain_name".
	DomainName string
	// UserDomainName is "user_domain_name".
	UserDomainName string
	// ProjectDomainName is "project_domain_name".
	ProjectDomainName string

	// Roles are the role names of the token: "roles". It is sent as an
	// empty list when nil, as oslo does.
	Roles []string
	// AuthToken is the Keystone token of the caller: "auth_token". It is
	// never printed or logged.
	AuthToken string

	// IsAdmin is "is_admin".
	IsAdmin bool
	// IsAdminProject reports whether the project is the deployment's
	// admin project: "is_admin_project". oslo defaults it to true when
	// the key is missing, and so does FromMetadata.
	IsAdminProject bool
	// ReadOnly is "read_only".
	ReadOnly bool
	// ShowDeleted is "show_deleted".
	ShowDeleted bool

	// RequestID identifies the request in this service's logs:
	// "request_id", "req-<uuid4>".
	RequestID string
	// GlobalRequestID is the request id of the first service of a chain
	// of requests, if it was given: "global_request_id".
	GlobalRequestID string
	// ResourceUUID is "resource_uuid".
	ResourceUUID string

	// Extra holds the other keys of the dictionary, such as those a
	// service's own context adds, with their values as received. They
	// are sent on as they are, except keys that name a field above,
	// which are ignored.
	Extra map[string]any
}

// NewRequestID returns a new request id in oslo's format, "req-"
// followed by a random UUID (version 4): oslo.context's
// generate_request_id().
func NewRequestID() string { return "req-" + wire.NewUUID() }

// New returns a context with oslo's defaults for a new RequestContext: a
// new request id, and IsAdminProject true.
func New() *RequestContext {
	return &RequestContext{RequestID: NewRequestID(), IsAdminProject: true}
}

// NewAdmin returns a new administrator context with no identity and no
// token, as oslo.context's get_admin_context() makes for work that no
// user requested, such as periodic tasks.
func NewAdmin() *RequestContext {
	rc := New()
	rc.IsAdmin = true
	return rc
}

// GlobalID returns the id to pass on to other services:
// GlobalRequestID if set, else RequestID (oslo's global_id).
func (rc RequestContext) GlobalID() string {
	if rc.GlobalRequestID != "" {
		return rc.GlobalRequestID
	}
	return rc.RequestID
}

// Clone returns a copy of rc that shares no slice or map with it. The
// values of Extra are not copied.
func (rc *RequestContext) Clone() *RequestContext {
	if rc == nil {
		return nil
	}
	c := *rc
	c.Roles = slices.Clone(rc.Roles)
	c.Extra = maps.Clone(rc.Extra)
	return &c
}

type contextKey struct{}

// NewContext returns a copy of ctx carrying rc. rc is not copied: do not
// modify it afterwards.
func NewContext(ctx context.Context, rc *RequestContext) context.Context {
	return context.WithValue(ctx, contextKey{}, rc)
}

// FromContext returns the RequestContext that NewContext attached to
// ctx, or that the [Serializer] of an RPC server made from the caller's
// context dictionary. It reports false when ctx carries none.
func FromContext(ctx context.Context) (*RequestContext, bool) {
	rc, ok := ctx.Value(contextKey{}).(*RequestContext)
	return rc, ok && rc != nil
}
