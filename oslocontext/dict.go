package oslocontext

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-oslo/messaging"
)

// ErrInvalidContext is wrapped by the errors of [FromMetadata] for a
// dictionary whose known keys hold values of the wrong type.
var ErrInvalidContext = errors.New("oslocontext: invalid request context")

// stringField maps a string field to its dictionary keys.
type stringField struct {
	// read are the keys the field is read from, the first non-null one
	// winning; write are those it is sent as.
	read, write []string
	field       func(*RequestContext) *string
}

// stringFields lists the string fields in the order of oslo.context's
// to_dict. The aliases are the keys from_dict or the services' contexts
// use: "user_id" (Nova, Cinder, Neutron), "project" (to_dict writes it
// too), "tenant" (older releases), and the *_id forms of the domains.
var stringFields = []stringField{
	{read: []string{"user", "user_id"}, write: []string{"user", "user_id"}, field: func(rc *RequestContext) *string { return &rc.UserID }},
	{read: []string{"project_id", "project", "tenant"}, write: []string{"project_id", "project"}, field: func(rc *RequestContext) *string { return &rc.ProjectID }},
	{read: []string{"system_scope"}, field: func(rc *RequestContext) *string { return &rc.SystemScope }},
	{read: []string{"domain", "domain_id"}, write: []string{"domain"}, field: func(rc *RequestContext) *string { return &rc.DomainID }},
	{read: []string{"user_domain", "user_domain_id"}, write: []string{"user_domain"}, field: func(rc *RequestContext) *string { return &rc.UserDomainID }},
	{read: []string{"project_domain", "project_domain_id"}, write: []string{"project_domain"}, field: func(rc *RequestContext) *string { return &rc.ProjectDomainID }},
	{read: []string{"auth_token"}, field: func(rc *RequestContext) *string { return &rc.AuthToken }},
	{read: []string{"request_id"}, field: func(rc *RequestContext) *string { return &rc.RequestID }},
	{read: []string{"global_request_id"}, field: func(rc *RequestContext) *string { return &rc.GlobalRequestID }},
	{read: []string{"resource_uuid"}, field: func(rc *RequestContext) *string { return &rc.ResourceUUID }},
	{read: []string{"user_name"}, field: func(rc *RequestContext) *string { return &rc.UserName }},
	{read: []string{"project_name"}, field: func(rc *RequestContext) *string { return &rc.ProjectName }},
	{read: []string{"domain_name"}, field: func(rc *RequestContext) *string { return &rc.DomainName }},
	{read: []string{"user_domain_name"}, field: func(rc *RequestContext) *string { return &rc.UserDomainName }},
	{read: []string{"project_domain_name"}, field: func(rc *RequestContext) *string { return &rc.ProjectDomainName }},
}

// boolField maps a bool field to its dictionary key.
type boolField struct {
	key     string
	missing bool // the value when the key is absent; null is false
	field   func(*RequestContext) *bool
}

var boolFields = []boolField{
	{key: "is_admin", field: func(rc *RequestContext) *bool { return &rc.IsAdmin }},
	{key: "read_only", field: func(rc *RequestContext) *bool { return &rc.ReadOnly }},
	{key: "show_deleted", field: func(rc *RequestContext) *bool { return &rc.ShowDeleted }},
	{key: "is_admin_project", missing: true, field: func(rc *RequestContext) *bool { return &rc.IsAdminProject }},
}

const (
	keyRoles        = "roles"
	keyUserIdentity = "user_identity" // derived: read never, written always
)

// knownKeys are the keys that map to fields; the others go to Extra.
var knownKeys = func() map[string]bool {
	m := map[string]bool{keyRoles: true, keyUserIdentity: true}
	for _, f := range stringFields {
		for _, k := range f.read {
			m[k] = true
		}
	}
	for _, f := range boolFields {
		m[f.key] = true
	}
	return m
}()

