package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Levels of the [Log] sink beyond slog's four.
const (
	// LevelAudit is the level of audit notifications: oslo's historical
	// AUDIT level, just above info.
	LevelAudit = slog.LevelInfo + 1
	// LevelCritical is the level of critical notifications, above
	// error.
	LevelCritical = slog.LevelError + 4
)

// logBase is oslo's logger name prefix; the event type completes it.
const logBase = "oslo.messaging.notification."

type logSink struct{ l *slog.Logger }

// Log returns the sink that logs each notification on l: oslo's log
// driver. A nil l logs on the notifier's logger.
//
// Each notification is one record whose message is the notification as
// a JSON object (message_id, publisher_id, event_type, priority,
// payload, timestamp; the context is not logged), with the values of
// secret-looking keys ("password", "token", "secret", "auth_token",
// ... at any depth) and secrets inside strings ("password=x",
// "--password x", "<password>x</password>") replaced by "***", as
// oslo's mask_dict_password does. The record's "logger" attribute is
// oslo's logger name, "oslo.messaging.notification.<event_type>", and
// its level follows the priority: debug, info, warn and error map to
// slog's levels, audit to [LevelAudit], critical to [LevelCritical].
// Sample notifications are not logged, as in oslo. Send never fails.
func Log(l *slog.Logger) Sink { return logSink{l: l} }

var logLevels = map[Priority]slog.Level{
	PriorityAudit:    LevelAudit,
	PriorityDebug:    slog.LevelDebug,
	PriorityInfo:     slog.LevelInfo,
	PriorityWarn:     slog.LevelWarn,
	PriorityError:    slog.LevelError,
	PriorityCritical: LevelCritical,
}

// Send logs m.
func (s logSink) Send(ctx context.Context, m *Message) error {
	level, ok := logLevels[m.Priority]
	if !ok {
		return nil // sample
	}
	l := s.l
	if l == nil {
		l = m.Logger
	}
	if l == nil {
		l = slog.Default()
	}
	if !l.Enabled(ctx, level) {
		return nil
	}
	l.LogAttrs(ctx, level, maskedJSON(&m.Notification), slog.String("logger", logBase+m.EventType))
	return nil
}

// maskedJSON returns n as the JSON object oslo's log driver writes,
// with its secrets masked.
func maskedJSON(n *Notification) string {
	payload := any(nil)
	if len(n.Payload) > 0 {
		v, err := decodeOrdered(n.Payload)
		if err != nil {
			v = string(n.Payload) // not JSON: mask it as text
		}
		payload = v
	}
	msg := object{
		{"message_id", n.MessageID},
		{"publisher_id", n.PublisherID},
		{"event_type", n.EventType},
		{"priority", n.Priority.wire()},
		{"payload", payload},
		{"timestamp", n.Timestamp},
	}
	var b bytes.Buffer
	writeJSON(&b, maskValue("", msg))
	return b.String()
}

// object is a JSON object that keeps its keys in order.
type object []member

type member struct {
	key string
	val any // object, []any, string, json.Number, bool or nil
}

// decodeOrdered decodes one JSON value, keeping the order of object
// keys.
func decodeOrdered(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("notify: trailing data after JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				obj = append(obj, member{k, v})
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, errors.New("notify: unexpected JSON delimiter")
	default:
		return t, nil
	}
}

// writeJSON writes v in Python's json.dumps style: ", " and ": "
// separators, keys in their order.
func writeJSON(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case object:
		b.WriteByte('{')
		for i, m := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeString(b, m.key)
			b.WriteString(": ")
			writeJSON(b, m.val)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, x)
	case json.Number:
		b.WriteString(string(x))
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	default:
		b.WriteString("null")
	}
}

func writeString(b *bytes.Buffer, s string) {
	raw, _ := marshalJSON(s) // a string always encodes
	b.Write(raw)
}

// secretKeys are oslo's sanitize keys: a dictionary key containing one
// of them, in any case, has its value masked.
var secretKeys = []string{
	"adminpass", "admin_pass", "password", "admin_password", "auth_token",
	"new_pass", "auth_password", "secret_uuid", "secret", "sys_pswd",
	"token", "configdrive", "chappassword", "encrypted_key", "private_key",
	"fernetkey", "sslkey", "passphrase", "cephclusterfsid",
	"octaviaheartbeatkey", "rabbitcookie", "cephmanilaclientkey",
	"pacemakerremoteauthkey", "designaterndckey", "cephadminkey",
	"heatauthencryptionkey", "cephclientkey", "keystonecredential",
	"barbicansimplecryptokek", "cephrgwkey", "swifthashsuffix",
	"migrationsshkey", "cephmdskey", "cephmonkey",
}

const secretMask = "***"

func isSecret(key string) bool {
	key = strings.ToLower(key)
	for _, s := range secretKeys {
		if strings.Contains(key, s) {
			return true
		}
	}
	return false
}

// maskValue returns v with its secrets masked. key is the key v is
// found under, "" for none. As in oslo, an object under a secret key is
// masked member by member rather than as a whole; unlike oslo, the
// objects and strings inside arrays are masked too.
func maskValue(key string, v any) any {
	switch x := v.(type) {
	case object:
		out := make(object, len(x))
		for i, m := range x {
			out[i] = member{m.key, maskValue(m.key, m.val)}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(key, e)
		}
		return out
	}
	if key != "" && isSecret(key) {
		return secretMask
	}
	if s, ok := v.(string); ok {
		return maskString(s)
	}
	return v
}

// secretPatterns find secrets written inside text, such as
// "password=x", "'token': 'x'", "--password x" and
// "<password>x</password>". Each keeps its first group (and its second,
// when it has one) and replaces the rest of the match with the mask.
var secretPatterns = sync.OnceValue(func() []*regexp.Regexp {
	words := make([]string, len(secretKeys))
	for i, k := range secretKeys {
		words[i] = regexp.QuoteMeta(k)
	}
	key := `(?:` + strings.Join(words, "|") + `)[0-9]*`
	forms := []string{
		// 'key': 'value', "some_key" = "value"
		`(["'][^"']*` + key + `["']\s*[:=]\s*u?["'])[^"']*(["'])`,
		// key="value", key: 'value'
		`(` + key + `\s*[:=]\s*["'])[^"']*(["'])`,
		// key "value", --key 'value'
		`(` + key + `\s+["'])[^"']*(["'])`,
		// <key>value</key>
		`(<` + key + `>)[^<]*(</` + key + `>)`,
		// key=value
		`(` + key + `\s*=\s*)[^\s'"]+()`,
		// --key value
		`(--` + key + `\s+)[^\s'"=-][^\s'"=]*()`,
	}
	out := make([]*regexp.Regexp, len(forms))
	for i, f := range forms {
		out[i] = regexp.MustCompile(`(?is)` + f)
	}
	return out
})

// maskString masks the secrets written inside s.
func maskString(s string) string {
	lower := strings.ToLower(s)
	found := false
	for _, k := range secretKeys {
		if strings.Contains(lower, k) {
			found = true
			break
		}
	}
	if !found {
		return s
	}
	for _, re := range secretPatterns() {
		s = re.ReplaceAllString(s, "${1}"+secretMask+"${2}")
	}
	return s
}
