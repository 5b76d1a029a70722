package notify

import (
	"reflect"
	"testing"
)

func TestParseYAML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     any
	}{
		{"empty", "", nil},
		{"comments only", "# a\n   # b\n", nil},
		{"scalar map", "a: b\nc: 'd e'\nf: \"g\\th\\u00e9\"\n", map[string]any{"a": "b", "c": "d e", "f": "g\thé"}},
		{"nested", "a:\n  b:\n    c: d\n  e: f\n", map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}, "e": "f"}}},
		{"block list", "a:\n  - x\n  - 'y z'\n", map[string]any{"a": []any{"x", "y z"}}},
		{"block list at key indent", "a:\n- x\n- y\nb: c\n", map[string]any{"a": []any{"x", "y"}, "b": "c"}},
		{"flow list", "a: [x, 'y', \"z\", ]\n", map[string]any{"a": []any{"x", "y", "z"}}},
		{"multi-line flow", "a: [\n  x,   # one\n  y\n]\n", map[string]any{"a": []any{"x", "y"}}},
		{"flow map", "a: {b: [c, d], e: f, g: {}}\n", map[string]any{"a": map[string]any{"b": []any{"c", "d"}, "e": "f", "g": map[string]any{}}}},
		{"comments and blanks", "# head\n\na: b # tail\n\n  # indented comment\nc: 'x # not a comment'\n", map[string]any{"a": "b", "c": "x # not a comment"}},
		{"nulls", "a:\nb: ~\nc: null\n", map[string]any{"a": nil, "b": nil, "c": nil}},
		{"document markers", "---\na: b\n...\nignored: [\n", map[string]any{"a": "b"}},
		{"quoted keys", "'a b': c\n\"d\": e\n", map[string]any{"a b": "c", "d": "e"}},
		{"single quote escape", "a: 'it''s'\n", map[string]any{"a": "it's"}},
		{"list of maps", "a:\n  - b: c\n    d: e\n  - f\n", map[string]any{"a": []any{map[string]any{"b": "c", "d": "e"}, "f"}}},
		{"nested lists", "- - a\n  - b\n- c\n", []any{[]any{"a", "b"}, "c"}},
		{"colon inside scalar", "a: http://x/y\n", map[string]any{"a": "http://x/y"}},
		{"hash inside scalar", "a: b#c\n", map[string]any{"a": "b#c"}},
		{"CRLF", "a:\r\n  - b\r\n", map[string]any{"a": []any{"b"}}},
		{"top-level flow", "{a: [b]}\n", map[string]any{"a": []any{"b"}}},
	} {
		got, err := parseYAML([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: parseYAML(%q): %v", tc.name, tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: parseYAML(%q) = %#v, want %#v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestParseYAMLErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"a: b: c\n",
		"a: b\n  c: d\n",
		"a: [b\n",
		"a: 'b\n",
		"a: \"\\q\"\n",
		"a: *x\n",
		"a: &x b\n",
		"a: !t b\n",
		"a: >\n  b\n",
		"? a\n: b\n",
		"%YAML 1.2\n---\na: b\n",
		"a: [b: c]\n",
		"a: {b: c} d\n",
		"a: 'b' c\n",
		"- a\nb: c\n",
	} {
		if v, err := parseYAML([]byte(in)); err == nil {
			t.Errorf("parseYAML(%q) = %#v, want an error", in, v)
		}
	}
}
