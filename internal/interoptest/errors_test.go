package interoptest

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

// errUnhappy is the Go error that the tests map omsg_interop_exc.Unhappy
// to.
var errUnhappy = errors.New("unhappy")

// TestInteropRemoteError checks how exceptions cross the wire: Python
// exceptions as Go *rpc.RemoteError values, and Go errors as the Python
// exceptions that oslo rebuilds (builtins, allowed_remote_exmods) or as
// oslo_messaging.RemoteError.
func TestInteropRemoteError(t *testing.T) {
	setup(t)
	t.Parallel()

	// Go client, Python server.
	goCall := func(t *testing.T, args map[string]any, opts ...rpc.ClientOption) error {
		e, p, rec := newCase(t)
		topic := e.name("errors")
		e.startPyServer(p, e.s.url(), "", topic, "p1", rec)
		c := e.client(e.transport(), messaging.Target{Topic: topic}, opts...)
		err := c.Call(e.ctx(opTimeout), "fail", args, nil)
		if err == nil {
			t.Fatal("call of a failing Python method succeeded")
		}
		return err
	}
	runCase(t, "go_client_python_server/builtins_value_error", func(t *testing.T) {
		err := goCall(t, map[string]any{"exc": "ValueError", "message": "bad value é"})
		var re *rpc.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("error %v (%T) is not a *rpc.RemoteError", err, err)
		}
		if re.Module != "builtins" || re.Class != "ValueError" || re.Message != "bad value é" {
			t.Errorf("RemoteError = %s.%s %q, want builtins.ValueError \"bad value é\"", re.Module, re.Class, re.Message)
		}
		if len(re.Traceback) == 0 || re.Traceback[len(re.Traceback)-1] != "ValueError: bad value é\n" {
			t.Errorf("RemoteError traceback = %q, want Python's, ending in the exception", re.Traceback)
		}
		if !jsonEqual(re.Args, []any{"bad value é"}) {
			t.Errorf("RemoteError args = %s", re.Args)
		}
		if !strings.Contains(err.Error(), "bad value é") {
			t.Errorf("error text %q lacks the message", err)
		}
	})
	runCase(t, "go_client_python_server/registered_module", func(t *testing.T) {
		err := goCall(t, map[string]any{"exc": "Unhappy", "message": "sad", "code": 42},
			rpc.WithRemoteErrors(map[string]error{excModule + ".Unhappy": errUnhappy}))
		if !errors.Is(err, errUnhappy) {
			t.Errorf("error %v does not match the registered Go error", err)
		}
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Module != excModule || re.Class != "Unhappy" || re.Message != "sad" || !jsonEqual(re.Kwargs, map[string]any{"code": 42}) {
			t.Errorf("RemoteError = %+v, want %s.Unhappy \"sad\" with kwargs {\"code\": 42}", re, excModule)
		}
	})
	runCase(t, "go_client_python_server/unregistered_module", func(t *testing.T) {
		err := goCall(t, map[string]any{"exc": "Unhappy", "message": "sad"})
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Module != excModule || re.Class != "Unhappy" {
			t.Fatalf("error = %v, want a RemoteError %s.Unhappy", err, excModule)
		}
		if errors.Is(err, errUnhappy) || errors.Unwrap(re) != nil {
			t.Errorf("an unregistered remote error maps to a local error: %v", errors.Unwrap(re))
		}
	})

	// Python client, Go server.
	pyCall := func(t *testing.T, exmods []string, args map[string]any) *pyError {
		e, p, rec := newCase(t)
		topic := e.name("errors")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		out := e.py(p, pyReq{Op: "call", Exmods: exmods, Topic: topic, Method: "fail", Args: args, Timeout: 30})
		if out.OK {
			t.Fatalf("call of a failing Go method returned %s", out.Result)
		}
		return out.Error
	}
	runCase(t, "python_client_go_server/builtins_value_error", func(t *testing.T) {
		pe := pyCall(t, nil, map[string]any{"exc": "ValueError", "message": "go says no é"})
		if !pe.is(pyValueError) || pe.firstLine() != "go says no é" {
			t.Errorf("Python caller got %s, want ValueError('go says no é')", pe)
		}
	})
	runCase(t, "python_client_go_server/not_allowed_module", func(t *testing.T) {
		pe := pyCall(t, nil, map[string]any{"exc": "Unhappy", "message": "sad", "code": 7})
		if !pe.is(pyRemoteError) || pe.ExcType == nil || *pe.ExcType != "Unhappy" || pe.Value == nil || *pe.Value != "sad" {
			t.Errorf("Python caller got %s (exc_type %v), want oslo_messaging.RemoteError of Unhappy 'sad'", pe, pe.ExcType)
		}
		if pe.is(excModule + ".Unhappy") {
			t.Error("Python caller rebuilt an exception of a module not in allowed_remote_exmods")
		}
	})
	runCase(t, "python_client_go_server/allowed_module", func(t *testing.T) {
		pe := pyCall(t, []string{excModule}, map[string]any{"exc": "Unhappy", "message": "sad", "code": 7})
		if !pe.is(excModule+".Unhappy") || pe.firstLine() != "sad" {
			t.Errorf("Python caller got %s, want %s.Unhappy('sad')", pe, excModule)
		}
		if string(pe.Code) != "7" {
			t.Errorf("rebuilt exception's code = %s, want 7 (from the failure's kwargs)", pe.Code)
		}
	})
	runCase(t, "python_client_go_server/go_handler_panic", func(t *testing.T) {
		e, p, rec := newCase(t)
		topic := e.name("errors")
		e.startGoServer(e.transport(), messaging.Target{Topic: topic, Server: "g1"}, rec)
		out := e.py(p, pyReq{Op: "call", Topic: topic, Method: "panic", Timeout: 30})
		if out.OK || !out.Error.is("builtins.Exception") || !strings.Contains(out.Error.firstLine(), "boom") {
			t.Fatalf("call of a panicking Go method %s, want Exception mentioning the panic", out)
		}
		// oslo appends the failure's traceback: here the Go stack.
		if !strings.Contains(out.Error.Message, "goroutine") {
			t.Errorf("Python caller's exception lacks the Go stack: %q", truncate(out.Error.Message, 500))
		}
		// The server survives.
		e.pyOK(p, pyReq{Op: "call", Topic: topic, Method: "whoami", Timeout: 30})
	})
	runCase(t, "python_client_go_server/plain_go_error", func(t *testing.T) {
		pe := pyCall(t, nil, map[string]any{"exc": "none", "message": "plain failure"})
		if !pe.is("builtins.Exception") || pe.is(pyRemoteError) || pe.firstLine() != "plain failure" {
			t.Errorf("Python caller got %s, want Exception('plain failure')", pe)
		}
	})
}
