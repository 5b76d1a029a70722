//go:build unix

package compare

import (
	"errors"
	"os"
	"syscall"
)

// newProcAttr puts a child in a process group of its own, so that the
// terminal's Ctrl-C reaches only omsg, which then stops the children
// itself.
func newProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// interrupt sends SIGINT to p.
func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }

// kill kills p and the processes of its group, which newProcAttr made
// for it.
func kill(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return p.Kill()
	}
	return nil
}
