package faulttest

import "syscall"

// procAttr puts a child in a process group of its own, so that it and
// its children can be killed together, and kills it if the test binary
// dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }

// Signals that pause and continue a process.
const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)
