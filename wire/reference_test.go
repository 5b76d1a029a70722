package wire

// This file holds a straightforward implementation of the codec on
// encoding/json, as a reference: the differential tests and fuzz targets
// in codec_test.go check that the hand-written codec gives the same
// bytes, values and errors.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-oslo/messaging/driver"
)

// refEnvelope wraps an encoded message dictionary in the 2.0 envelope:
// {"oslo.version": "2.0", "oslo.message": "<inner as a JSON string>"}.
func refEnvelope(inner []byte) []byte {
	s, _ := refMarshal(string(inner)) // a string always encodes
	s = refPythonStyle(s)
	out := make([]byte, 0, len(s)+40)
	out = append(out, `{"oslo.version": "2.0", "oslo.message": `...)
	out = append(out, s...)
	return append(out, '}')
}

// refUnwrap returns the message dictionary of body: the decoded inner
// string of an envelope, or body itself for an un-enveloped (legacy)
// message. It returns an error wrapping ErrUnsupportedEnvelope for an
// envelope version not compatible with 2.0, and ErrInvalidMessage for a
// body that is not a JSON object.
func refUnwrap(body []byte) (map[string]json.RawMessage, error) {
	outer, err := refDecodeObject(body)
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
	if !refEnvelopeCompatible(ver) {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedEnvelope, ver)
	}
	var inner string
	if err := json.Unmarshal(rawMsg, &inner); err != nil {
		return nil, fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, MessageKey)
	}
	return refDecodeObject([]byte(inner))
}

// refEnvelopeCompatible applies oslo's version_is_compatible("2.0", v),
// step by step, so that it accepts exactly what oslo accepts: the major
// version must be 2 and the minor at most 0; when the minor is 0, the
// revision (third part, if any) must be at most 0. Further parts are
// ignored, and a part that is not parsed is not checked. Where oslo
// raises (too few parts, a part that is not an integer) the envelope is
// not compatible.
func refEnvelopeCompatible(v string) bool {
	parts := strings.Split(v, ".")
	major, ok := refPyInt(parts[0])
	if !ok || major != 2 || len(parts) < 2 {
		return false
	}
	minor, ok := refPyInt(parts[1])
	if !ok || minor > 0 {
		return false
	}
	if minor == 0 && len(parts) > 2 {
		rev, ok := refPyInt(parts[2])
		if !ok || rev > 0 {
			return false
		}
	}
	return true
}

// refPyInt parses s as Python's int() does, restricted to ASCII: optional
// surrounding whitespace, an optional sign, and decimal digits with
// single underscores between them. Values beyond the int64 range are
// clamped, which keeps their comparisons with small numbers right.
func refPyInt(s string) (int64, bool) {
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

func refDecodeObject(b []byte) (map[string]json.RawMessage, error) {
	if refDepth(b) > MaxDecodeDepth {
		return nil, fmt.Errorf("%w: nested more than %d deep", ErrInvalidMessage, MaxDecodeDepth)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidMessage)
	}
	return m, nil
}

