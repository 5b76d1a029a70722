package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/go-oslo/messaging"
)

// RoutingConfig is the configuration of a [Routing] sink, the Go form
// of oslo's routing_config file: group name → sink name → rule. A
// notification goes to a sink when, in at least one group, the sink's
// rule accepts it; groups let one sink have several rules (an OR).
type RoutingConfig map[string]map[string]RoutingRule

// RoutingRule selects notifications by event type and priority. A nil
// list is no condition; when both lists are set both must accept the
// notification. An empty, non-nil list accepts nothing, as in oslo.
type RoutingRule struct {
	// AcceptedEvents are shell-style patterns (as Python's fnmatch: *
	// matches any text, dots included, ? one character, [seq] and
	// [!seq] a character class), matched against the whole event type,
	// case-sensitively.
	AcceptedEvents []string `json:"accepted_events"`
	// AcceptedPriorities are patterns as AcceptedEvents, matched against
	// the priority in lower case ("info"); the patterns are lower-cased
	// too.
	AcceptedPriorities []string `json:"accepted_priorities"`
}

// ParseRoutingConfig parses a routing configuration file: oslo's YAML
// format, as in its routing_notifier.yaml.sample,
//
//	group_1:
//	    messaging:
//	        accepted_priorities: ['info', 'warn', 'error']
//	    log:
//	        accepted_events: ['compute.instance.exists']
//	group_2:
//	    messaging:
//	        accepted_events: ['compute.scheduler.run_instance.*']
//
// or the same structure as JSON. Since the package takes no YAML
// dependency, it reads the subset of YAML that such files use: nested
// block mappings, block and flow lists of scalars, quoted and plain
// scalars, comments. Anchors, aliases, tags and multi-line scalars are
// errors, as are duplicate keys (where YAML keeps the last), keys other
// than accepted_events and accepted_priorities, and values that are not
// lists of strings (which oslo would fail on when notifying). Patterns
// beginning with * must be quoted, as in YAML. An empty file is an
// empty configuration, which routes nothing. Errors wrap
// messaging.ErrInvalidOption.
func ParseRoutingConfig(data []byte) (RoutingConfig, error) {
	trimmed := bytes.TrimSpace(data)
	var tree any
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		jerr := dec.Decode(&tree)
		if jerr == nil && dec.More() {
			jerr = errors.New("trailing data after the JSON object")
		}
		if jerr != nil {
			var yerr error
			if tree, yerr = parseYAML(data); yerr != nil {
				return nil, fmt.Errorf("%w: routing config is neither JSON (%w) nor YAML (%w)", messaging.ErrInvalidOption, jerr, yerr)
			}
		}
	} else {
		var err error
		if tree, err = parseYAML(data); err != nil {
			return nil, fmt.Errorf("%w: routing config: %w", messaging.ErrInvalidOption, err)
		}
	}
	cfg, err := routingFromTree(tree)
	if err != nil {
		return nil, fmt.Errorf("%w: routing config: %w", messaging.ErrInvalidOption, err)
	}
	return cfg, nil
}

// routingFromTree checks and converts a decoded configuration.
func routingFromTree(tree any) (RoutingConfig, error) {
	cfg := RoutingConfig{}
	if tree == nil {
		return cfg, nil
	}
	groups, ok := tree.(map[string]any)
	if !ok {
		return nil, errors.New("the document must be a mapping of group names to groups")
	}
	for gname, g := range groups {
		sinks, ok := g.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("group %q must be a mapping of sink names to rules", gname)
		}
		group := make(map[string]RoutingRule, len(sinks))
		for sname, r := range sinks {
			rules, ok := r.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("group %q, sink %q: the rules must be a mapping with accepted_events and/or accepted_priorities", gname, sname)
			}
			var rule RoutingRule
			for key, v := range rules {
				list, err := stringList(v)
				if err != nil {
					return nil, fmt.Errorf("group %q, sink %q, %s: %w", gname, sname, key, err)
				}
				switch key {
				case "accepted_events":
					rule.AcceptedEvents = list
				case "accepted_priorities":
					rule.AcceptedPriorities = list
				default:
					return nil, fmt.Errorf("group %q, sink %q: unknown key %q (want accepted_events or accepted_priorities)", gname, sname, key)
				}
			}
			group[sname] = rule
		}
		cfg[gname] = group
	}
	return cfg, nil
}

func stringList(v any) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, errors.New("must be a list of patterns")
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("pattern %v is not a string", it)
		}
		out = append(out, s)
	}
	return out, nil
}

// compiledRule is a RoutingRule with its patterns compiled; a nil list
// is no condition.
type compiledRule struct {
	events, priorities []*regexp.Regexp
	hasEvents, hasPrio bool
}

