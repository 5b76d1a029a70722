package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFiles writes name -> content under dir and returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The orders below were checked against oslo.config 9.0.
func TestFileOrder(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"f1.conf": `[DEFAULT]
notification_driver = dep1
x = f1
notification_topics = dt1
[oslo_messaging_notifications]
driver = cur1
topics = t1
`,
		"f2.conf": `[oslo_messaging_notifications]
driver = cur2
[DEFAULT]
notification_driver = dep2
notification_topics = dt2
x = f2a
x = f2b
`,
	})
	f1, f2 := filepath.Join(dir, "f1.conf"), filepath.Join(dir, "f2.conf")
	for _, tt := range []struct {
		files   []string
		x       string
		drivers []string
		topics  []string
	}{
		// A later file wins, and an older name there beats the current
		// name in an earlier file; multi-valued options accumulate, with
		// the values under older names first in each file.
		{[]string{f1, f2}, "f2b", []string{"dep1", "cur1", "dep2", "cur2"}, []string{"dt2"}},
		// Within a file, the current name wins.
		{[]string{f2, f1}, "f1", []string{"dep2", "cur2", "dep1", "cur1"}, []string{"t1"}},
		{[]string{f1, f1}, "f1", []string{"dep1", "cur1", "dep1", "cur1"}, []string{"t1"}},
	} {
		f, err := Load(tt.files, nil, WithEnviron(nil))
		if err != nil {
			t.Fatal(err)
		}
		x, _ := f.Str("DEFAULT", "x", "")
		drivers, _ := f.MultiStr(GroupNotifications, "driver", nil)
		topics, _ := f.List(GroupNotifications, "topics", nil)
		if x != tt.x || !reflect.DeepEqual(drivers, tt.drivers) || !reflect.DeepEqual(topics, tt.topics) {
			t.Errorf("files %v: x = %q, driver = %q, topics = %q; want %q, %q, %q",
				tt.files, x, drivers, topics, tt.x, tt.drivers, tt.topics)
		}
	}
}

