package oslocontext_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/oslocontext"
)

var requestIDRE = regexp.MustCompile(`^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

const secret = "gAAAAAB-very-secret-token"

// raw prints the fields of rc, token included, for failure messages.
func raw(rc *oslocontext.RequestContext) string {
	type fields oslocontext.RequestContext
	if rc == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", fields(*rc))
}

// full returns a context with every field set.
func full() *oslocontext.RequestContext {
	return &oslocontext.RequestContext{
		UserID:            "u1",
		ProjectID:         "p1",
		DomainID:          "d1",
		UserDomainID:      "ud1",
		ProjectDomainID:   "pd1",
		SystemScope:       "all",
		UserName:          "alice",
		ProjectName:       "demo",
		DomainName:        "Default",
		UserDomainName:    "UserDom",
		ProjectDomainName: "ProjDom",
		Roles:             []string{"admin", "member"},
		AuthToken:         secret,
		IsAdmin:           true,
		IsAdminProject:    true,
		ReadOnly:          true,
		ShowDeleted:       true,
		RequestID:         "req-11111111-2222-4333-8444-555555555555",
		GlobalRequestID:   "req-99999999-2222-4333-8444-555555555555",
		ResourceUUID:      "r1",
		Extra:             map[string]any{"read_deleted": "no", "quota_class": nil, "n": json.Number("3")},
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := oslocontext.NewRequestID(), oslocontext.NewRequestID()
	for _, id := range []string{a, b} {
		if !requestIDRE.MatchString(id) {
			t.Errorf("NewRequestID() = %q, want req-<uuid4>", id)
		}
	}
	if a == b {
		t.Errorf("NewRequestID() returned %q twice", a)
	}
}

func TestNewAndNewAdmin(t *testing.T) {
	rc := oslocontext.New()
	if !requestIDRE.MatchString(rc.RequestID) || !rc.IsAdminProject || rc.IsAdmin {
		t.Errorf("New() = %s, want a request id, IsAdminProject and not IsAdmin", raw(rc))
	}
	admin := oslocontext.NewAdmin()
	if !requestIDRE.MatchString(admin.RequestID) || !admin.IsAdmin || !admin.IsAdminProject ||
		admin.UserID != "" || admin.ProjectID != "" || admin.AuthToken != "" {
		t.Errorf("NewAdmin() = %s, want an admin context without identity", raw(admin))
	}
	if admin.RequestID == rc.RequestID {
		t.Error("New and NewAdmin share a request id")
	}
}

func TestGlobalID(t *testing.T) {
	rc := oslocontext.RequestContext{RequestID: "req-local"}
	if got := rc.GlobalID(); got != "req-local" {
		t.Errorf("GlobalID() = %q, want the request id", got)
	}
	rc.GlobalRequestID = "req-global"
	if got := rc.GlobalID(); got != "req-global" {
		t.Errorf("GlobalID() = %q, want the global request id", got)
	}
}

func TestClone(t *testing.T) {
	rc := full()
	c := rc.Clone()
	if !reflect.DeepEqual(c, rc) {
		t.Fatalf("Clone() = %s, want %s", raw(c), raw(rc))
	}
	c.Roles[0] = "changed"
	c.Extra["read_deleted"] = "yes"
	if rc.Roles[0] != "admin" || rc.Extra["read_deleted"] != "no" {
		t.Error("Clone shares Roles or Extra with the original")
	}
	if (*oslocontext.RequestContext)(nil).Clone() != nil {
		t.Error("nil.Clone() is not nil")
	}
}

func TestNewContextFromContext(t *testing.T) {
	ctx := t.Context()
	if rc, ok := oslocontext.FromContext(ctx); ok || rc != nil {
		t.Errorf("FromContext(empty) = %v, %v, want nil, false", rc, ok)
	}
	rc := full()
	got, ok := oslocontext.FromContext(oslocontext.NewContext(ctx, rc))
	if !ok || got != rc {
		t.Errorf("FromContext(NewContext(rc)) = %p, %v, want %p, true", got, ok, rc)
	}
	if _, ok := oslocontext.FromContext(oslocontext.NewContext(ctx, nil)); ok {
		t.Error("FromContext(NewContext(nil)) reports a context")
	}
}

// osloDict is what oslo.context 5's to_dict() returns for full().
func osloDict() messaging.Metadata {
	return messaging.Metadata{
		"user": "u1", "project_id": "p1", "system_scope": "all", "project": "p1",
		"domain": "d1", "user_domain": "ud1", "project_domain": "pd1",
		"is_admin": true, "read_only": true, "show_deleted": true,
		"auth_token":        secret,
		"request_id":        "req-11111111-2222-4333-8444-555555555555",
		"global_request_id": "req-99999999-2222-4333-8444-555555555555",
		"resource_uuid":     "r1", "roles": []any{"admin", "member"},
		"user_identity": "u1 p1 d1 ud1 pd1", "is_admin_project": true,
	}
}

func TestMetadata(t *testing.T) {
	md := full().Metadata()
	want := osloDict()
	want["roles"] = []string{"admin", "member"}
	want["user_id"] = "u1"
	want["user_name"] = "alice"
	want["project_name"] = "demo"
	want["domain_name"] = "Default"
	want["user_domain_name"] = "UserDom"
	want["project_domain_name"] = "ProjDom"
	want["read_deleted"] = "no"
	want["quota_class"] = nil
	want["n"] = json.Number("3")
	if !reflect.DeepEqual(map[string]any(md), map[string]any(want)) {
		t.Errorf("Metadata() =\n%#v\nwant\n%#v", map[string]any(md), map[string]any(want))
	}
}

func TestMetadataOfZeroValue(t *testing.T) {
	md := oslocontext.RequestContext{}.Metadata()
	for _, k := range []string{"user", "user_id", "project_id", "project", "domain", "auth_token", "request_id", "user_name"} {
		if v, ok := md[k]; !ok || v != nil {
			t.Errorf("Metadata()[%q] = %v, %v, want null", k, v, ok)
		}
	}
	if roles, ok := md["roles"].([]string); !ok || roles == nil || len(roles) != 0 {
		t.Errorf("Metadata()[roles] = %#v, want an empty list", md["roles"])
	}
	if got := md["user_identity"]; got != "- - - - -" {
		t.Errorf("Metadata()[user_identity] = %v, want %q", got, "- - - - -")
	}
	if md["is_admin_project"] != false || md["is_admin"] != false {
		t.Errorf("Metadata() booleans = %v %v, want false", md["is_admin_project"], md["is_admin"])
	}
}

func TestMetadataIgnoresKnownKeysInExtra(t *testing.T) {
	rc := oslocontext.RequestContext{UserID: "u1", Extra: map[string]any{
		"user": "intruder", "user_id": "intruder", "user_identity": "x", "auth_token": "x", "custom": 1,
	}}
	md := rc.Metadata()
	if md["user"] != "u1" || md["user_id"] != "u1" || md["user_identity"] != "u1 - - - -" || md["auth_token"] != nil {
		t.Errorf("Metadata() = %v: Extra overrode a field", md)
	}
	if md["custom"] != 1 {
		t.Errorf("Metadata()[custom] = %v, want 1", md["custom"])
	}
}

func TestFromMetadataOsloDict(t *testing.T) {
	in := osloDict()
	in["user_name"] = "alice"
	in["project_name"] = "demo"
	in["domain_name"] = "Default"
	in["user_domain_name"] = "UserDom"
	in["project_domain_name"] = "ProjDom"
	in["read_deleted"] = "no"
	in["quota_class"] = nil
	in["n"] = json.Number("3")
	snapshot := in.Copy()
	rc, err := oslocontext.FromMetadata(in)
	if err != nil {
		t.Fatalf("FromMetadata: %v", err)
	}
	if want := full(); !reflect.DeepEqual(rc, want) {
		t.Errorf("FromMetadata() =\n%s\nwant\n%s", raw(rc), raw(want))
	}
	if !reflect.DeepEqual(in, snapshot) {
		t.Error("FromMetadata modified its argument")
	}
}

func TestRoundTrip(t *testing.T) {
	for name, rc := range map[string]*oslocontext.RequestContext{
		"full":  full(),
		"new":   oslocontext.New(),
		"admin": oslocontext.NewAdmin(),
		"user":  {UserID: "u", ProjectID: "p", Roles: []string{"reader"}, RequestID: "req-1", IsAdminProject: false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := oslocontext.FromMetadata(rc.Metadata())
			if err != nil {
				t.Fatalf("FromMetadata(Metadata()): %v", err)
			}
			want := rc.Clone()
			if want.Roles == nil {
				want.Roles = []string{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("FromMetadata(Metadata()) =\n%s\nwant\n%s", raw(got), raw(want))
			}

			// Through JSON, as on the wire.
			data, err := json.Marshal(rc)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var back oslocontext.RequestContext
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if !reflect.DeepEqual(&back, want) {
				t.Errorf("JSON round trip =\n%s\nwant\n%s", raw(&back), raw(want))
			}
		})
	}
}

func TestFromMetadataAliases(t *testing.T) {
	tests := []struct {
		name string
		md   messaging.Metadata
		want func(*oslocontext.RequestContext) string
		val  string
	}{
		{"user_id", messaging.Metadata{"user_id": "u"}, func(rc *oslocontext.RequestContext) string { return rc.UserID }, "u"},
		{"user wins over user_id", messaging.Metadata{"user": "a", "user_id": "b"}, func(rc *oslocontext.RequestContext) string { return rc.UserID }, "a"},
		{"null user falls back", messaging.Metadata{"user": nil, "user_id": "b"}, func(rc *oslocontext.RequestContext) string { return rc.UserID }, "b"},
		{"project", messaging.Metadata{"project": "p"}, func(rc *oslocontext.RequestContext) string { return rc.ProjectID }, "p"},
		{"tenant", messaging.Metadata{"tenant": "t"}, func(rc *oslocontext.RequestContext) string { return rc.ProjectID }, "t"},
		{"project_id wins", messaging.Metadata{"project_id": "a", "project": "b", "tenant": "c"}, func(rc *oslocontext.RequestContext) string { return rc.ProjectID }, "a"},
		{"domain_id", messaging.Metadata{"domain_id": "d"}, func(rc *oslocontext.RequestContext) string { return rc.DomainID }, "d"},
		{"user_domain_id", messaging.Metadata{"user_domain_id": "d"}, func(rc *oslocontext.RequestContext) string { return rc.UserDomainID }, "d"},
		{"project_domain_id", messaging.Metadata{"project_domain_id": "d"}, func(rc *oslocontext.RequestContext) string { return rc.ProjectDomainID }, "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := oslocontext.FromMetadata(tc.md)
			if err != nil {
				t.Fatalf("FromMetadata(%v): %v", tc.md, err)
			}
			if got := tc.want(rc); got != tc.val {
				t.Errorf("FromMetadata(%v) field = %q, want %q", tc.md, got, tc.val)
			}
			if len(rc.Extra) != 0 {
				t.Errorf("FromMetadata(%v).Extra = %v, want the alias consumed", tc.md, rc.Extra)
			}
		})
	}
}

func TestFromMetadataDefaults(t *testing.T) {
	for _, md := range []messaging.Metadata{nil, {}, {"request_id": nil}, {"request_id": ""}} {
		rc, err := oslocontext.FromMetadata(md)
		if err != nil {
			t.Fatalf("FromMetadata(%v): %v", md, err)
		}
		if !requestIDRE.MatchString(rc.RequestID) {
			t.Errorf("FromMetadata(%v).RequestID = %q, want a new req-<uuid4>", md, rc.RequestID)
		}
		if !rc.IsAdminProject || rc.IsAdmin || rc.ReadOnly || rc.ShowDeleted || rc.Roles != nil || rc.Extra != nil {
			t.Errorf("FromMetadata(%v) = %s, want oslo's defaults", md, raw(rc))
		}
	}
	// null is Python's None: false, even for is_admin_project.
	rc, err := oslocontext.FromMetadata(messaging.Metadata{
		"is_admin_project": nil, "is_admin": nil, "roles": nil, "user": nil, "user_identity": "x y z",
	})
	if err != nil {
		t.Fatal(err)
	}
	if rc.IsAdminProject || rc.IsAdmin || rc.Roles != nil || rc.UserID != "" || rc.Extra != nil {
		t.Errorf("FromMetadata(nulls) = %s, want false, no roles, no user, no extra", raw(rc))
	}
	rc, err = oslocontext.FromMetadata(messaging.Metadata{"roles": []string{"a"}})
	if err != nil || !slices.Equal(rc.Roles, []string{"a"}) {
		t.Errorf("FromMetadata(roles []string) = %v, %v", rc, err)
	}
}

func TestFromMetadataInvalid(t *testing.T) {
	for _, md := range []messaging.Metadata{
		{"user": 7},
		{"user": "u", "user_id": false}, // an alias is checked only when needed...
		{"auth_token": map[string]any{"id": secret}},
		{"is_admin": "True"},
		{"is_admin_project": json.Number("1")},
		{"roles": "admin"},
		{"roles": []any{"admin", 3}},
		{"request_id": []any{}},
	} {
		_, err := oslocontext.FromMetadata(md)
		if md["user_id"] == false {
			// ...so this one is valid: "user" is set.
			if err != nil {
				t.Errorf("FromMetadata(%v) = %v, want no error", md, err)
			}
			continue
		}
		if !errors.Is(err, oslocontext.ErrInvalidContext) {
			t.Errorf("FromMetadata(%v) = %v, want ErrInvalidContext", md, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("FromMetadata error %q shows the token", err)
		}
	}
	var rc oslocontext.RequestContext
	if err := json.Unmarshal([]byte(`["not", "a", "dict"]`), &rc); !errors.Is(err, oslocontext.ErrInvalidContext) {
		t.Errorf("Unmarshal(list) = %v, want ErrInvalidContext", err)
	}
	rc.UserID = "kept"
	if err := json.Unmarshal([]byte(`null`), &rc); err != nil || rc.UserID != "kept" {
		t.Errorf("Unmarshal(null) = %v, UserID %q; want no change", err, rc.UserID)
	}
}

func TestPrintingRedacts(t *testing.T) {
	rc := full()
	rc.Extra["service_token"] = "svc-" + secret
	rc.Extra["auth_token_info"] = map[string]any{"token": secret}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{rc, *rc} {
			got := fmt.Sprintf(format, v)
			if strings.Contains(got, "very-secret") {
				t.Errorf("Sprintf(%q, %T) = %q shows a secret", format, v, got)
			}
		}
	}
	s := rc.String()
	for _, want := range []string{"RequestContext[", "auth_token:***", "user:u1", "request_id:req-1111", "roles:[admin member]", "read_deleted:no", "service_token:***"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to contain %q", s, want)
		}
	}
	if got := fmt.Sprint((*oslocontext.RequestContext)(nil)); got != "<nil>" {
		t.Errorf("Sprint(nil) = %q, want <nil>", got)
	}
	if got := (oslocontext.RequestContext{}).String(); got != "RequestContext[is_admin_project:false]" {
		t.Errorf("zero String() = %q", got)
	}
}

func TestLogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rc := full()
	log.Info("handling", "ctx", rc)
	out := buf.String()
	if strings.Contains(out, "very-secret") || strings.Contains(out, "read_deleted") {
		t.Errorf("log output %s shows the token or Extra", out)
	}
	for _, want := range []string{`"user":"u1"`, `"request_id":"req-1111`, `"roles":["admin","member"]`, `"is_admin":true`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output %s does not contain %s", out, want)
		}
	}
}

