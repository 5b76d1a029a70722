package oslocontext

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-oslo/messaging"
)

// printable returns the set fields and the Extra keys of rc, by their
// dictionary keys, for printing. The token is replaced by "***" here,
// and every other secret-looking key by messaging.Metadata's printing.
func (rc RequestContext) printable() messaging.Metadata {
	md := make(messaging.Metadata, len(rc.Extra)+16)
	for k, v := range rc.Extra {
		if !knownKeys[k] {
			md[k] = v
		}
	}
	for _, f := range stringFields {
		if v := *f.field(&rc); v != "" {
			md[f.read[0]] = v
		}
	}
	if rc.AuthToken != "" {
		md["auth_token"] = "***"
	}
	for _, f := range boolFields {
		if v := *f.field(&rc); v || f.missing {
			md[f.key] = v
		}
	}
	if len(rc.Roles) > 0 {
		md[keyRoles] = rc.Roles
	}
	return md
}

// String prints the fields that are set and the keys of Extra, sorted by
// key, with the token and every secret-looking key of Extra redacted:
//
//	RequestContext[auth_token:*** is_admin_project:true project_id:p1 request_id:req-… roles:[reader] user:u1]
func (rc RequestContext) String() string {
	return "RequestContext" + strings.TrimPrefix(rc.printable().String(), "map")
}

// Format implements fmt.Formatter, so that every verb, %#v and %+v
// included, prints the redacted form of [RequestContext.String].
func (rc RequestContext) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, rc.String()) }

// LogValue implements slog.LogValuer: a group of the request ids and the
// identity that are set, by their dictionary keys. The token and the
// keys of Extra are never logged.
func (rc RequestContext) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 12)
	for _, f := range stringFields {
		k := f.read[0]
		if v := *f.field(&rc); v != "" && k != "auth_token" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	if len(rc.Roles) > 0 {
		attrs = append(attrs, slog.Any(keyRoles, rc.Roles))
	}
	if rc.IsAdmin {
		attrs = append(attrs, slog.Bool("is_admin", true))
	}
	return slog.GroupValue(attrs...)
}
