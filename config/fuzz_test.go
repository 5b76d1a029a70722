package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the parser, the accessors or
// FromFile panic, that errors are *ParseError values, and that parsing
// is deterministic.
func FuzzParse(f *testing.F) {
	nova, err := os.ReadFile(filepath.Join("testdata", "nova.conf"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(nova)
	for _, s := range []string{
		"", "[DEFAULT]\na = 1\n", "[DEFAULT]\na =\n  x\n\ty\n", "[]\n", "[x", "a = 1\n", "  x\n", "[DEFAULT]\r\na: 'b'\r",
		"[DEFAULT]\na = $b\nb = ${a}\n", "[DEFAULT]\na = $$ \\$ ${x.y} $grp.opt $\n", "\uFEFF[DEFAULT]\n\xff\n",
		"[oslo_messaging_notifications]\ndriver = a\ndriver = $driver\n",
		"[oslo_messaging_rabbit]\nssl = yes\nheartbeat_timeout_threshold = 1_0\nkombu_reconnect_delay = inf\n",
		"[DEFAULT]\ntransport_url = rabbit://u:p@[::1]:5672,h2/v?ssl=1\nrpc_response_timeout = 99999999999999999999\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.conf", data, WithEnviron([]string{"OS_DEFAULT__A=$b", "OS_OSLO_MESSAGING_RABBIT__SSL=on"}))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("Parse error %v (%T) is not a *ParseError with a line", err, err)
			}
			return
		}
		again, err := Parse("fuzz.conf", data, WithEnviron(nil))
		if err != nil || len(again.Groups()) != len(file.Groups()) {
			t.Fatalf("parsing again: %v", err)
		}
		for _, g := range file.Groups() {
			for _, o := range file.Options(g) {
				_, _ = file.Str(g, o, "")
				_, _ = file.Bool(g, o, false)
				_, _ = file.Int(g, o, 0)
				_, _ = file.Float(g, o, 0)
				_, _ = file.List(g, o, nil)
				_, _ = file.MultiStr(g, o, nil)
				_, _ = file.Seconds(g, o, 0)
				if _, ok := file.Location(g, o); !ok {
					t.Fatalf("[%s] %s is listed but has no location", g, o)
				}
			}
		}
		m, _, err := FromFile(file)
		if err == nil {
			_ = m.String()
			_, _ = m.RPCURL()
			_, _ = m.NotificationURL()
		}
	})
}
