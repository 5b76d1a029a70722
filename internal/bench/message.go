package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The elements of the simulator's Message, in the order of its JSON
// array.
const (
	elemSeq = iota
	elemCargo
	elemClientTS
	elemServerTS
	elemReturnTS
	numElems
)

// errNotMessage is wrapped by the errors of parseMessage.
var errNotMessage = errors.New("bench: not a simulator message [seq, cargo, client_ts, server_ts, return_ts]")

// message is a simulator Message read from its JSON array, with the
// positions of the elements in the array's bytes so that a reply can
// be made by changing one element only.
type message struct {
	seq      int64
	size     int // characters of the cargo, as Python's len()
	clientTS float64
	serverTS float64
	elems    [numElems][2]int // start and end of each element
}

// parseMessage reads b, the JSON array [seq, cargo, client_ts,
// server_ts, return_ts]. It does not allocate for the messages our
// clients send (an integer, a string without escapes, numbers).
func parseMessage(b []byte) (message, error) {
	var m message
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return m, fmt.Errorf("%w: not a JSON array", errNotMessage)
	}
	i = skipSpace(b, i+1)
	n := 0
	for i < len(b) && b[i] != ']' {
		if n == numElems {
			return m, fmt.Errorf("%w: more than %d elements", errNotMessage, numElems)
		}
		end, err := skipValue(b, i)
		if err != nil {
			return m, err
		}
		m.elems[n] = [2]int{i, end}
		n++
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				return m, fmt.Errorf("%w: trailing comma", errNotMessage)
			}
		} else if i < len(b) && b[i] != ']' {
			return m, fmt.Errorf("%w: unexpected %q", errNotMessage, b[i])
		}
	}
	if i >= len(b) {
		return m, fmt.Errorf("%w: unterminated array", errNotMessage)
	}
	if n != numElems {
		return m, fmt.Errorf("%w: %d elements", errNotMessage, n)
	}
	if rest := skipSpace(b, i+1); rest != len(b) {
		return m, fmt.Errorf("%w: data after the array", errNotMessage)
	}

	elem := func(k int) []byte { return b[m.elems[k][0]:m.elems[k][1]] }
	var err error
	if m.seq, err = parseSeq(elem(elemSeq)); err != nil {
		return m, err
	}
	if m.size, err = cargoLen(elem(elemCargo)); err != nil {
		return m, err
	}
	if m.clientTS, err = parseTS("client_ts", elem(elemClientTS)); err != nil {
		return m, err
	}
	if m.serverTS, err = parseTS("server_ts", elem(elemServerTS)); err != nil {
		return m, err
	}
	return m, nil
}

// parseSeq reads the sequence number, an integer (a float is
// truncated).
func parseSeq(b []byte) (int64, error) {
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f > 1<<62 || f < -(1<<62) {
		return 0, fmt.Errorf("%w: seq %.40q is not an integer", errNotMessage, b)
	}
	return int64(f), nil
}

// parseTS reads a timestamp, a number.
func parseTS(name string, b []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %.40q is not a number", errNotMessage, name, b)
	}
	return v, nil
}

// cargoLen returns the number of characters of the JSON string b.
func cargoLen(b []byte) (int, error) {
	if len(b) < 2 || b[0] != '"' {
		return 0, fmt.Errorf("%w: the cargo is not a string", errNotMessage)
	}
	if bytes.IndexByte(b, '\\') < 0 {
		return utf8.RuneCount(b[1 : len(b)-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("%w: the cargo: %w", errNotMessage, err)
	}
	return utf8.RuneCountInString(s), nil
}

// withServerTS returns a copy of raw, the array m was read from, whose
// server_ts is ts.
func (m *message) withServerTS(raw []byte, ts float64) []byte {
	e := m.elems[elemServerTS]
	out := make([]byte, 0, len(raw)+24)
	out = append(out, raw[:e[0]]...)
	out = strconv.AppendFloat(out, ts, 'f', -1, 64)
	return append(out, raw[e[1]:]...)
}

// appendMessage appends the array [seq, cargo, clientTS, 0, 0] to dst;
// cargo is already encoded as a JSON string.
func appendMessage(dst []byte, seq int64, cargo []byte, clientTS float64) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, ',')
	dst = append(dst, cargo...)
	dst = append(dst, ',')
	dst = strconv.AppendFloat(dst, clientTS, 'f', -1, 64)
	return append(dst, ",0,0]"...)
}

// field returns the raw value of key in the JSON object b, and whether
// it is there. Keys are compared as written, escapes included.
func field(b []byte, key string) ([]byte, bool, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false, errors.New("bench: arguments are not a JSON object")
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		if b[i] != '"' {
			return nil, false, fmt.Errorf("bench: arguments: unexpected %q", b[i])
		}
		kend, err := skipString(b, i)
		if err != nil {
			return nil, false, err
		}
		k := b[i+1 : kend-1]
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return nil, false, errors.New("bench: arguments: missing colon")
		}
		i = skipSpace(b, i+1)
		vend, err := skipValue(b, i)
		if err != nil {
			return nil, false, err
		}
		if string(k) == key {
			return b[i:vend], true, nil
		}
		i = skipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i >= len(b) {
		return nil, false, errors.New("bench: arguments: unterminated object")
	}
	return nil, false, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the JSON string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string", errNotMessage)
}

// skipValue returns the end of the JSON value starting at b[i]. It
// finds the value's bounds without validating what they enclose.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: missing value", errNotMessage)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '[', '{':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated array or object", errNotMessage)
	case ',', ']', '}', ':':
		return 0, fmt.Errorf("%w: missing value", errNotMessage)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return j, nil
		}
		j++
	}
	return j, nil
}
