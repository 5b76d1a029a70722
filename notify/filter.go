package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
)

// Filter selects the notifications an endpoint receives: oslo's
// NotificationFilter. Each condition is a regular expression (Go's
// RE2 syntax) matched at the start of the value, as Python's re.match
// does: "^compute" and "compute" are the same condition, and
// "compute$" requires the whole value. A notification reaches the
// endpoint only if every condition holds. The zero Filter accepts
// everything.
//
// Keyed conditions (Context, Metadata, Payload) require the key to be
// present with a string value: a missing key, or a number, list, object
// or null, does not match, as in oslo.
type Filter struct {
	// PublisherID and EventType, when not empty, must match the
	// notification's publisher id and event type.
	PublisherID string
	EventType   string
	// Context maps request context keys (as received, before the
	// serializer) to expressions.
	Context map[string]string
	// Metadata maps oslo's metadata keys, "message_id" and "timestamp",
	// to expressions.
	Metadata map[string]string
	// Payload maps keys of the payload's top-level JSON object to
	// expressions. A payload that is not an object does not match.
	Payload map[string]string
}

// compiledFilter is a Filter with its expressions compiled. A nil
// *compiledFilter accepts everything.
type compiledFilter struct {
	publisherID, eventType     *regexp.Regexp
	context, metadata, payload map[string]*regexp.Regexp
}

// compile compiles f; it returns nil for the zero Filter.
func (f *Filter) compile() (*compiledFilter, error) {
	if f.PublisherID == "" && f.EventType == "" && len(f.Context) == 0 && len(f.Metadata) == 0 && len(f.Payload) == 0 {
		return nil, nil
	}
	c := &compiledFilter{}
	var err error
	if c.publisherID, err = compileMatch("PublisherID", f.PublisherID); err != nil {
		return nil, err
	}
	if c.eventType, err = compileMatch("EventType", f.EventType); err != nil {
		return nil, err
	}
	if c.context, err = compileMap("Context", f.Context); err != nil {
		return nil, err
	}
	if c.metadata, err = compileMap("Metadata", f.Metadata); err != nil {
		return nil, err
	}
	if c.payload, err = compileMap("Payload", f.Payload); err != nil {
		return nil, err
	}
	return c, nil
}

// compileMatch compiles expr to match at the start of a value; "" is no
// condition.
func compileMatch(field, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(`^(?:` + expr + `)`)
	if err != nil {
		return nil, fmt.Errorf("filter %s %q: %w", field, expr, err)
	}
	return re, nil
}

func compileMap(field string, m map[string]string) (map[string]*regexp.Regexp, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]*regexp.Regexp, len(m))
	for k, expr := range m {
		re, err := regexp.Compile(`^(?:` + expr + `)`)
		if err != nil {
			return nil, fmt.Errorf("filter %s[%q] %q: %w", field, k, expr, err)
		}
		out[k] = re
	}
	return out, nil
}

// filterInput is what a filter looks at; the payload object is decoded
// once, when a filter first needs it.
type filterInput struct {
	n          *Notification
	payload    map[string]json.RawMessage
	payloadErr bool // the payload is not a JSON object
	decoded    bool
}

func (in *filterInput) payloadObject() (map[string]json.RawMessage, bool) {
	if !in.decoded {
		in.decoded = true
		if err := json.Unmarshal(in.n.Payload, &in.payload); err != nil || in.payload == nil {
			in.payloadErr = true
		}
	}
	return in.payload, !in.payloadErr
}

// match reports whether the notification passes the filter. Empty
// strings stand for absent publisher ids, event types and metadata.
func (c *compiledFilter) match(in *filterInput) bool {
	if c == nil {
		return true
	}
	n := in.n
	if !matchString(c.publisherID, n.PublisherID) || !matchString(c.eventType, n.EventType) {
		return false
	}
	for k, re := range c.context {
		v, ok := n.Context[k]
		s, isString := v.(string)
		if !ok || !isString || !re.MatchString(s) {
			return false
		}
	}
	for k, re := range c.metadata {
		var s string
		switch k {
		case "message_id":
			s = n.MessageID
		case "timestamp":
			s = n.Timestamp
		}
		if !matchString(re, s) {
			return false
		}
	}
	if len(c.payload) > 0 {
		obj, ok := in.payloadObject()
		if !ok {
			return false
		}
		for k, re := range c.payload {
			var s string
			raw, ok := obj[k]
			raw = bytes.TrimSpace(raw)
			if !ok || len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil || !re.MatchString(s) {
				return false
			}
		}
	}
	return true
}

// matchString applies re to a value that is absent when empty.
func matchString(re *regexp.Regexp, s string) bool {
	if re == nil {
		return true
	}
	return s != "" && re.MatchString(s)
}
