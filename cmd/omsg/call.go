package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/rpc"
)

const callSummary = "Call METHOD on a server of the topic and print its result as one line of JSON."

const callDetails = `Each key=value is a keyword argument of the method; its value is parsed
as JSON when it is valid JSON, else taken as a string: n=5 is 5, s=hello
is "hello", l=[1,2] is a list, b=true is true, q='"5"' is the string "5".
Flags go before METHOD. --context is oslo's request context, a JSON
object. The call waits for the reply until --timeout (oslo's
rpc_response_timeout: with --config-file, the files' value is the
default).

Exit status: 0 when the method returned (its result is on stdout), 1 when
it raised an exception (printed on stderr as "remote error:
module.Class: message"), 2 when the broker could not be reached or no
reply came within --timeout, 64 for a usage error.`

const callExample = `omsg call --topic compute --server host1 oslo_rpc_server_ping
omsg call --url rabbit://user:pass@rabbit1:5672/ --topic omsg --server s1 --context '{"request_id": "req-1"}' echo n=5 s=hello l='[1,2]'`

const castSummary = "Cast METHOD to the servers of the topic: send it without waiting for it to run."

const castDetails = `The cast goes to one server of the topic, to the one named by --server,
or to every server of the topic with --fanout. Arguments and --context
are given as for omsg call. A cast that no server consumes is dropped by
the broker, as in oslo. A confirmation is printed on stderr once the
transport has taken the message (for RabbitMQ, once the broker confirmed
it).

Exit status: 0 when the message was sent, 2 when the broker could not be
reached or did not take it within --timeout, 64 for a usage error.`

const castExample = `omsg cast --topic omsg --server s1 echo n=5
omsg cast --topic omsg --fanout --namespace control --version 2.0 refresh`

// sendFlags are the flags of call and cast.
type sendFlags struct {
	targetFlags
	timeout time.Duration
	context string
	fanout  bool // cast only
}

// register defines the flags of call, or of cast when cast is true.
func (f *sendFlags) register(cmd *command, cast bool) {
	fs := cmd.cc.Flags()
	f.targetFlags.register(fs, "send to this `server` of the topic only (default: any server)",
		"RPC API `version` the method requires, major.minor (default: none, which servers take as 1.0)")
	if cast {
		fs.BoolVar(&f.fanout, "fanout", false, "send to every server of the topic")
		fs.DurationVar(&f.timeout, "timeout", rpc.DefaultTimeout, "how long to wait for the broker to take the message")
	} else {
		fs.DurationVar(&f.timeout, "timeout", rpc.DefaultTimeout, "how long to wait for the broker and the reply: oslo's rpc_response_timeout, whose value in the configuration files, if any, is the default")
	}
	fs.StringVar(&f.context, "context", "", `request context sent with the message, a JSON object (e.g. '{"request_id": "req-1"}')`)
	markConfigCompletion(cmd.cc)
}

// sendRequest is a call or cast as given on the command line.
type sendRequest struct {
	flags  *sendFlags
	method string
	kwargs map[string]json.RawMessage
	md     messaging.Metadata
}

// parseSend checks the flags and parses the arguments of call or cast.
// When ok is false the command must exit with code.
func parseSend(cmd *command, f *sendFlags, args []string, stderr io.Writer) (req *sendRequest, code int, ok bool) {
	if len(args) == 0 {
		return nil, cmd.usageError(stderr, "missing METHOD"), false
	}
	if f.topic == "" {
		return nil, cmd.usageError(stderr, "--topic is required"), false
	}
	if f.timeout <= 0 {
		return nil, cmd.usageError(stderr, "--timeout must be positive, not %v", f.timeout), false
	}
	req = &sendRequest{flags: f, method: args[0]}
	if strings.HasPrefix(req.method, "-") {
		return nil, cmd.usageError(stderr, "%q is not a method name", req.method), false
	}
	kwargs, err := parseKwargs(args[1:])
	if err != nil {
		return nil, cmd.usageError(stderr, "%v", err), false
	}
	req.kwargs = kwargs
	if f.context != "" {
		md, err := parseContext(f.context)
		if err != nil {
			return nil, cmd.usageError(stderr, "--context: %v", err), false
		}
		req.md = md
	}
	return req, exitOK, true
}

// parseKwargs turns key=value arguments into keyword arguments. Each
// value is kept as JSON when it is valid JSON and encoded as a JSON
// string otherwise.
func parseKwargs(args []string) (map[string]json.RawMessage, error) {
	kwargs := make(map[string]json.RawMessage, len(args))
	for _, a := range args {
		key, value, found := strings.Cut(a, "=")
		switch {
		case strings.HasPrefix(a, "-"):
			return nil, fmt.Errorf("unexpected %q after METHOD: flags go before METHOD", a)
		case !found:
			return nil, fmt.Errorf("argument %q is not key=value", a)
		case key == "":
			return nil, fmt.Errorf("argument %q has an empty key", a)
		}
		if _, dup := kwargs[key]; dup {
			return nil, fmt.Errorf("argument %q given twice", key)
		}
		if json.Valid([]byte(value)) {
			kwargs[key] = json.RawMessage(value)
			continue
		}
		s, err := json.Marshal(value)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", key, err)
		}
		kwargs[key] = s
	}
	return kwargs, nil
}

