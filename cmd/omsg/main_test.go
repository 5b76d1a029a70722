package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemo(t *testing.T) {
	code, out, errOut := runCmd(t, "demo", "--url", "memory:///omsg-demo-test")
	if code != exitOK {
		t.Fatalf("omsg demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"server1  serving <Target topic=test, server=server1>",
		"server2  serving <Target topic=test, server=server2>",
		`client   -> call test(arg="hello") to <Target topic=test>`,
		`client   -> call test(arg="hello") to <Target topic=test, server=server2>`,
		`server2  <- test(arg="hello")`,
		`client   <- "hello" (answered by server2)`,
		"client   -> cast stop() to <Target topic=test, namespace=control, version=2.0, fanout=True>",
		"server1  <- stop()",
		"server2  <- stop()",
		"fanout reached server1 and server2",
		"client   <- remote error oslo_messaging.rpc.dispatcher.UnsupportedVersion: Endpoint does not support RPC version 3.0. Attempted method: stop",
		"client   <- remote error builtins.TypeError: TestEndpoint.test() missing 1 required positional argument: 'arg'",
		"billing  listening on test_notifications.info",
		`server1  -> notify info compute.instance.create.end {"flavor":"m1.small","instance_id":"i-1"} (publisher compute.server1)`,
		`billing  <- info compute.instance.create.end from compute.server1: {"flavor": "m1.small", "instance_id": "i-1"} (context keys request_id: auth_token is never sent)`,
		"demo complete",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q\n%s", want, out)
		}
	}
	if strings.Count(out, "<- stop()") != 2 {
		t.Errorf("stop was handled %d times, want 2 (once per server)\n%s", strings.Count(out, "<- stop()"), out)
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		in   string // substring of stdout+stderr
	}{
		{nil, exitUsage, "Usage:"},
		{[]string{"help"}, exitOK, "\n  demo        Replay oslo.messaging's RPC demonstration"},
		{[]string{"nosuch"}, exitUsage, `unknown command "nosuch"`},
		{[]string{"demo", "--help"}, exitOK, "Examples:\n  omsg demo\n"},
		{[]string{"demo", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{[]string{"demo", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"demo", "--url", "nosuch://h/"}, exitFailure, "unknown driver"},
		{[]string{"demo", "--url", "rabbit://u:SECRETPW@h:bad/"}, exitFailure, "port"},
	}
	for _, tc := range tests {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.in) {
			t.Errorf("omsg %q = exit %d, output %q; want exit %d containing %q", tc.args, code, out+errOut, tc.code, tc.in)
		}
		if strings.Contains(out+errOut, "SECRETPW") {
			t.Errorf("omsg %q printed the password", tc.args)
		}
	}
}
