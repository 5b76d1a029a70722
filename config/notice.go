package config

import (
	"sort"
	"strings"
)

// NoticeKind says what a [Notice] is about.
type NoticeKind int

const (
	// UnknownOption is an option this package does not know, in a group
	// that oslo.messaging reads. Every unknown option of
	// [oslo_messaging_notifications] and [oslo_messaging_rabbit] is
	// reported. [DEFAULT] is shared with the service and every library,
	// so there only unknown options that look like oslo.messaging's are:
	// an option of another oslo.messaging group, an option that
	// oslo.messaging has removed (rabbit_host, rpc_backend, ...), or a
	// name close to one of its [DEFAULT] options (a likely typo).
	UnknownOption NoticeKind = iota + 1
	// DeprecatedOption is a value found under a name or group that
	// oslo.config still reads for compatibility, such as [DEFAULT]
	// notification_driver; the Hint gives the current place.
	DeprecatedOption
)

func (k NoticeKind) String() string {
	switch k {
	case UnknownOption:
		return "unknown option"
	case DeprecatedOption:
		return "deprecated option"
	}
	return "notice"
}

// Notice is a remark on a configuration that is not an error: see
// [FromFile]. It never holds a value.
type Notice struct {
	Kind     NoticeKind
	Group    string   // as looked up: lower-cased, except DEFAULT
	Option   string   // as written
	Location Location // the first occurrence in a file, or the variable
	Hint     string   // a suggestion, or ""
}

// String returns the notice as one line, such as
//
//	nova.conf:12: unknown option [oslo_messaging_rabbit] amqp_durable_queus: did you mean amqp_durable_queues?
func (n Notice) String() string {
	s := n.Location.String() + ": " + n.Kind.String() + " [" + n.Group + "] " + n.Option
	if n.Hint != "" {
		s += ": " + n.Hint
	}
	return s
}

// unknownOptionError is the error of an unknown option in strict mode.
type unknownOptionError struct{ n Notice }

func (e *unknownOptionError) Error() string { return "config: " + e.n.String() }
func (e *unknownOptionError) Unwrap() error { return ErrUnknownOption }

// findNotices lists the unknown and deprecated options of f: those of
// the files, in file and line order, then those of the environment, by
// variable name.
func findNotices(f *File) []Notice {
	var out []Notice
	for _, d := range f.docs {
		for _, s := range d.order {
			for _, key := range s.keys {
				loc := Location{File: d.name, Line: s.opts[key][0].line}
				if n, ok := noticeFor(s.group, key, loc); ok {
					out = append(out, n)
				}
			}
		}
	}
	names := make([]string, 0, len(f.env))
	for k := range f.env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, g := range []string{GroupDefault, GroupNotifications, GroupRabbit} {
			opt, ok := strings.CutPrefix(k, EnvName(g, ""))
			if !ok || opt == "" {
				continue
			}
			opt = strings.ToLower(opt)
			if schema.byKey[optName{g, opt}] != nil {
				break
			}
			loc := Location{Env: k}
			if o := schema.deprecatedOf[optName{g, opt}]; o != nil {
				// oslo.config reads only the current name from the
				// environment.
				out = append(out, Notice{Kind: UnknownOption, Group: g, Option: opt, Location: loc,
					Hint: "the environment sets options by their current name: " + EnvName(o.group, o.name)})
				break
			}
			if hint, report := unknownHint(g, opt); report {
				out = append(out, Notice{Kind: UnknownOption, Group: g, Option: opt, Location: loc, Hint: hint})
			}
			break
		}
	}
	return out
}

// noticeFor returns the notice for option key of group found in a file,
// if there is one.
func noticeFor(group, key string, loc Location) (Notice, bool) {
	n := optName{group, key}
	if schema.byKey[n] != nil {
		return Notice{}, false
	}
	if o := schema.deprecatedOf[n]; o != nil {
		if o.quiet {
			return Notice{}, false
		}
		return Notice{Kind: DeprecatedOption, Group: group, Option: key, Location: loc,
			Hint: "use " + o.String()}, true
	}
	if !isMessagingGroup(group) {
		return Notice{}, false
	}
	hint, report := unknownHint(group, key)
	if !report {
		return Notice{}, false
	}
	return Notice{Kind: UnknownOption, Group: group, Option: key, Location: loc, Hint: hint}, true
}

// unknownHint returns a hint for the unknown option name of group, and
// whether to report it at all (see UnknownOption).
func unknownHint(group, name string) (string, bool) {
	if h, ok := removedOptions[name]; ok {
		return h, true
	}
	for _, g := range []string{GroupDefault, GroupNotifications, GroupRabbit} {
		if group == GroupDefault && genericNames[name] {
			break
		}
		if g != group && schema.byKey[optName{g, name}] != nil {
			return "did you mean " + optName{g, name}.String() + "?", true
		}
	}
	if s := closest(name, schema.groupOptions(group)); s != "" {
		return "did you mean " + s + "?", true
	}
	return "", group != GroupDefault
}

// genericNames are names of oslo.messaging options that other
// libraries or services may well use in [DEFAULT].
var genericNames = map[string]bool{
	"driver": true, "topics": true, "retry": true, "ssl": true, "hostname": true, "processname": true,
}

// closest returns the candidate nearest to name by edit distance, if it
// is near enough to be a likely typo.
func closest(name string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(name, c)
		limit := min(2, max(len(c)/4, 1))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in
// bytes (option names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
