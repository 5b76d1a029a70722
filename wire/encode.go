package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Scratch buffers for building bodies and unquoting envelopes. Buffers
// that grew beyond maxPooledBuffer are left to the garbage collector, so
// that one huge message does not pin its memory.
const maxPooledBuffer = 256 << 10

var bufferPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(p *[]byte) {
	if cap(*p) > maxPooledBuffer {
		return
	}
	*p = (*p)[:0]
	bufferPool.Put(p)
}

// encodeWith runs appendFn on a scratch buffer and returns a copy of
// what it appended, sized to fit.
func encodeWith(appendFn func([]byte) ([]byte, error)) ([]byte, error) {
	p := getBuffer()
	defer putBuffer(p)
	b, err := appendFn((*p)[:0])
	if err != nil {
		return nil, err
	}
	*p = b[:0] // keep the grown buffer
	return bytes.Clone(b), nil
}

// appendObject appends raw, which must be a JSON object, in Python's
// form; nil, empty, blank or null is {}. It fails with "not a JSON
// object" otherwise.
func appendObject(dst []byte, raw json.RawMessage, esc int) ([]byte, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return append(dst, "{}"...), nil
	}
	if firstByte(raw) != '{' {
		return dst, errors.New("not a JSON object")
	}
	dst, err := appendPyJSON(dst, raw, esc)
	if err != nil {
		return dst, errors.New("not a JSON object")
	}
	return dst, nil
}

// appendContext appends the _context_<key> fields of ctx, sorted by key,
// each preceded by ", ".
func appendContext(dst []byte, ctx map[string]any, esc int) ([]byte, error) {
	if len(ctx) == 0 {
		return dst, nil
	}
	var buf [64]keyValue
	kvs := sortedPairs(buf[:0], ctx)
	for _, kv := range kvs {
		dst = append(dst, ',', ' ')
		dst = append(dst, escQuote[esc]...)
		dst = append(dst, contextPrefix...)
		dst = appendPyChars(dst, kv.k, esc)
		dst = append(dst, escQuote[esc]...)
		dst = append(dst, ':', ' ')
		var err error
		if dst, err = appendValue(dst, kv.v, esc, 0); err != nil {
			return dst, fmt.Errorf("wire: context key %q: %w", kv.k, err)
		}
	}
	return dst, nil
}

type keyValue struct {
	k string
	v any
}

// sortedPairs appends the entries of m to kvs, sorted by key.
func sortedPairs[V any](kvs []keyValue, m map[string]V) []keyValue {
	for k, v := range m {
		kvs = append(kvs, keyValue{k, v})
	}
	slices.SortFunc(kvs, func(a, b keyValue) int { return strings.Compare(a.k, b.k) })
	return kvs
}

// maxFastDepth bounds the recursion of appendValue; deeper values, and
// cyclic ones, are left to encoding/json.
const maxFastDepth = 64

// appendValue appends v in Python's form, at escape level esc: the
// bytes that pythonStyle makes of encoding/json's encoding of v. The
// types that contexts usually hold are written directly; others, and
// values that encoding/json rejects, go through encoding/json, so that
// the result and the errors are the same.
func appendValue(dst []byte, v any, esc, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendPyString(dst, x, esc), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			return appendJSONFloat(dst, x, 64), nil
		}
	case float32:
		if f := float64(x); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return appendJSONFloat(dst, f, 32), nil
		}
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case json.Number:
		if x == "" {
			return append(dst, '0'), nil
		}
		if validNumber(string(x)) {
			return append(dst, x...), nil
		}
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if out, err := appendPyJSON(dst, x, esc); err == nil {
			return out, nil
		}
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',', ' ')
			}
			dst = appendPyString(dst, s, esc)
		}
		return append(dst, ']'), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if depth < maxFastDepth {
			return appendList(dst, x, esc, depth+1)
		}
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if depth < maxFastDepth {
			return appendMap(dst, x, esc, depth+1)
		}
	case map[string]string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendMap(dst, x, esc, depth+1)
	}
	b, err := marshal(v)
	if err != nil {
		return dst, err
	}
	return appendPythonStyle(dst, b, esc), nil
}

func appendList(dst []byte, l []any, esc, depth int) ([]byte, error) {
	dst = append(dst, '[')
	for i, e := range l {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		var err error
		if dst, err = appendValue(dst, e, esc, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func appendMap[V any](dst []byte, m map[string]V, esc, depth int) ([]byte, error) {
	var buf [16]keyValue
	kvs := buf[:0]
	if len(m) > len(buf) {
		kvs = make([]keyValue, 0, len(m))
	}
	kvs = sortedPairs(kvs, m)
	dst = append(dst, '{')
	for i, kv := range kvs {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		dst = appendPyString(dst, kv.k, esc)
		dst = append(dst, ':', ' ')
		var err error
		if dst, err = appendValue(dst, kv.v, esc, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONFloat appends the finite f as encoding/json writes a float of
// the given bit size: like strconv's shortest 'f' format, or 'e' format
// with an exponent of at least one digit outside [1e-6, 1e21).
func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// errNotFinite is returned for NaN and infinite numbers, which JSON
// cannot carry.
var errNotFinite = errors.New("not a finite number")

// appendNumber appends a float as Python writes the int or float a
// caller passed: a whole number below 1e16 as an integer, any other
// number as Python's repr() of a float (fixed notation from 1e-4 to
// 1e16, exponent notation outside). It fails for NaN and infinities,
// which are not JSON.
func appendNumber(dst []byte, f float64) ([]byte, error) {
	a := math.Abs(f)
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return dst, errNotFinite
	case f == 0:
		return append(dst, '0'), nil // also for -0
	case f == math.Trunc(f) && a < 1e16:
		return strconv.AppendFloat(dst, f, 'f', -1, 64), nil
	case a < 1e-4 || a >= 1e16:
		return strconv.AppendFloat(dst, f, 'e', -1, 64), nil
	default:
		return strconv.AppendFloat(dst, f, 'f', -1, 64), nil
	}
}

// formatNumber returns what appendNumber appends.
func formatNumber(f float64) (string, error) {
	b, err := appendNumber(nil, f)
	return string(b), err
}

func firstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}
