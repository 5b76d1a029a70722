//go:build !unix

package faulttest

import (
	"errors"
	"syscall"
)

// Signals that pause and continue a process, which only Unix systems
// have.
const (
	sigStop = syscall.Signal(0x13)
	sigCont = syscall.Signal(0x12)
)

// procAttr has nothing to set outside Unix systems.
func procAttr() *syscall.SysProcAttr { return nil }

// signalGroup is not supported outside Unix systems.
func signalGroup(int, syscall.Signal) error { return errors.ErrUnsupported }
