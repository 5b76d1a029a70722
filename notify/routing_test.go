package notify

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
)

// routingSample is oslo's etc/routing_notifier.yaml.sample, trailing
// space included.
const routingSample = `# Setting a priority AND an event means both have to be satisfied.
#
# However, defining different sets for the same driver allows you
# to do OR operations.
#
# See how this logic is modeled below:
#
# if (priority in info, warn or error) or
#    (event == compute.scheduler.run_instance)
#        send to messaging driver ...
#
# if priority == 'poll' and
#    event == 'bandwidth.*'
#        send to poll driver

group_1:
    messaging:
        accepted_priorities: ['info', 'warn', 'error']

    poll:
        accepted_priorities: ['poll']
        accepted_events: ['bandwidth.*']

    log:
        accepted_events: ['compute.instance.exists']

group_2:
    messaging: 
        accepted_events: ['compute.scheduler.run_instance.*']
`

func TestFnmatch(t *testing.T) {
	t.Parallel()
	// Expected values are Python's fnmatch.fnmatch.
	for _, tc := range []struct {
		s, pat string
		want   bool
	}{
		{"foo.1", "foo.*", true},
		{"foo", "foo.*", false},
		{"blah.zoo.zing", "blah.zoo.*", true},
		{"zip", "zip", true},
		{"a.b/c", "a.*", true},
		{"x", "[!a]", true},
		{"a", "[!a]", false},
		{"[", "[", true},
		{"[]", "[]", true},
		{"]", "[]]", true},
		{"a]", "[]]", false},
		{"ab", "a?", true},
		{"a", "a?", false},
		{"a.b", "a?b", true},
		{"abc", "*", true},
		{"", "*", true},
		{"a\nb", "a*b", true},
		{"A", "a", false},
		{"x.y", "x[.]y", true},
		{"x-y", "x[a-z-]y", true},
		{"x^y", "x[^]y", true},
		{`x\y`, `x[\]y`, true},
		{"info", "i*o", true},
		{"(a)", "(a)", true},
		{"a+", "a+", true},
		{"éa", "é?", true},
		{"a", "[a", false},
		{"[a", "[a", true},
		{"b", "[!]b]", false},
		{"]", "[!]b]", false},
		{"c", "[!]b]", true},
	} {
		re, err := fnmatchRegexp(tc.pat)
		if err != nil {
			t.Errorf("fnmatchRegexp(%q): %v", tc.pat, err)
			continue
		}
		if got := re.MatchString(tc.s); got != tc.want {
			t.Errorf("fnmatch(%q, %q) = %v, want %v (regexp %s)", tc.s, tc.pat, got, tc.want, re)
		}
	}
}

