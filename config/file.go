package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File is the merged content of configuration files and of the
// environment, read as oslo.config reads them. It knows nothing of the
// options it holds, except those of oslo.messaging (see [FromFile]):
// its accessors convert values on demand, with oslo.config's rules.
//
// Where several sources set an option, the first of these wins:
//
//  1. the environment variable named by [EnvName], such as
//     OS_DEFAULT__TRANSPORT_URL;
//  2. the last file that sets it (files are read in the order given;
//     within a file the last occurrence of a key wins);
//  3. the accessor's default.
//
// Multi-valued options ([File.MultiStr]) take the values of every file
// instead, in order, unless the environment sets them.
//
// For the options of oslo.messaging, the accessors also look under the
// older names that oslo.config still reads, such as [DEFAULT]
// notification_driver for [oslo_messaging_notifications] driver; a
// value under the current name wins over one under an older name in the
// same file, but a later file wins over both.
//
// A File is immutable and safe for concurrent use. Printing it shows
// the names of its files only, never values.
type File struct {
	docs []*document
	env  map[string]string // the OS_* variables
}

// LoadOption configures [Load], [Parse] and [Sources.Load].
type LoadOption func(*loadOptions)

type loadOptions struct {
	env    []string
	envSet bool
}

// WithEnviron sets the environment read for overrides, as a list of
// "KEY=value" strings like os.Environ's; nil means no environment.
// Default: os.Environ() at the time of the load, as oslo.config reads
// the process environment.
func WithEnviron(env []string) LoadOption {
	return func(o *loadOptions) { o.env, o.envSet = env, true }
}

func newFile(opts []LoadOption) *File {
	lo := loadOptions{}
	for _, o := range opts {
		o(&lo)
	}
	if !lo.envSet {
		lo.env = os.Environ()
	}
	f := &File{env: map[string]string{}}
	for _, kv := range lo.env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "OS_") && strings.Contains(k, "__") {
			f.env[k] = v // the last of duplicates wins, as in os/exec
		}
	}
	return f
}

// Load reads the configuration files, then the "*.conf" files of each
// directory in dirs, as oslo.config reads --config-file and
// --config-dir arguments given in that order: values of later files
// win, a directory's files are read in the sorted order of their names,
// and hidden files (names starting with ".") are skipped. A leading "~"
// in a path is the home directory. A missing file or directory is an
// error, as in oslo.config. Use [Sources] (see [RegisterFlags]) to keep
// the command-line order of mixed --config-file and --config-dir
// arguments.
//
// Parse errors are *[ParseError] values, naming the file and line.
// With no files and no directories, Load returns a File that holds
// only the environment.
func Load(files, dirs []string, opts ...LoadOption) (*File, error) {
	var s Sources
	for _, p := range files {
		s.AddFile(p)
	}
	for _, d := range dirs {
		s.AddDir(d)
	}
	return s.Load(opts...)
}

// Parse parses one configuration file held in memory; name is used in
// locations and errors.
func Parse(name string, data []byte, opts ...LoadOption) (*File, error) {
	f := newFile(opts)
	doc, err := parseDocument(name, data)
	if err != nil {
		return nil, err
	}
	f.docs = append(f.docs, doc)
	return f, nil
}

func (f *File) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	doc, err := parseDocument(path, data)
	if err != nil {
		return err
	}
	f.docs = append(f.docs, doc)
	return nil
}

func (f *File) readDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("config: config directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("config: config directory %s: not a directory", dir)
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".conf") {
			continue
		}
		if err := f.readFile(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// expandHome replaces a leading "~" or "~/" with the home directory.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return home + p[1:]
}

// Files returns the files read, in order.
func (f *File) Files() []string {
	out := make([]string, len(f.docs))
	for i, d := range f.docs {
		out[i] = d.name
	}
	return out
}

