package config

import (
	"errors"
	"strconv"
)

var (
	// ErrInvalidValue is wrapped by the errors for option values that do
	// not convert to the option's type or are out of its range.
	ErrInvalidValue = errors.New("config: invalid value")
	// ErrUnknownOption is wrapped by the errors that [FromFile] returns
	// in [Strict] mode for unknown options.
	ErrUnknownOption = errors.New("config: unknown option")
	// ErrSubstitution is wrapped by the errors for "$name" references
	// that cannot be substituted: an unknown option or a loop.
	ErrSubstitution = errors.New("config: substitution failed")
)

// Location says where a value comes from: a line of a file, or an
// environment variable. The zero Location is a default value.
type Location struct {
	File string // the file as given to Load, "" for the environment
	Line int    // 1-based; 0 with File == ""
	Env  string // the environment variable, or ""
}

// String returns "file:line", "environment variable NAME" or "default".
func (l Location) String() string {
	switch {
	case l.Env != "":
		return "environment variable " + l.Env
	case l.File != "":
		return l.File + ":" + strconv.Itoa(l.Line)
	}
	return "default"
}

// ParseError reports a malformed line of a configuration file. Its
// message never quotes the line, which may hold a secret.
type ParseError struct {
	File string
	Line int
	Msg  string // what is wrong, such as "no ':' or '=' found in assignment"
}

func (e *ParseError) Error() string {
	return "config: " + e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// OptionError reports an option whose value is unusable: it does not
// convert to the option's type, is out of range, or has a "$name"
// reference that cannot be substituted. Err wraps [ErrInvalidValue] or
// [ErrSubstitution], or the error of a transport URL that does not
// parse. The value is quoted in the message only for options that are
// not secret.
type OptionError struct {
	Group    string
	Option   string
	Location Location
	Err      error
}

func (e *OptionError) Error() string {
	return "config: [" + e.Group + "] " + e.Option + " (" + e.Location.String() + "): " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *OptionError) Unwrap() error { return e.Err }