// refDepth returns the deepest nesting of arrays and objects in the
// JSON text b, counting the brackets outside strings.
func refDepth(b []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// refEncodeRequest returns the body of an RPC request: the enveloped
// dictionary with the keys method, args, [namespace], [version],
// [_msg_id, _reply_q, _timeout], _unique_id and _context_*, in that
// order. Calls (r.MsgID set) carry _msg_id, _reply_q and _timeout.
// It fails if r.Args is not a JSON object, r.MonitorTimeout is NaN or
// infinite, or a context value cannot be encoded.
func refEncodeRequest(r *driver.Request) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"method":`)
	refWriteString(&b, r.Method)
	b.WriteString(`,"args":`)
	if err := refWriteObject(&b, r.Args); err != nil {
		return nil, fmt.Errorf("wire: args: %w", err)
	}
	if r.Namespace != "" {
		b.WriteString(`,"namespace":`)
		refWriteString(&b, r.Namespace)
	}
	if r.Version != "" {
		b.WriteString(`,"version":`)
		refWriteString(&b, r.Version)
	}
	if r.MsgID != "" {
		b.WriteString(`,"_msg_id":`)
		refWriteString(&b, r.MsgID)
		b.WriteString(`,"_reply_q":`)
		refWriteString(&b, r.ReplyTo)
		b.WriteString(`,"_timeout":`)
		if r.MonitorTimeout == nil {
			b.WriteString("null")
		} else {
			n, err := refFormatNumber(*r.MonitorTimeout)
			if err != nil {
				return nil, fmt.Errorf("wire: _timeout: %w", err)
			}
			b.WriteString(n)
		}
	}
	b.WriteString(`,"_unique_id":`)
	refWriteString(&b, r.UniqueID)
	if err := refWriteContext(&b, r.Context); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	return refEnvelope(refPythonStyle(b.Bytes())), nil
}

// refDecodeRequest parses an RPC request body, enveloped or legacy. Missing
// or null fields are left empty; a request without "method" decodes, so
// that the server can answer it with NoSuchMethod. Context values keep
// their JSON types, numbers as json.Number. Errors wrap
// ErrInvalidMessage or ErrUnsupportedEnvelope.
func refDecodeRequest(body []byte) (*driver.Request, error) {
	m, err := refUnwrap(body)
	if err != nil {
		return nil, err
	}
	r := &driver.Request{}
	if err := refOptString(m, keyMethod, &r.Method); err != nil {
		return nil, err
	}
	if raw, ok := m[keyArgs]; ok && !refIsNull(raw) {
		if t := refFirstByte(raw); t != '{' {
			return nil, fmt.Errorf("%w: args is not an object", ErrInvalidMessage)
		}
		r.Args = raw
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{keyNamespace, &r.Namespace}, {keyVersion, &r.Version}, {keyMsgID, &r.MsgID}, {keyReplyQ, &r.ReplyTo}, {keyUniqueID, &r.UniqueID}} {
		if err := refOptString(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m[keyTimeout]; ok && !refIsNull(raw) {
		var t float64
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("%w: _timeout is not a number", ErrInvalidMessage)
		}
		r.MonitorTimeout = &t
	}
	ctx, err := refDecodeContext(m)
	if err != nil {
		return nil, err
	}
	r.Context = ctx
	return r, nil
}

// refEncodeReply returns the body of a reply to the call msgID: the
// enveloped dictionary result, failure, ending, _msg_id, _unique_id.
// A nil r encodes a heartbeat (null result and failure). The failure, if
// any, is embedded as a JSON string, as oslo does.
func refEncodeReply(r *driver.Reply, msgID, uniqueID string, ending bool) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"result":`)
	var failure string
	hasFailure := false
	if r != nil && r.Failure != nil {
		f, err := refEncodeFailure(r.Failure)
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
		refWriteString(&b, failure)
	} else {
		b.WriteString("null")
	}
	if ending {
		b.WriteString(`,"ending":true`)
	} else {
		b.WriteString(`,"ending":false`)
	}
	b.WriteString(`,"_msg_id":`)
	refWriteString(&b, msgID)
	b.WriteString(`,"_unique_id":`)
	refWriteString(&b, uniqueID)
	b.WriteByte('}')
	return refEnvelope(refPythonStyle(b.Bytes())), nil
}

// refDecodeReply parses a reply body, enveloped or legacy. As in oslo, a
// reply is final when "ending" is true in Python's sense (present and
// not false, null, 0, "", [] or {}), and a falsy "failure" (null, "",
// and so on) is no failure. Errors wrap ErrInvalidMessage or
// ErrUnsupportedEnvelope.
func refDecodeReply(body []byte) (*ReplyMessage, error) {
	m, err := refUnwrap(body)
	if err != nil {
		return nil, err
	}
	rm := &ReplyMessage{}
	if raw, ok := m["result"]; ok && !refIsNull(raw) {
		rm.Result = raw
	}
	if raw, ok := m["failure"]; ok && refTruthy(raw) {
		f, err := refDecodeFailureValue(raw)
		if err != nil {
			return nil, err
		}
		rm.Failure = f
	}
	if raw, ok := m["ending"]; ok {
		rm.Ending = refTruthy(raw)
	}
	if err := refOptString(m, keyMsgID, &rm.MsgID); err != nil {
		return nil, err
	}
	if err := refOptString(m, keyUniqueID, &rm.UniqueID); err != nil {
		return nil, err
	}
	return rm, nil
}