// FromMetadata makes a RequestContext from oslo's context dictionary, as
// oslo.context's RequestContext.from_dict does, and as the services'
// subclasses do for the keys they add:
//
//   - UserID from "user", else "user_id"; ProjectID from "project_id",
//     else "project", else "tenant"; DomainID, UserDomainID and
//     ProjectDomainID from "domain", "user_domain" and
//     "project_domain", else their "_id" forms;
//   - a missing or empty "request_id" gets a new one ([NewRequestID]),
//     and a missing "is_admin_project" is true, as in oslo;
//   - null stands for an empty string, false or no roles;
//   - "user_identity", which is derived from the ids, is ignored;
//   - every other key is kept in Extra, with its value.
//
// String fields take strings or null, boolean fields booleans or null,
// "roles" a list of strings or null; any other value is an error
// wrapping ErrInvalidContext. A nil md gives the context of an empty
// dictionary. md is not modified nor retained, but the values in Extra
// are shared with it.
func FromMetadata(md messaging.Metadata) (*RequestContext, error) {
	rc := &RequestContext{}
	for _, f := range stringFields {
		for _, k := range f.read {
			s, ok, err := stringValue(md, k)
			if err != nil {
				return nil, err
			}
			if ok {
				*f.field(rc) = s
				break
			}
		}
	}
	for _, f := range boolFields {
		v, present := md[f.key]
		switch v := v.(type) {
		case nil:
			*f.field(rc) = !present && f.missing
		case bool:
			*f.field(rc) = v
		default:
			return nil, invalid(f.key, v, "a boolean")
		}
	}
	roles, err := rolesValue(md[keyRoles])
	if err != nil {
		return nil, err
	}
	rc.Roles = roles
	if rc.RequestID == "" {
		rc.RequestID = NewRequestID()
	}
	for k, v := range md {
		if knownKeys[k] {
			continue
		}
		if rc.Extra == nil {
			rc.Extra = make(map[string]any)
		}
		rc.Extra[k] = v
	}
	return rc, nil
}

// stringValue returns the string of md[k]. It reports false when the key
// is absent or null.
func stringValue(md messaging.Metadata, k string) (string, bool, error) {
	switch v := md[k].(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	default:
		return "", false, invalid(k, v, "a string")
	}
}

func rolesValue(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []string:
		roles := make([]string, len(v))
		copy(roles, v)
		return roles, nil
	case []any:
		roles := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, invalid(keyRoles, v, "a list of strings")
			}
			roles[i] = s
		}
		return roles, nil
	default:
		return nil, invalid(keyRoles, v, "a list of strings")
	}
}

// invalid describes a value of the wrong type. The value itself is not
// shown: it may be a secret.
func invalid(key string, v any, want string) error {
	return fmt.Errorf("%w: %q holds a %T, want %s", ErrInvalidContext, key, v, want)
}

// Metadata returns rc as oslo's context dictionary, the value to send
// with messaging.NewOutgoingContext: the keys of oslo.context's to_dict
// ("user", "project_id", "system_scope", "project", "domain",
// "user_domain", "project_domain", "is_admin", "read_only",
// "show_deleted", "auth_token", "request_id", "global_request_id",
// "resource_uuid", "roles", "user_identity", "is_admin_project"), plus
// "user_id" and the names ("user_name", "project_name", "domain_name",
// "user_domain_name", "project_domain_name"), which the services'
// contexts read, plus the keys of Extra. Empty strings are sent as null,
// nil Roles as an empty list. The map is new; the values of Extra are
// shared.
//
// The result includes the token: to print a context, print rc itself.
func (rc RequestContext) Metadata() messaging.Metadata {
	md := make(messaging.Metadata, len(rc.Extra)+24)
	for k, v := range rc.Extra {
		if !knownKeys[k] {
			md[k] = v
		}
	}
	for _, f := range stringFields {
		v := nullable(*f.field(&rc))
		keys := f.write
		if keys == nil {
			keys = f.read[:1]
		}
		for _, k := range keys {
			md[k] = v
		}
	}
	for _, f := range boolFields {
		md[f.key] = *f.field(&rc)
	}
	roles := make([]string, len(rc.Roles))
	copy(roles, rc.Roles)
	md[keyRoles] = roles
	md[keyUserIdentity] = rc.UserIdentity()
	return md
}

// UserIdentity returns oslo's user_identity string, "user project
// domain user_domain project_domain", with "-" for each missing id.
func (rc RequestContext) UserIdentity() string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return dash(rc.UserID) + " " + dash(rc.ProjectID) + " " + dash(rc.DomainID) + " " +
		dash(rc.UserDomainID) + " " + dash(rc.ProjectDomainID)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// MarshalJSON encodes rc as its dictionary, [RequestContext.Metadata]
// (token included).
func (rc RequestContext) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rc.Metadata()); err != nil {
		return nil, fmt.Errorf("oslocontext: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON decodes a dictionary into rc, as [FromMetadata] does.
// Numbers in Extra decode as json.Number values.
func (rc *RequestContext) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil // the encoding/json convention: null changes nothing
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var md messaging.Metadata
	if err := dec.Decode(&md); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidContext, err)
	}
	v, err := FromMetadata(md)
	if err != nil {
		return err
	}
	*rc = *v
	return nil
}
