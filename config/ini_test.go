package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// parse parses text as one file named "test.conf", without the
// process environment.
func parse(t *testing.T, text string) *File {
	t.Helper()
	f, err := Parse("test.conf", []byte(text), WithEnviron(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// The expected values below were checked against oslo.config 9.0.
func TestParseSyntax(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		group  string
		option string
		want   string
	}{
		{"equals", "[DEFAULT]\na = 1\n", "DEFAULT", "a", "1"},
		{"colon", "[DEFAULT]\na: 1\n", "DEFAULT", "a", "1"},
		{"equals before colon", "[DEFAULT]\nb = x:y\n", "DEFAULT", "b", "x:y"},
		{"colon before equals", "[DEFAULT]\nb: x=y\n", "DEFAULT", "b", "x=y"},
		{"no spaces", "[DEFAULT]\nb=x\n", "DEFAULT", "b", "x"},
		{"double quotes", "[DEFAULT]\nc = \"quoted\"\n", "DEFAULT", "c", "quoted"},
		{"single quotes", "[DEFAULT]\nc = 'quoted'\n", "DEFAULT", "c", "quoted"},
		{"mismatched quotes kept", "[DEFAULT]\nd = 'mis\"\n", "DEFAULT", "d", "'mis\""},
		{"inner quotes kept", "[DEFAULT]\ny = 'ab'cd'\n", "DEFAULT", "y", "ab'cd"},
		{"lone quote", "[DEFAULT]\na = \"\n", "DEFAULT", "a", ""},
		{"no inline comments", "[DEFAULT]\ne = value # not a comment\n", "DEFAULT", "e", "value # not a comment"},
		{"semicolon kept", "[DEFAULT]\ne = a;b\n", "DEFAULT", "e", "a;b"},
		{"continuation", "[DEFAULT]\nf = line1\n  line2\n\tline3\n", "DEFAULT", "f", "line1\nline2\nline3"},
		{"continuation of empty value", "[DEFAULT]\na =\n  x\n  y\n", "DEFAULT", "a", "\nx\ny"},
		{"indented comment is a continuation", "[DEFAULT]\na = 1\n  # more\n", "DEFAULT", "a", "1\n# more"},
		{"quotes only on the first line", "[DEFAULT]\na = \"x\n  y\"\n", "DEFAULT", "a", "\"x\ny\""},
		{"empty value", "[DEFAULT]\nh =\n", "DEFAULT", "h", ""},
		{"comments", "# c\n; c\n[DEFAULT]\n#a = 2\n;a = 3\na = 1\n", "DEFAULT", "a", "1"},
		{"last value wins", "[DEFAULT]\nx = 1\nx = 2\n", "DEFAULT", "x", "2"},
		{"sections merge", "[DEFAULT]\nx = 1\n[other]\n[DEFAULT]\ny = 2\n", "DEFAULT", "x", "1"},
		{"group lower-cased", "[Oslo_Messaging_Rabbit]\nssl = true\n", "oslo_messaging_rabbit", "ssl", "true"},
		{"group looked up lower-cased", "[oslo_messaging_rabbit]\nssl = true\n", "OSLO_MESSAGING_RABBIT", "ssl", "true"},
		{"CRLF", "[DEFAULT]\r\na = 1\r\n  more\r\nb = 2  \r\n", "DEFAULT", "a", "1\nmore"},
		{"CR", "[DEFAULT]\ra = 1\r  more\rb = 2\r", "DEFAULT", "b", "2"},
		{"byte order mark", "\uFEFF[DEFAULT]\na = 1\n", "DEFAULT", "a", "1"},
		{"trailing space after header", "[DEFAULT] \na = 1\n", "DEFAULT", "a", "1"},
		{"unicode spaces trimmed", "[DEFAULT]\na\u00a0=\u00a0v\u00a0\n\u00a0b = 2\n", "DEFAULT", "b", "2"},
		{"ascii separators trimmed", "[DEFAULT]\na = v\x1c\n", "DEFAULT", "a", "v"},
		{"form feed starts no continuation", "[DEFAULT]\na = 1\n\x0cb = 2\n", "DEFAULT", "b", "2"},
		{"NEL is not a line break", "[DEFAULT]\na = 1\u0085b = 2\n", "DEFAULT", "a", "1\u0085b = 2"},
		{"hash inside a key", "[DEFAULT]\na#b = 1\n", "DEFAULT", "a#b", "1"},
		{"key with spaces", "[DEFAULT]\nmy key = 1\n", "DEFAULT", "my key", "1"},
		{"no final newline", "[DEFAULT]\na = 1", "DEFAULT", "a", "1"},
		{"blank line ends the value", "[DEFAULT]\na = 1\n\nb = 2\n", "DEFAULT", "a", "1"},
		{"section name kept with spaces", "[ x ]\na = 1\n", " x ", "a", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parse(t, tt.text)
			got, err := f.Str(tt.group, tt.option, "<unset>")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("[%s] %s = %q, want %q", tt.group, tt.option, got, tt.want)
			}
		})
	}
}

