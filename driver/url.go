package driver

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
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
//
// Where oslo distinguishes a missing part (None) from an empty one, URL
// does not: a missing virtual host, username, password or hostname is
// "", a missing port is 0, and a missing query is nil.
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
	// Hostname is the host as written (it is not percent-unescaped, as
	// in oslo); IPv6 addresses are unbracketed.
	Hostname string
	Port     int // 0 when absent (or written as 0)
	Username string
	Password string
}

// ParseURL parses a transport URL as oslo.messaging's TransportURL.parse
// does on Python 3.11: Python's urlparse (including its checks of
// bracketed hosts and of characters that NFKC normalization turns into
// URL delimiters), the network location split on ",", credentials split
// at the last "@" and then at the first ":", percent-unescaping of
// credentials, virtual host and query (invalid UTF-8 becomes U+FFFD), and
// hosts and ports split at the first ":" or after "[...]".
//
// It returns an error wrapping ErrInvalidURL wherever oslo raises, and in
// two more cases where oslo accepts what no broker could use: a port
// that is not a number in 0..65535 written with ASCII digits (oslo takes
// any Python integer), and an empty string (oslo then reads its
// configuration). Errors never contain the URL's credentials.
func ParseURL(raw string) (*URL, error) {
	raw = strings.TrimLeft(raw, c0ControlOrSpace)
	if strings.ContainsAny(raw, "\t\r\n") {
		raw = strings.NewReplacer("\t", "", "\r", "", "\n", "").Replace(raw)
	}

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
		if err := checkNetloc(netloc); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
		}
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	path, query, _ := strings.Cut(rest, "?")
	if usesParams[scheme] {
		path = trimParams(path)
	}
	if strings.HasPrefix(path, "/") {
		u.VirtualHost = unquote(path[1:])
	}
	u.Query = parseQuery(query)

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

// c0ControlOrSpace is what Python's urlsplit strips from the start of a
// URL.
const c0ControlOrSpace = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f "

// usesParams lists the schemes whose last path segment loses its
// ";params" in Python's urlparse.
var usesParams = map[string]bool{
	"ftp": true, "hdl": true, "prospero": true, "http": true, "imap": true,
	"https": true, "shttp": true, "rtsp": true, "rtspu": true, "sip": true,
	"sips": true, "mms": true, "sftp": true, "tel": true,
}

// trimParams removes ";params" from the last segment of path.
func trimParams(path string) string {
	start := strings.LastIndexByte(path, '/')
	if start < 0 {
		start = 0
	}
	if j := strings.IndexByte(path[start:], ';'); j >= 0 {
		return path[:start+j]
	}
	return path
}