func TestParseRoutingConfigSample(t *testing.T) {
	t.Parallel()
	cfg, err := ParseRoutingConfig([]byte(routingSample))
	if err != nil {
		t.Fatal(err)
	}
	want := RoutingConfig{
		"group_1": {
			"messaging": {AcceptedPriorities: []string{"info", "warn", "error"}},
			"poll":      {AcceptedPriorities: []string{"poll"}, AcceptedEvents: []string{"bandwidth.*"}},
			"log":       {AcceptedEvents: []string{"compute.instance.exists"}},
		},
		"group_2": {
			"messaging": {AcceptedEvents: []string{"compute.scheduler.run_instance.*"}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ParseRoutingConfig(sample) = %#v\nwant %#v", cfg, want)
	}

	// The same as JSON.
	js := `{"group_1": {"messaging": {"accepted_priorities": ["info", "warn", "error"]},
	  "poll": {"accepted_priorities": ["poll"], "accepted_events": ["bandwidth.*"]},
	  "log": {"accepted_events": ["compute.instance.exists"]}},
	 "group_2": {"messaging": {"accepted_events": ["compute.scheduler.run_instance.*"]}}}`
	cfg, err = ParseRoutingConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ParseRoutingConfig(JSON) = %#v\nwant %#v", cfg, want)
	}
}

// routeSinks returns named recording sinks.
func routeSinks(names ...string) (map[string]Sink, map[string]*Recorder) {
	sinks := map[string]Sink{}
	recs := map[string]*Recorder{}
	for _, n := range names {
		r := NewRecorder()
		sinks[n], recs[n] = r, r
	}
	return sinks, recs
}

func mustRouting(t *testing.T, config string, sinks map[string]Sink) *routingSink {
	t.Helper()
	cfg, err := ParseRoutingConfig([]byte(config))
	if err != nil {
		t.Fatalf("ParseRoutingConfig: %v", err)
	}
	s, err := Routing(cfg, sinks)
	if err != nil {
		t.Fatalf("Routing: %v", err)
	}
	return s.(*routingSink)
}

func TestRoutingSampleDecisions(t *testing.T) {
	t.Parallel()
	sinks, _ := routeSinks("messaging", "poll", "log")
	rs := mustRouting(t, routingSample, sinks)
	for _, tc := range []struct {
		event string
		p     Priority
		want  []string
	}{
		{"compute.instance.create.end", PriorityInfo, []string{"messaging"}},
		{"compute.instance.create.end", PriorityWarn, []string{"messaging"}},
		{"compute.instance.create.end", PriorityError, []string{"messaging"}},
		{"compute.instance.create.end", PriorityDebug, nil},
		{"compute.instance.exists", PriorityDebug, []string{"log"}},
		{"compute.instance.exists", PriorityInfo, []string{"log", "messaging"}},
		{"compute.scheduler.run_instance.start", PriorityAudit, []string{"messaging"}},
		{"compute.scheduler.run_instance", PriorityAudit, nil},
		{"bandwidth.in", PrioritySample, nil}, // poll needs priority "poll"
	} {
		if got := rs.accepted(tc.event, tc.p); !slices.Equal(got, tc.want) {
			t.Errorf("route(%s, %s) = %v, want %v", tc.event, tc.p, got, tc.want)
		}
	}
}

// The cases of oslo's TestRoutingNotifier.
func TestRoutingOsloCases(t *testing.T) {
	t.Parallel()
	t.Run("accepted_events", func(t *testing.T) {
		sinks, _ := routeSinks("rpc")
		rs := mustRouting(t, `
group_1:
   rpc:
       accepted_events:
          - foo.*
          - blah.zoo.*
          - zip
`, sinks)
		for event, want := range map[string][]string{"unknown": nil, "foo.1": {"rpc"}, "foo": nil, "blah.zoo.zing": {"rpc"}} {
			if got := rs.accepted(event, PriorityInfo); !slices.Equal(got, want) {
				t.Errorf("route(%s) = %v, want %v", event, got, want)
			}
		}
	})
	t.Run("accepted_priorities", func(t *testing.T) {
		sinks, _ := routeSinks("rpc")
		rs := mustRouting(t, `
group_1:
   rpc:
       accepted_priorities:
          - info
          - error
`, sinks)
		for p, want := range map[Priority][]string{"unknown": nil, PriorityInfo: {"rpc"}, PriorityError: {"rpc"}} {
			if got := rs.accepted("", p); !slices.Equal(got, want) {
				t.Errorf("route(%s) = %v, want %v", p, got, want)
			}
		}
	})
	t.Run("both", func(t *testing.T) {
		sinks, _ := routeSinks("rpc", "driver_1", "driver_2")
		rs := mustRouting(t, `
group_1:
   rpc:
       accepted_priorities:
          - info
       accepted_events:
          - foo.*
   driver_1:
       accepted_priorities:
          - info
   driver_2:
      accepted_events:
          - foo.*
`, sinks)
		for _, tc := range []struct {
			event string
			p     Priority
			want  []string
		}{
			{"foo.blah", "unknown", []string{"driver_2"}},
			{"unknown", PriorityInfo, []string{"driver_1"}},
			{"foo.blah", PriorityInfo, []string{"driver_1", "driver_2", "rpc"}},
		} {
			if got := rs.accepted(tc.event, tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("route(%s, %s) = %v, want %v", tc.event, tc.p, got, tc.want)
			}
		}
	})
	t.Run("notify_filtered", func(t *testing.T) {
		sinks, recs := routeSinks("rpc", "rpc2", "bar")
		rs := mustRouting(t, `
group_1:
    rpc:
        accepted_events:
          - my_event
    rpc2:
        accepted_priorities:
          - info
    bar:
        accepted_events:
            - nothing
`, sinks)
		n := newNotifier(t, nil, "pub", WithSinks(rs))
		if err := n.Info(t.Context(), "my_event", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]int{"rpc": 1, "rpc2": 1, "bar": 0} {
			got := recs[name].Messages()
			if len(got) != want {
				t.Errorf("%s got %d notifications, want %d", name, len(got), want)
			}
			for _, m := range got {
				if m.Priority != PriorityInfo || m.Retry != -1 {
					t.Errorf("%s got priority %s, retry %d; want info, -1", name, m.Priority, m.Retry)
				}
			}
		}
	})
}

func TestRoutingSendsOnceAndJoinsErrors(t *testing.T) {
	t.Parallel()
	calls := map[string]int{}
	errA := errors.New("a failed")
	sinks := map[string]Sink{
		"a": SinkFunc(func(context.Context, *Message) error { calls["a"]++; return errA }),
		"b": SinkFunc(func(context.Context, *Message) error { calls["b"]++; return nil }),
	}
	rs := mustRouting(t, `
g1: {a: {accepted_events: ['x.*']}, b: {}}
g2:
  a:
    accepted_priorities: [INFO]
`, sinks)
	n := newNotifier(t, nil, "pub", WithSinks(rs))
	err := n.Info(t.Context(), "x.y", nil)
	if !errors.Is(err, errA) || !strings.Contains(err.Error(), "routing to a") {
		t.Errorf("Info = %v, want a's error naming a", err)
	}
	if calls["a"] != 1 || calls["b"] != 1 {
		t.Errorf("calls = %v, want each sink once", calls)
	}
}

func TestRoutingConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, config, want string }{
		{"not a mapping", "- a\n- b\n", "mapping of group names"},
		{"group not a mapping", "g: x\n", `group "g" must be a mapping`},
		{"group null", "g:\n", `group "g" must be a mapping`},
		{"rules not a mapping", "g:\n  rpc: foo\n", `sink "rpc": the rules must be a mapping`},
		{"rules null", "g:\n  rpc:\n", `sink "rpc": the rules must be a mapping`},
		{"unknown key", "g:\n  rpc:\n    accepted_event: [a]\n", `unknown key "accepted_event"`},
		{"not a list", "g:\n  rpc:\n    accepted_events: a.*\n", "must be a list"},
		{"null list", "g:\n  rpc:\n    accepted_events:\n", "must be a list"},
		{"not strings", `{"g": {"rpc": {"accepted_events": [1]}}}`, "not a string"},
		{"alias", "g:\n  rpc:\n    accepted_events: [*.end]\n", "aliases are not supported"},
		{"anchor", "g: &a\n  rpc: {}\n", "anchors are not supported"},
		{"tag", "g: !!map\n  rpc: {}\n", "tags are not supported"},
		{"block scalar", "g: |\n  text\n", "block scalars"},
		{"tab", "g:\n\trpc: {}\n", "tab in indentation"},
		{"duplicate", "g:\n  rpc: {}\n  rpc: {}\n", `duplicate key "rpc"`},
		{"bad indentation", "g:\n    rpc: {}\n  log: {}\n", "line 3"},
		{"two documents", "---\ng: {}\n---\nh: {}\n", "several YAML documents"},
		{"unterminated flow", "g: {rpc: {accepted_events: [a.*\n", "unterminated flow"},
		{"unterminated quote", "g:\n  rpc:\n    accepted_events: ['a.*]\n", "unterminated"},
		{"bad JSON", `{"g": {]}`, "neither JSON"},
	} {
		_, err := ParseRoutingConfig([]byte(tc.config))
		if !errors.Is(err, messaging.ErrInvalidOption) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseRoutingConfig = %v, want ErrInvalidOption containing %q", tc.name, err, tc.want)
		}
	}
}