func (r *compiledRule) accepts(eventType string, p Priority) bool {
	if r.hasEvents && !anyMatch(r.events, eventType) {
		return false
	}
	if r.hasPrio && !anyMatch(r.priorities, string(p)) {
		return false
	}
	return true
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

type route struct {
	sink string
	rule compiledRule
}

type routingSink struct {
	routes []route         // every (group, sink) rule
	sinks  map[string]Sink // the sinks the config names
	names  []string        // sorted keys of sinks
}

// Routing returns a sink that gives each notification to the sinks
// that cfg accepts it for: oslo's routing driver. sinks names the sinks
// that cfg may refer to (oslo loads them by driver name: "messagingv2",
// "log", ...); each accepted sink gets the notification once, even when
// several groups accept it, in the order of their names. Send returns
// the errors of the sinks, joined.
//
// Routing fails with an error wrapping messaging.ErrInvalidOption when
// cfg names a sink missing from sinks (oslo ignores such names), when a
// sink is nil, or when a pattern is malformed.
func Routing(cfg RoutingConfig, sinks map[string]Sink) (Sink, error) {
	rs := &routingSink{sinks: map[string]Sink{}}
	var missing []string
	for gname, group := range cfg {
		for sname, rule := range group {
			s, ok := sinks[sname]
			if !ok || s == nil {
				missing = append(missing, fmt.Sprintf("%q (group %q)", sname, gname))
				continue
			}
			cr, err := compileRule(rule)
			if err != nil {
				return nil, fmt.Errorf("%w: routing group %q, sink %q: %w", messaging.ErrInvalidOption, gname, sname, err)
			}
			rs.routes = append(rs.routes, route{sink: sname, rule: cr})
			rs.sinks[sname] = s
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%w: routing config names sinks that were not given: %s", messaging.ErrInvalidOption, strings.Join(missing, ", "))
	}
	for name := range rs.sinks {
		rs.names = append(rs.names, name)
	}
	sort.Strings(rs.names)
	return rs, nil
}

func compileRule(r RoutingRule) (compiledRule, error) {
	cr := compiledRule{hasEvents: r.AcceptedEvents != nil, hasPrio: r.AcceptedPriorities != nil}
	for _, p := range r.AcceptedEvents {
		re, err := fnmatchRegexp(p)
		if err != nil {
			return cr, err
		}
		cr.events = append(cr.events, re)
	}
	for _, p := range r.AcceptedPriorities {
		re, err := fnmatchRegexp(strings.ToLower(p))
		if err != nil {
			return cr, err
		}
		cr.priorities = append(cr.priorities, re)
	}
	return cr, nil
}

func (rs *routingSink) usesTransport() bool {
	for _, s := range rs.sinks {
		if usesTransport(s) {
			return true
		}
	}
	return false
}

// accepted returns the names of the sinks that accept the notification,
// sorted.
func (rs *routingSink) accepted(eventType string, p Priority) []string {
	var names []string
	for _, r := range rs.routes {
		if !slices.Contains(names, r.sink) && r.rule.accepts(eventType, p) {
			names = append(names, r.sink)
		}
	}
	sort.Strings(names)
	return names
}

// Send gives m to every sink that accepts it.
func (rs *routingSink) Send(ctx context.Context, m *Message) error {
	var errs []error
	for _, name := range rs.accepted(m.EventType, m.Priority) {
		if err := rs.sinks[name].Send(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("notify: routing to %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// fnmatchRegexp translates a shell-style pattern, with the rules of
// Python's fnmatch, into an anchored regular expression.
func fnmatchRegexp(pat string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`\A(?s:`)
	for i := 0; i < len(pat); {
		c := pat[i]
		switch c {
		case '*':
			for i < len(pat) && pat[i] == '*' {
				i++
			}
			b.WriteString(".*")
			continue
		case '?':
			b.WriteString(".")
		case '[':
			j := i + 1
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				break
			}
			class := pat[i+1 : j]
			b.WriteByte('[')
			if strings.HasPrefix(class, "!") {
				b.WriteByte('^')
				class = class[1:]
			}
			for k := 0; k < len(class); k++ {
				switch ch := class[k]; ch {
				case '\\', '[', ']', '^':
					b.WriteByte('\\')
					b.WriteByte(ch)
				default:
					b.WriteByte(ch)
				}
			}
			b.WriteByte(']')
			i = j
		default:
			r := pat[i:]
			// Copy one whole UTF-8 sequence, quoted.
			n := 1
			for n < len(r) && r[n]&0xC0 == 0x80 {
				n++
			}
			b.WriteString(regexp.QuoteMeta(r[:n]))
			i += n
			continue
		}
		i++
	}
	b.WriteString(`)\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pat, err)
	}
	return re, nil
}
