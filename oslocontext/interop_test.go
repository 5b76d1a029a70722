package oslocontext_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/oslocontext"
)

// pyContexts runs the real oslo.context: each input dictionary goes
// through RequestContext.from_dict and back through to_dict, and a few
// contexts made in Python are returned with their to_dict. The names,
// which to_dict leaves out but from_dict reads, come separately.
const pyContexts = `
import json, sys, warnings
warnings.simplefilter('ignore')
from oslo_context import context as oc
NAMES = ('user_name', 'project_name', 'domain_name', 'user_domain_name', 'project_domain_name')
def dump(c):
    return {'to_dict': c.to_dict(), 'names': {k: getattr(c, k) for k in NAMES}}
req = json.load(sys.stdin)
made = [
    oc.RequestContext(auth_token='gAAAAAB-python-token', user_id='u1', project_id='p1',
                      domain_id='d1', user_domain_id='ud1', project_domain_id='pd1',
                      is_admin=True, read_only=True, show_deleted=True,
                      request_id='req-0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3',
                      resource_uuid='r1', roles=['admin', 'member'], user_name='alice',
                      project_name='demo', domain_name='Default', user_domain_name='UD',
                      project_domain_name='PD', is_admin_project=False,
                      global_request_id='req-00000000-1111-4222-8333-444444444444',
                      system_scope='all', overwrite=False),
    oc.RequestContext(overwrite=False),
    oc.get_admin_context(),
    oc.RequestContext(user_id='u2', project_id='p2', roles=['reader'], overwrite=False),
]
json.dump({'from_go': [dump(oc.RequestContext.from_dict(d, overwrite=False)) for d in req],
           'made': [dump(c) for c in made]}, sys.stdout)
`

type pyContext struct {
	ToDict map[string]any `json:"to_dict"`
	Names  map[string]any `json:"names"`
}

type pyResult struct {
	FromGo []pyContext `json:"from_go"`
	Made   []pyContext `json:"made"`
}

// toDictKeys are the keys of oslo.context 5's to_dict.
var toDictKeys = []string{
	"user", "project_id", "system_scope", "project", "domain", "user_domain", "project_domain",
	"is_admin", "read_only", "show_deleted", "auth_token", "request_id", "global_request_id",
	"resource_uuid", "roles", "user_identity", "is_admin_project",
}

var nameKeys = []string{"user_name", "project_name", "domain_name", "user_domain_name", "project_domain_name"}

// normalize returns v as JSON decodes it, numbers as json.Number.
func normalize(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func pick(m map[string]any, keys []string) map[string]any {
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		if v, ok := m[k]; ok {
			out[k] = v
		}
	}
	return out
}