// parseContext parses --context, a JSON object, keeping numbers as
// json.Number so that they are sent as written.
func parseContext(s string) (messaging.Metadata, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a JSON object, not %s", jsonType(v))
	}
	return messaging.Metadata(m), nil
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// target returns the target the flags name.
func (r *sendRequest) target() messaging.Target {
	f := r.flags
	return messaging.Target{Exchange: f.exchange, Topic: f.topic, Server: f.server,
		Namespace: f.namespace, Version: f.version, Fanout: f.fanout}
}

// prepare opens the transport and builds the client of a parsed call or
// cast, reporting errors on stderr. The configuration files, when
// given, set the default of --timeout. The caller closes the transport
// when ok is true; otherwise the command exits with code.
func (r *sendRequest) prepare(cmd *command, stderr io.Writer) (tr *messaging.Transport, client *rpc.Client, code int, ok bool) {
	b, tr, code, ok := r.flags.setUp(cmd, false, stderr)
	if !ok {
		return nil, nil, code, false
	}
	if b.fromFiles && cmd.name == "call" && !cmd.changed("timeout") {
		r.flags.timeout = b.RPCResponseTimeout
	}
	client, err := rpc.NewClient(tr, r.target())
	if err != nil {
		_ = tr.Close()
		if isUsageError(err) {
			return nil, nil, cmd.usageError(stderr, "%v", err), false
		}
		fmt.Fprintf(stderr, "omsg %s: %v\n", cmd.name, err)
		return nil, nil, exitUnavailable, false
	}
	return tr, client, exitOK, true
}

// reach checks, within ctx, that the broker of tr can be reached, so
// that an unreachable broker is reported as such rather than as a
// missing reply.
func reach(ctx context.Context, cmd string, tr *messaging.Transport, timeout time.Duration, stderr io.Writer) (code int, ok bool) {
	err := tr.Ping(ctx)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "omsg %s: cannot reach the broker at %s within %v (--timeout): %v\n", cmd, tr.URL(), timeout, err)
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "omsg %s: interrupted while connecting to %s\n", cmd, tr.URL())
	default:
		fmt.Fprintf(stderr, "omsg %s: cannot reach the broker at %s: %v\n", cmd, tr.URL(), err)
	}
	return exitUnavailable, false
}

// isUsageError reports whether err was caused by the command line: an
// invalid target or option, such as a malformed --version.
func isUsageError(err error) bool {
	return errors.Is(err, messaging.ErrInvalidOption) || errors.Is(err, messaging.ErrInvalidTarget)
}

// sendFailed reports the error of a call or cast of method to target on
// stderr and returns the exit code: exitFailure for a remote error,
// exitUsage for an invalid request, exitUnavailable for a timeout or a
// transport error. With --verbose it adds the remote traceback or the
// full error.
func sendFailed(cmd *command, f *sendFlags, method string, target messaging.Target, err error, stderr io.Writer) int {
	var re *rpc.RemoteError
	switch {
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "remote error: %s: %s\n", re.Name(), re.Message)
		if f.verbose && len(re.Traceback) > 0 {
			fmt.Fprintf(stderr, "remote traceback:\n%s", strings.Join(re.Traceback, ""))
		}
		return exitFailure
	case isUsageError(err):
		return cmd.usageError(stderr, "%v", err)
	case errors.Is(err, context.DeadlineExceeded) && cmd.name == "call":
		fmt.Fprintf(stderr, "omsg call: timed out after %v (--timeout) waiting for a reply to %s from %v\n", f.timeout, method, target)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "omsg %s: timed out after %v (--timeout) sending %s to %v\n", cmd.name, f.timeout, method, target)
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "omsg %s: interrupted while sending %s to %v\n", cmd.name, method, target)
	default:
		fmt.Fprintf(stderr, "omsg %s: %v\n", cmd.name, err)
		return exitUnavailable
	}
	if f.verbose {
		fmt.Fprintf(stderr, "omsg %s: %v\n", cmd.name, err)
	}
	return exitUnavailable
}

// runSend runs what omsg call, or omsg cast when cast is true, does
// before sending: it parses args, opens the transport, builds the client
// and checks that the broker can be reached. Then it calls send, with
// the context carrying --context, and returns its exit code. The
// --timeout deadline bounds the whole command: connecting, sending and,
// for a call, waiting for the reply; the client takes it as the call's
// timeout.
func runSend(ctx context.Context, cmd *command, f *sendFlags, args []string, stderr io.Writer,
	send func(ctx context.Context, req *sendRequest, client *rpc.Client) int) int {
	req, code, ok := parseSend(cmd, f, args, stderr)
	if !ok {
		return code
	}
	tr, client, code, ok := req.prepare(cmd, stderr)
	if !ok {
		return code
	}
	defer tr.Close()

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if req.md != nil {
		ctx = messaging.NewOutgoingContext(ctx, req.md)
	}
	if code, ok := reach(ctx, cmd.name, tr, f.timeout, stderr); !ok {
		return code
	}
	return send(ctx, req, client)
}

