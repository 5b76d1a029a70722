package rpc

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-oslo/messaging/driver"
)

func tracebackSize(tb []string) int {
	n := 0
	for _, l := range tb {
		n += len(l)
	}
	return n
}

func TestRemoteErrorBounds(t *testing.T) {
	frame := "  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 1234, in reboot\n"
	long := make([]string, 0, 5002)
	long = append(long, "Traceback (most recent call last):\n")
	for range 5000 {
		long = append(long, frame)
	}
	long = append(long, "nova.exception.InstanceNotFound: gone\n")

	for _, tc := range []struct {
		name string
		tb   []string
		msg  string
		kept bool // the traceback is kept whole
	}{
		{"small", []string{"Traceback (most recent call last):\n", frame, "ValueError: x\n"}, "x", true},
		{"many lines", long, "gone", false},
		{"one huge line", []string{"Traceback (most recent call last):\n", strings.Repeat("é", 200<<10) + "\n"}, strings.Repeat("m", 1<<20), false},
		{"huge first line", []string{strings.Repeat("h", 1<<20), "E: x\n"}, "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &driver.Failure{Module: "nova.exception", Class: "InstanceNotFound", Message: tc.msg, Traceback: tc.tb}
			e := remoteErrorFrom(f, map[string]error{"nova.exception.InstanceNotFound": errGone})
			if !errors.Is(e, errGone) {
				t.Errorf("the registered error is not mapped: %v", e)
			}
			size := tracebackSize(e.Traceback)
			if size > maxTracebackBytes || len(e.Traceback) > maxTracebackLines || len(e.Message) > maxRemoteMessage {
				t.Errorf("traceback of %d lines, %d bytes, message of %d bytes: over the bounds", len(e.Traceback), size, len(e.Message))
			}
			for i, l := range e.Traceback {
				if !utf8.ValidString(l) {
					t.Fatalf("line %d is cut inside a rune", i)
				}
			}
			if tc.kept {
				if strings.Join(e.Traceback, "") != strings.Join(tc.tb, "") || e.Message != tc.msg {
					t.Errorf("a small failure was changed: %q, %q", e.Traceback, e.Message)
				}
				return
			}
			if !strings.Contains(strings.Join(e.Traceback, ""), "traceback truncated") {
				t.Errorf("the truncation is not marked: %q", e.Traceback[:min(3, len(e.Traceback))])
			}
			if first := e.Traceback[0]; !strings.HasPrefix(tc.tb[0], strings.TrimSuffix(first[:min(len(first), 20)], "...")) {
				t.Errorf("first line %.40q, want the start of %.40q", first, tc.tb[0])
			}
			if last, want := e.Traceback[len(e.Traceback)-1], tc.tb[len(tc.tb)-1]; len(want) < 1000 && last != want {
				t.Errorf("last line %q, want %q", last, want)
			}
			if len(tc.msg) > maxRemoteMessage && !strings.Contains(e.Message, "bytes omitted") {
				t.Errorf("the message cut is not marked: ...%q", e.Message[len(e.Message)-40:])
			}
		})
	}
	// Unregistered names are not mapped, whatever they claim to be.
	f := &driver.Failure{Module: "nova.exception", Class: "InstanceNotFound", Message: "x"}
	if e := remoteErrorFrom(f, nil); e.Unwrap() != nil {
		t.Errorf("an unregistered failure maps to %v", e.Unwrap())
	}
	f = &driver.Failure{Module: strings.Repeat("m", 10000), Class: "E"}
	if e := remoteErrorFrom(f, nil); len(e.Module) > maxRemoteNameBytes {
		t.Errorf("module name of %d bytes kept", len(e.Module))
	}
}

var errGone = errors.New("gone")