// TestInteropRequestContext round-trips context dictionaries through
// the real oslo.context RequestContext.from_dict and to_dict: Go's
// dictionaries must read the same in Python and come back unchanged, and
// Python's must read the same in Go and go back unchanged.
func TestInteropRequestContext(t *testing.T) {
	pyinterop.Python(t) // skips, saying so, without OMSG_PYTHON

	noRequestID := full()
	noRequestID.RequestID = ""
	goContexts := []*oslocontext.RequestContext{
		full(),
		oslocontext.New(),
		oslocontext.NewAdmin(),
		{UserID: "u3", ProjectID: "p3", Roles: []string{"reader"}, RequestID: "req-x", IsAdminProject: false},
		noRequestID,
	}
	var in []messaging.Metadata
	for _, rc := range goContexts {
		in = append(in, rc.Metadata())
	}
	// A dictionary with a single key: the defaults must agree.
	in = append(in, messaging.Metadata{"user": "only"})

	var first pyResult
	pyinterop.RunJSON(t, pyContexts, in, &first)
	if len(first.FromGo) != len(in) || len(first.Made) != 4 {
		t.Fatalf("python returned %d and %d contexts, want %d and 4", len(first.FromGo), len(first.Made), len(in))
	}

	t.Run("go to python", func(t *testing.T) {
		for i, rc := range goContexts {
			py := first.FromGo[i]
			if len(py.ToDict) != len(toDictKeys) {
				t.Errorf("context %d: python's to_dict has keys %v, want %v", i, keysOf(py.ToDict), toDictKeys)
			}
			ours := normalize(t, rc.Metadata())
			theirs := normalize(t, py.ToDict)
			if rc.RequestID == "" {
				// Both sides make a new request id.
				if id, _ := theirs["request_id"].(string); !requestIDRE.MatchString(id) {
					t.Errorf("context %d: python made request id %q, want req-<uuid4>", i, id)
				}
				delete(theirs, "request_id")
				delete(ours, "request_id")
			}
			if want := pick(ours, toDictKeys); !reflect.DeepEqual(theirs, want) {
				t.Errorf("context %d: python's to_dict\n%v\nwant ours\n%v", i, theirs, want)
			}
			if want := pick(ours, nameKeys); !reflect.DeepEqual(normalize(t, py.Names), want) {
				t.Errorf("context %d: python's names %v, want %v", i, py.Names, want)
			}

			// And back into Go: the same context, without Extra, which
			// the base oslo.context does not keep.
			back := python(t, py)
			want := rc.Clone()
			want.Extra = nil
			if want.Roles == nil {
				want.Roles = []string{}
			}
			if rc.RequestID == "" {
				want.RequestID = back.RequestID
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("context %d back in Go =\n%s\nwant\n%s", i, raw(back), raw(want))
			}
		}

		// The defaults of a one-key dictionary.
		py := first.FromGo[len(goContexts)]
		rc, err := oslocontext.FromMetadata(in[len(goContexts)])
		if err != nil {
			t.Fatal(err)
		}
		ours, theirs := normalize(t, rc.Metadata()), normalize(t, py.ToDict)
		if id, _ := theirs["request_id"].(string); !requestIDRE.MatchString(id) {
			t.Errorf("python made request id %q, want req-<uuid4>", id)
		}
		delete(ours, "request_id")
		delete(theirs, "request_id")
		if want := pick(ours, toDictKeys); !reflect.DeepEqual(theirs, want) {
			t.Errorf("defaults: python's to_dict\n%v\nwant ours\n%v", theirs, want)
		}
	})

	t.Run("python to go", func(t *testing.T) {
		made := make([]*oslocontext.RequestContext, len(first.Made))
		for i, py := range first.Made {
			made[i] = python(t, py)
		}
		want0 := &oslocontext.RequestContext{
			UserID: "u1", ProjectID: "p1", DomainID: "d1", UserDomainID: "ud1", ProjectDomainID: "pd1",
			SystemScope: "all", UserName: "alice", ProjectName: "demo", DomainName: "Default",
			UserDomainName: "UD", ProjectDomainName: "PD", Roles: []string{"admin", "member"},
			AuthToken: "gAAAAAB-python-token", IsAdmin: true, IsAdminProject: false, ReadOnly: true,
			ShowDeleted: true, RequestID: "req-0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3",
			GlobalRequestID: "req-00000000-1111-4222-8333-444444444444", ResourceUUID: "r1",
		}
		if !reflect.DeepEqual(made[0], want0) {
			t.Errorf("python context 0 in Go =\n%s\nwant\n%s", raw(made[0]), raw(want0))
		}
		if rc := made[1]; !requestIDRE.MatchString(rc.RequestID) || !rc.IsAdminProject || rc.IsAdmin || rc.UserID != "" {
			t.Errorf("python's default context in Go = %s", raw(rc))
		}
		if rc := made[2]; !requestIDRE.MatchString(rc.RequestID) || !rc.IsAdmin || rc.AuthToken != "" {
			t.Errorf("python's admin context in Go = %s", raw(rc))
		}
		if rc := made[3]; rc.UserID != "u2" || rc.ProjectID != "p2" || len(rc.Roles) != 1 || rc.Roles[0] != "reader" {
			t.Errorf("python context 3 in Go = %s", raw(rc))
		}

		// Go's dictionaries of Python's contexts give Python the same
		// contexts back.
		var back []messaging.Metadata
		for _, rc := range made {
			back = append(back, rc.Metadata())
		}
		var second pyResult
		pyinterop.RunJSON(t, pyContexts, back, &second)
		for i, py := range second.FromGo {
			if got, want := normalize(t, py.ToDict), normalize(t, first.Made[i].ToDict); !reflect.DeepEqual(got, want) {
				t.Errorf("python context %d after Go: to_dict\n%v\nwant\n%v", i, got, want)
			}
			if got, want := normalize(t, py.Names), normalize(t, first.Made[i].Names); !reflect.DeepEqual(got, want) {
				t.Errorf("python context %d after Go: names %v, want %v", i, got, want)
			}
		}
	})
}

// python reads a context Python returned: its to_dict and its names.
func python(t *testing.T, py pyContext) *oslocontext.RequestContext {
	t.Helper()
	md := messaging.Metadata{}
	maps.Copy(md, py.ToDict)
	maps.Copy(md, py.Names)
	rc, err := oslocontext.FromMetadata(md)
	if err != nil {
		t.Fatalf("FromMetadata(python's dict): %v", err)
	}
	if rc.Extra != nil {
		t.Errorf("python's dict left keys in Extra: %v", rc.Extra)
	}
	return rc
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
