package config

import (
	"fmt"
	"strconv"

	"github.com/go-oslo/messaging/driver"
)

// URL is a transport URL from a configuration, a secret (oslo marks
// transport_url secret). Printing it with any fmt verb, String,
// GoString, or encoding it as text or JSON gives the redacted form,
// where every password is "***"; a URL that does not parse prints as
// "<invalid transport URL>", since any part of it may be a secret.
// Convert it with string(u), or call [URL.Unredacted], to hand it to
// messaging.Open.
type URL string

// invalidURL is what an unparsable URL prints as.
const invalidURL = "<invalid transport URL>"

// String returns the URL with its passwords replaced by "***". A URL
// without passwords is returned as written.
func (u URL) String() string {
	if u == "" {
		return ""
	}
	p, err := driver.ParseURL(string(u))
	if err != nil {
		return invalidURL
	}
	for _, h := range p.Hosts {
		if h.Password != "" {
			return p.String()
		}
	}
	return string(u)
}

// Unredacted returns the URL with its passwords: to open a transport,
// never to print.
func (u URL) Unredacted() string { return string(u) }

// Format implements fmt.Formatter: every verb prints the redacted form,
// quoted for %q and %#v.
func (u URL) Format(f fmt.State, verb rune) {
	if verb == 'q' || verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, strconv.Quote(u.String()))
		return
	}
	fmt.Fprint(f, u.String())
}

// GoString implements fmt.GoStringer with the quoted redacted form.
func (u URL) GoString() string { return strconv.Quote(u.String()) }

// MarshalText implements encoding.TextMarshaler with the redacted form,
// so that JSON and log encoders never write the passwords. There is
// deliberately no UnmarshalText: a URL decodes from JSON as a plain
// string.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }
