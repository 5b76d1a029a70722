package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeConf writes a configuration file named name into a temporary
// directory of t and returns its path.
func writeConf(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFileRPC checks that call, cast and serve take the transport
// URL, the control exchange and rpc_response_timeout from --config-file,
// and that flags win over the files.
func TestConfigFileRPC(t *testing.T) {
	t.Setenv(urlEnv, "")
	url := memURL(t)
	conf := writeConf(t, "nova.conf", "[DEFAULT]\ntransport_url = "+url+"\ncontrol_exchange = nova_test\nrpc_response_timeout = 1\n")
	s := startServe(t, "--config-file", conf, "--topic", "cfg", "--server", "s1")
	if got := s.stderr.String(); !strings.Contains(got, "<Target exchange=nova_test, topic=cfg,") || !strings.HasSuffix(got, " via "+url+"\n") {
		t.Errorf("serve readiness line %q does not name the files' exchange and URL", got)
	}
	if code, out, errOut := runCmd(t, "call", "--config-file", conf, "--topic", "cfg", "ping"); code != exitOK || out != `"pong"`+"\n" || errOut != "" {
		t.Errorf("call with --config-file = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, "cast", "--config-file", conf, "--topic", "cfg", "echo", "via=conf"); code != exitOK {
		t.Errorf("cast with --config-file = exit %d, stderr %q", code, errOut)
	}
	s.waitRequest(t, "cast", func(r reqLine) bool { return r.Kind == "cast" && r.Args["via"] == "conf" })

	// rpc_response_timeout = 1 is the default of --timeout.
	code, _, errOut := runCmd(t, "call", "--config-file", conf, "--topic", "nobody", "ping")
	if want := "omsg call: timed out after 1s (--timeout)"; code != exitUnavailable || !strings.HasPrefix(errOut, want) {
		t.Errorf("call to nobody with rpc_response_timeout = 1: exit %d, stderr %q; want 2, %q", code, errOut, want)
	}
	// --timeout wins over the files.
	code, _, errOut = runCmd(t, "call", "--config-file", conf, "--timeout", "150ms", "--topic", "nobody", "ping")
	if want := "omsg call: timed out after 150ms (--timeout)"; code != exitUnavailable || !strings.HasPrefix(errOut, want) {
		t.Errorf("call with --timeout and rpc_response_timeout: exit %d, stderr %q; want 2, %q", code, errOut, want)
	}
	// --exchange wins over control_exchange: no server there.
	if code, _, errOut := runCmd(t, "call", "--config-file", conf, "--exchange", "openstack", "--timeout", "150ms", "--topic", "cfg", "ping"); code != exitUnavailable {
		t.Errorf("call with --exchange openstack = exit %d, stderr %q; want 2", code, errOut)
	}
}

// TestConfigPrecedence checks the order of the transport URL's sources:
// --url, then the files' transport_url, then $OMSG_TRANSPORT_URL.
func TestConfigPrecedence(t *testing.T) {
	fileURL, envURL, flagURL := memURL(t), memURL(t), memURL(t)
	conf := writeConf(t, "omsg.conf", "[DEFAULT]\ntransport_url = "+fileURL+"\n")
	for _, u := range []string{fileURL, envURL, flagURL} {
		startServe(t, "--url", u, "--topic", "prec", "--server", strings.TrimPrefix(u, "memory:///"))
	}
	// Each vhost has a server named after it: a call to that name is
	// answered only over the URL of that vhost.
	check := func(name string, want string, args ...string) {
		t.Helper()
		args = append(append([]string{"call", "--config-file", conf}, args...),
			"--topic", "prec", "--server", strings.TrimPrefix(want, "memory:///"), "--timeout", "5s", "oslo_rpc_server_ping")
		if code, out, errOut := runCmd(t, args...); code != exitOK || out != `"pong"`+"\n" {
			t.Errorf("%s: omsg %q = exit %d, stdout %q, stderr %q; want the server of %s", name, args, code, out, errOut, want)
		}
	}
	t.Setenv(urlEnv, "")
	check("the files alone", fileURL)
	t.Setenv(urlEnv, envURL)
	check("the files over the environment", fileURL)
	check("--url over the files and the environment", flagURL, "--url", flagURL)
	// Without files, the environment.
	args := []string{"call", "--topic", "prec", "--server", strings.TrimPrefix(envURL, "memory:///"), "--timeout", "5s", "oslo_rpc_server_ping"}
	if code, out, errOut := runCmd(t, args...); code != exitOK || out != `"pong"`+"\n" {
		t.Errorf("the environment alone: omsg %q = exit %d, stdout %q, stderr %q", args, code, out, errOut)
	}
}

// TestConfigFileNotifications checks that notify and listen take the
// notification transport URL, the control exchange and the topics from
// the files.
func TestConfigFileNotifications(t *testing.T) {
	t.Setenv(urlEnv, "")
	url := memURL(t)
	conf := writeConf(t, "nova.conf", "[DEFAULT]\ntransport_url = memory:///unused-by-notifications\ncontrol_exchange = nova_test\n"+
		"[oslo_messaging_notifications]\ntransport_url = "+url+"\ntopics = cfg_notes\n")
	l := startListen(t, "--config-file", conf, "--pool", "cfg-pool")
	if got := l.stderr.String(); !strings.Contains(got, "listening on cfg_notes.{") || !strings.Contains(got, "exchange nova_test, pool cfg-pool") || !strings.Contains(got, " via "+url+"\n") {
		t.Errorf("listen readiness line %q does not name the files' topics, exchange and URL", got)
	}
	sendNote(t, `{"n": 1}`, "--config-file", conf, "--publisher-id", "p", "--event-type", "cfg.note")
	if n := l.waitNote(t, "cfg.note", byEvent("cfg.note")); n.PublisherID != "p" {
		t.Errorf("listen got %+v", n)
	}
}

// TestConfigNoticesAndErrors checks that notices about the files go to
// stderr and that unusable files are usage errors.
func TestConfigNoticesAndErrors(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	typo := writeConf(t, "typo.conf", "[DEFAULT]\ntransport_url = "+url+"\n[oslo_messaging_rabbit]\namqp_durable_queus = true\n")
	code, _, errOut := runCmd(t, "call", "--config-file", typo, "--topic", "t", "--timeout", "100ms", "ping")
	if code != exitUnavailable || !strings.Contains(errOut, "omsg call: "+typo+":4: unknown option [oslo_messaging_rabbit] amqp_durable_queus: did you mean amqp_durable_queues?\n") {
		t.Errorf("call with a misspelt option = exit %d, stderr %q; want 2 and a notice", code, errOut)
	}

	bad := writeConf(t, "bad.conf", "[DEFAULT]\ntransport_url = rabbit://u:SECRETPW@h/\nrpc_response_timeout = 0\n")
	syntax := writeConf(t, "syntax.conf", "[DEFAULT\n")
	for _, args := range [][]string{
		{"call", "--config-file", filepath.Join(t.TempDir(), "missing.conf"), "--topic", "t", "ping"},
		{"cast", "--config-dir", filepath.Join(t.TempDir(), "missing"), "--topic", "t", "ping"},
		{"serve", "--config-file", bad, "--topic", "t", "--server", "s"},
		{"notify", "--config-file", syntax, "--publisher-id", "p", "--event-type", "e", "{}"},
		{"listen", "--config-file", bad},
		{"demo", "--config-file", syntax},
	} {
		code, out, errOut := runCmd(t, args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, ": configuration: ") || !strings.Contains(errOut, "--help' for usage.") {
			t.Errorf("omsg %q = exit %d, stdout %q, stderr %q; want 64 and a configuration error", args, code, out, errOut)
		}
		if strings.Contains(errOut, "SECRETPW") {
			t.Errorf("omsg %q printed the password", args)
		}
	}
}

// TestDemoConfigFile checks that demo takes its URL and exchange from
// --config-file.
func TestDemoConfigFile(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	conf := writeConf(t, "demo.conf", "[DEFAULT]\ntransport_url = "+url+"\ncontrol_exchange = demo_ex\n")
	code, out, errOut := runCmd(t, "demo", "--config-file", conf)
	if want := "go-oslo/messaging demo over " + url + ` (exchange "demo_ex", topic "test")`; code != exitOK || !strings.Contains(out, want) || !strings.Contains(out, "demo complete") {
		t.Errorf("demo with --config-file = exit %d, stderr %q; want the transcript to start with %q:\n%s", code, errOut, want, out)
	}
}

// TestVersion checks omsg version and omsg --version.
func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(t, "version")
	if code != exitOK || errOut != "" {
		t.Fatalf("omsg version = exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"omsg version ", "module:  github.com/go-oslo/messaging\n", "go:      " + runtime.Version(), "wire:    oslo.messaging 2.0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("omsg version printed %q, which lacks %q", out, want)
		}
	}
	if code, _, errOut := runCmd(t, "version", "extra"); code != exitUsage || !strings.Contains(errOut, `unknown command "extra"`) {
		t.Errorf("omsg version extra = exit %d, stderr %q; want 64", code, errOut)
	}
	first, _, _ := strings.Cut(out, "\n")
	if code, out, _ := runCmd(t, "--version"); code != exitOK || out != first+"\n" {
		t.Errorf("omsg --version = exit %d, %q; want %q", code, out, first)
	}
}

// TestCompletion checks the shell completion scripts and the dynamic
// completion of flag values.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCmd(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, "omsg") || errOut != "" {
			t.Errorf("omsg completion %s = exit %d, %d bytes, stderr %q", shell, code, len(out), errOut)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}} {
		if code, out, _ := runCmd(t, args...); code != exitUsage || out != "" {
			t.Errorf("omsg %q = exit %d, stdout %q; want 64", args, code, out)
		}
	}
	_, out, _ := runCmd(t, "__complete", "")
	for _, cmd := range []string{"demo", "call", "cast", "serve", "notify", "listen", "version", "completion"} {
		if !strings.Contains(out, "\n"+cmd+"\t") && !strings.HasPrefix(out, cmd+"\t") {
			t.Errorf("completion of commands lacks %s:\n%s", cmd, out)
		}
	}
	_, out, _ = runCmd(t, "__complete", "listen", "--priority", "")
	if !strings.Contains(out, "error\n") || !strings.Contains(out, "sample\n") {
		t.Errorf("completion of listen --priority = %q", out)
	}
	_, out, _ = runCmd(t, "__complete", "notify", "--format", "")
	if !strings.HasPrefix(out, "v2\t") || !strings.Contains(out, "\nv1\t") {
		t.Errorf("completion of notify --format = %q", out)
	}
}

