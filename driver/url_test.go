package driver_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
)

// parseCases are the parsing cases: first every scenario of oslo's
// TestParseURL (tests/test_urls.py), then the edge cases of Python's
// urlparse and of oslo's host splitting. TestInteropParseURL runs the
// valid and invalid ones through the real library too.
var parseCases = []struct {
	name string
	raw  string
	want *driver.URL // nil: ParseURL must fail
}{
	// oslo's TestParseURL.
	{"transport", "foo:", &driver.URL{Scheme: "foo"}},
	{"virtual_host_slash", "foo:////", &driver.URL{Scheme: "foo", VirtualHost: "/"}},
	{"virtual_host", "foo:///bar", &driver.URL{Scheme: "foo", VirtualHost: "bar"}},
	{"host", "foo://host/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host"}}}},
	{"ipv6_host", "foo://[ffff::1]/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "ffff::1"}}}},
	{"port", "foo://host:1234/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host", Port: 1234}}}},
	{"ipv6_port", "foo://[ffff::1]:1234/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "ffff::1", Port: 1234}}}},
	{"username", "foo://u@host:1234/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host", Port: 1234, Username: "u"}}}},
	{"password", "foo://u:p@host:1234/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host", Port: 1234, Username: "u", Password: "p"}}}},
	{"creds_no_host", "foo://u:p@/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Username: "u", Password: "p"}}}},
	{"multi_host", "foo://u:p@host1:1234,host2:4321/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host1", Port: 1234, Username: "u", Password: "p"}, {Hostname: "host2", Port: 4321}}}},
	{"multi_host_partial_creds", "foo://u:p@host1,host2/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host1", Username: "u", Password: "p"}, {Hostname: "host2"}}}},
	{"multi_creds", "foo://u1:p1@host1:1234,u2:p2@host2:4321/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "host1", Port: 1234, Username: "u1", Password: "p1"}, {Hostname: "host2", Port: 4321, Username: "u2", Password: "p2"}}}},
	{"multi_creds_ipv6", "foo://u1:p1@[ffff::1]:1234,u2:p2@[ffff::2]:4321/bar", &driver.URL{Scheme: "foo", VirtualHost: "bar",
		Hosts: []driver.Host{{Hostname: "ffff::1", Port: 1234, Username: "u1", Password: "p1"}, {Hostname: "ffff::2", Port: 4321, Username: "u2", Password: "p2"}}}},
	{"quoting", "foo://u%24:p%26@host:1234/%24", &driver.URL{Scheme: "foo", VirtualHost: "$",
		Hosts: []driver.Host{{Hostname: "host", Port: 1234, Username: "u$", Password: "p&"}}}},

	// Paths: no path, "/" and "//".
	{"no path", "rabbit://h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"slash", "rabbit://h/", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"double slash", "rabbit://h//", &driver.URL{Scheme: "rabbit", VirtualHost: "/", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"escaped slash", "rabbit://h/%2F", &driver.URL{Scheme: "rabbit", VirtualHost: "/", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"nested path", "rabbit://h/a/b", &driver.URL{Scheme: "rabbit", VirtualHost: "a/b", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"empty", "rabbit://", &driver.URL{Scheme: "rabbit"}},
	{"empty slash", "rabbit:///", &driver.URL{Scheme: "rabbit"}},
	{"path without netloc", "rabbit:/v", &driver.URL{Scheme: "rabbit", VirtualHost: "v"}},
	{"opaque", "rabbit:v", &driver.URL{Scheme: "rabbit"}},
	{"fragment", "rabbit://h/v#frag?x=1", &driver.URL{Scheme: "rabbit", VirtualHost: "v", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"semicolon kept", "rabbit://h/v;p", &driver.URL{Scheme: "rabbit", VirtualHost: "v;p", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"params of http", "http://h/a;x/v;p", &driver.URL{Scheme: "http", VirtualHost: "a;x/v", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"trailing space kept", "rabbit://h/v ", &driver.URL{Scheme: "rabbit", VirtualHost: "v ", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"leading space stripped", " \x00\trabbit://h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"tabs and newlines removed", "rab\tbit://h\n1/v\r", &driver.URL{Scheme: "rabbit", VirtualHost: "v", Hosts: []driver.Host{{Hostname: "h1"}}}},
	{"scheme lower-cased", "RABBIT+X://H/V", &driver.URL{Scheme: "rabbit+x", VirtualHost: "V", Hosts: []driver.Host{{Hostname: "H"}}}},

	// Credentials.
	{"user only", "rabbit://u@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "u"}}}},
	{"password only", "rabbit://:p@h:1", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 1, Password: "p"}}}},
	{"empty user", "rabbit://@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"empty password", "rabbit://u:@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "u"}}}},
	{"at in user", "rabbit://a@b@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "a@b"}}}},
	{"colon in password", "rabbit://u:p:q@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "u", Password: "p:q"}}}},
	{"plus not a space", "rabbit://u+1:p+2@h", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "u+1", Password: "p+2"}}}},
	{"only at", "rabbit://@", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{}}}},
	{"utf-8 escapes", "rabbit://%C3%BC:%E2%9C%93@h/%F0%9F%98%80", &driver.URL{Scheme: "rabbit", VirtualHost: "😀",
		Hosts: []driver.Host{{Hostname: "h", Username: "ü", Password: "✓"}}}},
	{"invalid utf-8 escapes", "rabbit://h/%ff%E2%82x%C3", &driver.URL{Scheme: "rabbit", VirtualHost: "\uFFFD\uFFFDx\uFFFD",
		Hosts: []driver.Host{{Hostname: "h"}}}},
	{"invalid escape kept", "rabbit://u%2:p%zz@h/%", &driver.URL{Scheme: "rabbit", VirtualHost: "%",
		Hosts: []driver.Host{{Hostname: "h", Username: "u%2", Password: "p%zz"}}}},
	{"hostname not unescaped", "rabbit://h%41/", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h%41"}}}},

	// Hosts and ports.
	{"multi host", "kombu://h1,h2:5673/v?ssl=1", &driver.URL{Scheme: "kombu", VirtualHost: "v", Query: map[string]string{"ssl": "1"},
		Hosts: []driver.Host{{Hostname: "h1"}, {Hostname: "h2", Port: 5673}}}},
	{"empty entries", "rabbit://,h1,,h2,", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h1"}, {Hostname: "h2"}}}},
	{"empty port", "rabbit://h:", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"port only", "rabbit://:5672", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Port: 5672}}}},
	{"port zero", "rabbit://h:0", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"port max", "rabbit://h:65535", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 65535}}}},
	{"port spaces", "rabbit://h: 5672 ", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 5672}}}},
	{"port sign", "rabbit://h:+5672", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 5672}}}},
	{"port minus zero", "rabbit://h:-0", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"port underscore", "rabbit://h:5_672", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 5672}}}},
	{"port leading zeros", "rabbit://h:005672", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Port: 5672}}}},
	{"ipv6 empty port", "rabbit://[::1]:", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::1"}}}},
	{"ipv6 scope", "rabbit://[fe80::1%25eth0]:5672/", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "fe80::1%25eth0", Port: 5672}}}},
	{"ipv6 with ipv4 tail", "rabbit://[::ffff:10.0.0.1]:1", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::ffff:10.0.0.1", Port: 1}}}},
	{"ipv6 hosts", "rabbit://[::1]:5,[::2]:6", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::1", Port: 5}, {Hostname: "::2", Port: 6}}}},
	{"ipv6 then name", "rabbit://[::1]:5,h:6", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::1", Port: 5}, {Hostname: "h", Port: 6}}}},
	{"ipvfuture", "rabbit://[v1.x]:1,[::1]:2", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "v1.x", Port: 1}, {Hostname: "::1", Port: 2}}}},
	{"text after bracket of a later host", "rabbit://[::1]:1,[::2]abc", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::1", Port: 1}, {Hostname: "::2"}}}},
	{"non-ascii host", "rabbit://ü:ö@hôte/ä", &driver.URL{Scheme: "rabbit", VirtualHost: "ä", Hosts: []driver.Host{{Hostname: "hôte", Username: "ü", Password: "ö"}}}},

	// Query.
	{"query repeat", "rabbit://h?a=1&a=2", &driver.URL{Scheme: "rabbit", Query: map[string]string{"a": "1,2"}, Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query plus", "rabbit://h/?a+b=c+d%2B", &driver.URL{Scheme: "rabbit", Query: map[string]string{"a b": "c d+"}, Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query blank dropped", "rabbit://h/?a=&b&c=1&&=x", &driver.URL{Scheme: "rabbit", Query: map[string]string{"c": "1", "": "x"}, Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query only blanks", "rabbit://h/?a=&b", &driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query escapes", "rabbit://h/v?x=%E2%9C%93&y=a%3Db&x=%ff", &driver.URL{Scheme: "rabbit", VirtualHost: "v",
		Query: map[string]string{"x": "✓,\uFFFD", "y": "a=b"}, Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query semicolon", "rabbit://h/?a=1;b=2", &driver.URL{Scheme: "rabbit", Query: map[string]string{"a": "1;b=2"}, Hosts: []driver.Host{{Hostname: "h"}}}},
	{"query question mark", "rabbit://h?a=?", &driver.URL{Scheme: "rabbit", Query: map[string]string{"a": "?"}, Hosts: []driver.Host{{Hostname: "h"}}}},

	// Errors.
	{"empty string", "", nil},
	{"blank", " \t", nil},
	{"no scheme", "//h/v", nil},
	{"bad scheme", "1abc://h", nil},
	{"empty scheme", "://h", nil},
	{"port not a number", "rabbit://h:abc", nil},
	{"port hex", "rabbit://h:0x10", nil},
	{"port two colons", "rabbit://h:1:2", nil},
	{"bare ipv6", "rabbit://::1", nil},
	{"port negative", "rabbit://h:-1", nil},
	{"port too large", "rabbit://h:65536", nil},
	{"port huge", "rabbit://h:99999999999999999999999", nil},
	{"port double underscore", "rabbit://h:1__0", nil},
	{"port leading underscore", "rabbit://h:_1", nil},
	{"port non-ascii digits", "rabbit://h:５６７２", nil},
	{"ipv6 port garbage", "rabbit://[::1]:x", nil},
	{"ipv6 two ports", "rabbit://[::1]:1:2", nil},
	{"unbalanced open", "rabbit://[::1/v", nil},
	{"unbalanced close", "rabbit://h]/v", nil},
	{"unclosed later host", "rabbit://[::1]:1,[::2", nil},
	{"text after bracket", "rabbit://[::1]abc", nil},
	{"text before bracket", "rabbit://h1,[::1]:5", nil},
	{"ipv4 in brackets", "rabbit://[127.0.0.1]:5672", nil},
	{"not an address in brackets", "rabbit://[host]:5672", nil},
	{"bad ipv6", "rabbit://[1::2::3]", nil},
	{"bad scope", "rabbit://[fe80::1%]", nil},
	{"bad ipvfuture", "rabbit://[v1]", nil},
	{"name after last at", "rabbit://u@[::1]:5,v@h:6", nil},
	{"nfkc at", "rabbit://u\uFF20h", nil},
	{"nfkc account of", "rabbit://h\u2100", nil},
	{"nfkc colon", "rabbit://h\uFE55", nil},
}

func TestParseURL(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := driver.ParseURL(tc.raw)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %#v, want an error", tc.raw, got.Unredacted())
				}
				if !errors.Is(err, driver.ErrInvalidURL) {
					t.Errorf("ParseURL(%q) error %v does not wrap ErrInvalidURL", tc.raw, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.raw, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseURL(%q)\n got %s\nwant %s", tc.raw, dump(got), dump(tc.want))
			}
		})
	}
}

