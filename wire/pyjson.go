package wire

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

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
// input, but its output is then unspecified.
func pythonStyle(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(in)/4+8)
	for i := 0; i < len(in); {
		switch c := in[i]; c {
		case '"':
			var n int
			out, n = appendPyString(out, in[i:])
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

// appendPyString appends the JSON string token at the start of s, which
// begins with a quote, in Python's form, and returns the number of input
// bytes it used.
func appendPyString(out, s []byte) ([]byte, int) {
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
				out = appendPyRune(out, '\b')
			case 'f':
				out = appendPyRune(out, '\f')
			case 'n':
				out = appendPyRune(out, '\n')
			case 'r':
				out = appendPyRune(out, '\r')
			case 't':
				out = appendPyRune(out, '\t')
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
				out = appendPyRune(out, r)
			default: // `"`, `\` and `/`
				out = appendPyRune(out, rune(e))
			}
		case c < utf8.RuneSelf:
			out = appendPyRune(out, rune(c))
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			out = appendPyRune(out, r)
			i += size
		}
	}
	return out, i
}

// appendPyRune appends r as Python's ensure_ascii encoder writes it
// inside a string. r may be an unpaired surrogate.
func appendPyRune(out []byte, r rune) []byte {
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
		return appendU(appendU(out, hi), lo)
	default:
		return appendU(out, r)
	}
}

func appendU(out []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
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
