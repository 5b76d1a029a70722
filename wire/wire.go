// Package wire encodes and decodes oslo.messaging's message format: the
// "2.0" envelope, the RPC request and reply dictionaries, notifications
// (with the envelope, as oslo's messagingv2 driver sends them, or
// without, as its messaging driver does), the flattened _context_* keys
// and the serialized exceptions ("failures").
//
// Encoders produce the bytes that Python oslo.messaging 14.x publishes
// for the same message (key order, ", " and ": " separators, strings
// escaped as Python's ensure_ascii does), with two exceptions: context
// keys are sorted, where oslo keeps the order of the caller's dict, and
// numbers inside arguments, results and context values are copied as
// the caller encoded them, so a float64 with no fraction, which
// encoding/json writes as 1, is not Python's 1.0. Decoders accept what
// any oslo.messaging version sends: the envelope, un-enveloped legacy
// messages, and failures as a JSON string or object. They reject the
// NaN and Infinity literals that Python's json module also writes, since
// they are not JSON.
//
// Decoded messages own their memory: they share none with the body they
// came from, which the caller may reuse. The Append functions
// (AppendRequest, AppendReply, AppendNotification) write into a buffer
// that the caller provides, for drivers that reuse their buffers.
//
// The package is used by drivers; applications do not need it.
package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-oslo/messaging/driver"
)

// Envelope keys and the version this package speaks.
const (
	VersionKey      = "oslo.version"
	MessageKey      = "oslo.message"
	EnvelopeVersion = "2.0"
	contextPrefix   = "_context_"
)

// Errors returned by the decoders.
var (
	// ErrInvalidMessage is wrapped by errors for bodies that are not
	// oslo messages: not JSON, not an object, or fields of the wrong type.
	ErrInvalidMessage = errors.New("wire: invalid message")
	// ErrUnsupportedEnvelope is wrapped by errors for envelopes whose
	// oslo.version is not compatible with 2.0 (oslo's
	// UnsupportedRpcEnvelopeVersion).
	ErrUnsupportedEnvelope = errors.New("wire: unsupported envelope version")
)

// NewID returns a new random identifier in oslo's uuid4().hex form: 32
// lower-case hexadecimal digits. It is used for _msg_id, _unique_id and
// queue names.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// NewUUID returns a new random identifier in str(uuid4()) form, 36
// characters with dashes, as oslo uses for notification message ids.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// envelopeHead starts every enveloped body; the message dictionary
// follows as a JSON string.
const envelopeHead = `{"oslo.version": "2.0", "oslo.message": `

// Envelope wraps an encoded message dictionary in the 2.0 envelope:
// {"oslo.version": "2.0", "oslo.message": "<inner as a JSON string>"}.
func Envelope(inner []byte) []byte {
	out := make([]byte, 0, len(inner)+len(inner)/4+len(envelopeHead)+4)
	out = append(out, envelopeHead...)
	out = appendPyString(out, string(inner), 0)
	return append(out, '}')
}

// Unwrap returns the message dictionary of body: the decoded inner
// string of an envelope, or body itself for an un-enveloped (legacy)
// message. It returns an error wrapping ErrUnsupportedEnvelope for an
// envelope version not compatible with 2.0, and ErrInvalidMessage for a
// body that is not a JSON object. The values are copies: they do not
// share memory with body.
func Unwrap(body []byte) (map[string]json.RawMessage, error) {
	var inner []byte
	var buf [32]member
	msg, ms, err := openMessage(body, &inner, buf[:0])
	if err != nil {
		return nil, err
	}
	if inner == nil { // a legacy message: msg is body
		msg = bytes.Clone(msg)
	}
	d := doc{b: msg, big: true}
	m := make(map[string]json.RawMessage, len(ms))
	for i := range ms {
		mb := &ms[i]
		m[d.key(mb)] = msg[mb.v0:mb.v1:mb.v1]
	}
	return m, nil
}

