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
	"sort"
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
	s := NewID()
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// Envelope wraps an encoded message dictionary in the 2.0 envelope:
// {"oslo.version": "2.0", "oslo.message": "<inner as a JSON string>"}.
func Envelope(inner []byte) []byte {
	s, _ := marshal(string(inner)) // a string always encodes
	s = pythonStyle(s)
	out := make([]byte, 0, len(s)+40)
	out = append(out, `{"oslo.version": "2.0", "oslo.message": `...)
	out = append(out, s...)
	return append(out, '}')
}

// Unwrap returns the message dictionary of body: the decoded inner
// string of an envelope, or body itself for an un-enveloped (legacy)
// message. It returns an error wrapping ErrUnsupportedEnvelope for an
// envelope version not compatible with 2.0, and ErrInvalidMessage for a
// body that is not a JSON object.
func Unwrap(body []byte) (map[string]json.RawMessage, error) {
	outer, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	rawVer, hasVer := outer[VersionKey]
	rawMsg, hasMsg := outer[MessageKey]
	if !hasVer || !hasMsg {
		return outer, nil // legacy "1.0" message
	}
	var ver string
	if err := json.Unmarshal(rawVer, &ver); err != nil {
		return nil, fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, VersionKey)
	}
	if !envelopeCompatible(ver) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedEnvelope, ver)
	}
	var inner string
	if err := json.Unmarshal(rawMsg, &inner); err != nil {
		return nil, fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, MessageKey)
	}
	return decodeObject([]byte(inner))
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

func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	return m, nil
}

// EncodeRequest returns the body of an RPC request: the enveloped
// dictionary with the keys method, args, [namespace], [version],
// [_msg_id, _reply_q, _timeout], _unique_id and _context_*, in that
// order. Calls (r.MsgID set) carry _msg_id, _reply_q and _timeout.
// It fails if r.Args is not a JSON object, r.MonitorTimeout is NaN or
// infinite, or a context value cannot be encoded.
func EncodeRequest(r *driver.Request) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"method":`)
	writeString(&b, r.Method)
	b.WriteString(`,"args":`)
	if err := writeObject(&b, r.Args); err != nil {
		return nil, fmt.Errorf("wire: args: %w", err)
	}
	if r.Namespace != "" {
		b.WriteString(`,"namespace":`)
		writeString(&b, r.Namespace)
	}
	if r.Version != "" {
		b.WriteString(`,"version":`)
		writeString(&b, r.Version)
	}
	if r.MsgID != "" {
		b.WriteString(`,"_msg_id":`)
		writeString(&b, r.MsgID)
		b.WriteString(`,"_reply_q":`)
		writeString(&b, r.ReplyTo)
		b.WriteString(`,"_timeout":`)
		if r.MonitorTimeout == nil {
			b.WriteString("null")
		} else {
			n, err := formatNumber(*r.MonitorTimeout)
			if err != nil {
				return nil, fmt.Errorf("wire: _timeout: %w", err)
			}
			b.WriteString(n)
		}
	}
	b.WriteString(`,"_unique_id":`)
	writeString(&b, r.UniqueID)
	if err := writeContext(&b, r.Context); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return Envelope(pythonStyle(b.Bytes())), nil
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
// ErrInvalidMessage or ErrUnsupportedEnvelope.
func DecodeRequest(body []byte) (*driver.Request, error) {
	m, err := Unwrap(body)
	if err != nil {
		return nil, err
	}
	r := &driver.Request{}
	if err := optString(m, keyMethod, &r.Method); err != nil {
		return nil, err
	}
	if raw, ok := m[keyArgs]; ok && !isNull(raw) {
		if t := firstByte(raw); t != '{' {
			return nil, fmt.Errorf("%w: args is not an object", ErrInvalidMessage)
		}
		r.Args = raw
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{keyNamespace, &r.Namespace}, {keyVersion, &r.Version}, {keyMsgID, &r.MsgID}, {keyReplyQ, &r.ReplyTo}, {keyUniqueID, &r.UniqueID}} {
		if err := optString(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m[keyTimeout]; ok && !isNull(raw) {
		var t float64
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("%w: _timeout is not a number", ErrInvalidMessage)
		}
		r.MonitorTimeout = &t
	}
	ctx, err := decodeContext(m)
	if err != nil {
		return nil, err
	}
	r.Context = ctx
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
	var b bytes.Buffer
	b.WriteString(`{"result":`)
	var failure string
	hasFailure := false
	if r != nil && r.Failure != nil {
		f, err := EncodeFailure(r.Failure)
		if err != nil {
			return nil, err
		}
		failure, hasFailure = string(f), true
	}
	switch {
	case r == nil || hasFailure || len(r.Result) == 0:
		b.WriteString("null")
	case !json.Valid(r.Result):
		return nil, errors.New("wire: reply result is not valid JSON")
	default:
		b.Write(r.Result)
	}
	b.WriteString(`,"failure":`)
	if hasFailure {
		writeString(&b, failure)
	} else {
		b.WriteString("null")
	}
	if ending {
		b.WriteString(`,"ending":true`)
	} else {
		b.WriteString(`,"ending":false`)
	}
	b.WriteString(`,"_msg_id":`)
	writeString(&b, msgID)
	b.WriteString(`,"_unique_id":`)
	writeString(&b, uniqueID)
	b.WriteByte('}')
	return Envelope(pythonStyle(b.Bytes())), nil
}

// DecodeReply parses a reply body, enveloped or legacy. As in oslo, a
// reply is final when "ending" is true in Python's sense (present and
// not false, null, 0, "", [] or {}), and a falsy "failure" (null, "",
// and so on) is no failure. Errors wrap ErrInvalidMessage or
// ErrUnsupportedEnvelope.
func DecodeReply(body []byte) (*ReplyMessage, error) {
	m, err := Unwrap(body)
	if err != nil {
		return nil, err
	}
	rm := &ReplyMessage{}
	if raw, ok := m["result"]; ok && !isNull(raw) {
		rm.Result = raw
	}
	if raw, ok := m["failure"]; ok && truthy(raw) {
		f, err := decodeFailureValue(raw)
		if err != nil {
			return nil, err
		}
		rm.Failure = f
	}
	if raw, ok := m["ending"]; ok {
		rm.Ending = truthy(raw)
	}
	if err := optString(m, keyMsgID, &rm.MsgID); err != nil {
		return nil, err
	}
	if err := optString(m, keyUniqueID, &rm.UniqueID); err != nil {
		return nil, err
	}
	return rm, nil
}

// EncodeFailure returns oslo's serialized exception: a JSON object with
// the keys class, module, message, tb, args, kwargs, in Python's
// formatting.
func EncodeFailure(f *driver.Failure) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"class":`)
	writeString(&b, f.Class)
	b.WriteString(`,"module":`)
	writeString(&b, f.Module)
	b.WriteString(`,"message":`)
	writeString(&b, f.Message)
	b.WriteString(`,"tb":[`)
	for i, line := range f.Traceback {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, line)
	}
	b.WriteString(`],"args":`)
	switch {
	case len(f.Args) == 0:
		b.WriteString("[]")
	case firstByte(f.Args) != '[' || !json.Valid(f.Args):
		return nil, errors.New("wire: failure args is not a JSON array")
	default:
		b.Write(f.Args)
	}
	b.WriteString(`,"kwargs":`)
	if err := writeObject(&b, f.Kwargs); err != nil {
		return nil, fmt.Errorf("wire: failure kwargs: %w", err)
	}
	b.WriteByte('}')
	return pythonStyle(b.Bytes()), nil
}

