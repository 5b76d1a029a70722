package notify

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file parses the subset of YAML that routing configurations use:
// block mappings and block sequences nested by indentation, flow
// sequences and flow mappings ([a, 'b'], {k: v}), plain, single-quoted
// and double-quoted scalars, comments and a leading "---". Anchors,
// aliases, tags, block scalars (| and >), complex keys and multiple
// documents are reported as errors. Scalars are strings, except null,
// ~ and empty values, which are nil; mappings are map[string]any and
// sequences []any.

// yamlLine is one line of content, without its comment.
type yamlLine struct {
	num    int    // 1-based line number
	indent int    // leading spaces
	text   string // the rest, trimmed
}

type yamlParser struct {
	lines []yamlLine
	pos   int
}

// yamlError is a parse error at a line.
func yamlError(line int, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
}

// parseYAML parses one YAML document of the supported subset.
func parseYAML(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	p := &yamlParser{}
	started := false
	for i, raw := range strings.Split(string(data), "\n") {
		num := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		if i == 0 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		body := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(body)
		if strings.HasPrefix(body, "\t") {
			return nil, yamlError(num, "tab in indentation")
		}
		text := strings.TrimRight(stripComment(body), " \t")
		if text == "" {
			continue
		}
		if indent == 0 && (text == "---" || strings.HasPrefix(text, "--- ")) {
			if started {
				return nil, yamlError(num, "several YAML documents are not supported")
			}
			started = true
			if rest := strings.TrimSpace(text[3:]); rest != "" {
				p.lines = append(p.lines, yamlLine{num, 4, rest})
			}
			continue
		}
		if indent == 0 && text == "..." {
			break
		}
		if indent == 0 && strings.HasPrefix(text, "%") {
			return nil, yamlError(num, "YAML directives are not supported")
		}
		started = true
		p.lines = append(p.lines, yamlLine{num, indent, text})
	}
	if len(p.lines) == 0 {
		return nil, nil
	}
	v, err := p.node(p.lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.lines) {
		l := p.lines[p.pos]
		return nil, yamlError(l.num, "unexpected content %q", l.text)
	}
	return v, nil
}

// stripComment removes a comment from s: a # at the start or after a
// space, outside quoted scalars.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
				} else {
					quote = 0
				}
			}
		case quote == '"':
			switch c {
			case '\\':
				i++
			case '"':
				quote = 0
			}
		case c == '\'' || c == '"':
			if i == 0 || strings.IndexByte(" \t[{,:", s[i-1]) >= 0 {
				quote = c
			}
		case c == '#':
			if i == 0 || s[i-1] == ' ' || s[i-1] == '\t' {
				return s[:i]
			}
		}
	}
	return s
}

// node parses the block node whose first line is at p.pos, indented by
// indent.
func (p *yamlParser) node(indent int) (any, error) {
	l := p.lines[p.pos]
	if isSeqItem(l.text) {
		return p.sequence(indent)
	}
	if _, _, ok, err := splitKey(l.text, l.num); err != nil {
		return nil, err
	} else if ok {
		return p.mapping(indent)
	}
	p.pos++
	return p.inline(l, l.text)
}

func isSeqItem(text string) bool {
	return text == "-" || strings.HasPrefix(text, "- ")
}

// mapping parses a block mapping at indent.
func (p *yamlParser) mapping(indent int) (any, error) {
	m := map[string]any{}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < indent {
			break
		}
		if l.indent > indent {
			return nil, yamlError(l.num, "unexpected indentation")
		}
		key, rest, ok, err := splitKey(l.text, l.num)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, yamlError(l.num, "expected \"key: value\", found %q", l.text)
		}
		if _, dup := m[key]; dup {
			return nil, yamlError(l.num, "duplicate key %q", key)
		}
		p.pos++
		var v any
		if rest != "" {
			v, err = p.inline(l, rest)
		} else {
			v, err = p.nested(indent, true)
		}
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, nil
}

// nested parses the block value of a key or sequence item whose line
// ends after the indicator: a node indented deeper than parent, or, for
// a mapping key, a sequence at the same indentation; else null.
func (p *yamlParser) nested(parent int, sameIndentSeq bool) (any, error) {
	if p.pos >= len(p.lines) {
		return nil, nil
	}
	next := p.lines[p.pos]
	if next.indent > parent || (sameIndentSeq && next.indent == parent && isSeqItem(next.text)) {
		return p.node(next.indent)
	}
	return nil, nil
}

