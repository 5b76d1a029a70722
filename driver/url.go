package driver

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidURL is wrapped by every error that [ParseURL] returns.
var ErrInvalidURL = errors.New("messaging: invalid transport URL")

// redacted replaces passwords wherever a URL is printed.
const redacted = "***"

// URL is a parsed transport URL in oslo.messaging's form:
//
//	transport://[user:pass@]host:port[,[user2:pass2@]host2:port2]/virtual_host?query
//
// Printing a URL or a Host with any fmt verb, or with String, never shows
// a password.
type URL struct {
	// Scheme is the transport name as written, lower-cased: "rabbit",
	// "kombu", "memory", "rabbit+custom". The driver is chosen by the
	// part before the first "+".
	Scheme string
	// Hosts are the brokers, in the order given. Empty host entries are
	// skipped, as oslo does.
	Hosts []Host
	// VirtualHost is the unescaped path after the first "/": "" for
	// "rabbit://h/" and for "rabbit://h", "/" for "rabbit://h//".
	VirtualHost string
	// Query holds the query options; repeated keys are joined with ",",
	// as oslo does. Keys with empty values are dropped.
	Query map[string]string
}

// Host is one broker address of a URL.
type Host struct {
	Hostname string // unbracketed; IPv6 addresses have no "[]"
	Port     int    // 0 when absent
	Username string
	Password string
}

// ParseURL parses a transport URL as oslo.messaging's TransportURL.parse
// does (urlparse, netloc split on ",", credentials split at the last "@"
// and the first ":", percent-unescaping, IPv6 in brackets). It returns
// an error wrapping ErrInvalidURL for a URL without a scheme, with
// unbalanced brackets or with a port that is not a number in 0..65535.
// Errors never contain the password.
func ParseURL(raw string) (*URL, error) {
	raw = strings.TrimLeft(raw, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	raw = strings.TrimRight(raw, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	raw = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(raw)

	scheme, rest, ok := splitScheme(raw)
	if !ok {
		return nil, fmt.Errorf("%w: no scheme specified", ErrInvalidURL)
	}
	u := &URL{Scheme: scheme}

	var netloc string
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		netloc, rest = rest[:end], rest[end:]
		if strings.Contains(netloc, "[") != strings.Contains(netloc, "]") {
			return nil, fmt.Errorf("%w: invalid IPv6 address: unbalanced brackets", ErrInvalidURL)
		}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	path, query, _ := strings.Cut(rest, "?")
	// urlparse moves ";params" of the last path segment out of the path.
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		if j := strings.IndexByte(path[i:], ';'); j >= 0 {
			path = path[:i+j]
		}
	} else if j := strings.IndexByte(path, ';'); j >= 0 {
		path = path[:j]
	}
	if strings.HasPrefix(path, "/") {
		u.VirtualHost = unquote(path[1:])
	}

	if query != "" {
		q, err := parseQuery(query)
		if err != nil {
			return nil, err
		}
		u.Query = q
	}

	for i, entry := range strings.Split(netloc, ",") {
		if entry == "" {
			continue
		}
		h, err := parseHost(entry)
		if err != nil {
			return nil, fmt.Errorf("%w: host %d: %w", ErrInvalidURL, i+1, err)
		}
		u.Hosts = append(u.Hosts, h)
	}
	return u, nil
}

// splitScheme mirrors urllib.parse.urlsplit: a scheme is a letter followed
// by letters, digits, "+", "-" or ".", ending at the first ":".
func splitScheme(raw string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(raw, ':')
	if i <= 0 {
		return "", raw, false
	}
	c := raw[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return "", raw, false
	}
	for j := 1; j < i; j++ {
		c := raw[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			return "", raw, false
		}
	}
	return strings.ToLower(raw[:i]), raw[i+1:], true
}

func parseHost(entry string) (Host, error) {
	var h Host
	hostport := entry
	if at := strings.LastIndexByte(entry, '@'); at >= 0 {
		creds := entry[:at]
		hostport = entry[at+1:]
		user, pass, hasPass := strings.Cut(creds, ":")
		h.Username = unquote(user)
		if hasPass {
			h.Password = unquote(pass)
		}
	}
	if hostport == "" {
		return h, nil
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return h, err
	}
	h.Hostname, h.Port = host, port
	return h, nil
}

// splitHostPort follows oslo_utils.netutils.parse_host_port.
func splitHostPort(s string) (string, int, error) {
	var host, port string
	switch {
	case strings.HasPrefix(s, "["):
		inner, after, ok := strings.Cut(s[1:], "]")
		if !ok || strings.Contains(after, "]") {
			return "", 0, errors.New("invalid IPv6 address")
		}
		host = inner
		if _, p, ok := strings.Cut(after, ":"); ok {
			// netutils takes the text after the first ":"; a second ":"
			// makes the port invalid.
			port = p
			if strings.Contains(p, ":") {
				return "", 0, fmt.Errorf("invalid port %q", p)
			}
		}
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	default:
		host = s // no colon: a name or IPv4; several: bare IPv6
	}
	if port == "" && !strings.HasSuffix(s, ":") {
		return host, 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(port))
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", port)
	}
	return host, n, nil
}