// refEncodeFailure returns oslo's serialized exception: a JSON object with
// the keys class, module, message, tb, args, kwargs, in Python's
// formatting.
func refEncodeFailure(f *driver.Failure) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"class":`)
	refWriteString(&b, f.Class)
	b.WriteString(`,"module":`)
	refWriteString(&b, f.Module)
	b.WriteString(`,"message":`)
	refWriteString(&b, f.Message)
	b.WriteString(`,"tb":[`)
	for i, line := range f.Traceback {
		if i > 0 {
			b.WriteByte(',')
		}
		refWriteString(&b, line)
	}
	b.WriteString(`],"args":`)
	switch {
	case len(f.Args) == 0:
		b.WriteString("[]")
	case refFirstByte(f.Args) != '[' || !json.Valid(f.Args):
		return nil, errors.New("wire: failure args is not a JSON array")
	default:
		b.Write(f.Args)
	}
	b.WriteString(`,"kwargs":`)
	if err := refWriteObject(&b, f.Kwargs); err != nil {
		return nil, fmt.Errorf("wire: failure kwargs: %w", err)
	}
	b.WriteByte('}')
	return refPythonStyle(b.Bytes()), nil
}

// refDecodeFailure parses oslo's serialized exception. Errors wrap
// ErrInvalidMessage.
func refDecodeFailure(data []byte) (*driver.Failure, error) {
	m, err := refDecodeObject(data)
	if err != nil {
		return nil, err
	}
	f := &driver.Failure{}
	for _, fld := range []struct {
		key string
		dst *string
	}{{"class", &f.Class}, {"module", &f.Module}, {"message", &f.Message}} {
		if err := refOptString(m, fld.key, fld.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m["tb"]; ok && !refIsNull(raw) {
		if err := json.Unmarshal(raw, &f.Traceback); err != nil {
			// Some senders use a single string.
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, fmt.Errorf("%w: failure tb is not a list of strings", ErrInvalidMessage)
			}
			f.Traceback = []string{s}
		}
	}
	if raw, ok := m["args"]; ok && !refIsNull(raw) {
		if refFirstByte(raw) != '[' {
			return nil, fmt.Errorf("%w: failure args is not a list", ErrInvalidMessage)
		}
		f.Args = raw
	}
	if raw, ok := m["kwargs"]; ok && !refIsNull(raw) {
		if refFirstByte(raw) != '{' {
			return nil, fmt.Errorf("%w: failure kwargs is not an object", ErrInvalidMessage)
		}
		f.Kwargs = raw
	}
	return f, nil
}

// refDecodeFailureValue accepts a failure as a JSON string (what oslo
// sends) or as an object.
func refDecodeFailureValue(raw json.RawMessage) (*driver.Failure, error) {
	if refFirstByte(raw) == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: failure: %w", ErrInvalidMessage, err)
		}
		return refDecodeFailure([]byte(s))
	}
	return refDecodeFailure(raw)
}

// refWriteContext appends the sorted _context_<key> fields.
func refWriteContext(b *bytes.Buffer, ctx map[string]any) error {
	if len(ctx) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := refMarshal(ctx[k])
		if err != nil {
			return fmt.Errorf("wire: context key %q: %w", k, err)
		}
		b.WriteByte(',')
		refWriteString(b, contextPrefix+k)
		b.WriteByte(':')
		b.Write(v)
	}
	return nil
}

// refDecodeContext collects the _context_* keys of m.
func refDecodeContext(m map[string]json.RawMessage) (map[string]any, error) {
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

func refWriteString(b *bytes.Buffer, s string) {
	out, _ := refMarshal(s) // strings always encode
	b.Write(out)
}

// refWriteObject appends raw, which must be a JSON object; nil, empty or
// null is {}. Whitespace is left for refPythonStyle to remove.
func refWriteObject(b *bytes.Buffer, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 || refIsNull(raw) {
		b.WriteString("{}")
		return nil
	}
	if refFirstByte(raw) != '{' || !json.Valid(raw) {
		return errors.New("not a JSON object")
	}
	b.Write(raw)
	return nil
}

func refOptString(m map[string]json.RawMessage, key string, dst *string) error {
	raw, ok := m[key]
	if !ok || refIsNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%w: %s is not a string", ErrInvalidMessage, key)
	}
	return nil
}

func refIsNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func refFirstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// refTruthy reports the Python truthiness of the value that json.loads
// makes of raw: false for null, false, zero, and empty strings, lists
// and objects.
func refTruthy(raw json.RawMessage) bool {
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

// errRefNotFinite is returned for NaN and infinite numbers, which JSON
// cannot carry.
var errRefNotFinite = errors.New("not a finite number")

// refFormatNumber writes a float as Python writes the int or float a caller
// passed: a whole number below 1e16 as an integer, any other number as
// Python's repr() of a float (fixed notation from 1e-4 to 1e16, exponent
// notation outside). It fails for NaN and infinities, which are not
// JSON.
func refFormatNumber(f float64) (string, error) {
	a := math.Abs(f)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return "", errRefNotFinite
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

// refEncodeNotification returns the body of a notification: the dictionary
// with the keys message_id, publisher_id, event_type, priority, payload,
// timestamp, _unique_id and the sorted _context_* keys, in that order,
// as oslo's Notifier and rabbit driver build it. With envelope set the
// dictionary is wrapped in the 2.0 envelope, as oslo's messagingv2
// driver sends it; without, it is the body itself, as oslo's messaging
// (v1) driver sends it.
//
// Every field is written as it is, empty strings included: filling in
// the message id, timestamp and unique id is the notifier's job. A nil
// or empty Payload is null. It fails if n is nil, n.Payload is not valid
// JSON, or a context value cannot be encoded.
func refEncodeNotification(n *driver.Notification, envelope bool) ([]byte, error) {
	if n == nil {
		return nil, errors.New("wire: nil notification")
	}
	var b bytes.Buffer
	b.WriteString(`{"message_id":`)
	refWriteString(&b, n.MessageID)
	b.WriteString(`,"publisher_id":`)
	refWriteString(&b, n.PublisherID)
	b.WriteString(`,"event_type":`)
	refWriteString(&b, n.EventType)
	b.WriteString(`,"priority":`)
	refWriteString(&b, n.Priority)
	b.WriteString(`,"payload":`)
	switch {
	case len(bytes.TrimSpace(n.Payload)) == 0:
		b.WriteString("null")
	case !json.Valid(n.Payload):
		return nil, errors.New("wire: notification payload is not valid JSON")
	default:
		b.Write(n.Payload)
	}
	b.WriteString(`,"timestamp":`)
	refWriteString(&b, n.Timestamp)
	b.WriteString(`,"_unique_id":`)
	refWriteString(&b, n.UniqueID)
	if err := refWriteContext(&b, n.Context); err != nil {
		return nil, err
	}
	b.WriteByte('}')
	out := refPythonStyle(b.Bytes())
	if envelope {
		return refEnvelope(out), nil
	}
	return out, nil
}

// refDecodeNotification parses a notification body, enveloped (oslo's
// messagingv2 driver) or not (its messaging driver). Missing or null
// string fields are left empty and a null or missing payload is nil, as
// oslo's listener reads them with dict.get; a dictionary without any of
// them therefore decodes, and deciding what to do with an unknown
// priority is left to the caller. Context values keep their JSON types,
// numbers as json.Number. Errors wrap ErrInvalidMessage (not a JSON
// object, a field of the wrong type) or ErrUnsupportedEnvelope.
func refDecodeNotification(body []byte) (*driver.Notification, error) {
	m, err := refUnwrap(body)
	if err != nil {
		return nil, err
	}
	n := &driver.Notification{}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{keyMessageID, &n.MessageID}, {keyPublisherID, &n.PublisherID}, {keyEventType, &n.EventType},
		{keyPriority, &n.Priority}, {keyTimestamp, &n.Timestamp}, {keyUniqueID, &n.UniqueID},
	} {
		if err := refOptString(m, f.key, f.dst); err != nil {
			return nil, err
		}
	}
	if raw, ok := m[keyPayload]; ok && !refIsNull(raw) {
		n.Payload = raw
	}
	ctx, err := refDecodeContext(m)
	if err != nil {
		return nil, err
	}
	n.Context = ctx
	return n, nil
}

// refMarshal encodes v as compact JSON without HTML escaping.
func refMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := b.Bytes()
	return out[:len(out)-1], nil // Encode appends a newline
}

// refPythonStyle rewrites valid JSON into the bytes that Python's json.dumps
// produces with its defaults for the same value: no whitespace but the
// ", " and ": " separators, and strings as Python's ensure_ascii writes
// them: printable ASCII as is except `"` and `\`, the short escapes \b
// \f \n \r \t, and every other character as a lower-case \uXXXX escape,
// characters beyond the BMP as surrogate pairs. Escapes in the input are
// decoded first, so `\/`, `\u0041` or `\u00E9` come out as Python would
// write "/", "A" and "é", and an unpaired surrogate escape stays one,
// as in Python. Bytes of invalid UTF-8 become U+FFFD, as encoding/json
// decodes them. Numbers and literals are copied unchanged.
//
// The input must be valid JSON; refPythonStyle does not panic on invalid
// input, but its output is then unspecified.
func refPythonStyle(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(in)/4+8)
	for i := 0; i < len(in); {
		switch c := in[i]; c {
		case '"':
			var n int
			out, n = refAppendPyString(out, in[i:])
			i += n
			continue
		case ',':
			out = append(out, ',', ' ')
		case ':':
			out = append(out, ':', ' ')
		case ' ', '\t', '\n', '\r':
		default:
			out = append(out, c)
		}
		i++
	}
	return out
}