// TestRootHelp checks that omsg --help documents the commands, the exit
// codes, the environment and the configuration files, and that every
// command's help has a description, details and an example.
func TestRootHelp(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(t, "--help")
	if code != exitOK || errOut != "" {
		t.Fatalf("omsg --help = exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"Available Commands:", "\n  call ", "\n  cast ", "\n  completion ", "\n  demo ", "\n  listen ", "\n  notify ", "\n  serve ", "\n  version ",
		"Exit status:\n  0   success\n  1   ", "\n  2   unavailable", "\n  64  usage error",
		"Environment:\n  OMSG_TRANSPORT_URL ", "OS_<GROUP>__<OPTION>",
		"--config-file PATH and --config-dir DIR", "1. --url\n    2. transport_url of the configuration files given with\n       --config-file or --config-dir", "\n    3. $OMSG_TRANSPORT_URL\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("omsg --help lacks %q:\n%s", want, out)
		}
	}
	// Without arguments, the same help is a usage error, on stderr.
	code, out2, errOut := runCmd(t)
	if code != exitUsage || out2 != "" || errOut != out {
		t.Errorf("omsg without arguments = exit %d, stdout %q; want 64 and the help on stderr", code, out2)
	}

	for _, cmd := range []string{"demo", "call", "cast", "serve", "notify", "listen", "version"} {
		code, out, _ := runCmd(t, cmd, "--help")
		head, _, _ := strings.Cut(out, "\n\nUsage:\n")
		summary, details, _ := strings.Cut(head, "\n\n")
		if code != exitOK || summary == "" || strings.Contains(summary, "\n") || details == "" || !strings.Contains(out, "\nExamples:\n  omsg "+cmd) {
			t.Errorf("omsg %s --help = exit %d, want a one-line summary, details and an example:\n%s", cmd, code, out)
		}
		if cmd != "version" && !strings.Contains(out, "--config-file path") {
			t.Errorf("omsg %s --help does not offer --config-file", cmd)
		}
		if strings.Contains(out, "Exit status:\n  0   success") {
			t.Errorf("the exit status table of omsg is in the help of omsg %s too", cmd)
		}
	}
}

// TestUsageErrors checks the usage errors that cobra finds.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		in   string
	}{
		{[]string{"nosuch"}, "omsg: unknown command \"nosuch\" for \"omsg\"\n"},
		{[]string{"lisen"}, "Did you mean this?\n\tlisten"},
		{[]string{"--bogus"}, "omsg: unknown flag: --bogus\nRun 'omsg --help' for usage.\n"},
		{[]string{"call", "-url", "memory://", "--topic", "t", "ping"}, "omsg call: long flags take two dashes: --url, not -url\nRun 'omsg call --help' for usage.\n"},
		{[]string{"listen", "-topic=x"}, "long flags take two dashes: --topic, not -topic=x"},
		{[]string{"call", "--topic"}, "flag needs an argument: --topic"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, stdout %q, stderr %q; want 64 and %q", tc.args, code, out, errOut, tc.in)
		}
	}
}
