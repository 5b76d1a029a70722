package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// The encoders write text in the form Python's json.dumps gives it with
// its defaults: no whitespace but the ", " and ": " separators, and
// strings as its ensure_ascii encoder writes them. Everything they write
// is therefore printable ASCII.
//
// They write a message dictionary straight into its envelope, as the
// content of a JSON string, and a reply's failure as a string inside
// that string. The escape level says how many JSON strings the text is
// nested in: text written at level e decodes to the plain text after e
// rounds of JSON string decoding. Since the text is printable ASCII,
// only `"` and `\` change: at level e a backslash is written as 2^e
// backslashes, and a quote as 2^e-1 backslashes and a quote.
var (
	escBackslash = [...]string{`\`, `\\`, `\\\\`}
	escQuote     = [...]string{`"`, `\"`, `\\\"`}
)

// pyPlain[c] reports whether Python's ensure_ascii encoder writes the byte
// c as it is inside a string: printable ASCII but `"` and `\`.
var pyPlain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendLit appends the ASCII text s at escape level esc.
func appendLit(dst []byte, s string, esc int) []byte {
	if esc == 0 {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			dst = append(dst, escQuote[esc]...)
		case '\\':
			dst = append(dst, escBackslash[esc]...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendPyString appends s as a JSON string in Python's form, at escape
// level esc. Bytes of invalid UTF-8 become U+FFFD, as encoding/json
// writes them.
func appendPyString(dst []byte, s string, esc int) []byte {
	dst = append(dst, escQuote[esc]...)
	dst = appendPyChars(dst, s, esc)
	return append(dst, escQuote[esc]...)
}

// appendPyChars appends the characters of s as they appear inside a
// JSON string in Python's form, at escape level esc.
func appendPyChars(dst []byte, s string, esc int) []byte {
	for i := 0; i < len(s); {
		if pyPlain[s[i]] {
			j := i + 1
			for j < len(s) && pyPlain[s[j]] {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			dst = appendPyRune(dst, rune(c), esc)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = appendPyRune(dst, r, esc)
		i += size
	}
	return dst
}

// appendPyRune appends r as Python's ensure_ascii encoder writes it
// inside a string, at escape level esc. r may be an unpaired surrogate.
func appendPyRune(dst []byte, r rune, esc int) []byte {
	switch {
	case r == '"':
		return append(append(dst, escBackslash[esc]...), escQuote[esc]...)
	case r == '\\':
		return append(append(dst, escBackslash[esc]...), escBackslash[esc]...)
	case 0x20 <= r && r <= 0x7E:
		return append(dst, byte(r))
	case r == '\b':
		return append(append(dst, escBackslash[esc]...), 'b')
	case r == '\f':
		return append(append(dst, escBackslash[esc]...), 'f')
	case r == '\n':
		return append(append(dst, escBackslash[esc]...), 'n')
	case r == '\r':
		return append(append(dst, escBackslash[esc]...), 'r')
	case r == '\t':
		return append(append(dst, escBackslash[esc]...), 't')
	case r >= 0x10000:
		hi, lo := utf16.EncodeRune(r)
		return appendU(appendU(dst, hi, esc), lo, esc)
	default:
		return appendU(dst, r, esc)
	}
}

// appendU appends the escape \uXXXX of r, at escape level esc.
func appendU(dst []byte, r rune, esc int) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, escBackslash[esc]...)
	return append(dst, 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}

// appendPyJSON appends the JSON text src in Python's form, at escape
// level esc: whitespace is dropped, the separators become ", " and ": ",
// strings are written as appendPyToken writes them, and numbers and
// literals are copied. It fails, leaving what it appended unspecified,
// when src is not valid JSON in encoding/json's sense (json.Valid),
// which includes its nesting limit.
func appendPyJSON(dst, src []byte, esc int) ([]byte, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0] // the open containers, '{' or '['
	i := skipSpace(src, 0)
	for {
		// A value starts at i.
		if i >= len(src) {
			return dst, errAt(src, i, "looking for beginning of value")
		}
		var err error
		switch c := src[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return dst, &syntaxError{"exceeded max depth", i}
			}
			stack = append(stack, c)
			dst = append(dst, c)
			i = skipSpace(src, i+1)
			if i < len(src) && src[i] == c+2 { // '}' or ']'
				dst = append(dst, c+2)
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if dst, i, err = appendPyKey(dst, src, i, esc); err != nil {
					return dst, err
				}
			}
			continue
		case c == '"':
			if dst, i, err = appendPyToken(dst, src, i, esc); err != nil {
				return dst, err
			}
		case c == '-' || '0' <= c && c <= '9':
			j, ok := numberEnd(src, i)
			if !ok {
				return dst, errAt(src, j, "in numeric literal")
			}
			dst = append(dst, src[i:j]...)
			i = j
		case c == 't' || c == 'f' || c == 'n':
			j, err := literalEnd(src, i)
			if err != nil {
				return dst, err
			}
			dst = append(dst, src[i:j]...)
			i = j
		default:
			return dst, errAt(src, i, "looking for beginning of value")
		}
		// A value ends at i: close containers until another value
		// starts.
		for {
			i = skipSpace(src, i)
			if len(stack) == 0 {
				if i < len(src) {
					return dst, errAt(src, i, "after top-level value")
				}
				return dst, nil
			}
			if i >= len(src) {
				return dst, errAt(src, i, "after value")
			}
			top := stack[len(stack)-1]
			c := src[i]
			if c == top+2 {
				dst = append(dst, c)
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if c != ',' {
				return dst, errAt(src, i, "after value")
			}
			dst = append(dst, ',', ' ')
			i = skipSpace(src, i+1)
			if top == '{' {
				if dst, i, err = appendPyKey(dst, src, i, esc); err != nil {
					return dst, err
				}
			}
			break
		}
	}
}

// appendPyKey appends the object key at src[i], and the colon after it,
// and returns where the value may start.
func appendPyKey(dst, src []byte, i, esc int) ([]byte, int, error) {
	if i >= len(src) || src[i] != '"' {
		return dst, i, errAt(src, i, "looking for beginning of object key string")
	}
	dst, i, err := appendPyToken(dst, src, i, esc)
	if err != nil {
		return dst, i, err
	}
	i = skipSpace(src, i)
	if i >= len(src) || src[i] != ':' {
		return dst, i, errAt(src, i, "after object key")
	}
	return append(dst, ':', ' '), skipSpace(src, i+1), nil
}

// appendPyToken appends the JSON string token that starts at src[i] in
// Python's form, at escape level esc, and returns the index after it.
// Escapes are decoded first, so `\/`, `\u0041` or `\u00E9` come out as
// Python writes "/", "A" and "é"; a surrogate pair becomes one character
// and an unpaired surrogate escape stays one, as in Python. Bytes of
// invalid UTF-8 become U+FFFD, as encoding/json decodes them. It fails
// on what json.Valid rejects: control characters, bad escapes, a missing
// closing quote.
func appendPyToken(dst, src []byte, i, esc int) ([]byte, int, error) {
	dst = append(dst, escQuote[esc]...)
	i++
	for {
		j := i
		for j < len(src) && pyPlain[src[j]] {
			j++
		}
		dst = append(dst, src[i:j]...)
		i = j
		if i >= len(src) {
			return dst, i, errAt(src, i, "in string literal")
		}
		switch c := src[i]; {
		case c == '"':
			return append(dst, escQuote[esc]...), i + 1, nil
		case c == '\\':
			if i+1 >= len(src) {
				return dst, i + 1, errAt(src, i+1, "in string escape code")
			}
			switch e := src[i+1]; e {
			case '"', '\\', '/':
				dst = appendPyRune(dst, rune(e), esc)
			case 'b':
				dst = appendPyRune(dst, '\b', esc)
			case 'f':
				dst = appendPyRune(dst, '\f', esc)
			case 'n':
				dst = appendPyRune(dst, '\n', esc)
			case 'r':
				dst = appendPyRune(dst, '\r', esc)
			case 't':
				dst = appendPyRune(dst, '\t', esc)
			case 'u':
				r, err := hex4At(src, i+2)
				if err != nil {
					return dst, i, err
				}
				i += 6
				if 0xD800 <= r && r < 0xDC00 && i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					if lo, ok := hex4(src[i+2:]); ok && 0xDC00 <= lo && lo <= 0xDFFF {
						r = utf16.DecodeRune(r, lo)
						i += 6
					}
				}
				dst = appendPyRune(dst, r, esc)
				continue
			default:
				return dst, i + 1, errAt(src, i+1, "in string escape code")
			}
			i += 2
		case c < 0x20:
			return dst, i, errAt(src, i, "in string literal")
		case c < utf8.RuneSelf:
			dst = appendPyRune(dst, rune(c), esc)
			i++
		default:
			r, size := utf8.DecodeRune(src[i:])
			dst = appendPyRune(dst, r, esc)
			i += size
		}
	}
}

// hex4At decodes the four hexadecimal digits of a \u escape at src[i].
func hex4At(src []byte, i int) (rune, error) {
	r, ok := hex4(src[min(i, len(src)):])
	if ok {
		return r, nil
	}
	for j := i; j < i+4; j++ {
		if j >= len(src) || !isHex(src[j]) {
			return 0, errAt(src, j, "in \\u hexadecimal character escape")
		}
	}
	return 0, errAt(src, i, "in \\u hexadecimal character escape")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := b.Bytes()
	return out[:len(out)-1], nil // Encode appends a newline
}

// pythonStyle rewrites valid JSON into the bytes that Python's json.dumps
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
// The input must be valid JSON; pythonStyle does not panic on invalid
// input, but its output is then unspecified. Unlike appendPyJSON it has
// no nesting limit.
func pythonStyle(in []byte) []byte {
	return appendPythonStyle(make([]byte, 0, len(in)+len(in)/4+8), in, 0)
}

// appendPythonStyle appends pythonStyle(in) at escape level esc.
func appendPythonStyle(out, in []byte, esc int) []byte {
	for i := 0; i < len(in); {
		switch c := in[i]; c {
		case '"':
			var n int
			out, n = appendPyStringLenient(out, in[i:], esc)
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

// appendPyStringLenient appends the JSON string token at the start of
// s, which begins with a quote, in Python's form at escape level esc,
// and returns the number of input bytes it used. It accepts invalid
// tokens without panicking.
func appendPyStringLenient(out, s []byte, esc int) ([]byte, int) {
	out = append(out, escQuote[esc]...)
	i := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return append(out, escQuote[esc]...), i + 1
		case c == '\\' && i+1 < len(s):
			e := s[i+1]
			i += 2
			switch e {
			case 'b':
				out = appendPyRune(out, '\b', esc)
			case 'f':
				out = appendPyRune(out, '\f', esc)
			case 'n':
				out = appendPyRune(out, '\n', esc)
			case 'r':
				out = appendPyRune(out, '\r', esc)
			case 't':
				out = appendPyRune(out, '\t', esc)
			case 'u':
				r, ok := hex4(s[i:])
				if !ok {
					continue
				}
				i += 4
				if utf16.IsSurrogate(r) && r < 0xDC00 && len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
					if lo, ok := hex4(s[i+2:]); ok && 0xDC00 <= lo && lo <= 0xDFFF {
						r = utf16.DecodeRune(r, lo)
						i += 6
					}
				}
				out = appendPyRune(out, r, esc)
			default: // `"`, `\` and `/`
				out = appendPyRune(out, rune(e), esc)
			}
		case c < utf8.RuneSelf:
			out = appendPyRune(out, rune(c), esc)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			out = appendPyRune(out, r, esc)
			i += size
		}
	}
	return out, i
}

// hex4 decodes the four hexadecimal digits at the start of s.
func hex4(s []byte) (rune, bool) {
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
