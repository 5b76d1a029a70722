package config

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// document is one parsed configuration file.
type document struct {
	name     string
	sections map[string]*section // by normalized group name
	order    []*section          // in order of first appearance
}

// section holds the options of one group in one file, merged over every
// header of the group in the file.
type section struct {
	group string             // normalized name
	opts  map[string][]entry // option name -> values, in file order
	keys  []string           // option names, in order of first appearance
}

// entry is one "key = value" of a file.
type entry struct {
	text string
	line int
}

// normalizeGroup maps a group name as oslo.config does when it looks up
// values: "DEFAULT" stays, any other name is lower-cased.
func normalizeGroup(name string) string {
	if name == GroupDefault {
		return name
	}
	return strings.ToLower(name)
}

func (d *document) section(name string) *section {
	g := normalizeGroup(name)
	s := d.sections[g]
	if s == nil {
		s = &section{group: g, opts: map[string][]entry{}}
		d.sections[g] = s
		d.order = append(d.order, s)
	}
	return s
}

// values returns the values of group/option in d, in file order.
func (d *document) values(n optName) []entry {
	if s := d.sections[n.group]; s != nil {
		return s.opts[n.name]
	}
	return nil
}

func (s *section) add(key string, e entry) {
	if _, seen := s.opts[key]; !seen {
		s.keys = append(s.keys, key)
	}
	s.opts[key] = append(s.opts[key], e)
}

// parseDocument parses an INI file as oslo.config's parser does:
//
//   - lines end with "\n", "\r\n" or "\r"; trailing white space is
//     ignored; blank lines end a multi-line value;
//   - "[name]" starts a section (the name is kept as written, and
//     looked up lower-cased unless it is DEFAULT);
//   - lines starting with "#" or ";" are comments; there are no inline
//     comments;
//   - "key = value" or "key: value", split at the first "=" or ":",
//     both sides trimmed; a value enclosed in matching single or double
//     quotes loses them;
//   - lines starting with a space or a tab continue the value above,
//     joined with "\n" after their leading white space is removed;
//   - a key repeated in a section gives the option several values.
//
// White space is Python's: Unicode white space and the ASCII
// separators U+001C to U+001F. A UTF-8 byte order mark at the start is
// skipped.
func parseDocument(name string, data []byte) (*document, error) {
	doc := &document{name: name, sections: map[string]*section{}}
	text := string(data)
	text = strings.TrimPrefix(text, "\uFEFF")

	var (
		cur     *section
		key     string
		keyLine int
		vals    []string
	)
	flush := func() error {
		if cur == nil {
			return &ParseError{File: name, Line: keyLine, Msg: "section must be started before assignment"}
		}
		cur.add(key, entry{text: strings.Join(vals, "\n"), line: keyLine})
		key, vals = "", nil
		return nil
	}

	lineno := 0
	for len(text) > 0 || lineno == 0 {
		var raw string
		raw, text = nextLine(text)
		lineno++
		if !utf8.ValidString(raw) {
			return nil, &ParseError{File: name, Line: lineno, Msg: "invalid UTF-8"}
		}
		line := strings.TrimRightFunc(raw, isPySpace)
		switch {
		case line == "":
			if key != "" {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			continue
		case line[0] == ' ' || line[0] == '\t':
			if key == "" {
				return nil, &ParseError{File: name, Line: lineno, Msg: "unexpected continuation line"}
			}
			vals = append(vals, strings.TrimLeftFunc(line, isPySpace))
			continue
		}
		if key != "" {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		switch line[0] {
		case '[':
			if !strings.HasSuffix(line, "]") {
				return nil, &ParseError{File: name, Line: lineno, Msg: "invalid section (must end with ])"}
			}
			if len(line) <= 2 {
				return nil, &ParseError{File: name, Line: lineno, Msg: "empty section name"}
			}
			cur = doc.section(line[1 : len(line)-1])
		case '#', ';':
			// A comment.
		default:
			k, v, ok := splitKeyValue(line)
			if !ok {
				return nil, &ParseError{File: name, Line: lineno, Msg: "no ':' or '=' found in assignment"}
			}
			if k == "" {
				return nil, &ParseError{File: name, Line: lineno, Msg: "key cannot be empty"}
			}
			key, keyLine, vals = k, lineno, []string{v}
		}
	}
	if key != "" {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// nextLine returns the first line of text, without its line ending, and
// the rest, with Python's universal newlines: "\n", "\r\n" and "\r".
func nextLine(text string) (line, rest string) {
	i := strings.IndexAny(text, "\r\n")
	if i < 0 {
		return text, ""
	}
	if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
		return text[:i], text[i+2:]
	}
	return text[:i], text[i+1:]
}

// splitKeyValue splits an assignment at the first "=" or ":", whichever
// comes first, trims both sides and removes matching quotes around the
// value.
func splitKeyValue(line string) (key, value string, ok bool) {
	i := strings.IndexAny(line, "=:")
	if i < 0 {
		return "", "", false
	}
	key = strings.TrimFunc(line[:i], isPySpace)
	value = strings.TrimFunc(line[i+1:], isPySpace)
	if value != "" && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
		if len(value) == 1 {
			value = ""
		} else {
			value = value[1 : len(value)-1]
		}
	}
	return key, value, true
}

// isPySpace reports whether Python's str.isspace is true for r: Unicode
// white space plus the ASCII information separators.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}
