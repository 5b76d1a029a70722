package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The decoders read JSON with the hand-written scanner below rather than
// encoding/json, to avoid its reflection, its per-value buffers and the
// copies of every raw value. They accept exactly the JSON texts that
// encoding/json accepts and decode them to the same values: strings are
// unquoted as json.Unmarshal unquotes them, and context values are what
// a json.Decoder with UseNumber makes of them.

// maxDepth is the deepest nesting of arrays and objects that a JSON text
// may have: encoding/json's limit. The encoders check raw JSON values
// against it, as json.Valid does.
const maxDepth = 10000

// MaxDecodeDepth is the deepest nesting of arrays and objects that the
// decoders (DecodeRequest, DecodeReply, DecodeNotification,
// DecodeFailure, Unwrap) accept in a JSON text, the envelope and the
// message inside it being separate texts; a deeper text is an
// ErrInvalidMessage. A deeply nested message costs little to send and
// much to decode, and a server must not spend its memory on one.
//
// The bound is Python's default recursion limit, 1000: CPython's json
// module (3.11 and earlier, which oslo.messaging 14.x runs on) can
// neither encode nor decode a value nested more deeply than that, less
// the frames of its callers, so no message of a Python peer comes near
// it, and no Python peer could decode a deeper message a Go peer sent.
const MaxDecodeDepth = 1000

// errNotObject is returned for a JSON text that is valid but not an
// object.
var errNotObject = errors.New("not a JSON object")

// A syntaxError describes where a JSON text is not valid.
type syntaxError struct {
	msg string
	off int // byte offset in the text
}

func (e *syntaxError) Error() string {
	return e.msg + " at offset " + strconv.Itoa(e.off)
}

// errAt returns a syntax error for the byte at b[i], found while doing
// what context says, or for the end of b.
func errAt(b []byte, i int, context string) error {
	if i >= len(b) {
		return &syntaxError{"unexpected end of JSON input", len(b)}
	}
	q := strconv.QuoteToASCII(string(b[i : i+1]))
	return &syntaxError{"invalid character '" + q[1:len(q)-1] + "' " + context, i}
}

// skipSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// numberEnd scans the JSON number that starts at b[i]. It returns the
// index after it, or, if b holds no valid number there, false and the
// index of the offending byte.
func numberEnd[T string | []byte](b T, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	end, ok := numberEnd(s, 0)
	return ok && end == len(s)
}

// literalEnd scans the literal true, false or null that starts at b[i],
// and returns the index after it.
func literalEnd(b []byte, i int) (int, error) {
	var lit string
	switch b[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return i + k, errAt(b, i+k, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// Flags of a string token.
const (
	strEscaped uint8 = 1 << iota // it holds an escape
	strHigh                      // it holds bytes beyond ASCII
)

// strClass classifies the bytes inside a string token: 0 for printable
// ASCII but `"` and `\`, strHigh for the bytes beyond ASCII, and the
// other classes below.
var strClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c < 0x20:
			t[c] = classControl
		case c == '"':
			t[c] = classQuote
		case c == '\\':
			t[c] = classBackslash
		case c >= utf8.RuneSelf:
			t[c] = strHigh
		}
	}
	return t
}()

const (
	classQuote = 4 + iota
	classBackslash
	classControl
)

// Strings are scanned eight bytes at a time while no byte needs a look.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specialBytes returns, for the eight bytes of w, a word with the high
// bit of some byte set if any of them is a control character, a quote or
// a backslash (it may mark other bytes too, but is never zero then), and
// high, the high bits of w: non-zero if a byte is beyond ASCII.
func specialBytes(w uint64) (special, high uint64) {
	q := w ^ ('"' * lsb)
	b := w ^ ('\\' * lsb)
	special = ((w - 0x20*lsb) | (q - lsb) | (b - lsb)) &^ w & msb
	return special, w & msb
}

// plainEnd returns the index of the first byte at or after i in b that
// is a quote, a backslash or a control character, and whether the bytes
// before it hold some beyond ASCII.
func plainEnd(b []byte, i int) (int, bool) {
	var high uint64
	for ; i+8 <= len(b); i += 8 {
		sp, h := specialBytes(binary.LittleEndian.Uint64(b[i:]))
		if sp != 0 {
			break
		}
		high |= h
	}
	for ; i < len(b); i++ {
		k := strClass[b[i]]
		if k > strHigh {
			break
		}
		high |= uint64(k)
	}
	return i, high != 0
}

// scanString validates the JSON string token that starts at b[i] (a
// quote) and returns the index after it and the token's flags.
func scanString(b []byte, i int) (int, uint8, error) {
	var fl uint8
	i++
	for {
		var high bool
		if i, high = plainEnd(b, i); high {
			fl |= strHigh
		}
		if i >= len(b) {
			return i, fl, errAt(b, i, "in string literal")
		}
		switch strClass[b[i]] {
		case classQuote:
			return i + 1, fl, nil
		case classControl:
			return i, fl, errAt(b, i, "in string literal")
		}
		// A backslash.
		fl |= strEscaped
		if i+1 >= len(b) {
			return i + 1, fl, errAt(b, i+1, "in string escape code")
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if _, err := hex4At(b, i+2); err != nil {
				return i, fl, err
			}
			i += 6
		default:
			return i + 1, fl, errAt(b, i+1, "in string escape code")
		}
	}
}