// dump shows every field of u, password included, for failure messages.
func dump(u *driver.URL) string {
	var hosts []string
	for _, h := range u.Hosts {
		hosts = append(hosts, fmt.Sprintf("{Hostname:%q Port:%d Username:%q Password:%q}", h.Hostname, h.Port, h.Username, h.Password))
	}
	return fmt.Sprintf("Scheme:%q VirtualHost:%q Hosts:[%s] Query:%q", u.Scheme, u.VirtualHost, strings.Join(hosts, " "), u.Query)
}

// TestFormatURL has oslo's TestFormatURL scenarios (str(TransportURL))
// and more formatting cases.
func TestFormatURL(t *testing.T) {
	cases := []struct {
		name       string
		url        driver.URL
		unredacted string
		redacted   string
	}{
		{"transport", driver.URL{Scheme: "testtransport"},
			"testtransport:///", "testtransport:///"},
		{"virtual_host", driver.URL{Scheme: "testtransport", VirtualHost: "/vhost"},
			"testtransport:////vhost", "testtransport:////vhost"},
		{"host", driver.URL{Scheme: "testtransport", VirtualHost: "/",
			Hosts: []driver.Host{{Hostname: "host", Port: 10, Username: "bob", Password: "secret"}}},
			"testtransport://bob:secret@host:10//", "testtransport://bob:***@host:10//"},
		{"multi_host", driver.URL{Scheme: "testtransport",
			Hosts: []driver.Host{
				{Hostname: "h1", Port: 1000, Username: "b1", Password: "s1"},
				{Hostname: "h2", Port: 2000, Username: "b2", Password: "s2"}}},
			"testtransport://b1:s1@h1:1000,b2:s2@h2:2000/", "testtransport://b1:***@h1:1000,b2:***@h2:2000/"},
		{"quoting", driver.URL{Scheme: "testtransport", VirtualHost: "/$",
			Hosts: []driver.Host{{Hostname: "host", Port: 10, Username: "b$", Password: "s&"}}},
			"testtransport://b%24:s%26@host:10//%24", "testtransport://b%24:***@host:10//%24"},

		{"ipv6", driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "::1", Port: 5672}}},
			"rabbit://[::1]:5672/", "rabbit://[::1]:5672/"},
		{"password only", driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Password: "p"}}},
			"rabbit://:p@h/", "rabbit://:***@h/"},
		{"user only", driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "u"}}},
			"rabbit://u@h/", "rabbit://u@h/"},
		{"credentials quoted", driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{Hostname: "h", Username: "a@b:c/ü~", Password: "p@ss:w/rd%"}}},
			"rabbit://a%40b%3Ac%2F%C3%BC~:p%40ss%3Aw%2Frd%25@h/", "rabbit://a%40b%3Ac%2F%C3%BC~:***@h/"},
		{"vhost quoted, slash kept", driver.URL{Scheme: "rabbit", VirtualHost: "a b/ü?#"},
			"rabbit:///a%20b/%C3%BC%3F%23", "rabbit:///a%20b/%C3%BC%3F%23"},
		{"query sorted and escaped", driver.URL{Scheme: "rabbit", Query: map[string]string{"b": "1,2", "a b": "x+y&z=é"}},
			"rabbit:///?a+b=x%2By%26z%3D%C3%A9&b=1%2C2", "rabbit:///?a+b=x%2By%26z%3D%C3%A9&b=1%2C2"},
		{"empty host entry", driver.URL{Scheme: "rabbit", Hosts: []driver.Host{{}, {Hostname: "h"}}},
			"rabbit://,h/", "rabbit://,h/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.url.Unredacted(); got != tc.unredacted {
				t.Errorf("Unredacted() = %q, want %q", got, tc.unredacted)
			}
			if got := tc.url.String(); got != tc.redacted {
				t.Errorf("String() = %q, want %q", got, tc.redacted)
			}
		})
	}
}