// Groups returns the groups that the files have sections for, sorted,
// with the names as they are looked up: lower-cased, except DEFAULT.
func (f *File) Groups() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range f.docs {
		for _, s := range d.order {
			if !seen[s.group] {
				seen[s.group] = true
				out = append(out, s.group)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Options returns the options that the files set in group, sorted.
func (f *File) Options(group string) []string {
	g := normalizeGroup(group)
	seen := map[string]bool{}
	var out []string
	for _, d := range f.docs {
		if s := d.sections[g]; s != nil {
			for _, k := range s.keys {
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// EnvName returns the environment variable that overrides an option,
// as oslo.config's environment source names it: "OS_", the group in
// upper case, "__", the option in upper case. For example
// EnvName("oslo_messaging_rabbit", "amqp_durable_queues") is
// "OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUES", and an empty group
// is DEFAULT.
func EnvName(group, option string) string {
	if group == "" {
		group = GroupDefault
	}
	return "OS_" + strings.ToUpper(group) + "__" + strings.ToUpper(option)
}

// rawValue is a value as written, with its place.
type rawValue struct {
	text string
	loc  Location
}

// find returns the value of an option: the environment variable of its
// current name, else the last value in the newest file under any of its
// names (in each file, the first name found wins).
func (f *File) find(names []optName) (rawValue, bool) {
	if v, ok := f.envValue(names[0]); ok {
		return v, true
	}
	for i := len(f.docs) - 1; i >= 0; i-- {
		for _, n := range names {
			if vals := f.docs[i].values(n); len(vals) > 0 {
				e := vals[len(vals)-1]
				return rawValue{e.text, Location{File: f.docs[i].name, Line: e.line}}, true
			}
		}
	}
	return rawValue{}, false
}

// findAll returns the values of a multi-valued option: from the
// environment, a comma-separated list; else the values of every file,
// oldest first, and in each file those under older names first, as
// oslo.config orders them.
func (f *File) findAll(names []optName) ([]rawValue, bool) {
	if v, ok := f.envValue(names[0]); ok {
		var out []rawValue
		for _, it := range parseList(v.text) {
			out = append(out, rawValue{it, v.loc})
		}
		return out, true
	}
	var out []rawValue
	found := false
	for _, d := range f.docs {
		for i := len(names) - 1; i >= 0; i-- {
			for _, e := range d.values(names[i]) {
				out = append(out, rawValue{e.text, Location{File: d.name, Line: e.line}})
				found = true
			}
		}
	}
	return out, found
}

func (f *File) envValue(n optName) (rawValue, bool) {
	name := EnvName(n.group, n.name)
	v, ok := f.env[name]
	return rawValue{v, Location{Env: name}}, ok
}

// IsSet reports whether the environment or a file sets the option.
func (f *File) IsSet(group, option string) bool {
	_, ok := f.find(schema.names(group, option))
	return ok
}

// Location returns where the option's value comes from, and false if
// nothing sets it. For a multi-valued option set in files, it is the
// place of the first value.
func (f *File) Location(group, option string) (Location, bool) {
	names := schema.names(group, option)
	if o := schema.byKey[names[0]]; o != nil && o.kind == kindMulti {
		vals, ok := f.findAll(names)
		if !ok || len(vals) == 0 {
			return Location{}, ok
		}
		return vals[0].loc, true
	}
	v, ok := f.find(names)
	return v.loc, ok
}

// resolve returns the option's value with "$name" references
// substituted.
func (f *File) resolve(group, option string) (string, Location, bool, error) {
	names := schema.names(group, option)
	v, ok := f.find(names)
	if !ok {
		return "", Location{}, false, nil
	}
	s, err := f.substitute(v.text, names[0].group, []optName{names[0]})
	if err != nil {
		return "", v.loc, true, f.optionError(names[0], v.loc, err)
	}
	return s, v.loc, true, nil
}

// Str returns a string option: oslo.config's StrOpt, with "$name"
// references substituted (see the package documentation). It returns
// def when nothing sets the option.
func (f *File) Str(group, option, def string) (string, error) {
	s, _, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	return s, nil
}

// Bool returns a boolean option: true, yes, on or 1, or false, no, off
// or 0, in any case (oslo.config's BoolOpt). It returns def when
// nothing sets the option, and an *[OptionError] wrapping
// [ErrInvalidValue] for any other value.
func (f *File) Bool(group, option string, def bool) (bool, error) {
	s, loc, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	b, err := parseBool(s)
	if err != nil {
		return def, f.valueError(group, option, loc, s, err)
	}
	return b, nil
}

// Int returns an integer option as Python's int() reads it (white space
// around, a sign, underscores between digits): oslo.config's IntOpt. It
// returns def when nothing sets the option or when its value is blank
// (oslo.config's None), and an *[OptionError] wrapping
// [ErrInvalidValue] for a value that is not an integer.
func (f *File) Int(group, option string, def int) (int, error) {
	s, loc, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	n, empty, err := parseInt(s)
	if err != nil {
		return def, f.valueError(group, option, loc, s, err)
	}
	if empty {
		return def, nil
	}
	return n, nil
}

// Float returns a floating-point option as Python's float() reads it
// (including "inf" and "nan"): oslo.config's FloatOpt. Blank values and
// errors are as for [File.Int].
func (f *File) Float(group, option string, def float64) (float64, error) {
	s, loc, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	v, empty, err := parseFloat(s)
	if err != nil {
		return def, f.valueError(group, option, loc, s, err)
	}
	if empty {
		return def, nil
	}
	return v, nil
}

// maxSeconds is the largest whole number of seconds a time.Duration
// holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// Seconds returns a duration given as a whole number of seconds, the
// form of oslo's timeouts (an IntOpt such as rpc_response_timeout = 60).
// Blank values and errors are as for [File.Int]; a number too large
// for a time.Duration is an error.
func (f *File) Seconds(group, option string, def time.Duration) (time.Duration, error) {
	s, loc, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	n, empty, err := parseInt(s)
	if err == nil && (n > int(maxSeconds) || n < -int(maxSeconds)) {
		err = errOutOfRange
	}
	if err != nil {
		return def, f.valueError(group, option, loc, s, err)
	}
	if empty {
		return def, nil
	}
	return time.Duration(n) * time.Second, nil
}

// List returns a comma-separated list option: oslo.config's ListOpt.
// The value is trimmed and loses its trailing commas, then split at
// every comma, and each item is trimmed; empty items inside the list
// are kept ("a,,b" is "a", "", "b"), and a blank value is an empty
// list. It returns def when nothing sets the option.
func (f *File) List(group, option string, def []string) ([]string, error) {
	s, _, ok, err := f.resolve(group, option)
	if err != nil || !ok {
		return def, err
	}
	return parseList(s), nil
}

// MultiStr returns a multi-valued option, one value per occurrence of
// the key: oslo.config's MultiStrOpt, such as
// [oslo_messaging_notifications] driver. Values accumulate over the
// files, in order. An environment variable replaces them all with its
// comma-separated list. It returns def when nothing sets the option.
func (f *File) MultiStr(group, option string, def []string) ([]string, error) {
	names := schema.names(group, option)
	vals, ok := f.findAll(names)
	if !ok {
		return def, nil
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		s, err := f.substitute(v.text, names[0].group, []optName{names[0]})
		if err != nil {
			return def, f.optionError(names[0], v.loc, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// String describes f by the files it was read from; it never shows
// values.
func (f *File) String() string {
	if f == nil {
		return "config.File(nil)"
	}
	return "config.File(" + strings.Join(f.Files(), ", ") + ")"
}

// Format implements fmt.Formatter: every verb prints [File.String], so
// that no value, secret or not, is ever printed.
func (f *File) Format(s fmt.State, _ rune) { fmt.Fprint(s, f.String()) }

// GoString implements fmt.GoStringer as [File.String].
func (f *File) GoString() string { return f.String() }

// valueError returns the error for a value that does not convert,
// quoting the value unless the option may be secret.
func (f *File) valueError(group, option string, loc Location, value string, err error) error {
	msg := err.Error()
	if !isSecret(group, option) {
		msg = fmt.Sprintf("%q: %s", value, msg)
	}
	return f.optionError(schema.names(group, option)[0], loc, &valueError{msg: msg, kind: ErrInvalidValue})
}

func (f *File) optionError(n optName, loc Location, err error) error {
	return &OptionError{Group: n.group, Option: n.name, Location: loc, Err: err}
}

// valueError is the Err of an OptionError built by this package.
type valueError struct {
	msg  string
	kind error
}

func (e *valueError) Error() string { return e.msg }
func (e *valueError) Unwrap() error { return e.kind }

var errOutOfRange = errors.New("out of range")

// isSecret reports whether the values of an option must never appear in
// messages: options that oslo marks secret, and options whose names
// suggest a secret.
func isSecret(group, option string) bool {
	if o := schema.lookup(group, option); o != nil {
		return o.secret
	}
	name := strings.ToLower(option)
	for _, s := range []string{"pass", "secret", "token", "credential", "key", "url", "connection", "auth"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