func TestConfigDir(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"main.conf":           "[DEFAULT]\nx = main\ny = main\n",
		"d/b.conf":            "[DEFAULT]\nx = dir-b\n",
		"d/a.conf":            "[DEFAULT]\nx = dir-a\nz = dir-a\n",
		"d/.hidden.conf":      "[DEFAULT]\nx = hidden\n",
		"d/c.conf.bak":        "[DEFAULT]\nx = backup\n",
		"d/C.CONF":            "[DEFAULT]\nx = upper-case\n",
		"d/sub/deeper.conf":   "[DEFAULT]\nx = deeper\n",
		"other/99-last.conf":  "[DEFAULT]\ny = other\n",
		"other/10-first.conf": "[DEFAULT]\ny = first\n",
	})
	main, d, other := filepath.Join(dir, "main.conf"), filepath.Join(dir, "d"), filepath.Join(dir, "other")

	f, err := Load([]string{main}, []string{d, other}, WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{main, filepath.Join(d, "a.conf"), filepath.Join(d, "b.conf"),
		filepath.Join(other, "10-first.conf"), filepath.Join(other, "99-last.conf")}
	if got := f.Files(); !reflect.DeepEqual(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}
	for opt, want := range map[string]string{"x": "dir-b", "y": "other", "z": "dir-a"} {
		if got, _ := f.Str("DEFAULT", opt, ""); got != want {
			t.Errorf("%s = %q, want %q", opt, got, want)
		}
	}
	loc, _ := f.Location("DEFAULT", "x")
	if want := (Location{File: filepath.Join(d, "b.conf"), Line: 2}); loc != want {
		t.Errorf("Location(x) = %v, want %v", loc, want)
	}

	// With Sources, a file after a directory wins over it, as oslo.config
	// applies --config-dir and --config-file in command-line order.
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	srcs := RegisterFlags(fset)
	if err := fset.Parse([]string{"--config-dir", d, "--config-file=" + main, "-config-dir", other}); err != nil {
		t.Fatal(err)
	}
	if got, want := srcs.Files(), []string{main}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sources.Files() = %q", got)
	}
	if got, want := srcs.Dirs(), []string{d, other}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sources.Dirs() = %q", got)
	}
	f, err = srcs.Load(WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Str("DEFAULT", "x", ""); got != "main" {
		t.Errorf("--config-dir d --config-file main: x = %q, want main", got)
	}
	if got, _ := f.Str("DEFAULT", "y", ""); got != "other" {
		t.Errorf("... --config-dir other: y = %q, want other", got)
	}

	if (&Sources{}).Empty() != true || srcs.Empty() {
		t.Error("Empty() is wrong")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"ok.conf":           "[DEFAULT]\n",
		"bad.conf":          "[DEFAULT]\nnot an assignment\n",
		"d/x.conf":          "[DEFAULT]\nnot an assignment\n",
		"d3/sub.conf/inner": "",
	})
	for _, tt := range []struct {
		name        string
		files, dirs []string
		check       func(error) bool
	}{
		{"missing file", []string{filepath.Join(dir, "missing.conf")}, nil,
			func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
		{"missing directory", nil, []string{filepath.Join(dir, "missing")},
			func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
		{"directory is a file", nil, []string{filepath.Join(dir, "ok.conf")},
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "not a directory") }},
		{"directory named *.conf", nil, []string{filepath.Join(dir, "d3")},
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "sub.conf") }},
		{"parse error", []string{filepath.Join(dir, "ok.conf"), filepath.Join(dir, "bad.conf")}, nil,
			func(err error) bool {
				var pe *ParseError
				return errors.As(err, &pe) && pe.File == filepath.Join(dir, "bad.conf") && pe.Line == 2
			}},
		{"parse error in a directory", nil, []string{filepath.Join(dir, "d")},
			func(err error) bool {
				var pe *ParseError
				return errors.As(err, &pe) && pe.File == filepath.Join(dir, "d", "x.conf")
			}},
	} {
		f, err := Load(tt.files, tt.dirs, WithEnviron(nil))
		if f != nil || !tt.check(err) {
			t.Errorf("%s: Load = %v, %v", tt.name, f, err)
		}
	}
}

