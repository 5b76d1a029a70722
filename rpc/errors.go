package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

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
//
// A client rebuilds a RemoteError from what the server sent, which it
// does not trust: only the names registered with [WithRemoteErrors] (and
// oslo's dispatcher errors) map to local errors, and the Message and
// Traceback are bounded. A Message longer than 64 KiB keeps its first
// 64 KiB and a note of what was cut; a Traceback of more than 64 KiB or
// 1000 lines keeps its first line ("Traceback (most recent call
// last):"), a line saying how many lines and bytes were left out, and
// as many of its last lines (the innermost frames and the exception) as
// fit.
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

// Bounds of the text of a failure rebuilt by a client.
const (
	maxRemoteMessage   = 64 << 10 // bytes of the message
	maxTracebackBytes  = 64 << 10 // bytes of the traceback, all lines
	maxTracebackLines  = 1000
	maxRemoteNameBytes = 1024 // bytes of the module, and of the class
)

// remoteErrorFrom rebuilds a failure received by a client. Python's
// "exceptions" module is mapped to "builtins" and "_Remote" suffixes are
// dropped, as oslo does; local is looked up in m and then in the
// built-in map. The texts are bounded as RemoteError's doc says.
func remoteErrorFrom(f *driver.Failure, m map[string]error) *RemoteError {
	e := &RemoteError{
		Module:    truncateText(strings.TrimSuffix(f.Module, "_Remote"), maxRemoteNameBytes),
		Class:     truncateText(strings.TrimSuffix(f.Class, "_Remote"), maxRemoteNameBytes),
		Message:   truncateText(f.Message, maxRemoteMessage),
		Traceback: truncateTraceback(f.Traceback, maxTracebackBytes, maxTracebackLines),
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

// truncateText returns s if it has at most limit bytes, or else its
// first bytes, cut at a rune boundary, and a note of how many bytes were
// left out: at most limit bytes in all when limit leaves room for the
// note (a few dozen bytes).
func truncateText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	note := fmt.Sprintf("... (%d bytes omitted)", len(s))
	keep := max(limit-len(note), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + fmt.Sprintf("... (%d bytes omitted)", len(s)-keep)
}

// truncateTraceback returns tb if it has at most maxLines lines and
// maxBytes bytes, or else its first line, a line saying what was left
// out, and as many of its last lines as fit in the bounds; a last line
// longer than the bounds allow is itself truncated.
func truncateTraceback(tb []string, maxBytes, maxLines int) []string {
	total := 0
	for _, l := range tb {
		total += len(l)
	}
	if total <= maxBytes && len(tb) <= maxLines {
		return tb
	}
	const noteRoom = 64 // bytes kept for the line saying what was cut
	head := truncateText(tb[0], maxBytes/4)
	budget := maxBytes - len(head) - noteRoom
	var tail []string
	for i := len(tb) - 1; i > 0 && len(tail) < maxLines-2 && budget > 0; i-- {
		l := tb[i]
		if len(l) > budget {
			if len(tail) > 0 {
				break // keep whole lines, but at least one
			}
			l = truncateText(l, budget)
		}
		tail = append(tail, l)
		budget -= len(l)
	}
	keptBytes := len(head)
	for _, l := range tail {
		keptBytes += len(l)
	}
	omitted := len(tb) - 1 - len(tail)
	out := make([]string, 0, len(tail)+2)
	out = append(out, head,
		fmt.Sprintf("  ... (traceback truncated: %d lines and %d bytes omitted)\n", omitted, total-keptBytes))
	for i := len(tail) - 1; i >= 0; i-- {
		out = append(out, tail[i])
	}
	return out
}