// sequence parses a block sequence at indent.
func (p *yamlParser) sequence(indent int) (any, error) {
	seq := []any{}
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if l.indent < indent || (l.indent == indent && !isSeqItem(l.text)) {
			break
		}
		if l.indent > indent {
			return nil, yamlError(l.num, "unexpected indentation")
		}
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		if rest == "" {
			p.pos++
			v, err := p.nested(indent, false)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
			continue
		}
		// The item's content starts a node of its own, indented by its
		// column: "- a: 1" followed by "  b: 2" is one mapping.
		col := l.indent + len(l.text) - len(rest)
		p.lines[p.pos] = yamlLine{l.num, col, rest}
		v, err := p.node(col)
		if err != nil {
			return nil, err
		}
		seq = append(seq, v)
	}
	return seq, nil
}

// splitKey splits a "key: value" line. ok is false when text is not a
// mapping entry.
func splitKey(text string, num int) (key, rest string, ok bool, err error) {
	if text == "" {
		return "", "", false, nil
	}
	switch text[0] {
	case '\'', '"':
		k, n, err := quoted(text, num)
		if err != nil {
			return "", "", false, err
		}
		after := strings.TrimLeft(text[n:], " ")
		if after != ":" && !strings.HasPrefix(after, ": ") {
			return "", "", false, nil
		}
		return k, strings.TrimSpace(after[1:]), true, nil
	case '[', '{':
		return "", "", false, nil
	case '?':
		if text == "?" || strings.HasPrefix(text, "? ") {
			return "", "", false, yamlError(num, "complex mapping keys are not supported")
		}
	}
	i := strings.Index(text, ": ")
	if i < 0 {
		if !strings.HasSuffix(text, ":") {
			return "", "", false, nil
		}
		i = len(text) - 1
	}
	key = strings.TrimRight(text[:i], " ")
	if err := checkPlain(key, num, false); err != nil {
		return "", "", false, err
	}
	return key, strings.TrimSpace(text[i+1:]), true, nil
}

// inline parses a value written on one line (a flow collection may
// continue on the following lines).
func (p *yamlParser) inline(l yamlLine, text string) (any, error) {
	switch text[0] {
	case '[', '{':
		for !flowClosed(text) {
			if p.pos >= len(p.lines) {
				return nil, yamlError(l.num, "unterminated flow collection")
			}
			text += " " + p.lines[p.pos].text
			p.pos++
		}
		f := &flowParser{s: text, num: l.num}
		v, err := f.value()
		if err != nil {
			return nil, err
		}
		f.space()
		if f.i < len(f.s) {
			return nil, yamlError(l.num, "unexpected %q after flow collection", f.s[f.i:])
		}
		return v, nil
	case '\'', '"':
		s, n, err := quoted(text, l.num)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(text[n:]) != "" {
			return nil, yamlError(l.num, "unexpected %q after quoted scalar", text[n:])
		}
		return s, nil
	case '|', '>':
		return nil, yamlError(l.num, "block scalars (| and >) are not supported")
	}
	if err := checkPlain(text, l.num, false); err != nil {
		return nil, err
	}
	if strings.Contains(text, ": ") || strings.HasSuffix(text, ":") {
		return nil, yamlError(l.num, "mapping values are not allowed here: %q", text)
	}
	return plainValue(text), nil
}

// checkPlain rejects plain scalars that begin with a YAML indicator this
// parser does not support.
func checkPlain(s string, num int, flow bool) error {
	if s == "" {
		return nil
	}
	switch s[0] {
	case '&':
		return yamlError(num, "anchors are not supported: %q", s)
	case '*':
		return yamlError(num, "aliases are not supported: %q (quote a value that begins with *)", s)
	case '!':
		return yamlError(num, "tags are not supported: %q", s)
	case '@', '`', '%', '|', '>', ']', '}', ',':
		return yamlError(num, "a plain value cannot begin with %q: quote it", s[0])
	}
	if flow && strings.ContainsAny(s, "[]{}") {
		return yamlError(num, "unexpected bracket in %q", s)
	}
	return nil
}

// plainValue resolves a plain scalar: null, ~ and the empty string are
// nil, anything else is a string.
func plainValue(s string) any {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return nil
	}
	return s
}

