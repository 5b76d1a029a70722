package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The results below were checked against oslo.config 9.0, with the
// referenced options registered.
func TestSubstitution(t *testing.T) {
	const file = `[DEFAULT]
a = 1
my_ip = 10.0.0.11
flag = yes
n = 007
lst = a, b
multi = m1
multi = m2
fl = 1.50
rpc_ping_enabled = on
notification_topics = t1,t2
chain = $a-$mid
mid = <$a>
[grp]
b = gb
c = $a-$b
d = ${grp.b}/$my_ip
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 030
`
	f := parse(t, file)
	for _, tt := range []struct {
		value, group, want string
	}{
		{"$a", "DEFAULT", "1"},
		{"${a}x", "DEFAULT", "1x"},
		{"$$a", "DEFAULT", "$a"},
		{`\$a`, "DEFAULT", "$a"},
		{`pa$$word`, "DEFAULT", "pa$word"},
		{"pa$ word", "DEFAULT", "pa$ word"},
		{"${a", "DEFAULT", "${a"},
		{"$1a", "DEFAULT", "$1a"},
		{"${}", "DEFAULT", "${}"},
		{"end$", "DEFAULT", "end$"},
		{"rabbit://nova:pw@$my_ip:5672/", "DEFAULT", "rabbit://nova:pw@10.0.0.11:5672/"},
		{"$grp.b", "DEFAULT", "gb"},
		{"${grp.b}/$my_ip", "DEFAULT", "gb/10.0.0.11"},
		{"$b", "grp", "gb"},            // same group first
		{"$a-$b", "grp", "1-gb"},       // then DEFAULT
		{"$chain", "DEFAULT", "1-<1>"}, // nested
		{"$c", "grp", "1-gb"},
		// Options of oslo.messaging are inserted as Python's str() of their
		// typed value, or of their default.
		{"$rpc_ping_enabled", "DEFAULT", "True"},
		{"$rpc_response_timeout", "DEFAULT", "60"},
		{"$control_exchange", "DEFAULT", "openstack"},
		{"${oslo_messaging_rabbit.heartbeat_timeout_threshold}", "DEFAULT", "30"},
		{"${oslo_messaging_rabbit.kombu_reconnect_delay}", "DEFAULT", "1.0"},
		{"${oslo_messaging_notifications.topics}", "DEFAULT", "['t1', 't2']"},
		{"${oslo_messaging_notifications.driver}", "DEFAULT", "[]"},
		{"${oslo_messaging_notifications.transport_url}", "DEFAULT", ""},
		// Other options are inserted as written.
		{"$flag/$n/$lst/$fl", "DEFAULT", "yes/007/a, b/1.50"},
		{"$multi", "DEFAULT", "m2"},
	} {
		got, err := f.substitute(tt.value, tt.group, nil)
		if err != nil || got != tt.want {
			t.Errorf("substitute(%q) in [%s] = %q, %v; want %q", tt.value, tt.group, got, err, tt.want)
		}
	}
}

func TestSubstitutionErrors(t *testing.T) {
	f := parse(t, `[DEFAULT]
a = 1
u = $unknown
w = $x
x = $w
self = x$self
m = ${DEFAULT.a}
dot = $a.
bad = ${oslo_messaging_rabbit.ssl}
[oslo_messaging_rabbit]
ssl = maybe
`)
	for _, opt := range []string{"u", "w", "x", "self", "m", "dot", "bad"} {
		_, err := f.Str("DEFAULT", opt, "")
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != opt {
			t.Errorf("Str(%s) error = %v, want an *OptionError for it", opt, err)
			continue
		}
		wantIs := ErrSubstitution
		if opt == "bad" {
			wantIs = ErrInvalidValue
		}
		if !errors.Is(err, wantIs) {
			t.Errorf("Str(%s) error = %v, want it to wrap %v", opt, err, wantIs)
		}
	}
	_, err := f.Str("DEFAULT", "w", "")
	if err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("loop error = %v", err)
	}
}

func TestSubstitutionFromEnvironment(t *testing.T) {
	f, err := Parse("test.conf", []byte("[DEFAULT]\nhost = rabbit1\n"), WithEnviron([]string{
		"OS_DEFAULT__TRANSPORT_URL=rabbit://u:p@$host//",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Str("DEFAULT", "transport_url", ""); err != nil || got != "rabbit://u:p@rabbit1//" {
		t.Errorf("transport_url = %q, %v", got, err)
	}
}

func TestIdentifier(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{"abc", 3}, {"a.b.c-d", 5}, {"_x1", 3}, {"1a", 0}, {".a", 0}, {"Ab", 2}, {"{a}", 0}, {"a b", 1},
		{"\u212a", 3}, {"x\u017f", 3}, // letters that Python's case-insensitive [a-z] matches
		{"é", 0},
	} {
		if got := identLen(tt.in); got != tt.want {
			t.Errorf("identLen(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestSubstitutionBounded checks that references which multiply the
// text at each level fail quickly instead of growing it exponentially,
// and that those that expand to nothing stay fast.
func TestSubstitutionBounded(t *testing.T) {
	for _, last := range []string{"x", ""} {
		var b strings.Builder
		b.WriteString("[DEFAULT]\n")
		for i := range 30 {
			fmt.Fprintf(&b, "o%d = $o%d$o%d${o%d}\n", i, i+1, i+1, i+1)
		}
		b.WriteString("o30 = " + last + "\n")
		f := parse(t, b.String())
		v, err := f.Str("DEFAULT", "o0", "")
		if last == "" && (err != nil || v != "") {
			t.Errorf("empty expansion: %q, %v", v, err)
		}
		if last != "" && !errors.Is(err, ErrSubstitution) {
			t.Errorf("exponential expansion: error = %v, want ErrSubstitution", err)
		}
	}
	var b strings.Builder
	b.WriteString("[DEFAULT]\n")
	for i := range 40 {
		fmt.Fprintf(&b, "o%d = $o%d\n", i, i+1)
	}
	if _, err := parse(t, b.String()).Str("DEFAULT", "o0", ""); !errors.Is(err, ErrSubstitution) ||
		!strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("deep nesting: error = %v", err)
	}
}
