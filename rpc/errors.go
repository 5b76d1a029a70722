package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-oslo/messaging/driver"
)

// Errors of package rpc.
var (
	// ErrServerClosed is returned by [Server.Serve] after
	// [Server.Shutdown] or [Server.Close].
	ErrServerClosed = errors.New("rpc: server closed")
	// ErrNoSuchMethod is matched by a dispatch failure where an endpoint
	// of the right namespace and version exists but none has the method
	// (oslo's NoSuchMethod). Remote errors of class
	// oslo_messaging.rpc.dispatcher.NoSuchMethod match it on every
	// client.
	ErrNoSuchMethod = errors.New("rpc: no such method")
	// ErrUnsupportedVersion is matched by a dispatch failure where no
	// endpoint has a matching namespace and compatible version (oslo's
	// UnsupportedVersion). Remote errors of class
	// oslo_messaging.rpc.dispatcher.UnsupportedVersion match it on every
	// client.
	ErrUnsupportedVersion = errors.New("rpc: unsupported version")
	// ErrVersionCap is returned by Call and Cast when the message
	// version is not allowed by the client's version cap (oslo's
	// RPCVersionCapError). The method is not sent.
	ErrVersionCap = errors.New("rpc: version cap exceeded")
)

// Python module of oslo's dispatcher exceptions.
const dispatcherModule = "oslo_messaging.rpc.dispatcher"

// builtinRemoteErrors are matched on every client.
var builtinRemoteErrors = map[string]error{
	dispatcherModule + ".NoSuchMethod":       ErrNoSuchMethod,
	dispatcherModule + ".UnsupportedVersion": ErrUnsupportedVersion,
}

// RemoteError is a failure raised by the remote method: oslo's
// serialized exception. [Client.Call] returns it (wrapped) when the
// server's method failed; a handler returns one to choose the exception
// a Python caller receives:
//
//	return nil, rpc.NewRemoteError("builtins.ValueError", "bad value")
//
// Python callers re-raise builtins exceptions as themselves, exceptions
// of modules in their allowed_remote_exmods as their own class, and any
// other as oslo_messaging.RemoteError.
type RemoteError struct {
	Module    string   // Python module, e.g. "builtins" or "nova.exception"
	Class     string   // exception class, e.g. "ValueError"
	Message   string   // str(exception)
	Traceback []string // lines, each ending in "\n"
	// Args and Kwargs are the exception's constructor arguments, a JSON
	// array and object; a Python caller rebuilds the exception from
	// them. Nil Args means [Message], nil Kwargs means {}.
	Args   json.RawMessage
	Kwargs json.RawMessage

	local error // from the client's remote error map
}

// NewRemoteError returns a RemoteError for the exception named
// "module.Class" (a name without a dot is taken as a builtins class)
// with the given message.
func NewRemoteError(name, message string) *RemoteError {
	module, class := splitName(name)
	return &RemoteError{Module: module, Class: class, Message: message}
}

func splitName(name string) (module, class string) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return "builtins", name
	}
	return name[:i], name[i+1:]
}

// Name returns "module.Class".
func (e *RemoteError) Name() string { return e.Module + "." + e.Class }

// Error returns "rpc: remote module.Class: message".
func (e *RemoteError) Error() string {
	return "rpc: remote " + e.Name() + ": " + e.Message
}

// Unwrap returns the local error that the client's remote error map
// (see [WithRemoteErrors]) associates with the remote exception, or nil.
func (e *RemoteError) Unwrap() error { return e.local }

// expectedError marks an error as an expected outcome.
type expectedError struct{ err error }

func (e *expectedError) Error() string { return e.err.Error() }
func (e *expectedError) Unwrap() error { return e.err }

// Expected marks err as an expected outcome of a method (oslo's
// ExpectedException): the caller receives it as usual, but the server
// does not log it. Expected(nil) is nil.
func Expected(err error) error {
	if err == nil {
		return nil
	}
	return &expectedError{err}
}

