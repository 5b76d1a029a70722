package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits that keep substitution linear in the size of the files: nested
// references (beyond the loop detection), and the text that one value
// may expand to (references that double the text at each level would
// otherwise grow it exponentially).
const (
	maxSubstitutionDepth = 32
	maxSubstitutedLen    = 1 << 20
)

// substitution is the state of the substitution of one value: the texts
// of the options already resolved, and the room left for text, which
// the text of each resolved option and the result take from.
type substitution struct {
	done map[optName]string
	room int
}

// substitute substitutes the references of s, the value of an option of
// group, in a substitution of its own.
func (f *File) substitute(s, group string, stack []optName) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	st := &substitution{done: map[optName]string{}, room: maxSubstitutedLen}
	v, err := f.subst(st, s, group, stack)
	if err != nil {
		return "", err
	}
	return v, st.use(len(v))
}

// subst replaces "$name", "${name}" and "$group.name" references in s
// with the values of the options they name, as oslo.config's
// string.Template substitution does: "$$" and "\$" are a literal "$",
// and a "$" that starts no reference is kept. group is the group of the
// option whose value s is: a name without a group is looked up there
// first, then in [DEFAULT]. stack holds the options being substituted,
// to detect loops.
func (f *File) subst(st *substitution, s, group string, stack []optName) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	s = strings.ReplaceAll(s, `\$`, "$$")
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		var key string
		switch {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			s = rest[1:]
			continue
		case identLen(rest) > 0:
			n := identLen(rest)
			key, s = rest[:n], rest[n:]
		case strings.HasPrefix(rest, "{") && identLen(rest[1:]) > 0 &&
			strings.HasPrefix(rest[1+identLen(rest[1:]):], "}"):
			n := identLen(rest[1:])
			key, s = rest[1:1+n], rest[n+2:]
		default:
			b.WriteByte('$')
			s = rest
			continue
		}
		v, err := f.reference(st, key, group, stack)
		if err != nil {
			return "", err
		}
		if b.Len()+len(v) > st.room {
			return "", st.use(b.Len() + len(v))
		}
		b.WriteString(v)
	}
}

// use takes n bytes of room, failing when there is not enough.
func (st *substitution) use(n int) error {
	if n > st.room {
		return &valueError{msg: "substituted value longer than " + strconv.Itoa(maxSubstitutedLen) + " bytes", kind: ErrSubstitution}
	}
	st.room -= n
	return nil
}

// identLen returns the length of the identifier at the start of s, as
// oslo.config's template pattern [_a-z][._a-z0-9]* matches it with
// Python's case-insensitive matching (which also lets four non-ASCII
// letters in), or 0.
func identLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r == '\u212a' || r == '\u017f' || r == '\u0131' || r == '\u0130'
		if n > 0 {
			ok = ok || r == '.' || r >= '0' && r <= '9'
		}
		if !ok {
			break
		}
		n += size
	}
	return n
}

// reference returns the text that a reference to key stands for.
func (f *File) reference(st *substitution, key, group string, stack []optName) (string, error) {
	if len(stack) > maxSubstitutionDepth {
		return "", &valueError{msg: "$" + key + ": references nested too deeply", kind: ErrSubstitution}
	}
	if g, o, dotted := strings.Cut(key, "."); dotted {
		if g == GroupDefault {
			// oslo.config has no group named DEFAULT to look in.
			return "", &valueError{msg: "${" + key + "}: write $" + o + " for an option of [DEFAULT]", kind: ErrSubstitution}
		}
		if v, ok, err := f.referenceValue(st, optName{normalizeGroup(g), o}, stack); ok || err != nil {
			return v, err
		}
	} else if v, ok, err := f.referenceValue(st, optName{group, key}, stack); ok || err != nil {
		return v, err
	}
	if group != GroupDefault || strings.Contains(key, ".") {
		if v, ok, err := f.referenceValue(st, optName{GroupDefault, key}, stack); ok || err != nil {
			return v, err
		}
	}
	return "", &valueError{msg: "$" + key + ": no such option to substitute", kind: ErrSubstitution}
}

// referenceValue returns the text of option n for substitution: for
// the options of oslo.messaging, str() of their converted value or of
// their default, as oslo.config inserts it; for other options set in
// the files or the environment, their text. ok is false when n is
// neither known nor set.
func (f *File) referenceValue(st *substitution, n optName, stack []optName) (string, bool, error) {
	if v, ok := st.done[n]; ok {
		return v, true, nil
	}
	v, ok, err := f.resolveReference(st, n, stack)
	if ok && err == nil {
		if err := st.use(len(v)); err != nil {
			return "", true, err
		}
		st.done[n] = v
	}
	return v, ok, err
}

func (f *File) resolveReference(st *substitution, n optName, stack []optName) (string, bool, error) {
	for _, s := range stack {
		if s == n {
			return "", false, &valueError{msg: "substitution loop through " + n.String(), kind: ErrSubstitution}
		}
	}
	stack = append(stack, n)
	o := schema.byKey[n]
	if o != nil && o.kind == kindMulti {
		vals, ok := f.findAll(schema.names(n.group, n.name))
		if !ok {
			return o.def, true, nil
		}
		items := make([]string, len(vals))
		for i, v := range vals {
			s, err := f.subst(st, v.text, n.group, stack)
			if err != nil {
				return "", true, err
			}
			items[i] = s
		}
		return pyList(items), true, nil
	}
	v, ok := f.find(schema.names(n.group, n.name))
	if !ok {
		if o != nil {
			return o.def, true, nil
		}
		return "", false, nil
	}
	s, err := f.subst(st, v.text, n.group, stack)
	if err != nil || o == nil {
		return s, true, err
	}
	text, err := pyText(o, s)
	if err != nil {
		return "", true, fmt.Errorf("%s (%s): %w", n, v.loc, err)
	}
	return text, true, nil
}

// pyText converts the value s of option o and returns Python's str() of
// the result.
func pyText(o *option, s string) (string, error) {
	bad := func(err error) error {
		msg := err.Error()
		if !o.secret {
			msg = fmt.Sprintf("%q: %s", s, msg)
		}
		return &valueError{msg: msg, kind: ErrInvalidValue}
	}
	switch o.kind {
	case kindBool:
		b, err := parseBool(s)
		if err != nil {
			return "", bad(err)
		}
		return pyBool(b), nil
	case kindInt:
		n, empty, err := parseInt(s)
		if err != nil {
			return "", bad(err)
		}
		if empty {
			return "", nil // None
		}
		return strconv.Itoa(n), nil
	case kindFloat:
		v, empty, err := parseFloat(s)
		if err != nil {
			return "", bad(err)
		}
		if empty {
			return "", nil
		}
		return pyFloat(v), nil
	case kindList:
		return pyList(parseList(s)), nil
	}
	return s, nil
}
