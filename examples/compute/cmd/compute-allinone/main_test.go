package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-oslo/messaging/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the scripted demonstration in this process, as
// "compute-allinone --demo" does, and checks that it succeeds.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--demo", "--url", "memory:///compute-allinone-test-" + wire.NewID()}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"conductor[conductor1] -> cast build_and_run_instance to compute.compute1",
		"conductor[conductor1] -> cast build_and_run_instance to compute.compute2",
		"-> fanout cast update_host_state",
		"scheduler[scheduler1] <- fanout update_host_state",
		"scheduler[scheduler2] <- fanout update_host_state",
		"billing[billing1]  <- notification compute.instance.create.end",
		"billing[billing1]  <- notification compute.instance.delete.end",
		"409 as expected",
		"demo               OK: every effect checked",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
}

func TestUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--computes", ""}, &out, &errb); code != 64 {
		t.Errorf("exit %d, want 64; stderr: %s", code, errb.String())
	}
	if code := run(t.Context(), []string{"extra"}, &out, &errb); code != 64 {
		t.Errorf("exit %d, want 64; stderr: %s", code, errb.String())
	}
}
