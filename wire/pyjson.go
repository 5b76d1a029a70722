package wire

import (
	"bytes"
	"encoding/json"
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

// pythonStyle rewrites compact JSON into the bytes that Python's
// json.dumps produces with its defaults: ", " and ": " separators and
// ensure_ascii (every non-ASCII character as a lower-case \uXXXX escape,
// astral characters as surrogate pairs). The input must be valid,
// compact JSON such as encoding/json produces.
func pythonStyle(compact []byte) []byte {
	out := make([]byte, 0, len(compact)+len(compact)/8+8)
	inString := false
	for i := 0; i < len(compact); {
		c := compact[i]
		if inString {
			switch {
			case c == '\\':
				// Copy the escape as is; \u2028 and \u2029, which
				// encoding/json escapes, are what Python writes too.
				out = append(out, c, compact[i+1])
				i += 2
				continue
			case c == '"':
				inString = false
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(compact[i:])
				if r >= 0x10000 {
					r -= 0x10000
					out = appendU(out, 0xD800+(r>>10))
					out = appendU(out, 0xDC00+(r&0x3FF))
				} else {
					out = appendU(out, r)
				}
				i += size
				continue
			}
			out = append(out, c)
			i++
			continue
		}
		switch c {
		case '"':
			inString = true
			out = append(out, c)
		case ',':
			out = append(out, ',', ' ')
		case ':':
			out = append(out, ':', ' ')
		default:
			out = append(out, c)
		}
		i++
	}
	return out
}

func appendU(out []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15])
}
