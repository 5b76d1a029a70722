package config

import "flag"

// Sources is an ordered list of configuration files and directories:
// oslo.config's --config-file and --config-dir arguments. The zero
// value is an empty list, ready to use.
//
// Sources keeps the order in which they were added, which is the order
// of the command line when they come from [RegisterFlags], so that
// [Sources.Load] applies oslo.config's precedence: each source
// overrides those before it, whether file or directory.
//
// A Sources is not safe for concurrent use while it is being added to.
type Sources struct {
	list []source
}

type source struct {
	path string
	dir  bool
}

// RegisterFlags defines the repeatable flags --config-file PATH and
// --config-dir DIR on fs, with oslo.config's meaning, and returns the
// Sources they fill as fs parses the command line. After fs.Parse, call
// [Sources.Load]:
//
//	srcs := config.RegisterFlags(flag.CommandLine)
//	flag.Parse()
//	f, err := srcs.Load()
func RegisterFlags(fs *flag.FlagSet) *Sources {
	s := &Sources{}
	fs.Func("config-file", "`path` to a config file to use; repeatable, values in later files take precedence", func(p string) error {
		s.AddFile(p)
		return nil
	})
	fs.Func("config-dir", "`directory` whose *.conf files are read in sorted order, after the sources before it; repeatable", func(p string) error {
		s.AddDir(p)
		return nil
	})
	return s
}

// AddFile appends a configuration file.
func (s *Sources) AddFile(path string) { s.list = append(s.list, source{path: path}) }

// AddDir appends a configuration directory, whose "*.conf" files are
// read in sorted order.
func (s *Sources) AddDir(path string) { s.list = append(s.list, source{path: path, dir: true}) }

// Files returns the files added, in order.
func (s *Sources) Files() []string { return s.paths(false) }

// Dirs returns the directories added, in order.
func (s *Sources) Dirs() []string { return s.paths(true) }

// Empty reports whether no file or directory was added, for commands
// that fall back to a default file then.
func (s *Sources) Empty() bool { return len(s.list) == 0 }

func (s *Sources) paths(dir bool) []string {
	var out []string
	for _, src := range s.list {
		if src.dir == dir {
			out = append(out, src.path)
		}
	}
	return out
}

// Load reads the sources in order, as [Load] does: a file, or the
// sorted "*.conf" files of a directory, override what came before.
func (s *Sources) Load(opts ...LoadOption) (*File, error) {
	f := newFile(opts)
	for _, src := range s.list {
		p := expandHome(src.path)
		var err error
		if src.dir {
			err = f.readDir(p)
		} else {
			err = f.readFile(p)
		}
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}
