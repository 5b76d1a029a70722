package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/pyinterop"
	"github.com/go-oslo/messaging/notify"
)

// parseScript loads each case with the real oslo.config: it registers
// the options with their types, defaults and deprecated names, sets the
// environment, parses the --config-file and --config-dir arguments in
// order, and prints for each option whether something sets it and its
// value as text (str() for numbers and booleans, repr() for floats), or
// the error.
const parseScript = `
import json, os, sys
from oslo_config import cfg

KINDS = {'string': cfg.StrOpt, 'bool': cfg.BoolOpt, 'int': cfg.IntOpt,
         'float': cfg.FloatOpt, 'list': cfg.ListOpt, 'multi': cfg.MultiStrOpt}

def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return [text(x) for x in v]
    return v

out = []
for case in json.load(sys.stdin):
    for k in [k for k in os.environ if k.startswith('OS_')]:
        del os.environ[k]
    os.environ.update(case['env'])
    conf = cfg.ConfigOpts()
    for o in case['opts']:
        kw = {'deprecated_opts': [cfg.DeprecatedOpt(n, group=g) for g, n in o['deprecated']]}
        if o['default'] is not None:
            kw['default'] = o['default']
        conf.register_opt(KINDS[o['kind']](o['name'], **kw),
                          group=None if o['group'] == 'DEFAULT' else o['group'])
    args = []
    for kind, path in case['args']:
        args += ['--config-' + kind, path]
    res = {'load_error': None, 'values': []}
    try:
        conf(args, project='omsg-interop', default_config_files=[], default_config_dirs=[])
    except BaseException as e:
        res['load_error'] = '%s: %s' % (type(e).__name__, e)
        out.append(res)
        continue
    for o in case['opts']:
        g = None if o['group'] == 'DEFAULT' else o['group']
        try:
            v = conf[o['name']] if g is None else conf[g][o['name']]
            loc = conf.get_location(o['name'], g)
            res['values'].append({'set': loc is not None and loc.location != cfg.Locations.opt_default, 'value': text(v)})
        except Exception as e:
            res['values'].append({'error': '%s: %s' % (type(e).__name__, e)})
    out.append(res)
json.dump(out, sys.stdout)
`

// interopOpt is an option as the Python script registers it.
type interopOpt struct {
	Group      string      `json:"group"`
	Name       string      `json:"name"`
	Kind       string      `json:"kind"`
	Default    any         `json:"default"`
	Deprecated [][2]string `json:"deprecated"`
}

type interopCase struct {
	name  string
	files map[string]string
	args  [][2]string // {"file" or "dir", path relative to the case's directory}
	env   map[string]string
	extra []interopOpt // options beyond those of the schema
}

type pyCaseResult struct {
	LoadError *string `json:"load_error"`
	Values    []struct {
		Set   bool            `json:"set"`
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	} `json:"values"`
}

// schemaInteropOpts returns the options of the schema, registered in
// Python with their oslo types and defaults.
func schemaInteropOpts() []interopOpt {
	var out []interopOpt
	for _, o := range schema.opts {
		io := interopOpt{Group: o.group, Name: o.name, Kind: o.kind.String(), Deprecated: [][2]string{}}
		for _, d := range o.deprecated {
			io.Deprecated = append(io.Deprecated, [2]string{d.group, d.name})
		}
		switch o.kind {
		case kindBool:
			io.Default = o.def == "True"
		case kindInt:
			io.Default, _ = strconv.Atoi(o.def)
		case kindFloat:
			io.Default, _ = strconv.ParseFloat(o.def, 64)
		case kindList:
			io.Default = []string{notify.DefaultTopic}
		case kindMulti:
			io.Default = []string{}
		default:
			if o.def != "" {
				io.Default = o.def
			}
		}
		out = append(out, io)
	}
	return out
}