func TestNilURLString(t *testing.T) {
	var u *driver.URL
	if got := u.String(); got != "<nil>" {
		t.Errorf("nil String() = %q", got)
	}
	if got := fmt.Sprintf("%v|%+v|%#v|%s", u, u, u, u); got != "<nil>|<nil>|<nil>|<nil>" {
		t.Errorf("printing a nil *URL = %q", got)
	}
}

// TestParseURLRoundTrip checks that formatting a parsed URL and parsing
// it again gives the same URL, for every valid table case.
func TestParseURLRoundTrip(t *testing.T) {
	for _, tc := range parseCases {
		if tc.want == nil {
			continue
		}
		u, err := driver.ParseURL(tc.raw)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.raw, err)
		}
		checkRoundTrip(t, tc.raw, u)
	}
}

// checkRoundTrip checks that parsing u.Unredacted() gives u back, apart
// from what legitimately changes:
//   - hosts without hostname, port or credentials print as nothing and
//     so disappear (oslo skips empty host entries);
//   - when raw has brackets, Python's bracket checks, which look at the
//     whole network location, may reject the reformatted URL: an
//     IPvFuture host ("[v1.x]") is printed without its brackets, as oslo
//     prints it, and text that followed "]" in a later host is dropped.
func checkRoundTrip(t *testing.T, raw string, u *driver.URL) {
	t.Helper()
	s := u.Unredacted()
	v, err := driver.ParseURL(s)
	if err != nil {
		if strings.ContainsAny(raw, "[]") {
			return
		}
		t.Fatalf("ParseURL(%q) -> %q: reparse failed: %v", raw, s, err)
	}
	want := *u
	want.Hosts = slices.DeleteFunc(slices.Clone(u.Hosts), func(h driver.Host) bool { return h == driver.Host{} })
	if len(want.Hosts) == 0 {
		want.Hosts = nil
	}
	if v.Scheme != want.Scheme || v.VirtualHost != want.VirtualHost ||
		!slices.Equal(v.Hosts, want.Hosts) || !maps.Equal(v.Query, want.Query) {
		t.Fatalf("ParseURL(%q) -> %q -> reparsed\n got %s\nwant %s", raw, s, dump(v), dump(&want))
	}
	if again, want := v.Unredacted(), want.Unredacted(); again != want {
		t.Fatalf("formatting is not stable: %q -> %q, want %q", s, again, want)
	}
}

// secretURLs have distinctive passwords, some of which end up where
// ParseURL reports an error.
var secretURLs = []struct {
	raw       string
	passwords []string // the password as written and as unescaped
	valid     bool
}{
	{"rabbit://user:Pw-Zq8Xv1@host:5672/vh", []string{"Pw-Zq8Xv1"}, true},
	{"rabbit://u1:Pw-Alpha77@h1:5672,u2:Pw-Bravo88@h2:5673,h3/", []string{"Pw-Alpha77", "Pw-Bravo88"}, true},
	{"rabbit://:Pw-OnlyPass5@[::1]:5672", []string{"Pw-OnlyPass5"}, true},
	{"rabbit://user:Pw%2FSl%40sh9@host", []string{"Pw%2FSl%40sh9", "Pw/Sl@sh9"}, true},
	{"rabbit://user:Pw%C3%A9Accent3@host?opt=1", []string{"Pw%C3%A9Accent3", "PwéAccent3"}, true},
	// A "/" in the password ends the network location: the password is
	// then where the port should be.
	{"rabbit://user:PwSlash/x@host", []string{"PwSlash"}, false},
	{"rabbit://user:PwHash#x@host", []string{"PwHash"}, false},
	{"rabbit://user:PwBrack1@[::1", []string{"PwBrack1"}, false},
	{"rabbit://user:PwPort2@host:99999", []string{"PwPort2"}, false},
	{"rabbit://user:PwNfkc3@host\u2100", []string{"PwNfkc3"}, false},
	{"rabbit://user:PwFirst4@h1:1,user:PwSecond5@h2:x", []string{"PwFirst4", "PwSecond5"}, false},
	{"rabbit://user:PwV6Tail6@h,[::1]", []string{"PwV6Tail6"}, false},
}