// splitScheme mirrors urllib.parse.urlsplit: a scheme is an ASCII letter
// followed by letters, digits, "+", "-" or ".", ending at the first ":".
func splitScheme(raw string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(raw, ':')
	if i <= 0 {
		return "", raw, false
	}
	if c := raw[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
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

// checkNetloc applies the validity checks of Python's urlsplit to the
// whole network location (all hosts at once, as Python does).
func checkNetloc(netloc string) error {
	open, closed := strings.Contains(netloc, "["), strings.Contains(netloc, "]")
	if open != closed {
		return errors.New("invalid IPv6 URL: unbalanced brackets")
	}
	if open {
		// Python looks at the text after the last "@" only: the first
		// host there may be bracketed, and whatever sits where the
		// hostname would be must be an IPv6 address or IPvFuture.
		hostport := netloc[strings.LastIndexByte(netloc, '@')+1:]
		var hostname string
		if before, inside, found := strings.Cut(hostport, "["); found {
			if before != "" {
				return errors.New("invalid IPv6 URL: text before '['")
			}
			var port string
			hostname, port, _ = strings.Cut(inside, "]")
			if port != "" && port[0] != ':' {
				return errors.New("invalid IPv6 URL: text after ']'")
			}
		} else {
			hostname, _, _ = strings.Cut(hostport, ":")
		}
		if !validBracketedHost(hostname) {
			return errors.New("invalid IPv6 URL: bracketed host is not an IPv6 address")
		}
	}
	for _, r := range netloc {
		if r >= utf8.RuneSelf && nfkcDelimiter(r) {
			return errors.New("network location contains invalid characters under NFKC normalization")
		}
	}
	return nil
}

// nfkcDelimiter reports whether NFKC normalization turns r into text
// containing one of "/?#@:" (Python's urlsplit rejects such a netloc).
func nfkcDelimiter(r rune) bool {
	switch r {
	case 0x2047, 0x2048, 0x2049, // ⁇ ⁈ ⁉
		0x2100, 0x2101, 0x2105, 0x2106, // ℀ ℁ ℅ ℆
		0x2A74,         // ⩴
		0xFE13, 0xFE16, // vertical colon and question mark
		0xFE55, 0xFE56, 0xFE5F, 0xFE6B, // small colon, question mark, number sign, at
		0xFF03, 0xFF0F, 0xFF1A, 0xFF1F, 0xFF20: // fullwidth # / : ? @
		return true
	}
	return false
}

// validBracketedHost accepts what Python allows between brackets: an
// IPvFuture ("v" hex "." anything) or an IPv6 address as the ipaddress
// module parses it.
func validBracketedHost(s string) bool {
	if rest, ok := strings.CutPrefix(s, "v"); ok {
		n := 0
		for n < len(rest) && isHex(rest[n]) {
			n++
		}
		return n > 0 && len(rest) > n+1 && rest[n] == '.'
	}
	return validIPv6(s)
}

// validIPv6 follows Python's ipaddress.IPv6Address parsing: an optional
// non-empty "%scope" without further "%", hextets of at most four hex
// digits, at most one "::", and an optional dotted IPv4 tail.
func validIPv6(s string) bool {
	if addr, scope, found := strings.Cut(s, "%"); found {
		if scope == "" || strings.Contains(scope, "%") {
			return false
		}
		s = addr
	}
	if s == "" {
		return false
	}
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return false
	}
	if last := parts[len(parts)-1]; strings.Contains(last, ".") {
		if !validIPv4(last) {
			return false
		}
		parts = append(parts[:len(parts)-1], "0", "0") // two hextets
	}
	if len(parts) > 9 {
		return false
	}
	skip := -1
	for i := 1; i < len(parts)-1; i++ {
		if parts[i] == "" {
			if skip >= 0 {
				return false
			}
			skip = i
		}
	}
	if skip >= 0 {
		hi, lo := skip, len(parts)-skip-1
		if parts[0] == "" {
			hi--
			if hi != 0 {
				return false
			}
		}
		if parts[len(parts)-1] == "" {
			lo--
			if lo != 0 {
				return false
			}
		}
		if 8-(hi+lo) < 1 {
			return false
		}
	} else if len(parts) != 8 || parts[0] == "" || parts[len(parts)-1] == "" {
		return false
	}
	for i, p := range parts {
		if p == "" && (i == skip || (skip >= 0 && (i == 0 || i == len(parts)-1))) {
			continue
		}
		if p == "" || len(p) > 4 {
			return false
		}
		for j := 0; j < len(p); j++ {
			if !isHex(p[j]) {
				return false
			}
		}
	}
	return true
}

// validIPv4 follows Python's ipaddress.IPv4Address: four decimal octets
// up to 255 without leading zeros.
func validIPv4(s string) bool {
	octets := strings.Split(s, ".")
	if len(octets) != 4 {
		return false
	}
	for _, o := range octets {
		if o == "" || len(o) > 3 || (len(o) > 1 && o[0] == '0') {
			return false
		}
		n := 0
		for j := 0; j < len(o); j++ {
			if o[j] < '0' || o[j] > '9' {
				return false
			}
			n = n*10 + int(o[j]-'0')
		}
		if n > 255 {
			return false
		}
	}
	return true
}

// parseHost parses one comma-separated entry of the network location as
// oslo does: credentials before the last "@", then "[host]..." with the
// port after the first ":" following "]", or "host:port" split at the
// first ":". The hostname is not unescaped.
func parseHost(entry string) (Host, error) {
	var h Host
	hostname := entry
	if at := strings.LastIndexByte(entry, '@'); at >= 0 {
		hostname = entry[at+1:]
		user, pass, hasPass := strings.Cut(entry[:at], ":")
		h.Username = unquote(user)
		if hasPass {
			h.Password = unquote(pass)
		}
	}
	var port string
	switch {
	case hostname == "":
	case hostname[0] == '[':
		end := strings.IndexByte(hostname, ']')
		if end < 0 {
			return h, errors.New("invalid IPv6 URL: unbalanced brackets")
		}
		_, port, _ = strings.Cut(hostname[end:], ":")
		hostname = hostname[1:end]
	default:
		hostname, port, _ = strings.Cut(hostname, ":")
	}
	h.Hostname = hostname
	if port != "" {
		n, ok := parsePort(port)
		if !ok {
			// The port text is not quoted: a misplaced "/" or "@" can
			// put a password there.
			return h, errors.New("port is not a number in 0..65535")
		}
		h.Port = n
	}
	return h, nil
}

// parsePort accepts what Python's int() accepts, restricted to ASCII:
// surrounding whitespace, a sign, and decimal digits with single "_"
// between them; the value must be in 0..65535.
func parsePort(s string) (int, bool) {
	s = strings.Trim(s, " \t\n\v\f\r\x1c\x1d\x1e\x1f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			continue
		case c < '0' || c > '9':
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, false
		}
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}

// parseQuery follows urllib.parse.parse_qs: pairs split on "&", pairs
// without "=" or with an empty value dropped, "+" is a space, repeated
// keys are joined with ",".
func parseQuery(q string) map[string]string {
	var out map[string]string
	for pair := range strings.SplitSeq(q, "&") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || v == "" {
			continue
		}
		k = unquote(strings.ReplaceAll(k, "+", " "))
		v = unquote(strings.ReplaceAll(v, "+", " "))
		if out == nil {
			out = make(map[string]string)
		}
		if prev, dup := out[k]; dup {
			out[k] = prev + "," + v
		} else {
			out[k] = v
		}
	}
	return out
}