// goInteropValue returns what the Python script prints for option o of
// f: whether it is set and its text, or an error.
func goInteropValue(f *File, o interopOpt) (set bool, value any, err error) {
	if o.Kind == "multi" {
		vals, err := f.MultiStr(o.Group, o.Name, nil)
		if err != nil {
			return false, nil, err
		}
		items := make([]any, len(vals))
		for i, v := range vals {
			items[i] = v
		}
		return f.IsSet(o.Group, o.Name), items, nil
	}
	s, _, ok, err := f.resolve(o.Group, o.Name)
	if err != nil || !ok {
		return false, nil, err
	}
	switch o.Kind {
	case "bool":
		b, err := parseBool(s)
		return true, pyBool(b), err
	case "int":
		n, empty, err := parseInt(s)
		if empty {
			return true, nil, err // oslo's None
		}
		return true, strconv.Itoa(n), err
	case "float":
		v, empty, err := parseFloat(s)
		if empty {
			return true, nil, err
		}
		return true, pyFloat(v), err
	case "list":
		var items []any
		for _, it := range parseList(s) {
			items = append(items, it)
		}
		if items == nil {
			items = []any{}
		}
		return true, items, nil
	}
	return true, s, nil
}

// runInterop runs the cases in Go and in Python and compares them.
func runInterop(t *testing.T, cases []interopCase) {
	t.Helper()
	type pyCase struct {
		Args [][2]string       `json:"args"`
		Env  map[string]string `json:"env"`
		Opts []interopOpt      `json:"opts"`
	}
	root := t.TempDir()
	var in []pyCase
	for i, c := range cases {
		dir := filepath.Join(root, strconv.Itoa(i))
		writeFiles(t, dir, c.files)
		pc := pyCase{Env: c.env, Opts: append(schemaInteropOpts(), c.extra...)}
		if pc.Env == nil {
			pc.Env = map[string]string{}
		}
		for _, a := range c.args {
			pc.Args = append(pc.Args, [2]string{a[0], filepath.Join(dir, a[1])})
		}
		in = append(in, pc)
	}
	var out []pyCaseResult
	pyinterop.RunJSON(t, parseScript, in, &out)
	if len(out) != len(cases) {
		t.Fatalf("python returned %d results for %d cases", len(out), len(cases))
	}

	compared := 0
	for i, c := range cases {
		var srcs Sources
		for _, a := range in[i].Args {
			if a[0] == "dir" {
				srcs.AddDir(a[1])
			} else {
				srcs.AddFile(a[1])
			}
		}
		var env []string
		for k, v := range c.env {
			env = append(env, k+"="+v)
		}
		f, err := srcs.Load(WithEnviron(env))
		py := out[i]
		if (err != nil) != (py.LoadError != nil) {
			t.Errorf("%s: Go load error %v, Python load error %v", c.name, err, deref(py.LoadError))
			continue
		}
		if err != nil {
			compared++
			continue
		}
		for j, o := range in[i].Opts {
			pv := py.Values[j]
			set, gv, gerr := goInteropValue(f, o)
			what := fmt.Sprintf("%s: [%s] %s", c.name, o.Group, o.Name)
			if (gerr != nil) != (pv.Error != "") {
				t.Errorf("%s: Go error %v, Python error %q", what, gerr, pv.Error)
				continue
			}
			if gerr != nil {
				compared++
				continue
			}
			if set != pv.Set {
				t.Errorf("%s: Go set %v, Python set %v", what, set, pv.Set)
				continue
			}
			if !set {
				continue
			}
			var pval any
			if err := json.Unmarshal(pv.Value, &pval); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalizeJSON(gv), pval) {
				t.Errorf("%s: Go %#v, Python %#v", what, gv, pval)
				continue
			}
			compared++
		}
	}
	t.Logf("%d cases, %d values and errors compared with oslo.config", len(cases), compared)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func normalizeJSON(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

// str, boolean, ... make extra options of [DEFAULT] or of group g.
func extraOpt(group, name, kind string) interopOpt {
	return interopOpt{Group: group, Name: name, Kind: kind, Deprecated: [][2]string{}}
}

func oneFile(name, text string, extra ...interopOpt) interopCase {
	return interopCase{name: name, files: map[string]string{"a.conf": text}, args: [][2]string{{"file", "a.conf"}}, extra: extra}
}

// TestInteropConfigParsing parses files with this package and with the
// real oslo.config and compares every value: syntax, conversions, file
// and directory order, deprecated names, the environment and
// substitution.
func TestInteropConfigParsing(t *testing.T) {
	pyinterop.Python(t)
	var cases []interopCase

	// The syntax: every line form, in a file of its own.
	syntax := []string{
		"[DEFAULT]\na = 1\n", "[DEFAULT]\na: 1\n", "[DEFAULT]\na = x:y\n", "[DEFAULT]\na: x=y\n", "[DEFAULT]\na=x\n",
		"[DEFAULT]\na = \"quoted\"\n", "[DEFAULT]\na = 'quoted'\n", "[DEFAULT]\na = 'mis\"\n", "[DEFAULT]\na = 'ab'cd'\n",
		"[DEFAULT]\na = \"\n", "[DEFAULT]\na = value # not a comment\n", "[DEFAULT]\na = a;b\n",
		"[DEFAULT]\na = line1\n  line2\n\tline3\n", "[DEFAULT]\na =\n  x\n  y\n", "[DEFAULT]\na = 1\n  # more\n",
		"[DEFAULT]\na = \"x\n  y\"\n", "[DEFAULT]\na =\n", "# c\n; c\n[DEFAULT]\n#a = 2\n;a = 3\na = 1\n",
		"[DEFAULT]\na = 1\na = 2\n", "[DEFAULT]\na = 1\n[other]\n[DEFAULT]\nb = 2\n", "[default]\na = lower\n",
		"[DEFAULT]\r\na = 1\r\n  more\r\nb = 2  \r\n", "[DEFAULT]\ra = 1\r  more\rb = 2\r", "[DEFAULT] \na = 1\n",
		"[DEFAULT]\na\u00a0=\u00a0v\u00a0\n\u00a0b = 2\n", "[DEFAULT]\na = v\x1c\n", "[DEFAULT]\na = 1\n\x0cb = 2\n",
		"[DEFAULT]\na = 1\u0085b = 2\n", "[DEFAULT]\na = 1", "[DEFAULT]\na = 1\n\nb = 2\n", "[ DEFAULT ]\na = 1\n",
		"[Oslo_Messaging_Rabbit]\nssl = true\n", "[OSLO_MESSAGING_NOTIFICATIONS]\ndriver = log\n",
		// Errors.
		"[DEFAULT]\nfoo\n", "[DEFAULT]\n= v\n", "[DEFAULT]\n = v\n", "a = 1\n[DEFAULT]\n", "[DEFAULT\na=1\n",
		"[DEFAULT] x\na=1\n", "[]\na=1\n", "  x = 1\n[DEFAULT]\n", "[DEFAULT]\n  x = 1\n", "[DEFAULT]\na = 1\n# c\n  more\n",
		"[DEFAULT]\na = 1\n\n  more\n", "[DEFAULT]\n\ta = 1\n",
	}
	for i, text := range syntax {
		cases = append(cases, oneFile(fmt.Sprintf("syntax %d %q", i, text), text,
			extraOpt("DEFAULT", "a", "string"), extraOpt("DEFAULT", "b", "string"), extraOpt("default", "a", "string"),
			extraOpt(" DEFAULT ", "a", "string")))
	}

	// Conversions.
	inputs := map[string][]string{
		"bool": {"true", "TRUE", "Yes", "oN", "1", "false", "No", "OFF", "0", "t", "y", "2", "enabled", "", "'yes'"},
		"int": {"12", " +5", "-1", "-0", "007", "1_000", "\uff11\uff12", "\u0661\u0662", "", "1__0", "_1", "1_", "0x10",
			"12.0", "1e3", "--1", "ten", "9223372036854775807"},
		"float": {"1.5", ".5", "5.", "1e3", "-2.5E-1", "1_000.5", "inf", "-Infinity", "1e400", "nan", "\u0661.\u0665", "",
			"0x1p3", "1_e3", "1._5", "e3", "1,5", "0.1", "1e16", "123456789.123", "1e-5", "-0"},
		"list": {"notifications,billing", "a, b,,c,", "a ,", " , ", ",", "", "one", "'a', \"b\"", "[a, b]"},
	}
	for kind, values := range inputs {
		for _, v := range values {
			cases = append(cases, oneFile(fmt.Sprintf("%s %q", kind, v), "[DEFAULT]\nv = "+v+"\n", extraOpt("DEFAULT", "v", kind)))
		}
	}

	// Order of files and directories, with deprecated names.
	order := map[string]string{
		"f1.conf": "[DEFAULT]\nnotification_driver = dep1\nx = f1\nnotification_topics = dt1\nrpc_thread_pool_size = 5\n" +
			"[oslo_messaging_notifications]\ndriver = cur1\ntopics = t1\n[oslo_messaging_rabbit]\nrabbit_use_ssl = true\n",
		"f2.conf": "[oslo_messaging_notifications]\ndriver = cur2\n[DEFAULT]\nnotification_driver = dep2\n" +
			"notification_topics = dt2\nx = f2a\nx = f2b\nexecutor_thread_pool_size = 7\n[rpc_notifier2]\ntopics = rn\n" +
			"[oslo_messaging_rabbit]\nssl = false\n",
		"d/b.conf":       "[DEFAULT]\nx = dir-b\n[oslo_messaging_notifications]\ndriver = dirb\n",
		"d/a.conf":       "[DEFAULT]\nx = dir-a\ny = dir-a\n[DEFAULT]\nrabbit_ha_queues = yes\n",
		"d/.hidden.conf": "[DEFAULT]\nx = hidden\n",
		"d/c.conf.bak":   "[DEFAULT]\nx = backup\n",
	}
	xy := []interopOpt{extraOpt("DEFAULT", "x", "string"), extraOpt("DEFAULT", "y", "string")}
	for _, args := range [][][2]string{
		{{"file", "f1.conf"}, {"file", "f2.conf"}},
		{{"file", "f2.conf"}, {"file", "f1.conf"}},
		{{"file", "f1.conf"}, {"file", "f1.conf"}},
		{{"file", "f1.conf"}, {"dir", "d"}},
		{{"dir", "d"}, {"file", "f1.conf"}},
		{{"dir", "d"}, {"file", "f2.conf"}, {"dir", "d"}},
		{{"file", "missing.conf"}},
		{{"dir", "missing"}},
	} {
		cases = append(cases, interopCase{name: fmt.Sprintf("order %v", args), files: order, args: args, extra: xy})
	}

	// The environment.
	cases = append(cases, interopCase{
		name: "environment",
		files: map[string]string{"a.conf": "[DEFAULT]\ntransport_url = rabbit://file/\nrpc_response_timeout = 30\nhost = rabbit1\n" +
			"[oslo_messaging_notifications]\ndriver = messagingv2\ntopics = a\n[oslo_messaging_rabbit]\namqp_durable_queues = false\n"},
		args: [][2]string{{"file", "a.conf"}},
		env: map[string]string{
			"OS_DEFAULT__TRANSPORT_URL":                     "rabbit://u:p@$host//",
			"OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES": "True",
			"OS_OSLO_MESSAGING_NOTIFICATIONS__TOPICS":       " x, y ,",
			"OS_DEFAULT__RPC_RESPONSE_TIMEOUT":              " 99 ",
			"OS_DEFAULT__NOTIFICATION_TOPICS":               "ignored",
			"OS_OSLO_MESSAGING_RABBIT__SSL":                 " true",
			"OS_DEFAULT__EXECUTOR_THREAD_POOL_SIZE":         "",
			"OS_OSLO_MESSAGING_RABBIT__RABBIT_LOGIN_METHOD": "PLAIN",
		},
		extra: []interopOpt{extraOpt("DEFAULT", "host", "string")},
	})

	// Substitution.
	subst := []interopOpt{extraOpt("grp", "b", "string"), extraOpt("grp", "c", "string"), extraOpt("grp", "d", "string")}
	for _, n := range []string{"a", "my_ip", "flag", "n", "lst", "fl", "chain", "mid", "s1", "s2", "s3", "s4", "s5", "s6",
		"s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17"} {
		subst = append(subst, extraOpt("DEFAULT", n, "string"))
	}
	cases = append(cases, oneFile("substitution", `[DEFAULT]
a = 1
my_ip = 10.0.0.11
flag = yes
n = 007
lst = a, b
fl = 1.50
chain = $a-$mid
mid = <$a>
rpc_ping_enabled = on
notification_topics = t1,t2
s1 = ${a}x/$$a/\$a/pa$$word/pa$ word/${a/$1a/${}/end$
s2 = rabbit://nova:pw@$my_ip:5672/
s3 = $grp.b/${grp.b}/$chain
s4 = $rpc_ping_enabled/$rpc_response_timeout/$control_exchange/$executor_thread_pool_size
s5 = ${oslo_messaging_rabbit.heartbeat_timeout_threshold}/${oslo_messaging_rabbit.kombu_reconnect_delay}
s6 = ${oslo_messaging_notifications.topics}/${oslo_messaging_notifications.driver}
s7 = [${oslo_messaging_notifications.transport_url}]/${oslo_messaging_rabbit.kombu_compression}
s8 = $unknown
s9 = $s10
s10 = $s9
s11 = ${DEFAULT.a}
s12 = $a.
s13 = ${oslo_messaging_rabbit.ssl}
s14 = $flag/$n/$lst/$fl
s15 = $s15
s16 = ${oslo_messaging_rabbit.rabbit_quorum_delivery_limit}/${oslo_messaging_notifications.retry}
s17 = $A/$Flag
[grp]
b = gb
c = $a-$b
d = ${grp.b}/$my_ip/$c
[oslo_messaging_notifications]
driver = log
driver = it's "quoted"
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 030
ssl = maybe
kombu_reconnect_delay = 2.50
`, subst...))

	// The realistic file.
	nova, err := os.ReadFile(filepath.Join("testdata", "nova.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, oneFile("nova.conf", string(nova),
		extraOpt("DEFAULT", "debug", "bool"), extraOpt("DEFAULT", "my_ip", "string"), extraOpt("DEFAULT", "state_path", "string"),
		extraOpt("vnc", "server_listen", "string"), extraOpt("oslo_concurrency", "lock_path", "string"),
		extraOpt("database", "connection", "string"), extraOpt("database", "max_retries", "int")))

	runInterop(t, cases)
}

// schemaScript prints the options that oslo.messaging registers in the
// groups this package reads.
const schemaScript = `
import json, sys
from oslo_config import cfg, types
from oslo_messaging import opts
from oslo_messaging.notify import _impl_routing

KINDS = [(types.MultiString, 'multi'), (types.Boolean, 'bool'), (types.Integer, 'int'),
         (types.Float, 'float'), (types.List, 'list'), (types.String, 'string')]
out = []
groups = dict(opts.list_opts())
groups['oslo_messaging_notifications'] = list(groups['oslo_messaging_notifications']) + [_impl_routing.router_config]
for g in (None, 'oslo_messaging_notifications', 'oslo_messaging_rabbit'):
    for o in groups[g]:
        kind = next(k for t, k in KINDS if isinstance(o.type, t))
        d = o.default
        out.append({'group': g or 'DEFAULT', 'name': o.name, 'kind': kind, 'secret': o.secret,
                    'default': None if d is None else (repr(d) if kind == 'multi' or kind == 'list' else str(d)),
                    'deprecated': sorted([[x.group or (g or 'DEFAULT'), x.name or o.name] for x in o.deprecated_opts])})
json.dump(out, sys.stdout)
`

// TestInteropSchema compares the options this package knows with those
// that the installed oslo.messaging registers: names, types, defaults,
// secrecy and deprecated names. The rabbit options follow the rabbit
// driver, which follows oslo.messaging's later releases; the differences
// with the installed release are listed.
func TestInteropSchema(t *testing.T) {
	var py []struct {
		Group, Name, Kind string
		Secret            bool
		Default           *string
		Deprecated        [][2]string
	}
	pyinterop.RunJSON(t, schemaScript, nil, &py)

	// Options of later releases, or moved there, that the installed
	// release lacks or has elsewhere.
	later := map[string]bool{
		"kombu_reconnect_splay": true, "rabbit_transient_quorum_queue": true, "rabbit_stream_fanout": true,
		"use_queue_manager": true, "hostname": true, "processname": true, "rabbit_quorum_max_memory_length": true,
		"rabbit_quorum_max_memory_bytes": true, "rpc_conn_pool_size": true, "conn_pool_min_size": true, "conn_pool_ttl": true,
	}
	// Defaults that changed in later releases (the driver's).
	changed := map[string]string{"heartbeat_rate": "2", "ssl_enforce_hostname_verification": "False"}
	// Options of the installed release that moved or were renamed.
	moved := map[optName]optName{
		{"DEFAULT", "rpc_conn_pool_size"}:                {GroupRabbit, "rpc_conn_pool_size"},
		{"DEFAULT", "conn_pool_min_size"}:                {GroupRabbit, "conn_pool_min_size"},
		{"DEFAULT", "conn_pool_ttl"}:                     {GroupRabbit, "conn_pool_ttl"},
		{GroupRabbit, "rabbit_quroum_max_memory_length"}: {GroupRabbit, "rabbit_quorum_max_memory_length"},
		{GroupRabbit, "rabbit_quroum_max_memory_bytes"}:  {GroupRabbit, "rabbit_quorum_max_memory_bytes"},
	}

	seen := map[optName]bool{}
	for _, p := range py {
		n := optName{p.Group, p.Name}
		if to, ok := moved[n]; ok {
			o := schema.byKey[to]
			if o == nil || !slices.Contains(o.deprecated, n) {
				t.Errorf("%s moved to %s, which does not read it", n, to)
			}
			continue
		}
		o := schema.byKey[n]
		if o == nil {
			t.Errorf("oslo.messaging registers %s (%s), which this package does not know", n, p.Kind)
			continue
		}
		seen[n] = true
		def := ""
		if p.Default != nil {
			def = *p.Default
		}
		if d, ok := changed[p.Name]; ok && def == d {
			def = o.def
		}
		var dep [][2]string
		for _, d := range o.deprecated {
			dep = append(dep, [2]string{d.group, d.name})
		}
		slices.SortFunc(dep, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
		if o.kind.String() != p.Kind || o.secret != p.Secret || o.def != def || !reflect.DeepEqual(dep, nilIfEmpty(p.Deprecated)) {
			t.Errorf("%s: this package has %s, default %q, secret %v, deprecated %v; oslo.messaging %s, %q, %v, %v",
				n, o.kind, o.def, o.secret, dep, p.Kind, def, p.Secret, p.Deprecated)
		}
	}
	for _, o := range schema.opts {
		if !seen[o.optName] && !later[o.name] {
			t.Errorf("%s is not registered by oslo.messaging", o.optName)
		}
	}
	t.Logf("%d options of oslo.messaging compared", len(py))
}

func nilIfEmpty(s [][2]string) [][2]string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// messagingScript reads the files with oslo.messaging's own options and
// prints what the library uses: the [DEFAULT] options, the
// notification options (with the transport URL falling back as
// get_notification_transport does), and the rabbit options as the
// rabbit driver sees them, through the proxy that lets the transport
// URL's query override the files.
const messagingScript = `
import json, sys
from oslo_config import cfg
from oslo_messaging import opts
from oslo_messaging import transport as om_transport
from oslo_messaging._drivers import common

req = json.load(sys.stdin)
conf = cfg.ConfigOpts()
for g, group_opts in opts.list_opts():
    conf.register_opts(group_opts, group=g)
args = []
for p in req['files']:
    args += ['--config-file', p]
conf(args, project='omsg-interop', default_config_files=[], default_config_dirs=[])

def rabbit(url):
    u = om_transport.TransportURL.parse(conf, url)
    proxy = common.ConfigOptsProxy(conf, u, 'oslo_messaging_rabbit')
    return {n: str(getattr(proxy.oslo_messaging_rabbit, n)) for n in req['rabbit']}

n = conf.oslo_messaging_notifications
notif_url = n.transport_url or conf.transport_url
json.dump({
    'transport_url': conf.transport_url,
    'control_exchange': conf.control_exchange,
    'rpc_response_timeout': conf.rpc_response_timeout,
    'executor_thread_pool_size': conf.executor_thread_pool_size,
    'rpc_ping_enabled': conf.rpc_ping_enabled,
    'driver': n.driver,
    'notification_url': notif_url,
    'topics': n.topics,
    'retry': n.retry,
    'rpc_rabbit': rabbit(conf.transport_url),
    'notification_rabbit': rabbit(notif_url),
}, sys.stdout)
`

// TestInteropMessaging reads configuration files with FromFile and with
// oslo.messaging's own options, and compares what each library uses,
// including the rabbit options that the driver receives, URL query
// included.
func TestInteropMessaging(t *testing.T) {
	pyinterop.Python(t)
	dir := t.TempDir()
	nova, err := os.ReadFile(filepath.Join("testdata", "nova.conf"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"nova.conf": string(nova),
		"override.conf": `[DEFAULT]
transport_url = rabbit://nova:pw@r1:5672,nova:pw@r2/nova?amqp_durable_queues=false&rabbit_qos_prefetch_count=7
rpc_thread_pool_size = 16
rpc_ping_enabled = on
notification_driver = log
[oslo_messaging_notifications]
driver = messagingv2
transport_url = kombu://notif:pw@r3//?heartbeat_timeout_threshold=15
topics = versioned_notifications
retry = 5
[oslo_messaging_rabbit]
rabbit_use_ssl = false
kombu_reconnect_delay = 2.5
rabbit_login_method = PLAIN
`,
		"empty.conf": "",
	})
	// The rabbit options of the installed release, by the same name.
	rabbitNames := []string{
		"amqp_durable_queues", "amqp_auto_delete", "ssl", "ssl_ca_file", "kombu_reconnect_delay", "kombu_failover_strategy",
		"rabbit_login_method", "rabbit_retry_interval", "rabbit_quorum_queue", "rabbit_qos_prefetch_count",
		"heartbeat_timeout_threshold", "kombu_missing_consumer_retry_timeout", "direct_mandatory_flag",
	}
	for _, files := range [][]string{{"nova.conf"}, {"nova.conf", "override.conf"}, {"empty.conf"}} {
		var paths []string
		for _, f := range files {
			paths = append(paths, filepath.Join(dir, f))
		}
		var py struct {
			TransportURL           string            `json:"transport_url"`
			ControlExchange        string            `json:"control_exchange"`
			RPCResponseTimeout     int               `json:"rpc_response_timeout"`
			ExecutorThreadPoolSize int               `json:"executor_thread_pool_size"`
			RPCPingEnabled         bool              `json:"rpc_ping_enabled"`
			Driver                 []string          `json:"driver"`
			NotificationURL        string            `json:"notification_url"`
			Topics                 []string          `json:"topics"`
			Retry                  int               `json:"retry"`
			RPCRabbit              map[string]string `json:"rpc_rabbit"`
			NotificationRabbit     map[string]string `json:"notification_rabbit"`
		}
		pyinterop.RunJSON(t, messagingScript, map[string]any{"files": paths, "rabbit": rabbitNames}, &py)

		f, err := Load(paths, nil, WithEnviron(nil))
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := FromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var pyDrivers []string
		for _, d := range py.Driver {
			if !slices.Contains(pyDrivers, d) {
				pyDrivers = append(pyDrivers, d)
			}
		}
		if pyDrivers == nil {
			pyDrivers = []string{}
		}
		retry := -1
		if m.Notifications.Retry != nil {
			retry = *m.Notifications.Retry
		}
		notifURL := m.Notifications.TransportURL
		if notifURL == "" {
			notifURL = m.TransportURL
		}
		if m.TransportURL.Unredacted() != py.TransportURL || m.ControlExchange != py.ControlExchange ||
			m.RPCResponseTimeout.Seconds() != float64(py.RPCResponseTimeout) || m.ExecutorThreadPoolSize != py.ExecutorThreadPoolSize ||
			m.RPCPingEnabled != py.RPCPingEnabled || !reflect.DeepEqual(m.Notifications.Drivers, pyDrivers) ||
			notifURL.Unredacted() != py.NotificationURL || !reflect.DeepEqual(m.Notifications.Topics, py.Topics) || retry != py.Retry {
			t.Errorf("%v: Go\n%s\nPython %+v", files, m, py)
		}

		for _, tc := range []struct {
			name string
			url  func() (URL, error)
			py   map[string]string
		}{{"RPC", m.RPCURL, py.RPCRabbit}, {"notification", m.NotificationURL, py.NotificationRabbit}} {
			u, err := tc.url()
			if err != nil {
				t.Fatal(err)
			}
			p, err := driver.ParseURL(u.Unredacted())
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range rabbitNames {
				o := schema.byKey[optName{GroupRabbit, name}]
				got, ok := p.Query[name]
				if !ok {
					got = o.def
				}
				if want := tc.py[name]; !sameOptionText(o, got, want) {
					t.Errorf("%v: %s URL: the driver gets %s = %q, oslo's %q", files, tc.name, name, got, tc.py[name])
				}
			}
		}
	}
}

// sameOptionText compares the text an option has in a Go URL query (or
// its default) with Python's str() of its value.
func sameOptionText(o *option, goText, pyText string) bool {
	switch o.kind {
	case kindBool:
		b, err := parseBool(goText)
		if err != nil {
			b = goText == "True"
		}
		return pyBool(b) == pyText
	case kindFloat:
		v, _, err := parseFloat(goText)
		return err == nil && pyFloat(v) == pyText
	case kindString:
		if goText == "" && pyText == "None" {
			return true
		}
	}
	return goText == pyText
}