func TestSerializerContext(t *testing.T) {
	ctx := context.Background()
	var s oslocontext.Serializer
	rc := full()

	// No metadata: the RequestContext's dictionary is sent.
	md, err := s.SerializeContext(oslocontext.NewContext(ctx, rc), nil)
	if err != nil || !reflect.DeepEqual(md, rc.Metadata()) {
		t.Errorf("SerializeContext(rc, nil) = %v, %v, want rc.Metadata()", md, err)
	}
	// Explicit metadata wins, even empty.
	explicit := messaging.Metadata{}
	md, err = s.SerializeContext(oslocontext.NewContext(ctx, rc), explicit)
	if err != nil || len(md) != 0 || md == nil {
		t.Errorf("SerializeContext(rc, {}) = %v, %v, want the explicit empty map", md, err)
	}
	md, err = s.SerializeContext(ctx, nil)
	if err != nil || md != nil {
		t.Errorf("SerializeContext(nothing) = %v, %v, want nil", md, err)
	}

	// Receiving: the dictionary becomes a RequestContext, without the
	// server's client_timeout.
	in := osloDict()
	in["client_timeout"] = nil
	hctx, err := s.DeserializeContext(ctx, in)
	if err != nil {
		t.Fatalf("DeserializeContext: %v", err)
	}
	got, ok := oslocontext.FromContext(hctx)
	if !ok || got.UserID != "u1" || got.AuthToken != secret || got.Extra != nil {
		t.Errorf("DeserializeContext attached %s, %v", raw(got), ok)
	}
	if _, ok := in["client_timeout"]; !ok {
		t.Error("DeserializeContext modified the received dictionary")
	}
	if _, err := s.DeserializeContext(ctx, messaging.Metadata{"roles": 1}); !errors.Is(err, oslocontext.ErrInvalidContext) {
		t.Errorf("DeserializeContext(invalid) = %v, want ErrInvalidContext", err)
	}
}