// openMessage parses body, enveloped or legacy, and returns the JSON
// text of its message dictionary and the dictionary's members, appended
// to ms. For an envelope, the text is the unquoted inner message,
// written over *buf; for a legacy message, it is body itself and *buf
// is left alone. As with a map, the last of repeated keys counts.
func openMessage(body []byte, buf *[]byte, ms []member) ([]byte, []member, error) {
	if inner, ok := unwrapCanonical(body, (*buf)[:0]); ok {
		*buf = inner
		ms, err := members(inner, ms)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		}
		return inner, ms, nil
	}
	ms, err := members(body, ms)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	var ver, msg *member
	var tmp [64]byte
	for i := range ms {
		switch m := &ms[i]; string(keyBytes(body, m, &tmp)) {
		case VersionKey:
			ver = m
		case MessageKey:
			msg = m
		}
	}
	if ver == nil || msg == nil {
		return body, ms, nil // legacy "1.0" message
	}
	switch raw := body[ver.v0:ver.v1]; {
	case string(raw) == `"2.0"`:
	case raw[0] == '"':
		if v := string(appendUnquote(tmp[:0], raw)); !envelopeCompatible(v) {
			return nil, nil, fmt.Errorf("%w: %q", ErrUnsupportedEnvelope, v)
		}
	case raw[0] == 'n': // null reads as "", not a compatible version
		return nil, nil, fmt.Errorf("%w: %q", ErrUnsupportedEnvelope, "")
	default:
		return nil, nil, fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, VersionKey)
	}
	switch raw := body[msg.v0:msg.v1]; raw[0] {
	case '"':
		*buf = appendUnquote((*buf)[:0], raw)
	case 'n': // null reads as "", which is not JSON
		*buf = (*buf)[:0]
	default:
		return nil, nil, fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, MessageKey)
	}
	if *buf == nil {
		*buf = []byte{}
	}
	inner := *buf
	if ms, err = members(inner, ms[:0]); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	return inner, ms, nil
}

// unwrapCanonical reads the envelopes that oslo and EncodeRequest write,
// {"oslo.version": "2.0", "oslo.message": "..."}, in a single pass: it
// appends the unquoted message to dst. ok is false for any other body,
// valid or not, which openMessage then reads the long way.
func unwrapCanonical(body, dst []byte) (inner []byte, ok bool) {
	if len(body) < len(envelopeHead)+3 || string(body[:len(envelopeHead)+1]) != envelopeHead+`"` {
		return nil, false
	}
	inner, end, err := appendUnquoteAt(dst, body, len(envelopeHead))
	if err != nil {
		return nil, false
	}
	if end = skipSpace(body, end); end >= len(body) || body[end] != '}' || skipSpace(body, end+1) != len(body) {
		return nil, false
	}
	if inner == nil {
		inner = []byte{}
	}
	return inner, true
}

// envelopeCompatible applies oslo's version_is_compatible("2.0", v),
// step by step, so that it accepts exactly what oslo accepts: the major
// version must be 2 and the minor at most 0; when the minor is 0, the
// revision (third part, if any) must be at most 0. Further parts are
// ignored, and a part that is not parsed is not checked. Where oslo
// raises (too few parts, a part that is not an integer) the envelope is
// not compatible.
func envelopeCompatible(v string) bool {
	parts := strings.Split(v, ".")
	major, ok := pyInt(parts[0])
	if !ok || major != 2 || len(parts) < 2 {
		return false
	}
	minor, ok := pyInt(parts[1])
	if !ok || minor > 0 {
		return false
	}
	if minor == 0 && len(parts) > 2 {
		rev, ok := pyInt(parts[2])
		if !ok || rev > 0 {
			return false
		}
	}
	return true
}