// scanValue validates the JSON value that starts at b[i], inside depth
// enclosing arrays and objects, and returns the index after it and, for
// a string, its flags. The nesting limit is encoding/json's.
func scanValue(b []byte, i, depth int) (int, uint8, error) {
	return scanValueMax(b, i, depth, maxDepth)
}

// scanValueMax is scanValue with limit as the deepest nesting allowed.
func scanValueMax(b []byte, i, depth, limit int) (int, uint8, error) {
	if i >= len(b) {
		return i, 0, errAt(b, i, "looking for beginning of value")
	}
	switch c := b[i]; {
	case c == '"':
		return scanString(b, i)
	case c == '{' || c == '[':
		end, err := scanContainer(b, i, depth, limit)
		return end, 0, err
	case c == '-' || isDigit(c):
		end, ok := numberEnd(b, i)
		if !ok {
			return end, 0, errAt(b, end, "in numeric literal")
		}
		return end, 0, nil
	case c == 't' || c == 'f' || c == 'n':
		end, err := literalEnd(b, i)
		return end, 0, err
	default:
		return i, 0, errAt(b, i, "looking for beginning of value")
	}
}

// scanContainer validates the array or object that starts at b[i],
// inside depth enclosing ones, and returns the index after it. It fails
// where the nesting goes beyond limit.
func scanContainer(b []byte, i, depth, limit int) (int, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0] // the open containers, '{' or '['
	for {
		// A value starts at i.
		if i >= len(b) {
			return i, errAt(b, i, "looking for beginning of value")
		}
		if c := b[i]; c == '{' || c == '[' {
			if depth+len(stack) >= limit {
				return i, &syntaxError{"exceeded max depth", i}
			}
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				stack = stack[:len(stack)-1]
				i++
			} else {
				if c == '{' {
					var err error
					if i, err = scanKey(b, i); err != nil {
						return i, err
					}
				}
				continue
			}
		} else {
			var err error
			if i, _, err = scanValueMax(b, i, depth+len(stack), limit); err != nil {
				return i, err
			}
		}
		// A value ends at i: close containers until another value
		// starts.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errAt(b, i, "after value")
			}
			top := stack[len(stack)-1]
			if b[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if b[i] != ',' {
				return i, errAt(b, i, "after value")
			}
			i = skipSpace(b, i+1)
			if top == '{' {
				var err error
				if i, err = scanKey(b, i); err != nil {
					return i, err
				}
			}
			break
		}
	}
}

// scanKey validates the object key at b[i] and the colon after it, and
// returns the index where the value starts.
func scanKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, errAt(b, i, "looking for beginning of object key string")
	}
	i, _, err := scanString(b, i)
	if err != nil {
		return i, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, errAt(b, i, "after object key")
	}
	return skipSpace(b, i+1), nil
}

// A member is a key and value of an object, as offsets into its text:
// the key token with its quotes, and the value.
type member struct {
	k0, k1 int
	v0, v1 int
	kf, vf uint8 // flags of the key, and of the value if a string
}

// members validates b as a JSON text, which must hold an object, and
// appends the object's members to ms in their order. It fails as
// json.Unmarshal of b into a map fails, with errNotObject for a valid
// text that is not an object (null included); it also fails for a text
// nested more deeply than MaxDecodeDepth.
func members(b []byte, ms []member) ([]member, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		end, _, err := scanValueMax(b, i, 0, MaxDecodeDepth)
		if err != nil {
			return ms, err
		}
		if end = skipSpace(b, end); end < len(b) {
			return ms, errAt(b, end, "after top-level value")
		}
		return ms, errNotObject
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return ms, errAt(b, i, "looking for beginning of object key string")
			}
			var m member
			var err error
			m.k0 = i
			if m.k1, m.kf, err = scanString(b, i); err != nil {
				return ms, err
			}
			i = skipSpace(b, m.k1)
			if i >= len(b) || b[i] != ':' {
				return ms, errAt(b, i, "after object key")
			}
			m.v0 = skipSpace(b, i+1)
			if m.v1, m.vf, err = scanValueMax(b, m.v0, 1, MaxDecodeDepth); err != nil {
				return ms, err
			}
			ms = append(ms, m)
			i = skipSpace(b, m.v1)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return ms, errAt(b, i, "after object key:value pair")
		}
	}
	if i = skipSpace(b, i); i < len(b) {
		return ms, errAt(b, i, "after top-level value")
	}
	return ms, nil
}

// appendUnquote appends the text of the valid string token tok, quotes
// included, unquoted as appendUnquoteAt unquotes it.
func appendUnquote(dst, tok []byte) []byte {
	dst, _, _ = appendUnquoteAt(dst, tok, 0)
	return dst
}