// refAppendPyString appends the JSON string token at the start of s, which
// begins with a quote, in Python's form, and returns the number of input
// bytes it used.
func refAppendPyString(out, s []byte) ([]byte, int) {
	out = append(out, '"')
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return append(out, '"'), i + 1
		case c == '\\' && i+1 < len(s):
			e := s[i+1]
			i += 2
			switch e {
			case 'b':
				out = refAppendPyRune(out, '\b')
			case 'f':
				out = refAppendPyRune(out, '\f')
			case 'n':
				out = refAppendPyRune(out, '\n')
			case 'r':
				out = refAppendPyRune(out, '\r')
			case 't':
				out = refAppendPyRune(out, '\t')
			case 'u':
				r, ok := refHex4(s[i:])
				if !ok {
					continue
				}
				i += 4
				if utf16.IsSurrogate(r) && r < 0xDC00 && len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
					if lo, ok := refHex4(s[i+2:]); ok && 0xDC00 <= lo && lo <= 0xDFFF {
						r = utf16.DecodeRune(r, lo)
						i += 6
					}
				}
				out = refAppendPyRune(out, r)
			default: // `"`, `\` and `/`
				out = refAppendPyRune(out, rune(e))
			}
		case c < utf8.RuneSelf:
			out = refAppendPyRune(out, rune(c))
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			out = refAppendPyRune(out, r)
			i += size
		}
	}
	return out, i
}

// refAppendPyRune appends r as Python's ensure_ascii encoder writes it
// inside a string. r may be an unpaired surrogate.
func refAppendPyRune(out []byte, r rune) []byte {
	switch {
	case r == '"' || r == '\\':
		return append(out, '\\', byte(r))
	case 0x20 <= r && r <= 0x7E:
		return append(out, byte(r))
	case r == '\b':
		return append(out, '\\', 'b')
	case r == '\f':
		return append(out, '\\', 'f')
	case r == '\n':
		return append(out, '\\', 'n')
	case r == '\r':
		return append(out, '\\', 'r')
	case r == '\t':
		return append(out, '\\', 't')
	case r >= 0x10000:
		hi, lo := utf16.EncodeRune(r)
		return refAppendU(refAppendU(out, hi), lo)
	default:
		return refAppendU(out, r)
	}
}

func refAppendU(out []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}

// refHex4 decodes the four hexadecimal digits at the start of s.
func refHex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}