// parseQuery follows urllib.parse.parse_qs: "+" is a space, blank values
// are dropped, repeated keys are joined with ",".
func parseQuery(q string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' }) {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			continue // parse_qs drops "key" without "=" unless keep_blank_values
		}
		k = unquotePlus(k)
		v = unquotePlus(v)
		if v == "" {
			continue
		}
		if prev, dup := out[k]; dup {
			out[k] = prev + "," + v
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// unquote is urllib.parse.unquote: invalid escapes are kept as written.
func unquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unquotePlus(s string) string { return unquote(strings.ReplaceAll(s, "+", " ")) }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// quote is urllib.parse.quote(s, safe): every byte but ASCII letters,
// digits, "_.-~" and those in safe is percent-escaped.
func quote(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '-' || c == '~' || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// String returns the URL in oslo's form, with every password replaced by
// "***".
func (u *URL) String() string { return u.format(true) }

// Unredacted returns the URL in oslo's form, passwords included. Use it
// only to hand the URL to code that needs the secret, never to log it.
func (u *URL) Unredacted() string { return u.format(false) }

// Format implements fmt.Formatter so that every verb, %v, %+v and %#v
// included, prints the redacted form.
func (u *URL) Format(f fmt.State, verb rune) { fmt.Fprint(f, u.String()) }

// GoString implements fmt.GoStringer with the redacted form.
func (u *URL) GoString() string { return u.String() }

func (u *URL) format(redact bool) string {
	if u == nil {
		return "<nil>"
	}
	locs := make([]string, len(u.Hosts))
	for i, h := range u.Hosts {
		locs[i] = h.format(redact)
	}
	s := u.Scheme + "://" + strings.Join(locs, ",") + "/"
	if u.VirtualHost != "" {
		s += quote(u.VirtualHost, "/")
	}
	if len(u.Query) > 0 {
		keys := make([]string, 0, len(u.Query))
		for k := range u.Query {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		v := url.Values{}
		for _, k := range keys {
			v.Set(k, u.Query[k])
		}
		s += "?" + v.Encode()
	}
	return s
}

// String returns the host as user:***@host:port.
func (h Host) String() string { return h.format(true) }

// Format implements fmt.Formatter with the redacted form.
func (h Host) Format(f fmt.State, verb rune) { fmt.Fprint(f, h.String()) }

// GoString implements fmt.GoStringer with the redacted form.
func (h Host) GoString() string { return h.String() }

func (h Host) format(redact bool) string {
	var s string
	if h.Username != "" || h.Password != "" {
		s = quote(h.Username, "")
		if h.Password != "" {
			if redact {
				s += ":" + redacted
			} else {
				s += ":" + quote(h.Password, "")
			}
		}
		s += "@"
	}
	if strings.Contains(h.Hostname, ":") {
		s += "[" + h.Hostname + "]"
	} else {
		s += h.Hostname
	}
	if h.Port != 0 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}
