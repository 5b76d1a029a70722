package config

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// value returns a File whose [DEFAULT] v is value, written as is.
func value(t *testing.T, v string) *File {
	t.Helper()
	return parse(t, "[DEFAULT]\nv = "+v+"\n")
}

// The accepted forms below were checked against oslo.config 9.0's types.
func TestBool(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"true", true}, {"TRUE", true}, {"True", true}, {"yes", true}, {"Yes", true}, {"on", true}, {"oN", true}, {"1", true},
		{"false", false}, {"FALSE", false}, {"no", false}, {"NO", false}, {"off", false}, {"Off", false}, {"0", false},
	} {
		got, err := value(t, tt.in).Bool("DEFAULT", "v", !tt.want)
		if err != nil || got != tt.want {
			t.Errorf("Bool(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"t", "f", "y", "n", "2", "enabled", "truee", "", "'yes'x"} {
		_, err := value(t, in).Bool("DEFAULT", "v", false)
		var oe *OptionError
		if !errors.As(err, &oe) || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Bool(%q) error = %v, want an *OptionError wrapping ErrInvalidValue", in, err)
			continue
		}
		if oe.Group != "DEFAULT" || oe.Option != "v" || oe.Location != (Location{File: "test.conf", Line: 2}) {
			t.Errorf("Bool(%q): error names %+v", in, oe)
		}
		if !strings.Contains(err.Error(), "[DEFAULT] v (test.conf:2)") {
			t.Errorf("Bool(%q): error %q does not name the option and its place", in, err)
		}
	}
	if got, err := parse(t, "[DEFAULT]\n").Bool("DEFAULT", "v", true); err != nil || !got {
		t.Errorf("unset Bool = %v, %v; want the default", got, err)
	}
}

func TestInt(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"12", 12}, {"+5", 5}, {"-1", -1}, {"-0", 0}, {"007", 7}, {"1_000", 1000},
		{"\uff11\uff12", 12}, // fullwidth digits, as Python's int()
		{"\u0661\u0662", 12}, // Arabic-Indic digits
		{"", 42}, {"  ", 42}, // blank: the default
	} {
		got, err := value(t, tt.in).Int("DEFAULT", "v", 42)
		if err != nil || got != tt.want {
			t.Errorf("Int(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"1__0", "_1", "1_", "0x10", "12.0", "1e3", "--1", "+-1", "ten", "99999999999999999999999"} {
		if _, err := value(t, in).Int("DEFAULT", "v", 0); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Int(%q) error = %v, want ErrInvalidValue", in, err)
		}
	}
}

func TestIntFromEnvironmentIsTrimmed(t *testing.T) {
	f, err := Parse("test.conf", nil, WithEnviron([]string{"OS_DEFAULT__V= 7 "}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Int("DEFAULT", "v", 0); err != nil || got != 7 {
		t.Errorf("Int = %v, %v; want 7", got, err)
	}
	// Booleans are not trimmed, in oslo.config either.
	f, _ = Parse("test.conf", nil, WithEnviron([]string{"OS_DEFAULT__V= true"}))
	if _, err := f.Bool("DEFAULT", "v", false); !errors.Is(err, ErrInvalidValue) {
		t.Errorf(`Bool(" true") from the environment: error = %v, want ErrInvalidValue`, err)
	}
}

func TestFloat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
	}{
		{"1.5", 1.5}, {".5", 0.5}, {"5.", 5}, {"1e3", 1000}, {"-2.5E-1", -0.25}, {"1_000.5", 1000.5},
		{"inf", math.Inf(1)}, {"-Infinity", math.Inf(-1)}, {"1e400", math.Inf(1)},
		{"\u0661.\u0665", 1.5}, {"", 9},
	} {
		got, err := value(t, tt.in).Float("DEFAULT", "v", 9)
		if err != nil || got != tt.want {
			t.Errorf("Float(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"nan", "-NaN"} {
		if got, err := value(t, in).Float("DEFAULT", "v", 0); err != nil || !math.IsNaN(got) {
			t.Errorf("Float(%q) = %v, %v; want NaN", in, got, err)
		}
	}
	for _, in := range []string{"0x1p3", "1_e3", "1._5", "e3", "one", "1,5", "--1"} {
		if _, err := value(t, in).Float("DEFAULT", "v", 0); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Float(%q) error = %v, want ErrInvalidValue", in, err)
		}
	}
}

func TestList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"notifications,billing", []string{"notifications", "billing"}},
		{"a, b,,c,", []string{"a", "b", "", "c"}},
		{"a ,", []string{"a"}},
		{" , ", []string{}},
		{",", []string{}},
		{"", []string{}},
		{"one", []string{"one"}},
		{"x\n  y, z", []string{"x\ny", "z"}},
	} {
		got, err := value(t, tt.in).List("DEFAULT", "v", nil)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if got, _ := parse(t, "").List("DEFAULT", "v", []string{"d"}); !reflect.DeepEqual(got, []string{"d"}) {
		t.Errorf("unset List = %q, want the default", got)
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"60", time.Minute}, {" 180 ", 3 * time.Minute}, {"0", 0}, {"-1", -time.Second}, {"", 5 * time.Second},
	} {
		got, err := value(t, tt.in).Seconds("DEFAULT", "v", 5*time.Second)
		if err != nil || got != tt.want {
			t.Errorf("Seconds(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"1.5", "60s", "1m", "9223372037"} {
		if _, err := value(t, in).Seconds("DEFAULT", "v", 0); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Seconds(%q) error = %v, want ErrInvalidValue", in, err)
		}
	}
}

func TestConversionErrorsHideSecrets(t *testing.T) {
	f := parse(t, "[DEFAULT]\ntransport_url = hunter2\n[x]\nadmin_password = hunter2\nsize = hunter2\n")
	for _, opt := range [][2]string{{"DEFAULT", "transport_url"}, {"x", "admin_password"}} {
		_, err := f.Int(opt[0], opt[1], 0)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Int(%s): error %v shows the value of a secret option", opt, err)
		}
	}
	// Other values are quoted, to help.
	if _, err := f.Int("x", "size", 0); err == nil || !strings.Contains(err.Error(), `"hunter2"`) {
		t.Errorf("Int(size): error %v does not quote the value", err)
	}
}

func TestPythonText(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string
	}{
		{1.5, "1.5"}, {1, "1.0"}, {0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
		{0.0001, "0.0001"}, {0.00001, "1e-05"}, {1.5e-7, "1.5e-07"}, {123.456, "123.456"}, {-2.5, "-2.5"},
		{1e100, "1e+100"}, {1.2345678901234568e17, "1.2345678901234568e+17"}, {math.Inf(1), "inf"}, {math.NaN(), "nan"},
	} {
		if got := pyFloat(tt.f); got != tt.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"a", "'a'"}, {"it's", `"it's"`}, {`say "x"`, `'say "x"'`}, {`both ' "`, `'both \' "'`},
		{"tab\there", `'tab\there'`}, {"back\\slash", `'back\\slash'`}, {"\x00\x7f\u00a0é", `'\x00\x7f\xa0é'`},
		{"\u2028", `'\u2028'`},
	} {
		if got := pyStr(tt.in); got != tt.want {
			t.Errorf("pyStr(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got := pyList([]string{"a", "b"}); got != "['a', 'b']" {
		t.Errorf("pyList = %s", got)
	}
}