// pyInt parses s as Python's int() does, restricted to ASCII: optional
// surrounding whitespace, an optional sign, and decimal digits with
// single underscores between them. Values beyond the int64 range are
// clamped, which keeps their comparisons with small numbers right.
func pyInt(s string) (int64, bool) {
	s = strings.Trim(s, " \t\n\v\f\r\x1c\x1d\x1e\x1f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < math.MaxInt64/10 {
			n = n*10 + int64(c-'0')
		} else {
			n = math.MaxInt64
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// keyBytes returns the key of m, a member of the JSON text b, unquoted
// into tmp if it holds escapes or bytes beyond ASCII.
func keyBytes(b []byte, m *member, tmp *[64]byte) []byte {
	if m.kf == 0 {
		return b[m.k0+1 : m.k1-1]
	}
	return appendUnquote(tmp[:0], b[m.k0:m.k1])
}

// hasContextPrefix reports whether the key k starts with "_context_".
func hasContextPrefix(k []byte) bool {
	return len(k) >= len(contextPrefix) && string(k[:len(contextPrefix)]) == contextPrefix
}

// context decodes the _context_* members of d; n counts them.
func (d *doc) context(ms []member, n int) map[string]any {
	if n == 0 {
		return nil
	}
	ctx := make(map[string]any, n)
	for i := range ms {
		m := &ms[i]
		if name, ok := strings.CutPrefix(d.key(m), contextPrefix); ok {
			ctx[name], _ = d.value(m.v0)
		}
	}
	return ctx
}

// setString sets *dst to the value of m, if m is not nil: a string, or
// "" for null. It fails for other types.
func (d *doc) setString(m *member, key string, dst *string) error {
	if m == nil {
		return nil
	}
	s, ok := d.optString(m)
	if !ok {
		return fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, key)
	}
	*dst = s
	return nil
}

// EncodeRequest returns the body of an RPC request: the enveloped
// dictionary with the keys method, args, [namespace], [version],
// [_msg_id, _reply_q, _timeout], _unique_id and _context_*, in that
// order. Calls (r.MsgID set) carry _msg_id, _reply_q and _timeout.
// It fails if r.Args is not a JSON object, r.MonitorTimeout is NaN or
// infinite, or a context value cannot be encoded.
func EncodeRequest(r *driver.Request) ([]byte, error) {
	return encodeWith(func(b []byte) ([]byte, error) { return AppendRequest(b, r) })
}

// AppendRequest appends the body that [EncodeRequest] returns for r to
// dst and returns the extended buffer, so that a caller can reuse its
// buffers. On error it returns dst with its original length, and the
// error that EncodeRequest returns.
func AppendRequest(dst []byte, r *driver.Request) ([]byte, error) {
	n := len(dst)
	dst = append(dst, envelopeHead...)
	dst = append(dst, '"')
	dst, err := appendRequest(dst, r, 1)
	if err != nil {
		return dst[:n], err
	}
	return append(dst, '"', '}'), nil
}

// appendRequest appends the message dictionary of r at escape level esc.
func appendRequest(dst []byte, r *driver.Request, esc int) ([]byte, error) {
	dst = appendLit(dst, `{"method": `, esc)
	dst = appendPyString(dst, r.Method, esc)
	dst = appendLit(dst, `, "args": `, esc)
	dst, err := appendObject(dst, r.Args, esc)
	if err != nil {
		return dst, fmt.Errorf("wire: args: %w", err)
	}
	if r.Namespace != "" {
		dst = appendLit(dst, `, "namespace": `, esc)
		dst = appendPyString(dst, r.Namespace, esc)
	}
	if r.Version != "" {
		dst = appendLit(dst, `, "version": `, esc)
		dst = appendPyString(dst, r.Version, esc)
	}
	if r.MsgID != "" {
		dst = appendLit(dst, `, "_msg_id": `, esc)
		dst = appendPyString(dst, r.MsgID, esc)
		dst = appendLit(dst, `, "_reply_q": `, esc)
		dst = appendPyString(dst, r.ReplyTo, esc)
		dst = appendLit(dst, `, "_timeout": `, esc)
		if r.MonitorTimeout == nil {
			dst = append(dst, "null"...)
		} else if dst, err = appendNumber(dst, *r.MonitorTimeout); err != nil {
			return dst, fmt.Errorf("wire: _timeout: %w", err)
		}
	}
	dst = appendLit(dst, `, "_unique_id": `, esc)
	dst = appendPyString(dst, r.UniqueID, esc)
	if dst, err = appendContext(dst, r.Context, esc); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// Message keys that DecodeRequest consumes.
const (
	keyMethod    = "method"
	keyArgs      = "args"
	keyNamespace = "namespace"
	keyVersion   = "version"
	keyMsgID     = "_msg_id"
	keyReplyQ    = "_reply_q"
	keyTimeout   = "_timeout"
	keyUniqueID  = "_unique_id"
)

// DecodeRequest parses an RPC request body, enveloped or legacy. Missing
// or null fields are left empty; a request without "method" decodes, so
// that the server can answer it with NoSuchMethod. Context values keep
// their JSON types, numbers as json.Number. Errors wrap
// ErrInvalidMessage or ErrUnsupportedEnvelope. The request does not
// share memory with body.
func DecodeRequest(body []byte) (*driver.Request, error) {
	p := getBuffer()
	defer putBuffer(p)
	var buf [64]member
	msg, ms, err := openMessage(body, p, buf[:0])
	if err != nil {
		return nil, err
	}
	d := doc{b: msg, big: true}
	var method, args, namespace, version, msgID, replyQ, timeout, uniqueID *member
	nctx := 0
	var tmp [64]byte
	for i := range ms {
		m := &ms[i]
		k := keyBytes(msg, m, &tmp)
		switch string(k) {
		case keyMethod:
			method = m
		case keyArgs:
			args = m
		case keyNamespace:
			namespace = m
		case keyVersion:
			version = m
		case keyMsgID:
			msgID = m
		case keyReplyQ:
			replyQ = m
		case keyTimeout:
			timeout = m
		case keyUniqueID:
			uniqueID = m
		default:
			if hasContextPrefix(k) {
				nctx++
			}
		}
	}
	r := &driver.Request{}
	if err := d.setString(method, keyMethod, &r.Method); err != nil {
		return nil, err
	}
	if args != nil && !d.isNull(args) {
		if msg[args.v0] != '{' {
			return nil, fmt.Errorf("%w: args is not an object", ErrInvalidMessage)
		}
		r.Args = d.raw(args)
	}
	if err := d.setString(namespace, keyNamespace, &r.Namespace); err != nil {
		return nil, err
	}
	if err := d.setString(version, keyVersion, &r.Version); err != nil {
		return nil, err
	}
	if err := d.setString(msgID, keyMsgID, &r.MsgID); err != nil {
		return nil, err
	}
	if err := d.setString(replyQ, keyReplyQ, &r.ReplyTo); err != nil {
		return nil, err
	}
	if err := d.setString(uniqueID, keyUniqueID, &r.UniqueID); err != nil {
		return nil, err
	}
	if timeout != nil && !d.isNull(timeout) {
		c := msg[timeout.v0]
		if c != '-' && !isDigit(c) {
			return nil, fmt.Errorf("%w: _timeout is not a number", ErrInvalidMessage)
		}
		t, err := strconv.ParseFloat(d.text(timeout.v0, timeout.v1), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: _timeout is not a number", ErrInvalidMessage)
		}
		r.MonitorTimeout = &t
	}
	r.Context = d.context(ms, nctx)
	return r, nil
}

// ReplyMessage is a decoded reply or heartbeat.
type ReplyMessage struct {
	Result   json.RawMessage // nil for null
	Failure  *driver.Failure // nil for null
	Ending   bool            // true for the final reply
	MsgID    string
	UniqueID string
}

// IsHeartbeat reports whether m is a call-monitor heartbeat: not final
// and without a result or failure. (oslo's client restarts its call
// monitor only when "ending" is false or absent; no oslo version sends a
// non-final reply with another falsy "ending".)
func (m *ReplyMessage) IsHeartbeat() bool {
	return !m.Ending && m.Result == nil && m.Failure == nil
}

// EncodeReply returns the body of a reply to the call msgID: the
// enveloped dictionary result, failure, ending, _msg_id, _unique_id.
// A nil r encodes a heartbeat (null result and failure). The failure, if
// any, is embedded as a JSON string, as oslo does.
func EncodeReply(r *driver.Reply, msgID, uniqueID string, ending bool) ([]byte, error) {
	return encodeWith(func(b []byte) ([]byte, error) { return AppendReply(b, r, msgID, uniqueID, ending) })
}

// AppendReply appends the body that [EncodeReply] returns for its
// arguments to dst and returns the extended buffer, so that a caller can
// reuse its buffers. On error it returns dst with its original length,
// and the error that EncodeReply returns.
func AppendReply(dst []byte, r *driver.Reply, msgID, uniqueID string, ending bool) ([]byte, error) {
	n := len(dst)
	dst = append(dst, envelopeHead...)
	dst = append(dst, '"')
	dst = appendLit(dst, `{"result": `, 1)
	hasFailure := r != nil && r.Failure != nil
	var err error
	switch {
	case r == nil || hasFailure || len(r.Result) == 0:
		dst = append(dst, "null"...)
	default:
		if dst, err = appendPyJSON(dst, r.Result, 1); err != nil {
			return dst[:n], errors.New("wire: reply result is not valid JSON")
		}
	}
	dst = appendLit(dst, `, "failure": `, 1)
	if hasFailure {
		dst = append(dst, escQuote[1]...)
		if dst, err = appendFailure(dst, r.Failure, 2); err != nil {
			return dst[:n], err
		}
		dst = append(dst, escQuote[1]...)
	} else {
		dst = append(dst, "null"...)
	}
	if ending {
		dst = appendLit(dst, `, "ending": true`, 1)
	} else {
		dst = appendLit(dst, `, "ending": false`, 1)
	}
	dst = appendLit(dst, `, "_msg_id": `, 1)
	dst = appendPyString(dst, msgID, 1)
	dst = appendLit(dst, `, "_unique_id": `, 1)
	dst = appendPyString(dst, uniqueID, 1)
	return append(dst, '}', '"', '}'), nil
}

// DecodeReply parses a reply body, enveloped or legacy. As in oslo, a
// reply is final when "ending" is true in Python's sense (present and
// not false, null, 0, "", [] or {}), and a falsy "failure" (null, "",
// and so on) is no failure. Errors wrap ErrInvalidMessage or
// ErrUnsupportedEnvelope. The reply does not share memory with body.
func DecodeReply(body []byte) (*ReplyMessage, error) {
	p := getBuffer()
	defer putBuffer(p)
	var buf [16]member
	msg, ms, err := openMessage(body, p, buf[:0])
	if err != nil {
		return nil, err
	}
	d := doc{b: msg}
	var result, failure, ending, msgID, uniqueID *member
	var tmp [64]byte
	for i := range ms {
		switch m := &ms[i]; string(keyBytes(msg, m, &tmp)) {
		case "result":
			result = m
		case "failure":
			failure = m
		case "ending":
			ending = m
		case keyMsgID:
			msgID = m
		case keyUniqueID:
			uniqueID = m
		}
	}
	rm := &ReplyMessage{}
	if result != nil && !d.isNull(result) {
		rm.Result = d.raw(result)
	}
	if failure != nil && truthy(msg[failure.v0:failure.v1]) {
		f, err := decodeFailureValue(msg[failure.v0:failure.v1])
		if err != nil {
			return nil, err
		}
		rm.Failure = f
	}
	if ending != nil {
		rm.Ending = truthy(msg[ending.v0:ending.v1])
	}
	if err := d.setString(msgID, keyMsgID, &rm.MsgID); err != nil {
		return nil, err
	}
	if err := d.setString(uniqueID, keyUniqueID, &rm.UniqueID); err != nil {
		return nil, err
	}
	return rm, nil
}

// EncodeFailure returns oslo's serialized exception: a JSON object with
// the keys class, module, message, tb, args, kwargs, in Python's
// formatting.
func EncodeFailure(f *driver.Failure) ([]byte, error) {
	return encodeWith(func(b []byte) ([]byte, error) { return appendFailure(b, f, 0) })
}

// appendFailure appends EncodeFailure(f) at escape level esc.
func appendFailure(dst []byte, f *driver.Failure, esc int) ([]byte, error) {
	dst = appendLit(dst, `{"class": `, esc)
	dst = appendPyString(dst, f.Class, esc)
	dst = appendLit(dst, `, "module": `, esc)
	dst = appendPyString(dst, f.Module, esc)
	dst = appendLit(dst, `, "message": `, esc)
	dst = appendPyString(dst, f.Message, esc)
	dst = appendLit(dst, `, "tb": [`, esc)
	for i, line := range f.Traceback {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		dst = appendPyString(dst, line, esc)
	}
	dst = appendLit(dst, `], "args": `, esc)
	switch {
	case len(f.Args) == 0:
		dst = append(dst, "[]"...)
	case firstByte(f.Args) != '[':
		return dst, errors.New("wire: failure args is not a JSON array")
	default:
		var err error
		if dst, err = appendPyJSON(dst, f.Args, esc); err != nil {
			return dst, errors.New("wire: failure args is not a JSON array")
		}
	}
	dst = appendLit(dst, `, "kwargs": `, esc)
	dst, err := appendObject(dst, f.Kwargs, esc)
	if err != nil {
		return dst, fmt.Errorf("wire: failure kwargs: %w", err)
	}
	return append(dst, '}'), nil
}

// DecodeFailure parses oslo's serialized exception. Errors wrap
// ErrInvalidMessage. The failure does not share memory with data.
func DecodeFailure(data []byte) (*driver.Failure, error) {
	var buf [16]member
	ms, err := members(data, buf[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	d := doc{b: data, big: true}
	var class, module, message, tb, args, kwargs *member
	var tmp [64]byte
	for i := range ms {
		switch m := &ms[i]; string(keyBytes(data, m, &tmp)) {
		case "class":
			class = m
		case "module":
			module = m
		case "message":
			message = m
		case "tb":
			tb = m
		case "args":
			args = m
		case "kwargs":
			kwargs = m
		}
	}
	f := &driver.Failure{}
	if err := d.setString(class, "class", &f.Class); err != nil {
		return nil, err
	}
	if err := d.setString(module, "module", &f.Module); err != nil {
		return nil, err
	}
	if err := d.setString(message, "message", &f.Message); err != nil {
		return nil, err
	}
	if tb != nil && !d.isNull(tb) {
		switch data[tb.v0] {
		case '"': // some senders use a single string
			f.Traceback = []string{d.str(tb.v0, tb.v1, tb.vf)}
		case '[':
			lines, ok := d.stringList(tb.v0)
			if !ok {
				return nil, fmt.Errorf("%w: failure tb is not a list of strings", ErrInvalidMessage)
			}
			f.Traceback = lines
		default:
			return nil, fmt.Errorf("%w: failure tb is not a list of strings", ErrInvalidMessage)
		}
	}
	if args != nil && !d.isNull(args) {
		if data[args.v0] != '[' {
			return nil, fmt.Errorf("%w: failure args is not a list", ErrInvalidMessage)
		}
		f.Args = d.raw(args)
	}
	if kwargs != nil && !d.isNull(kwargs) {
		if data[kwargs.v0] != '{' {
			return nil, fmt.Errorf("%w: failure kwargs is not an object", ErrInvalidMessage)
		}
		f.Kwargs = d.raw(kwargs)
	}
	return f, nil
}

// stringList decodes the valid array at b[i] as json.Unmarshal decodes
// it into a []string: null elements are "". ok is false if an element
// is neither a string nor null. The strings share one allocation.
func (d *doc) stringList(i int) (lines []string, ok bool) {
	b := d.b
	first := skipSpace(b, i+1)
	if b[first] == ']' {
		return []string{}, true
	}
	// Unquote the strings one after the other into a scratch buffer,
	// noting where each ends.
	p := getBuffer()
	defer putBuffer(p)
	text := (*p)[:0]
	var endsBuf [16]int
	ends := endsBuf[:0]
	for j := first; ; {
		switch b[j] {
		case '"':
			end, fl := stringEnd(b, j)
			if fl == 0 {
				text = append(text, b[j+1:end-1]...)
			} else {
				text = appendUnquote(text, b[j:end])
			}
			j = end
		case 'n':
			j += len("null")
		default:
			return nil, false
		}
		ends = append(ends, len(text))
		if j = skipSpace(b, j); b[j] == ']' {
			break
		}
		j = skipSpace(b, j+1)
	}
	*p = text
	all := string(text)
	lines = make([]string, len(ends))
	start := 0
	for k, end := range ends {
		lines[k] = all[start:end]
		start = end
	}
	return lines, true
}

// decodeFailureValue accepts a failure as a JSON string (what oslo
// sends) or as an object. raw is a valid JSON value.
func decodeFailureValue(raw []byte) (*driver.Failure, error) {
	if raw[0] != '"' {
		return DecodeFailure(raw)
	}
	p := getBuffer()
	defer putBuffer(p)
	*p = appendUnquote((*p)[:0], raw)
	return DecodeFailure(*p)
}

// truthy reports the Python truthiness of the value that json.loads
// makes of raw: false for null, false, zero, and empty strings, lists
// and objects.
func truthy(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case 'n', 'f':
		return false
	case 't':
		return true
	case '"':
		return len(raw) > 2
	case '[', '{':
		// Empty unless something other than whitespace sits between the
		// brackets.
		return len(raw) > 2 && len(bytes.TrimSpace(raw[1:len(raw)-1])) > 0
	default:
		f, err := strconv.ParseFloat(string(raw), 64)
		return err != nil || f != 0 // out of range: an infinity
	}
}