func TestParseDefaultIsCaseSensitive(t *testing.T) {
	f := parse(t, "[default]\na = lower\n")
	if f.IsSet("DEFAULT", "a") {
		t.Error(`[default] was read as [DEFAULT]; oslo.config keeps them apart`)
	}
	if got, _ := f.Str("default", "a", ""); got != "lower" {
		t.Errorf(`[default] a = %q, want "lower"`, got)
	}
	if got := f.Groups(); !reflect.DeepEqual(got, []string{"default"}) {
		t.Errorf("Groups() = %q", got)
	}
}

func TestParseRepeatedKeys(t *testing.T) {
	f := parse(t, "[oslo_messaging_notifications]\ndriver = messagingv2\n[other]\n[oslo_messaging_notifications]\ndriver = log\n")
	got, err := f.MultiStr("oslo_messaging_notifications", "driver", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"messagingv2", "log"}; !reflect.DeepEqual(got, want) {
		t.Errorf("driver = %q, want %q", got, want)
	}
	if s, _ := f.Str("oslo_messaging_notifications", "driver", ""); s != "log" {
		t.Errorf("driver as a single value = %q, want the last, %q", s, "log")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		line int
		msg  string
	}{
		{"no separator", "[DEFAULT]\nfoo\n", 2, "no ':' or '=' found in assignment"},
		{"empty key", "[DEFAULT]\n= v\n", 2, "key cannot be empty"},
		{"empty key with colon", "[DEFAULT]\n: v\n", 2, "key cannot be empty"},
		{"indented key is a continuation", "[DEFAULT]\n = v\n", 2, "unexpected continuation line"},
		{"assignment before any section", "a = 1\n[DEFAULT]\n", 1, "section must be started before assignment"},
		{"multi-line assignment before any section", "\n\na = 1\n  cont\n\n[DEFAULT]\n", 3, "section must be started before assignment"},
		{"unterminated section", "[DEFAULT\na=1\n", 1, "invalid section (must end with ])"},
		{"text after section", "[DEFAULT] x\na=1\n", 1, "invalid section (must end with ])"},
		{"empty section", "[]\na=1\n", 1, "empty section name"},
		{"continuation first", "  x = 1\n[DEFAULT]\n", 1, "unexpected continuation line"},
		{"continuation after section", "[DEFAULT]\n  x = 1\n", 2, "unexpected continuation line"},
		{"continuation after comment", "[DEFAULT]\na = 1\n# c\n  more\n", 4, "unexpected continuation line"},
		{"continuation after blank line", "[DEFAULT]\na = 1\n\n  more\n", 4, "unexpected continuation line"},
		{"tab-indented key", "[DEFAULT]\n\ta = 1\n", 2, "unexpected continuation line"},
		{"invalid UTF-8", "[DEFAULT]\na = 1\nb = \xff\n", 3, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.conf", []byte(tt.text), WithEnviron(nil))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want a *ParseError", err)
			}
			if pe.File != "bad.conf" || pe.Line != tt.line || pe.Msg != tt.msg {
				t.Errorf("ParseError = %+v, want bad.conf:%d %q", *pe, tt.line, tt.msg)
			}
			if want := "config: bad.conf:"; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", err, want)
			}
		})
	}
}

func TestParseErrorHidesTheLine(t *testing.T) {
	_, err := Parse("bad.conf", []byte("[DEFAULT]\nhunter2 is my password\n"), WithEnviron(nil))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q shows the line", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, text := range []string{"", "\n", "# only a comment\n", "[DEFAULT]\n"} {
		f := parse(t, text)
		if f.IsSet("DEFAULT", "transport_url") {
			t.Errorf("%q sets transport_url", text)
		}
	}
}