type upper struct{ messaging.NoOpSerializer }

func (upper) SerializeEntity(_ context.Context, v any) (any, error) {
	return strings.ToUpper(fmt.Sprint(v)), nil
}

func (upper) DeserializeEntity(_ context.Context, data json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(strings.ToUpper(string(data))), nil
}

func TestSerializerEntities(t *testing.T) {
	ctx := context.Background()
	plain := oslocontext.Serializer{}
	if v, err := plain.SerializeEntity(ctx, "x"); v != "x" || err != nil {
		t.Errorf("SerializeEntity = %v, %v, want x unchanged", v, err)
	}
	if d, err := plain.DeserializeEntity(ctx, json.RawMessage(`"x"`)); string(d) != `"x"` || err != nil {
		t.Errorf("DeserializeEntity = %s, %v, want unchanged", d, err)
	}
	based := oslocontext.Serializer{Base: upper{}}
	if v, err := based.SerializeEntity(ctx, "x"); v != "X" || err != nil {
		t.Errorf("SerializeEntity with Base = %v, %v, want X", v, err)
	}
	if d, err := based.DeserializeEntity(ctx, json.RawMessage(`"x"`)); string(d) != `"X"` || err != nil {
		t.Errorf("DeserializeEntity with Base = %s, %v, want \"X\"", d, err)
	}
}