func TestPasswordNeverPrinted(t *testing.T) {
	for _, tc := range secretURLs {
		u, err := driver.ParseURL(tc.raw)
		if !tc.valid {
			if err == nil {
				t.Errorf("ParseURL(%q) succeeded, want an error", tc.raw)
				continue
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%v %+v %#v %s %q", err, err, err, err, err)} {
				for _, pw := range tc.passwords {
					if strings.Contains(text, pw) {
						t.Errorf("ParseURL(%q) error shows the password: %s", tc.raw, text)
					}
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", tc.raw, err)
		}
		for _, text := range printed(u) {
			for _, pw := range tc.passwords {
				if strings.Contains(text, pw) {
					t.Errorf("printing %q shows the password: %s", tc.raw, text)
				}
			}
		}
		if !strings.Contains(u.Unredacted(), tc.passwords[0]) {
			t.Errorf("Unredacted() = %q lacks the password %q", u.Unredacted(), tc.passwords[0])
		}
	}
}

// printed returns every way a URL is commonly printed.
func printed(u *driver.URL) []string {
	out := []string{u.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out,
			fmt.Sprintf(verb, u),
			fmt.Sprintf(verb, *u),
			fmt.Sprintf(verb, u.Hosts),
			fmt.Sprintf(verb, []*driver.URL{u}),
			fmt.Sprintf(verb, struct{ U *driver.URL }{u}),
			fmt.Sprintf(verb, map[string]driver.URL{"u": *u}))
		for _, h := range u.Hosts {
			out = append(out, fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h), h.String(), h.GoString())
		}
	}
	return out
}