func TestRoutingValidation(t *testing.T) {
	t.Parallel()
	cfg := RoutingConfig{"g": {"messagingv2": {}, "log": {}, "x": {AcceptedEvents: []string{"a"}}}}
	_, err := Routing(cfg, map[string]Sink{"log": Log(nil)})
	if !errors.Is(err, messaging.ErrInvalidOption) || !strings.Contains(err.Error(), `"messagingv2" (group "g")`) || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("Routing with missing sinks = %v", err)
	}
	// Empty configurations route nothing.
	for _, empty := range []string{"", "# nothing\n", "---\n", "{}"} {
		cfg, err := ParseRoutingConfig([]byte(empty))
		if err != nil || len(cfg) != 0 {
			t.Errorf("ParseRoutingConfig(%q) = %v, %v; want empty", empty, cfg, err)
		}
	}
	// An empty list accepts nothing; an absent one is no condition.
	sinks, _ := routeSinks("a", "b")
	rs := mustRouting(t, "g:\n  a: {accepted_events: []}\n  b: {}\n", sinks)
	if got := rs.accepted("x", PriorityInfo); !slices.Equal(got, []string{"b"}) {
		t.Errorf("route = %v, want [b]", got)
	}
	// A routing sink publishing through the transport needs notification
	// support from it.
	rt, err := Routing(RoutingConfig{"g": {"m": {}}}, map[string]Sink{"m": MessagingV2()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewNotifier(messaging.NewTransport(rpcOnlyConn{}), "p", WithSinks(rt)); err == nil {
		t.Error("NewNotifier with a routed messaging sink on a transport without notifications succeeded")
	}
}