// unquote is urllib.parse.unquote: "%XX" escapes are decoded, invalid
// escapes are kept as written, and the result is decoded as UTF-8 with
// each maximal invalid subsequence replaced by U+FFFD, as Python's
// errors="replace" does.
func unquote(s string) string {
	if !strings.Contains(s, "%") {
		return toValidUTF8(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return toValidUTF8(string(b))
}

// toValidUTF8 replaces invalid UTF-8 as Python's decoder does with
// errors="replace": one U+FFFD for each maximal subpart of an
// ill-formed sequence (a valid lead byte followed by valid continuation
// bytes that end too early counts once).
func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		b.WriteRune(utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return b.String()
}

// maximalSubpart returns the length of the ill-formed sequence at the
// start of s that Unicode's "maximal subpart" practice replaces with a
// single U+FFFD.
func maximalSubpart(s string) int {
	c := s[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	switch {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case 0xE1 <= c && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case 0xF1 <= c && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(s); n++ {
		if s[n] < lo || s[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}

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
//
// It is what oslo's str(TransportURL) returns for the same URL, except
// that query keys are sorted (oslo keeps their order of appearance), an
// empty username or password is left out as oslo does only for a missing
// one, and port 0 is not written.
func (u *URL) Unredacted() string { return u.format(false) }

// Format implements fmt.Formatter so that every verb, %v, %+v and %#v
// included, prints the redacted form, for URL and *URL alike.
func (u URL) Format(f fmt.State, verb rune) { fmt.Fprint(f, u.format(true)) }

// GoString implements fmt.GoStringer with the redacted form.
func (u URL) GoString() string { return u.format(true) }

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
		var q strings.Builder
		for _, k := range keys {
			if q.Len() > 0 {
				q.WriteByte('&')
			}
			q.WriteString(url.QueryEscape(k))
			q.WriteByte('=')
			q.WriteString(url.QueryEscape(u.Query[k]))
		}
		s += "?" + q.String()
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