func TestLoadNothing(t *testing.T) {
	f, err := Load(nil, nil, WithEnviron([]string{"OS_DEFAULT__CONTROL_EXCHANGE=nova"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Str("DEFAULT", "control_exchange", ""); got != "nova" {
		t.Errorf("control_exchange = %q, want it from the environment", got)
	}
}

func TestLoadHome(t *testing.T) {
	home := writeFiles(t, t.TempDir(), map[string]string{"x.conf": "[DEFAULT]\na = 1\n", "d/y.conf": "[DEFAULT]\nb = 2\n"})
	t.Setenv("HOME", home)
	f, err := Load([]string{"~/x.conf"}, []string{"~/d"}, WithEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !f.IsSet("DEFAULT", "a") || !f.IsSet("DEFAULT", "b") {
		t.Errorf("files under ~ not read: %v", f.Files())
	}
}

func TestEnvironment(t *testing.T) {
	f, err := Parse("test.conf", []byte(`[DEFAULT]
transport_url = rabbit://file/
rpc_response_timeout = 30
notification_driver = log
[oslo_messaging_notifications]
driver = messagingv2
topics = a
[oslo_messaging_rabbit]
amqp_durable_queues = false
`), WithEnviron([]string{
		"PATH=/bin",
		"OS_DEFAULT__TRANSPORT_URL=rabbit://first/",
		"OS_DEFAULT__TRANSPORT_URL=rabbit://env/", // the last wins, as in os/exec
		"OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES=True",
		"OS_OSLO_MESSAGING_NOTIFICATIONS__DRIVER=noop, log",
		"OS_OSLO_MESSAGING_NOTIFICATIONS__TOPICS=",
		"OS_default__RPC_RESPONSE_TIMEOUT=99", // names are upper-case
		"OS_DEFAULT__rpc_response_timeout=99",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.Str("DEFAULT", "transport_url", "")
	b, _ := f.Bool(GroupRabbit, "amqp_durable_queues", false)
	d, _ := f.MultiStr(GroupNotifications, "driver", nil)
	topics, _ := f.List(GroupNotifications, "topics", nil)
	n, _ := f.Int("DEFAULT", "rpc_response_timeout", 0)
	if s != "rabbit://env/" || !b || !reflect.DeepEqual(d, []string{"noop", "log"}) || len(topics) != 0 || n != 30 {
		t.Errorf("transport_url %q, amqp_durable_queues %v, driver %q, topics %q, rpc_response_timeout %d", s, b, d, topics, n)
	}
	loc, _ := f.Location("DEFAULT", "transport_url")
	if loc.String() != "environment variable OS_DEFAULT__TRANSPORT_URL" {
		t.Errorf("Location = %v", loc)
	}
	if !f.IsSet(GroupNotifications, "topics") {
		t.Error("an empty environment variable does not set the option")
	}

	// An older name is not read from the environment.
	f, _ = Parse("test.conf", nil, WithEnviron([]string{"OS_DEFAULT__NOTIFICATION_DRIVER=log"}))
	if f.IsSet(GroupNotifications, "driver") {
		t.Error("OS_DEFAULT__NOTIFICATION_DRIVER was read")
	}
}

func TestEnvironmentDefaultsToTheProcess(t *testing.T) {
	t.Setenv("OS_DEFAULT__CONTROL_EXCHANGE", "from-process")
	f, err := Parse("test.conf", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Str("DEFAULT", "control_exchange", ""); got != "from-process" {
		t.Errorf("control_exchange = %q", got)
	}
	f, _ = Parse("test.conf", nil, WithEnviron(nil))
	if f.IsSet("DEFAULT", "control_exchange") {
		t.Error("WithEnviron(nil) still reads the process environment")
	}
}

func TestEnvName(t *testing.T) {
	for _, tt := range [][3]string{
		{"DEFAULT", "transport_url", "OS_DEFAULT__TRANSPORT_URL"},
		{"", "transport_url", "OS_DEFAULT__TRANSPORT_URL"},
		{"oslo_messaging_rabbit", "amqp_durable_queues", "OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES"},
		{"oslo_messaging_notifications", "driver", "OS_OSLO_MESSAGING_NOTIFICATIONS__DRIVER"},
	} {
		if got := EnvName(tt[0], tt[1]); got != tt[2] {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tt[0], tt[1], got, tt[2])
		}
	}
}

func TestGroupsAndOptions(t *testing.T) {
	f := parse(t, "[DEFAULT]\nb = 1\na = 2\n[Database]\nconnection = x\n[database]\nmax_retries = 1\n")
	if got := f.Groups(); !reflect.DeepEqual(got, []string{"DEFAULT", "database"}) {
		t.Errorf("Groups() = %q", got)
	}
	if got := f.Options("DATABASE"); !reflect.DeepEqual(got, []string{"connection", "max_retries"}) {
		t.Errorf("Options(database) = %q", got)
	}
	if got := f.Options("DEFAULT"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Options(DEFAULT) = %q", got)
	}
}

func TestFilePrintsNoValues(t *testing.T) {
	f := parse(t, "[DEFAULT]\ntransport_url = rabbit://nova:hunter2@rabbit1/\n")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		got := fmt.Sprintf(verb, f)
		if strings.Contains(got, "hunter2") || !strings.Contains(got, "test.conf") {
			t.Errorf("Sprintf(%s, file) = %q", verb, got)
		}
	}
	var nilFile *File
	if got := nilFile.String(); got != "config.File(nil)" {
		t.Errorf("nil String() = %q", got)
	}
}
