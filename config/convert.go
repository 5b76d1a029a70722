package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// The conversions below follow oslo.config's types: Boolean, Integer,
// Float and List of String.

var errNotBool = errors.New("not a boolean (want true/false, yes/no, on/off or 1/0)")

// parseBool accepts true/1/on/yes and false/0/off/no in any case, and
// nothing else: no surrounding white space (the file parser has removed
// it already; environment values keep theirs, as in oslo).
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "on", "yes":
		return true, nil
	case "false", "0", "off", "no":
		return false, nil
	}
	return false, errNotBool
}

// parseInt follows Python's int() on a string: surrounding white
// space, an optional sign, decimal digits (Unicode decimal digits
// included) with single underscores between them. A blank value is
// empty (oslo's None).
func parseInt(s string) (n int, empty bool, err error) {
	t, ok := asciiNumber(strings.TrimFunc(s, isPySpace))
	if !ok {
		return 0, false, errors.New("not an integer")
	}
	if t == "" {
		return 0, true, nil
	}
	digits := strings.TrimLeft(t, "+-")
	if len(t)-len(digits) > 1 || !validUnderscores(digits) || strings.ContainsFunc(digits, notDigitOrUnderscore) {
		return 0, false, errors.New("not an integer")
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(t, "_", ""), 10, 0)
	if err != nil {
		return 0, false, errors.New("integer out of range")
	}
	return int(v), false, nil
}

// parseFloat follows Python's float() on a string: white space, sign,
// decimal digits with optional fraction and exponent, underscores
// between digits, "inf", "infinity" and "nan" in any case. Too large
// values are infinite, as in Python. A blank value is empty.
func parseFloat(s string) (f float64, empty bool, err error) {
	t, ok := asciiNumber(strings.TrimFunc(s, isPySpace))
	if !ok {
		return 0, false, errors.New("not a number")
	}
	if t == "" {
		return 0, true, nil
	}
	body := strings.TrimLeft(t, "+-")
	if len(t)-len(body) > 1 {
		return 0, false, errors.New("not a number")
	}
	switch strings.ToLower(body) {
	case "nan":
		return math.NaN(), false, nil // Python accepts a sign, Go does not
	case "inf", "infinity":
	default:
		if !validUnderscores(body) || strings.ContainsFunc(body, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r == '_' || r == '.' || r == 'e' || r == 'E' || r == '+' || r == '-')
		}) {
			return 0, false, errors.New("not a number")
		}
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	var ne *strconv.NumError
	if err != nil && !(errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange)) {
		return 0, false, errors.New("not a number")
	}
	return v, false, nil
}

// parseList splits a comma-separated list as oslo.config's List type:
// the value is trimmed and loses its trailing commas, then each item is
// trimmed; empty items inside the list are kept.
func parseList(s string) []string {
	s = strings.TrimRight(strings.TrimFunc(s, isPySpace), ",")
	if s == "" {
		return []string{}
	}
	items := strings.Split(s, ",")
	for i, it := range items {
		items[i] = strings.TrimFunc(it, isPySpace)
	}
	return items
}

// asciiNumber replaces Unicode decimal digits by ASCII ones, as Python's
// int() and float() read them. It fails on other non-ASCII characters.
func asciiNumber(s string) (string, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s, true
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case unicode.Is(unicode.Nd, r):
			b.WriteByte(byte('0' + digitValue(r)))
		default:
			return "", false
		}
	}
	return b.String(), true
}

// digitValue returns the value of a Unicode decimal digit. Decimal
// digits come in runs of ten starting at a zero, and the ranges of the
// Nd table start at a zero.
func digitValue(r rune) int {
	for _, rg := range unicode.Nd.R16 {
		if lo, hi := rune(rg.Lo), rune(rg.Hi); r >= lo && r <= hi {
			return int(r-lo) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if lo, hi := rune(rg.Lo), rune(rg.Hi); r >= lo && r <= hi {
			return int(r-lo) % 10
		}
	}
	return 0
}

// validUnderscores reports whether every "_" of s sits between two
// ASCII digits, as Python requires.
func validUnderscores(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			continue
		}
		if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func notDigitOrUnderscore(r rune) bool { return !(r >= '0' && r <= '9' || r == '_') }

// The functions below print values as Python's str() does, for
// "$name" substitution, which inserts str() of the referenced option's
// value.

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// pyFloat is Python's repr() of a float: the shortest representation
// that reads back, in fixed notation with at least one decimal for
// exponents from -4 to 15, in scientific notation otherwise.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		s := digits[:1]
		if len(digits) > 1 {
			s += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		x := strconv.Itoa(exp)
		if len(x) < 2 {
			x = "0" + x
		}
		return sign + s + "e" + es + x
	}
	point := exp + 1 // digits before the decimal point
	switch {
	case point <= 0:
		return sign + "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		return sign + digits + strings.Repeat("0", point-len(digits)) + ".0"
	}
	return sign + digits[:point] + "." + digits[point:]
}

// pyStr is Python's repr() of a str.
func pyStr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteByte(q)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || r > 0x7e && unicode.IsPrint(r) || r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r < 0x100:
			b.WriteString(`\x` + hex2(int(r)))
		case r < 0x10000:
			b.WriteString(`\u` + hex2(int(r)>>8) + hex2(int(r)&0xff))
		default:
			b.WriteString(`\U` + hex2(int(r)>>24) + hex2(int(r)>>16&0xff) + hex2(int(r)>>8&0xff) + hex2(int(r)&0xff))
		}
	}
	b.WriteByte(q)
	return b.String()
}

func hex2(n int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[n>>4&0xf], digits[n&0xf]})
}

// pyList is Python's str() of a list of strings.
func pyList(items []string) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = pyStr(it)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