func isExpected(err error) bool {
	var e *expectedError
	return errors.As(err, &e)
}

// dispatchError is a dispatcher failure, reported to callers as oslo's
// exception of the same class.
type dispatchError struct {
	class    string
	message  string
	sentinel error
}

func (e *dispatchError) Error() string { return "rpc: " + e.message }
func (e *dispatchError) Unwrap() error { return e.sentinel }

func noSuchMethod(method string) error {
	return &dispatchError{"NoSuchMethod", "Endpoint does not support RPC method " + method, ErrNoSuchMethod}
}

func unsupportedVersion(version, method string) error {
	return &dispatchError{"UnsupportedVersion",
		fmt.Sprintf("Endpoint does not support RPC version %s. Attempted method: %s", version, method),
		ErrUnsupportedVersion}
}

// failureFor turns a handler's error into oslo's failure. A
// *RemoteError anywhere in the chain decides the class; dispatcher
// errors use oslo's dispatcher classes; argument decoding errors are
// builtins.TypeError, as a Python method called with the wrong keyword
// arguments raises; any other error is builtins.Exception.
func failureFor(err error, stack []string) *driver.Failure {
	var (
		re *RemoteError
		de *dispatchError
		ae *argsError
		f  driver.Failure
	)
	switch {
	case errors.As(err, &re):
		f = driver.Failure{Module: re.Module, Class: re.Class, Message: re.Message,
			Traceback: re.Traceback, Args: re.Args, Kwargs: re.Kwargs}
		if f.Module == "" {
			f.Module = "builtins"
		}
		if f.Class == "" {
			f.Class = "Exception"
		}
		// A re-raised remote exception keeps its original name, as
		// oslo strips its _Remote suffix.
		f.Module = strings.TrimSuffix(f.Module, "_Remote")
		f.Class = strings.TrimSuffix(f.Class, "_Remote")
	case errors.As(err, &de):
		f = driver.Failure{Module: dispatcherModule, Class: de.class, Message: de.message}
	case errors.As(err, &ae):
		f = driver.Failure{Module: "builtins", Class: "TypeError", Message: ae.Error()}
	default:
		f = driver.Failure{Module: "builtins", Class: "Exception", Message: err.Error()}
	}
	if len(f.Args) == 0 {
		f.Args, _ = json.Marshal([]string{f.Message})
	}
	if len(f.Traceback) == 0 {
		last := f.Class + ": " + f.Message + "\n"
		if f.Module != "builtins" {
			last = f.Module + "." + last
		}
		if len(stack) > 0 {
			f.Traceback = append([]string{"Traceback (most recent call last):\n"}, stack...)
		}
		f.Traceback = append(f.Traceback, last)
	}
	return &f
}

// remoteErrorFrom rebuilds a failure received by a client. Python's
// "exceptions" module is mapped to "builtins" and "_Remote" suffixes are
// dropped, as oslo does; local is looked up in m and then in the
// built-in map.
func remoteErrorFrom(f *driver.Failure, m map[string]error) *RemoteError {
	e := &RemoteError{
		Module:    strings.TrimSuffix(f.Module, "_Remote"),
		Class:     strings.TrimSuffix(f.Class, "_Remote"),
		Message:   f.Message,
		Traceback: f.Traceback,
		Args:      f.Args,
		Kwargs:    f.Kwargs,
	}
	if e.Module == "exceptions" {
		e.Module = "builtins"
	}
	name := e.Name()
	if local, ok := m[name]; ok {
		e.local = local
	} else if local, ok := builtinRemoteErrors[name]; ok {
		e.local = local
	}
	return e
}

// argsError reports keyword arguments that do not decode into a
// handler's argument type.
type argsError struct {
	method string
	err    error
}

func (e *argsError) Error() string {
	return fmt.Sprintf("%s() arguments: %v", e.method, e.err)
}

func (e *argsError) Unwrap() error { return e.err }