// newCallCommand returns omsg call, which writes on stdout and stderr.
func newCallCommand(stdout, stderr io.Writer) *cobra.Command {
	stderr = &lockedWriter{w: stderr}
	cmd := newCommand("call", "--topic T [flags] METHOD [key=value ...]", callSummary, callDetails, callExample)
	var f sendFlags
	f.register(cmd, false)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runCallCommand(cc.Context(), cmd, &f, args, stdout, stderr))
	}
	return cmd.cc
}

// runCallCommand runs omsg call.
func runCallCommand(ctx context.Context, cmd *command, f *sendFlags, args []string, stdout, stderr io.Writer) int {
	return runSend(ctx, cmd, f, args, stderr, func(ctx context.Context, req *sendRequest, client *rpc.Client) int {
		var result json.RawMessage
		if err := client.Call(ctx, req.method, req.kwargs, &result); err != nil {
			return sendFailed(cmd, req.flags, req.method, client.Target(), err, stderr)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, result); err != nil {
			fmt.Fprintf(stderr, "omsg call: the result of %s is not valid JSON: %v\n", req.method, err)
			return exitUnavailable
		}
		line := append(readableJSON(compact.Bytes()), '\n')
		if _, err := stdout.Write(line); err != nil {
			fmt.Fprintf(stderr, "omsg call: writing the result: %v\n", err)
			return exitFailure
		}
		return exitOK
	})
}

// newCastCommand returns omsg cast, which writes on stderr.
func newCastCommand(stderr io.Writer) *cobra.Command {
	stderr = &lockedWriter{w: stderr}
	cmd := newCommand("cast", "--topic T [flags] METHOD [key=value ...]", castSummary, castDetails, castExample)
	var f sendFlags
	f.register(cmd, true)
	cmd.cc.RunE = func(cc *cobra.Command, args []string) error {
		return exitWith(runCastCommand(cc.Context(), cmd, &f, args, stderr))
	}
	return cmd.cc
}

// runCastCommand runs omsg cast.
func runCastCommand(ctx context.Context, cmd *command, f *sendFlags, args []string, stderr io.Writer) int {
	return runSend(ctx, cmd, f, args, stderr, func(ctx context.Context, req *sendRequest, client *rpc.Client) int {
		if err := client.Cast(ctx, req.method, req.kwargs); err != nil {
			return sendFailed(cmd, req.flags, req.method, client.Target(), err, stderr)
		}
		fmt.Fprintf(stderr, "omsg cast: sent %s to %v\n", req.method, client.Target())
		return exitOK
	})
}

// readableJSON returns the JSON text src with the \uXXXX escapes of
// printable characters (oslo's wire format escapes every non-ASCII
// character) replaced by the characters themselves, in UTF-8, so that
// text reads as text. Other escapes are kept, among them those of
// control and other non-printable characters, quotes, backslashes and
// lone surrogates, so the JSON value is unchanged.
func readableJSON(src []byte) []byte {
	out := make([]byte, 0, len(src))
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case !inString:
			inString = c == '"'
			out = append(out, c)
		case c == '"':
			inString = false
			out = append(out, c)
		case c == '\\':
			if r, n := decodeEscape(src[i:]); n > 0 {
				out = utf8.AppendRune(out, r)
				i += n - 1
				continue
			}
			// Any other escape, \\ included, is copied whole, so that
			// its second character is not taken for the start of one.
			out = append(out, c)
			if i+1 < len(src) {
				i++
				out = append(out, src[i])
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

// decodeEscape decodes the \uXXXX escape, or the escaped UTF-16
// surrogate pair, at the start of b. It returns n = 0 when the escape is
// to be kept: not a \u escape, not valid, a lone surrogate, or a
// character that is not printable or must stay escaped in JSON.
func decodeEscape(b []byte) (r rune, n int) {
	r, ok := hex4(b)
	if !ok {
		return 0, 0
	}
	n = 6
	if utf16.IsSurrogate(r) {
		low, ok := hex4(b[n:])
		if r >= 0xDC00 || !ok || low < 0xDC00 || low > 0xDFFF {
			return 0, 0
		}
		r, n = utf16.DecodeRune(r, low), 12
	}
	if r == '"' || r == '\\' || r == 0x2028 || r == 0x2029 || !unicode.IsPrint(r) {
		return 0, 0
	}
	return r, n
}

// hex4 decodes the \uXXXX escape at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	// With base 16, ParseUint takes hexadecimal digits only: no sign,
	// prefix or underscore.
	r, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return rune(r), err == nil
}