// withPasswords returns a deep copy of u whose non-empty passwords are
// replaced by pw.
func withPasswords(u *driver.URL, pw string) *driver.URL {
	c := *u
	c.Hosts = slices.Clone(u.Hosts)
	for i := range c.Hosts {
		if c.Hosts[i].Password != "" {
			c.Hosts[i].Password = pw
		}
	}
	return &c
}

func FuzzParseURL(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.raw)
	}
	for _, tc := range secretURLs {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := driver.ParseURL(raw)
		if err != nil {
			if !errors.Is(err, driver.ErrInvalidURL) {
				t.Fatalf("ParseURL(%q) error %v does not wrap ErrInvalidURL", raw, err)
			}
			return
		}
		// Printing must not depend on the passwords at all, and must not
		// contain one unless it also occurs in the other parts.
		other := withPasswords(u, "\x00other\x00")
		got, want := printed(u), printed(other)
		if !slices.Equal(got, want) {
			t.Fatalf("ParseURL(%q): printed form depends on the password:\n%q\n%q", raw, got, want)
		}
		// The direct statement of the property, for passwords that cannot
		// occur in String() by coincidence: not in the rest of the URL
		// and without the characters that redaction puts around "***".
		rest := withPasswords(u, "").Unredacted()
		for _, h := range u.Hosts {
			pw := h.Password
			if pw == "" || strings.Contains(rest, pw) || strings.ContainsAny(pw, ":*@,") {
				continue
			}
			if strings.Contains(u.String(), pw) {
				t.Fatalf("ParseURL(%q): String() %q shows the password %q", raw, u.String(), pw)
			}
		}
		checkRoundTrip(t, raw, u)
	})
}
