// Package trace prints the short log of the compute example: one line
// per message a service sends or receives, so that a reader sees what
// flows where.
package trace

import (
	"fmt"
	"io"
	"sync"
)

// Log writes trace lines to a writer. A nil *Log discards them. It is
// safe for concurrent use.
type Log struct {
	mu sync.Mutex
	w  io.Writer
}

// New returns a Log writing to w; a nil w discards.
func New(w io.Writer) *Log {
	if w == nil {
		return nil
	}
	return &Log{w: w}
}

// Printf writes one line: who, padded to a column, then the message.
func (l *Log) Printf(who, format string, args ...any) {
	if l == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = fmt.Fprintf(l.w, "%-18s %s\n", who, msg)
}
