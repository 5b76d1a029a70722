package driver_test

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/pyinterop"
)

// parseURLScript parses every URL of the JSON list on stdin with oslo's
// TransportURL.parse and prints, for each, the error or the parsed
// parts. "normalized" is str() of the same URL with what this package
// does not distinguish mapped as it maps it: "" and 0 to None (see
// driver.URL) and the query sorted by key.
const parseURLScript = `
import json, sys
from oslo_config import cfg
cfg.CONF([], project='omsg-interop')
import oslo_messaging as om

def none_if_empty(v):
    return None if v == '' or (type(v) is int and v == 0) else v

out = []
for raw in json.load(sys.stdin):
    try:
        u = om.TransportURL.parse(cfg.CONF, raw)
    except Exception as e:
        out.append({'error': '%s.%s: %s' % (type(e).__module__, type(e).__name__, e)})
        continue
    norm = om.TransportURL(
        cfg.CONF, u.transport, u.virtual_host,
        [om.TransportHost(none_if_empty(h.hostname), none_if_empty(h.port),
                          none_if_empty(h.username), none_if_empty(h.password))
         for h in u.hosts],
        dict(sorted(u.query.items())))
    out.append({
        'transport': u.transport,
        'virtual_host': u.virtual_host,
        'hosts': [{'hostname': h.hostname,
                   'port': None if h.port is None else str(h.port),
                   'username': h.username,
                   'password': h.password} for h in u.hosts],
        'query': u.query,
        'str': str(u),
        'normalized': str(norm),
    })
json.dump(out, sys.stdout)
`

type pyHost struct {
	Hostname *string `json:"hostname"`
	Port     *string `json:"port"`
	Username *string `json:"username"`
	Password *string `json:"password"`
}

type pyURL struct {
	Error       string            `json:"error"`
	Transport   string            `json:"transport"`
	VirtualHost *string           `json:"virtual_host"`
	Hosts       []pyHost          `json:"hosts"`
	Query       map[string]string `json:"query"`
	Str         string            `json:"str"`
	Normalized  string            `json:"normalized"`
}

// stricterReason says why ParseURL may reject a URL that oslo accepts:
// ParseURL wants ports in 0..65535 written with ASCII digits, where oslo
// takes any Python integer. It returns "" when there is no such reason.
func stricterReason(raw string, py *pyURL) string {
	for _, h := range py.Hosts {
		if h.Port == nil {
			continue
		}
		if n, err := strconv.Atoi(*h.Port); err != nil || n < 0 || n > 65535 {
			return "port out of range"
		}
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r > unicode.MaxASCII && unicode.IsDigit(r) }) {
		return "non-ASCII digits"
	}
	return ""
}

// interopURLs are URLs beyond the table of TestParseURL.
var interopURLs = []string{
	"rabbit://h:٥٦٧٢",
	"rabbit://guest:guest@localhost:5672/",
	"rabbit://u:p@host1:10,u2:p2@host2:12/vh",
	"rabbit://user:p%40ss%2Fw%3Ard@[2001:db8::1]:5671/%2F?ssl=true&heartbeat=30",
	"rabbit://h?b=1&a=2&b=3",
	"rabbit://h/?a=1&a=&a=2",
	"rabbit://h/é%C3",
	"rabbit://h/%E2%82%AC%E2%82",
	"rabbit://h/%ED%A0%80",
	"rabbit://h/%F4%90%80%80",
	"rabbit://h/%C0%AF",
	"rabbit://h/%F0%9F%98",
	"rabbit://h:0/",
	"rabbit://@h:1,:@h2:2,u:@h3",
	"rabbit://[::]:1/",
	"rabbit://[1:2:3:4:5:6:7:8]/",
	"rabbit://[1:2:3:4:5:6:7::]/",
	"rabbit://[::1:2:3:4:5:6:7]/",
	"rabbit://[1:2:3:4:5:6:7:8:9]/",
	"rabbit://[::ffff:1.2.3.04]/",
	"rabbit://[12345::1]/",
	"rabbit://[fe80::1%a%b]/",
	"rabbit://[vF.anything:here]/",
	"rabbit://[V1.x]/",
	"rabbit://u@[::1]:1,[::2]/",
	"rabbit://[::1],[::2]/",
	"rabbit://ho st:1/v",
	"fake:",
	"memory://",
	"kombu+memory:////",
	"rabbit://h/v?",
	"rabbit://h/v?&&",
	"rabbit://h/v?k=%2B%20+",
}

// TestInteropParseURL parses URLs with the real oslo.messaging and with
// ParseURL and compares the results. The representations map as
// described on driver.URL: Python's None is "" (or 0 for a port), a port
// of 0 is 0. For str(), ParseURL's Unredacted is compared with the
// normalized form of Python's str() described in parseURLScript.
func TestInteropParseURL(t *testing.T) {
	var corpus []string
	for _, tc := range parseCases {
		if tc.raw == "" {
			continue // oslo then reads transport_url from its configuration
		}
		corpus = append(corpus, tc.raw)
	}
	corpus = append(corpus, interopURLs...)
	for _, tc := range secretURLs {
		corpus = append(corpus, tc.raw)
	}
	corpus = append(corpus, generatedURLs(3000)...)

	var results []pyURL
	pyinterop.RunJSON(t, parseURLScript, corpus, &results)
	if len(results) != len(corpus) {
		t.Fatalf("python returned %d results for %d URLs", len(results), len(corpus))
	}
	var accepted, rejected, stricter int
	defer func() {
		t.Logf("compared %d URLs: %d parsed by both, %d rejected by both, %d rejected by ParseURL only (documented)",
			len(corpus), accepted, rejected, stricter)
	}()
	for i, raw := range corpus {
		py := results[i]
		u, err := driver.ParseURL(raw)
		if py.Error != "" {
			if err == nil {
				t.Errorf("%q: oslo raises %s, ParseURL accepts it as %s", raw, py.Error, u.Unredacted())
			}
			rejected++
			continue
		}
		if err != nil && stricterReason(raw, &py) != "" {
			stricter++
			continue
		}
		if err != nil {
			t.Errorf("%q: oslo parses it as %s, ParseURL fails: %v", raw, py.Str, err)
			continue
		}
		accepted++
		compareURL(t, raw, u, &py)
	}
}