// appendUnquoteAt validates the JSON string token that starts at b[i] (a
// quote) as scanString does, appends its text, unquoted as
// json.Unmarshal does (escapes decoded, an unpaired surrogate escape and
// each byte of invalid UTF-8 replaced by U+FFFD), and returns the index
// after it.
func appendUnquoteAt(dst, b []byte, i int) ([]byte, int, error) {
	i++
	for {
		j, high := plainEnd(b, i)
		if high {
			dst = appendValidUTF8(dst, b[i:j])
		} else {
			dst = append(dst, b[i:j]...)
		}
		if i = j; i >= len(b) {
			return dst, i, errAt(b, i, "in string literal")
		}
		switch strClass[b[i]] {
		case classQuote:
			return dst, i + 1, nil
		case classControl:
			return dst, i, errAt(b, i, "in string literal")
		}
		// A backslash.
		if i+1 >= len(b) {
			return dst, i + 1, errAt(b, i+1, "in string escape code")
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, err := hex4At(b, i+2)
			if err != nil {
				return dst, i, err
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if lo, ok := hex4(b[i+2:]); ok {
						if dec := utf16.DecodeRune(r, lo); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, i + 1, errAt(b, i+1, "in string escape code")
		}
		i += 2
	}
}

// appendValidUTF8 appends s with each byte of invalid UTF-8 replaced by
// U+FFFD.
func appendValidUTF8(dst, s []byte) []byte {
	if utf8.Valid(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			dst = append(dst, s[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// stringEnd returns the index after the valid string token at b[i], and
// its flags.
func stringEnd(b []byte, i int) (int, uint8) {
	var fl uint8
	i++
	for {
		var high bool
		if i, high = plainEnd(b, i); high {
			fl |= strHigh
		}
		if b[i] == '"' {
			return i + 1, fl
		}
		// A backslash: the escaped byte is not a quote that ends the
		// token.
		fl |= strEscaped
		i += 2
	}
}

// A doc is a valid JSON text being decoded. Decoded strings are slices
// of one string copy of the whole text when big is set (one allocation
// for all of them), else copied one by one.
type doc struct {
	b    []byte
	s    string // string(b), once made
	made bool
	big  bool
}

// text returns b[i:j] as a string.
func (d *doc) text(i, j int) string {
	if !d.big {
		return string(d.b[i:j])
	}
	if !d.made {
		d.s, d.made = string(d.b), true
	}
	return d.s[i:j]
}

// str returns the value of the string token b[i:j], quotes included.
func (d *doc) str(i, j int, fl uint8) string {
	if fl&strEscaped == 0 && (fl&strHigh == 0 || utf8.Valid(d.b[i+1:j-1])) {
		return d.text(i+1, j-1)
	}
	var tmp [64]byte
	return string(appendUnquote(tmp[:0], d.b[i:j]))
}

// key returns the key of m.
func (d *doc) key(m *member) string { return d.str(m.k0, m.k1, m.kf) }

// raw returns a copy of the value of m.
func (d *doc) raw(m *member) json.RawMessage {
	return bytes.Clone(d.b[m.v0:m.v1])
}

// isNull reports whether the value of m is null.
func (d *doc) isNull(m *member) bool { return d.b[m.v0] == 'n' }

// optString returns the value of m, a string or null (""). ok is false
// for other types.
func (d *doc) optString(m *member) (s string, ok bool) {
	switch d.b[m.v0] {
	case 'n':
		return "", true
	case '"':
		return d.str(m.v0, m.v1, m.vf), true
	}
	return "", false
}

// value decodes the valid JSON value at b[i] as a json.Decoder with
// UseNumber decodes it into an any, and returns the index after it.
func (d *doc) value(i int) (any, int) {
	b := d.b
	switch b[i] {
	case '{':
		m := make(map[string]any)
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return m, i + 1
		}
		for {
			k1, kf := stringEnd(b, i)
			k := d.str(i, k1, kf)
			i = skipSpace(b, k1) // at the colon
			v, j := d.value(skipSpace(b, i+1))
			m[k] = v
			i = skipSpace(b, j)
			if b[i] == '}' {
				return m, i + 1
			}
			i = skipSpace(b, i+1) // after the comma
		}
	case '[':
		a := make([]any, 0, 4)
		i = skipSpace(b, i+1)
		if b[i] == ']' {
			return a, i + 1
		}
		for {
			v, j := d.value(i)
			a = append(a, v)
			i = skipSpace(b, j)
			if b[i] == ']' {
				return a, i + 1
			}
			i = skipSpace(b, i+1)
		}
	case '"':
		j, fl := stringEnd(b, i)
		return d.str(i, j, fl), j
	case 't':
		return true, i + 4
	case 'f':
		return false, i + 5
	case 'n':
		return nil, i + 4
	default:
		j, _ := numberEnd(b, i)
		return json.Number(d.text(i, j)), j
	}
}
