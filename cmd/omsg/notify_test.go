package main

import (
	"slices"
	"strings"
	"testing"
)

// TestNotifyTopics sends one notification to several topics: every
// topic gets it, with the same message_id.
func TestNotifyTopics(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	l := startListen(t, "--url", url, "--topic", "t1,t2", "--topic", "t3", "--priority", "error")
	if got := l.stderr.String(); !strings.HasPrefix(got, "omsg listen: listening on t1.error, t2.error, t3.error (exchange openstack) via ") {
		t.Errorf("readiness line = %q", got)
	}
	code, out, errOut := runCmd(t, "notify", "--url", url, "--topic", "t1, t2", "--topic", "t3", "--priority", "error",
		"--publisher-id", "p", "--event-type", "multi", `{"x": 1}`)
	if code != exitOK || out != "" || !strings.HasPrefix(errOut, "omsg notify: sent error multi to t1.error, t2.error, t3.error on exchange openstack (message_id ") {
		t.Fatalf("notify = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for range 3 {
		l.waitNote(t, "3 copies", func(noteLine) bool { return len(l.notes(t)) == 3 })
	}
	notes := l.notes(t)
	for _, n := range notes {
		if n.Metadata["message_id"] != notes[0].Metadata["message_id"] || n.EventType != "multi" || n.Priority != "error" {
			t.Errorf("got %s", n.raw)
		}
	}
}

// TestNotifyExchange sends to another exchange than the control
// exchange: only a listener of that exchange gets it.
func TestNotifyExchange(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	nova := startListen(t, "--url", url, "--exchange", "nova")
	if got := nova.stderr.String(); !strings.Contains(got, "(exchange nova) via ") {
		t.Errorf("readiness line = %q", got)
	}
	control := startListen(t, "--url", url)
	sendNote(t, `{}`, "--url", url, "--exchange", "nova", "--publisher-id", "p", "--event-type", "to.nova")
	sendNote(t, `{}`, "--url", url, "--publisher-id", "p", "--event-type", "to.openstack")
	nova.waitNote(t, "to.nova", byEvent("to.nova"))
	control.waitNote(t, "to.openstack", byEvent("to.openstack"))
	if len(nova.notes(t)) != 1 || len(control.notes(t)) != 1 {
		t.Errorf("nova got %q, openstack got %q; want one each", nova.stdout.String(), control.stdout.String())
	}
}

// TestNotifyUnreachable checks the exit code and message when the
// broker cannot be reached within --timeout.
func TestNotifyUnreachable(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCmd(t, "notify", "--url", "rabbit://guest:SECRETPW@127.0.0.1:1/", "--timeout", "300ms",
		"--publisher-id", "p", "--event-type", "e", `{}`)
	want := "omsg notify: cannot reach the broker at rabbit://guest:***@127.0.0.1:1/"
	if code != exitUnavailable || out != "" || !strings.HasPrefix(errOut, want) {
		t.Errorf("notify to an unreachable broker = exit %d, stdout %q, stderr %q; want exit 2, stderr %q...", code, out, errOut, want)
	}
	if strings.Contains(errOut, "SECRETPW") {
		t.Errorf("notify printed the password: %q", errOut)
	}
}

// TestNotifyDefaultURL checks that notify and listen use
// OMSG_TRANSPORT_URL when --url is not given.
func TestNotifyDefaultURL(t *testing.T) {
	url := memURL(t)
	t.Setenv(urlEnv, url)
	l := startListen(t, "--priority", "audit")
	if got := l.stderr.String(); !strings.HasSuffix(got, " via "+url+"\n") {
		t.Errorf("listen readiness line %q does not name %s", got, url)
	}
	sendNote(t, `{}`, "--priority", "audit", "--publisher-id", "p", "--event-type", "env")
	l.waitNote(t, "env", byEvent("env"))
}

// TestNotifyListenUsage checks help, usage errors and their exit codes.
func TestNotifyListenUsage(t *testing.T) {
	t.Parallel()
	url := memURL(t)
	ok := []string{"notify", "--url", url, "--publisher-id", "p", "--event-type", "e"}
	notify := func(args ...string) []string { return append(slices.Clone(ok), args...) }
	tests := []struct {
		args []string
		code int
		in   string // substring of stdout+stderr
	}{
		{[]string{"help"}, exitOK, "\n  notify      Send a notification, as oslo's Notifier does"},
		{[]string{"help"}, exitOK, "\n  listen      Listen for notifications"},
		{[]string{"notify", "--help"}, exitOK, "Examples:\n  omsg notify "},
		{[]string{"listen", "--help"}, exitOK, "Examples:\n  omsg listen "},
		{[]string{"notify", "-h"}, exitOK, "Usage:\n  omsg notify --publisher-id P --event-type E [flags] PAYLOAD_JSON"},
		{[]string{"listen", "-h"}, exitOK, "it TAKES the notifications it prints away from them"},
		{[]string{"listen", "-h"}, exitOK, "that queue outlives omsg listen"},

		{notify(), exitUsage, "missing PAYLOAD_JSON"},
		{notify(`{"a":`), exitUsage, "PAYLOAD_JSON is not valid JSON: unexpected end of JSON input"},
		{notify(`hello`), exitUsage, "PAYLOAD_JSON is not valid JSON: invalid character 'h'"},
		{notify(`{} {}`), exitUsage, "PAYLOAD_JSON is not valid JSON: invalid character '{' after top-level value"},
		{notify(``), exitUsage, "PAYLOAD_JSON is not valid JSON"},
		{notify(`{}`, `{}`), exitUsage, `unexpected arguments ["{}"] after PAYLOAD_JSON`},
		{notify(`{}`, "--priority", "error"), exitUsage, `unexpected "--priority" after PAYLOAD_JSON: flags go before PAYLOAD_JSON`},
		{notify("--priority", "loud", `{}`), exitUsage, `--priority "loud": want audit, debug, info, warn (or warning), error, critical or sample`},
		{notify("--priority", "", `{}`), exitUsage, `--priority "": want`},
		{notify("--format", "v3", `{}`), exitUsage, `--format "v3": want v2 (oslo's messagingv2 driver) or v1`},
		{notify("--format", "", `{}`), exitUsage, `--format "": want v2`},
		{notify("--context", "{", `{}`), exitUsage, "--context: invalid JSON"},
		{notify("--context", "[1]", `{}`), exitUsage, "--context: want a JSON object, not an array"},
		{notify("--timeout", "0s", `{}`), exitUsage, "--timeout must be positive"},
		{notify("--topic", "", `{}`), exitUsage, `invalid argument "" for "--topic" flag: empty topic`},
		{notify("--topic", "a,,b", `{}`), exitUsage, "empty topic"},
		{notify("--topic", "a,b", "--topic", "a", `{}`), exitUsage, `topic "a" given twice`},
		{notify("--bogus", `{}`), exitUsage, "unknown flag: --bogus"},
		{notify("--server", "s", `{}`), exitUsage, "unknown flag: --server"},
		{[]string{"notify", "--url", url, "--event-type", "e", `{}`}, exitUsage, "--publisher-id is required"},
		{[]string{"notify", "--url", url, "--publisher-id", "p", `{}`}, exitUsage, "--event-type is required"},
		{[]string{"notify", "--url", url, "--publisher-id", "", "--event-type", "e", `{}`}, exitUsage, "--publisher-id is required"},
		{[]string{"notify", "--url", "nosuch://h/", "--publisher-id", "p", "--event-type", "e", `{}`}, exitUsage, "unknown driver"},
		{[]string{"notify", "--url", "rabbit://u:SECRETPW@h:bad/", "--publisher-id", "p", "--event-type", "e", `{}`}, exitUsage, "port"},

		{[]string{"listen", "extra"}, exitUsage, `unexpected arguments ["extra"]`},
		{[]string{"listen", "--priority", "info,loud"}, exitUsage, `invalid argument "info,loud" for "--priority" flag: priority "loud": want audit, debug`},
		{[]string{"listen", "--priority", ""}, exitUsage, `priority "": want`},
		{[]string{"listen", "--topic", " "}, exitUsage, "empty topic"},
		{[]string{"listen", "--event-type", "compute.[a"}, exitUsage, `--event-type "compute.[a": syntax error in pattern`},
		{[]string{"listen", "--event-type", `x\`}, exitUsage, "syntax error in pattern"},
		{[]string{"listen", "--event-type", "[]x"}, exitUsage, "syntax error in pattern"},
		{[]string{"listen", "--context", "{}"}, exitUsage, "unknown flag: --context"},
		{[]string{"listen", "--url", "nosuch://h/"}, exitUsage, "unknown driver"},
		{[]string{"listen", "--url", "rabbit://u:SECRETPW@h:bad/"}, exitUsage, "port"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, output %q; want exit %d containing %q", tc.args, code, out+errOut, tc.code, tc.in)
		}
		if code == exitOK && errOut != "" {
			t.Errorf("omsg %q printed %q on stderr", tc.args, errOut)
		}
		if code == exitUsage && (out != "" || !strings.Contains(errOut, "--help' for usage.")) {
			t.Errorf("omsg %q printed %q on stdout, %q on stderr; want only a usage error on stderr", tc.args, out, errOut)
		}
		if strings.Contains(out+errOut, "SECRETPW") || strings.Contains(out+errOut, "guest:guest") {
			t.Errorf("omsg %q printed a password: %q", tc.args, out+errOut)
		}
	}
}

// TestTopicsAndPrioritiesFlags checks the parsing of --topic and
// --priority.
func TestTopicsAndPrioritiesFlags(t *testing.T) {
	t.Parallel()
	var tf topicsFlag
	if got := tf.list(); !slices.Equal(got, []string{"notifications"}) {
		t.Errorf("default topics = %q", got)
	}
	for _, s := range []string{"a", " b , c ", "d"} {
		if err := tf.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := tf.list(); !slices.Equal(got, []string{"a", "b", "c", "d"}) || tf.String() != "a,b,c,d" {
		t.Errorf("topics = %q (%s)", got, tf.String())
	}

	var pf prioritiesFlag
	if got := subscription([]string{"n"}, pf.list()); got != "n.{audit,debug,info,warn,error,critical,sample}" || pf.String() != "" {
		t.Errorf("default priorities = %s (%q)", got, pf.String())
	}
	for _, s := range []string{"SAMPLE,error", "warning", "warn,info", "error"} {
		if err := pf.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := subscription([]string{"a", "b"}, pf.list()); got != "a.{info,warn,error,sample}, b.{info,warn,error,sample}" || pf.String() != "info,warn,error,sample" {
		t.Errorf("priorities = %s (%q)", got, pf.String())
	}
}