func compareURL(t *testing.T, raw string, u *driver.URL, py *pyURL) {
	t.Helper()
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if u.Scheme != py.Transport {
		t.Errorf("%q: Scheme = %q, oslo transport = %q", raw, u.Scheme, py.Transport)
	}
	if u.VirtualHost != str(py.VirtualHost) {
		t.Errorf("%q: VirtualHost = %q, oslo virtual_host = %q", raw, u.VirtualHost, str(py.VirtualHost))
	}
	if len(u.Hosts) != len(py.Hosts) {
		t.Errorf("%q: %d hosts, oslo has %d", raw, len(u.Hosts), len(py.Hosts))
	} else {
		for i, h := range u.Hosts {
			ph := py.Hosts[i]
			port := 0
			if ph.Port != nil {
				n, err := strconv.Atoi(*ph.Port)
				if err != nil {
					t.Errorf("%q: oslo port %q", raw, *ph.Port)
				}
				port = n
			}
			want := driver.Host{Hostname: str(ph.Hostname), Port: port, Username: str(ph.Username), Password: str(ph.Password)}
			if h != want {
				t.Errorf("%q: host %d = %s, oslo has %s", raw, i, dumpHost(h), dumpHost(want))
			}
		}
	}
	wantQuery := py.Query
	if len(wantQuery) == 0 {
		wantQuery = nil
	}
	if !maps.Equal(u.Query, wantQuery) || (u.Query == nil) != (wantQuery == nil) {
		t.Errorf("%q: Query = %q, oslo query = %q", raw, u.Query, py.Query)
	}
	if got := u.Unredacted(); got != py.Normalized {
		t.Errorf("%q: Unredacted() = %q, oslo str() = %q (normalized %q)", raw, got, py.Str, py.Normalized)
	}
}

func dumpHost(h driver.Host) string {
	return "{Hostname:" + strconv.Quote(h.Hostname) + " Port:" + strconv.Itoa(h.Port) +
		" Username:" + strconv.Quote(h.Username) + " Password:" + strconv.Quote(h.Password) + "}"
}

// generatedURLs returns n URLs assembled at random, with a fixed seed,
// from fragments that exercise the corners of the syntax.
func generatedURLs(n int) []string {
	pick := func(r *rand.Rand, xs []string) string { return xs[r.IntN(len(xs))] }
	schemes := []string{"rabbit", "kombu", "RaBbit", "http", "a+b.c-d", "1x", "", "rabbit "}
	seps := []string{"://", "://", "://", ":", ":/", ":///", " ://"}
	users := []string{"u", "", "u%24", "a@b", "ü", "%ff", "u+1", "%C3", "x y"}
	passwords := []string{"p", "", "p:q", "p%26", "%E2%9C%93", "p/x", "p#", "p?"}
	hostnames := []string{"h", "host1", "", "[::1]", "[v1.x]", "::1", "[fe80::1%25x]", "1.2.3.4", "[1.2.3.4]",
		"hôte", "h]", "[h", "h\u2100", "h\uff20", "[::ffff:1.2.3.4]", "[1::2::3]", "[::1]x", "h%41", "[", "]"}
	ports := []string{"5672", "0", "-0", " 5", "1_0", "65535", "65536", "x", "", "\u0661", "+1", "-1", "1:2", "0x1"}
	paths := []string{"", "/", "//", "/v", "/%2F", "/v;p", "/a;b/c;d", "/%ff", "/é%C3", "/a b", "/%", "/%2"}
	queries := []string{"", "?", "?a=1&a=2", "?a+b=c+d", "?a=&b", "?x=%E2%9C%93", "?=x", "?a=1;b=2", "?&&a=%ff"}
	fragments := []string{"", "#f", "#?a=1", "#/x"}

	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		b.WriteString(pick(r, schemes))
		b.WriteString(pick(r, seps))
		for h := range r.IntN(4) {
			if h > 0 {
				b.WriteString(pick(r, []string{",", ",", ",,"}))
			}
			if r.IntN(2) == 0 {
				b.WriteString(pick(r, users))
				if r.IntN(2) == 0 {
					b.WriteString(":" + pick(r, passwords))
				}
				b.WriteString("@")
			}
			b.WriteString(pick(r, hostnames))
			if r.IntN(2) == 0 {
				b.WriteString(":" + pick(r, ports))
			}
		}
		b.WriteString(pick(r, paths))
		b.WriteString(pick(r, queries))
		b.WriteString(pick(r, fragments))
		out[i] = b.String()
	}
	return out
}
