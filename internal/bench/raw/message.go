package raw

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// message is the simulator's Message: on the wire, the JSON array
// [seq, cargo, client_ts, server_ts, return_ts] and nothing else.
type message struct {
	Seq      int64
	Cargo    string
	ClientTS float64
	ServerTS float64
	ReturnTS float64
}

// encode returns the message's JSON array.
func (m *message) encode() ([]byte, error) {
	return json.Marshal([]any{m.Seq, m.Cargo, m.ClientTS, m.ServerTS, m.ReturnTS})
}

var errNotMessage = errors.New("raw: the body is not a [seq, cargo, client_ts, server_ts, return_ts] array")

// decodeMessage parses a message array. Python sends whole timestamps
// (the initial 0) as integers, which are accepted.
func decodeMessage(body []byte) (*message, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotMessage, err)
	}
	if len(a) != 5 {
		return nil, fmt.Errorf("%w: %d elements", errNotMessage, len(a))
	}
	m := &message{}
	for i, dst := range []any{&m.Seq, &m.Cargo, &m.ClientTS, &m.ServerTS, &m.ReturnTS} {
		if err := json.Unmarshal(a[i], dst); err != nil {
			return nil, fmt.Errorf("%w: element %d: %w", errNotMessage, i, err)
		}
	}
	return m, nil
}

// now returns the current time in float Unix seconds, as Python's
// time.time().
func now() float64 {
	return float64(time.Now().UnixNano()) / 1e9
}
