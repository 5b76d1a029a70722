//go:build !unix

package compare

import (
	"os"
	"syscall"
)

// newProcAttr returns the default attributes.
func newProcAttr() *syscall.SysProcAttr { return nil }

// interrupt sends os.Interrupt to p, which fails where signals do not
// exist; the caller then kills p.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }

// kill kills p.
func kill(p *os.Process) error { return p.Kill() }