// flowClosed reports whether the brackets of s, outside quotes, are
// balanced.
func flowClosed(s string) bool {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0 // '' reopens at once: harmless here
			}
		case quote == '"':
			switch c {
			case '\\':
				i++
			case '"':
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth <= 0
}

// quoted parses the quoted scalar at the start of s and returns it and
// the number of bytes it took.
func quoted(s string, num int) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if q == '\'' {
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), i + 1, nil
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) {
				return "", 0, yamlError(num, "unterminated escape")
			}
			i++
			switch e := s[i]; e {
			case '0':
				b.WriteByte(0)
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 't', '\t':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'v':
				b.WriteByte('\v')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case 'e':
				b.WriteByte(0x1b)
			case ' ', '"', '/', '\\':
				b.WriteByte(e)
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+n >= len(s) {
					return "", 0, yamlError(num, "short \\%c escape", e)
				}
				r, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
				if err != nil || !utf8.ValidRune(rune(r)) {
					return "", 0, yamlError(num, "invalid \\%c escape %q", e, s[i+1:i+1+n])
				}
				b.WriteRune(rune(r))
				i += n
			default:
				return "", 0, yamlError(num, "unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, yamlError(num, "unterminated quoted scalar (multi-line scalars are not supported)")
}

// flowParser parses flow collections: [a, b] and {k: v}.
type flowParser struct {
	s   string
	i   int
	num int
}

func (f *flowParser) space() {
	for f.i < len(f.s) && (f.s[f.i] == ' ' || f.s[f.i] == '\t') {
		f.i++
	}
}

func (f *flowParser) value() (any, error) {
	f.space()
	if f.i >= len(f.s) {
		return nil, yamlError(f.num, "missing value in flow collection")
	}
	switch f.s[f.i] {
	case '[':
		return f.sequence()
	case '{':
		return f.mapping()
	case '\'', '"':
		s, n, err := quoted(f.s[f.i:], f.num)
		if err != nil {
			return nil, err
		}
		f.i += n
		return s, nil
	}
	start := f.i
	for f.i < len(f.s) {
		c := f.s[f.i]
		if c == ',' || c == ']' || c == '}' || c == '[' || c == '{' {
			break
		}
		if c == ':' && (f.i+1 == len(f.s) || strings.IndexByte(" ,]}", f.s[f.i+1]) >= 0) {
			break
		}
		f.i++
	}
	text := strings.TrimSpace(f.s[start:f.i])
	if err := checkPlain(text, f.num, true); err != nil {
		return nil, err
	}
	return plainValue(text), nil
}

func (f *flowParser) sequence() (any, error) {
	f.i++ // [
	seq := []any{}
	for {
		f.space()
		if f.i < len(f.s) && f.s[f.i] == ']' {
			f.i++
			return seq, nil
		}
		v, err := f.value()
		if err != nil {
			return nil, err
		}
		f.space()
		if f.i < len(f.s) && f.s[f.i] == ':' {
			return nil, yamlError(f.num, "mappings inside flow sequences are not supported")
		}
		seq = append(seq, v)
		if err := f.separator(']'); err != nil {
			return nil, err
		}
	}
}

func (f *flowParser) mapping() (any, error) {
	f.i++ // {
	m := map[string]any{}
	for {
		f.space()
		if f.i < len(f.s) && f.s[f.i] == '}' {
			f.i++
			return m, nil
		}
		k, err := f.value()
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			if k != nil {
				return nil, yamlError(f.num, "flow mapping keys must be scalars")
			}
			key = ""
		}
		f.space()
		var v any
		if f.i < len(f.s) && f.s[f.i] == ':' {
			f.i++
			f.space()
			if f.i < len(f.s) && (f.s[f.i] == ',' || f.s[f.i] == '}') {
				v = nil
			} else if v, err = f.value(); err != nil {
				return nil, err
			}
		}
		if _, dup := m[key]; dup {
			return nil, yamlError(f.num, "duplicate key %q", key)
		}
		m[key] = v
		if err := f.separator('}'); err != nil {
			return nil, err
		}
	}
}

// separator consumes the "," between flow entries, or stops before the
// closing bracket.
func (f *flowParser) separator(closing byte) error {
	f.space()
	if f.i >= len(f.s) {
		return yamlError(f.num, "unterminated flow collection")
	}
	switch f.s[f.i] {
	case ',':
		f.i++
		return nil
	case closing:
		return nil
	}
	return yamlError(f.num, "expected ',' or '%c' in flow collection, found %q", closing, f.s[f.i:])
}
