package rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// The cases of oslo.messaging's TestDispatcher, plus its observed
// outcomes for an endpoint at version 1.5.
func TestDispatcherTable(t *testing.T) {
	t.Parallel()
	type ep struct {
		ns     string
		ver    string
		legacy []string
	}
	tests := []struct {
		name      string
		endpoints []ep
		method    string
		namespace string
		version   string
		want      int   // index of the endpoint dispatched to
		err       error // or the error
	}{
		{name: "no_endpoints", method: "foo", err: ErrUnsupportedVersion},
		{name: "default_target", endpoints: []ep{{}}, method: "foo", want: 0},
		{name: "default_target_version", endpoints: []ep{{}}, method: "foo", version: "1.0", want: 0},
		{name: "default_target_no_such_method", endpoints: []ep{{}}, method: "foobar", err: ErrNoSuchMethod},
		{name: "namespace", endpoints: []ep{{}, {ns: "testns"}}, method: "foo", namespace: "testns", want: 1},
		{name: "namespace_mismatch", endpoints: []ep{{}, {ns: "testns"}}, method: "foo", namespace: "nstest", err: ErrUnsupportedVersion},
		{name: "version", endpoints: []ep{{ver: "1.5"}, {ver: "3.4"}}, method: "foo", version: "3.2", want: 1},
		{name: "version_mismatch", endpoints: []ep{{ver: "1.5"}, {ver: "3.0"}}, method: "foo", version: "3.2", err: ErrUnsupportedVersion},
		{name: "message_in_null_namespace_with_multiple_namespaces", endpoints: []ep{{ns: "testns", legacy: []string{""}}}, method: "foo", want: 0},
		{name: "message_in_wrong_namespace_with_multiple_namespaces", endpoints: []ep{{ns: "testns", legacy: []string{"second", ""}}}, method: "foo", namespace: "wrong", err: ErrUnsupportedVersion},
		{name: "legacy_namespace", endpoints: []ep{{ns: "testns", legacy: []string{"second"}}}, method: "foo", namespace: "second", want: 0},
		{name: "observed_1.0", endpoints: []ep{{ver: "1.5"}}, method: "foo", version: "1.0", want: 0},
		{name: "observed_1.5", endpoints: []ep{{ver: "1.5"}}, method: "foo", version: "1.5", want: 0},
		{name: "observed_1.6", endpoints: []ep{{ver: "1.5"}}, method: "foo", version: "1.6", err: ErrUnsupportedVersion},
		{name: "observed_2.0", endpoints: []ep{{ver: "1.5"}}, method: "foo", version: "2.0", err: ErrUnsupportedVersion},
		{name: "observed_private", endpoints: []ep{{ver: "1.5"}}, method: "_private", err: ErrNoSuchMethod},
		{name: "first_compatible_wins", endpoints: []ep{{ver: "1.1"}, {ver: "1.9"}}, method: "foo", version: "1.1", want: 0},
		{name: "skips_endpoint_without_method", endpoints: []ep{{ver: "1.9"}, {ver: "1.9"}}, method: "bar", version: "1.1", want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var d dispatcher
			for i, e := range tc.endpoints {
				endpoint := &Endpoint{Namespace: e.ns, Version: e.ver, LegacyNamespaces: e.legacy}
				h := HandlerFunc(func(context.Context, *Request) (any, error) { return i, nil })
				endpoint.Register("foo", h)
				if tc.name == "skips_endpoint_without_method" && i == 1 {
					endpoint.Register("bar", h)
				}
				d.endpoints = append(d.endpoints, endpoint)
			}
			h, err := d.lookup(tc.method, tc.namespace, tc.version)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("lookup = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
			got, _ := h.ServeRPC(context.Background(), &Request{})
			if got != tc.want {
				t.Errorf("dispatched to endpoint %v, want %d", got, tc.want)
			}
		})
	}
}

// oslo's exact failure texts and classes for dispatch errors.
func TestDispatchFailures(t *testing.T) {
	t.Parallel()
	var d dispatcher
	e := &Endpoint{Version: "1.5"}
	e.Register("echo", HandlerFunc(func(context.Context, *Request) (any, error) { return nil, nil }))
	d.endpoints = []*Endpoint{e}
	_, err := d.lookup("nosuch", "", "")
	f := failureFor(err, nil)
	want := fmt.Sprintf("%s.%s: %s", f.Module, f.Class, f.Message)
	if want != "oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method nosuch" {
		t.Errorf("NoSuchMethod failure = %q", want)
	}
	if string(f.Args) != `["Endpoint does not support RPC method nosuch"]` {
		t.Errorf("args = %s", f.Args)
	}
	if len(f.Traceback) != 1 || f.Traceback[0] != "oslo_messaging.rpc.dispatcher.NoSuchMethod: Endpoint does not support RPC method nosuch\n" {
		t.Errorf("traceback = %q", f.Traceback)
	}
	_, err = d.lookup("echo", "otherns", "")
	f = failureFor(err, nil)
	if f.Class != "UnsupportedVersion" || f.Message != "Endpoint does not support RPC version 1.0. Attempted method: echo" {
		t.Errorf("UnsupportedVersion failure = %s: %s", f.Class, f.Message)
	}
	f = failureFor(errors.New("x"), nil)
	if f.Module != "builtins" || f.Class != "Exception" || f.Traceback[0] != "Exception: x\n" {
		t.Errorf("default failure = %+v", f)
	}
	f = failureFor(fmt.Errorf("wrapped: %w", &RemoteError{Module: "nova.exception_Remote", Class: "InstanceNotFound_Remote", Message: "m"}), nil)
	if f.Module != "nova.exception" || f.Class != "InstanceNotFound" {
		t.Errorf("re-raised remote failure = %s.%s, want the _Remote suffix stripped", f.Module, f.Class)
	}
}
