package notify

import (
	"fmt"
	"strings"
)

// Priority is the priority of a notification. Its value is oslo's name
// for it in lower case, as used in queue names ("notifications.info");
// the message itself carries it in upper case ("INFO"), as oslo sends
// it.
type Priority string

// The priorities, in oslo's order.
const (
	PriorityAudit    Priority = "audit"
	PriorityDebug    Priority = "debug"
	PriorityInfo     Priority = "info"
	PriorityWarn     Priority = "warn"
	PriorityError    Priority = "error"
	PriorityCritical Priority = "critical"
	// PrioritySample is for frequent, small measurements ("CPU = 70%");
	// the Log sink drops them, as oslo's log driver does.
	PrioritySample Priority = "sample"
)

// priorities lists the priorities in oslo's order; index is their
// position in it.
var priorities = [...]Priority{
	PriorityAudit, PriorityDebug, PriorityInfo, PriorityWarn,
	PriorityError, PriorityCritical, PrioritySample,
}

// Priorities returns the seven priorities in oslo's order: audit, debug,
// info, warn, error, critical, sample.
func Priorities() []Priority {
	out := priorities
	return out[:]
}

// index returns the position of p in oslo's order, or -1 if p is not a
// priority.
func (p Priority) index() int {
	for i, q := range priorities {
		if p == q {
			return i
		}
	}
	return -1
}

// Valid reports whether p is one of the seven priorities, in lower case.
func (p Priority) Valid() bool { return p.index() >= 0 }

// wire returns p as the message carries it: in upper case.
func (p Priority) wire() string { return strings.ToUpper(string(p)) }

// ParsePriority returns the priority named s, in any case: "info",
// "INFO" and "Info" are [PriorityInfo]. "warning" is accepted for
// [PriorityWarn], as oslo's Notifier.warning sends "WARN". Other names
// return an error wrapping ErrInvalidPriority.
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToLower(s))
	if p == "warning" {
		return PriorityWarn, nil
	}
	if !p.Valid() {
		return "", fmt.Errorf("%w %q (want one of audit, debug, info, warn, error, critical, sample)", ErrInvalidPriority, s)
	}
	return p, nil
}