// DecodeFailure parses oslo's serialized exception. Errors wrap
// ErrInvalidMessage.
func DecodeFailure(data []byte) (*driver.Failure, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	f := &driver.Failure{}
	for _, fld := range []struct {
		key string
		dst *string
	}{{"class", &f.Class}, {"module", &f.Module}, {"message", &f.Message}} {
		if err := optString(m, fld.key, fld.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["tb"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &f.Traceback); err != nil {
			// Some senders use a single string.
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, fmt.Errorf("%w: failure tb is not a list of strings", ErrInvalidMessage)
			}
			f.Traceback = []string{s}
		}
	}
	if raw, ok := m["args"]; ok && !isNull(raw) {
		if firstByte(raw) != '[' {
			return nil, fmt.Errorf("%w: failure args is not a list", ErrInvalidMessage)
		}
		f.Args = raw
	}
	if raw, ok := m["kwargs"]; ok && !isNull(raw) {
		if firstByte(raw) != '{' {
			return nil, fmt.Errorf("%w: failure kwargs is not an object", ErrInvalidMessage)
		}
		f.Kwargs = raw
	}
	return f, nil
}

// decodeFailureValue accepts a failure as a JSON string (what oslo
// sends) or as an object.
func decodeFailureValue(raw json.RawMessage) (*driver.Failure, error) {
	if firstByte(raw) == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: failure: %w", ErrInvalidMessage, err)
		}
		return DecodeFailure([]byte(s))
	}
	return DecodeFailure(raw)
}

// writeContext appends the sorted _context_<key> fields.
func writeContext(b *bytes.Buffer, ctx map[string]any) error {
	if len(ctx) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := marshal(ctx[k])
		if err != nil {
			return fmt.Errorf("wire: context key %q: %w", k, err)
		}
		b.WriteByte(',')
		writeString(b, contextPrefix+k)
		b.WriteByte(':')
		b.Write(v)
	}
	return nil
}

// decodeContext collects the _context_* keys of m.
func decodeContext(m map[string]json.RawMessage) (map[string]any, error) {
	var ctx map[string]any
	for k, raw := range m {
		name, ok := strings.CutPrefix(k, contextPrefix)
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: context key %q: %w", ErrInvalidMessage, name, err)
		}
		if ctx == nil {
			ctx = make(map[string]any)
		}
		ctx[name] = v
	}
	return ctx, nil
}

func writeString(b *bytes.Buffer, s string) {
	out, _ := marshal(s) // strings always encode
	b.Write(out)
}

// writeObject appends raw, which must be a JSON object; nil, empty or
// null is {}. Whitespace is left for pythonStyle to remove.
func writeObject(b *bytes.Buffer, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 || isNull(raw) {
		b.WriteString("{}")
		return nil
	}
	if firstByte(raw) != '{' || !json.Valid(raw) {
		return errors.New("not a JSON object")
	}
	b.Write(raw)
	return nil
}

func optString(m map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, key)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func firstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// truthy reports the Python truthiness of the value that json.loads
// makes of raw: false for null, false, zero, and empty strings, lists
// and objects.
func truthy(raw json.RawMessage) bool {
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

// errNotFinite is returned for NaN and infinite numbers, which JSON
// cannot carry.
var errNotFinite = errors.New("not a finite number")

// formatNumber writes a float as Python writes the int or float a caller
// passed: a whole number below 1e16 as an integer, any other number as
// Python's repr() of a float (fixed notation from 1e-4 to 1e16, exponent
// notation outside). It fails for NaN and infinities, which are not
// JSON.
func formatNumber(f float64) (string, error) {
	a := math.Abs(f)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "", errNotFinite
	case f == 0:
		return "0", nil // also for -0
	case f == math.Trunc(f) && a < 1e16:
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case a < 1e-4 || a >= 1e16:
		return strconv.FormatFloat(f, 'e', -1, 64), nil
	default:
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
}
