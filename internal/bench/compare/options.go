package compare

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-oslo/messaging/driver"
)

// Errors of [Run].
var (
	// ErrInvalidOptions is wrapped by the errors of options that cannot
	// be run.
	ErrInvalidOptions = errors.New("compare: invalid options")
	// ErrUnreachable is wrapped by the error of a broker that cannot be
	// reached.
	ErrUnreachable = errors.New("compare: broker unreachable")
)

// DefaultPython is the interpreter of Python oslo.messaging.
const DefaultPython = "/usr/bin/python3"

// MaxPayloadSize bounds Options.PayloadSize: the programs pre-generate
// up to a thousand cargos of that size.
const MaxPayloadSize = 1 << 20

// Options configures a comparison. Only URL is required.
type Options struct {
	// URL is the transport URL of the RabbitMQ broker, oslo's
	// rabbit://user:pass@host:port/vhost.
	URL string
	// Duration is how long each client sends. Default: 5s.
	Duration time.Duration
	// PayloadSize is the length of every cargo, in characters; 0 for the
	// simulator's distribution of lengths. At most MaxPayloadSize.
	PayloadSize int
	// Scenarios names the scenarios to run (see [Scenarios]); all when
	// empty.
	Scenarios []string
	// Omsg is the omsg program run as "omsg bench" and "omsg bench raw".
	// Default: os.Executable().
	Omsg string
	// Python is the interpreter of Python oslo.messaging. Default:
	// DefaultPython. Python is run only when it can import
	// oslo_messaging; otherwise the report says why it was not.
	Python string
	// NoPython leaves Python out.
	NoPython bool
	// Simulator, when set, is the path of oslo.messaging's
	// tools/simulator.py, run instead of the embedded [PyBench]. It
	// reports neither percentiles nor CPU, and its cargos follow its own
	// distribution whatever PayloadSize says.
	Simulator string
	// Rabbitmqctl is the rabbitmqctl program, used to create and delete a
	// virtual host for the comparison and to watch its queues. Default:
	// "rabbitmqctl" from $PATH. When it cannot be run, the comparison
	// uses the URL's virtual host with topics of its own and watches the
	// queues by passive declarations.
	Rabbitmqctl string
	// Progress receives a line as each cell starts and ends; nil for
	// none.
	Progress io.Writer

	// ReadyTimeout bounds the wait for a server's readiness. Default: 60s.
	ReadyTimeout time.Duration
	// ClientTimeout bounds a client beyond Duration. Default: 60s.
	ClientTimeout time.Duration
	// DrainTimeout bounds the wait for the servers' queues to empty once
	// the client is done. Default: 60s.
	DrainTimeout time.Duration
	// StopTimeout bounds the wait for a server to exit after SIGINT,
	// after which it is killed. Default: 20s.
	StopTimeout time.Duration

	// broker, when set by tests, replaces the RabbitMQ broker: no
	// connection is made and no virtual host is created.
	broker broker
	// env are extra environment variables of the programs, for tests.
	env []string
}

// normalize returns o with its defaults, or an error wrapping
// ErrInvalidOptions.
func (o Options) normalize() (Options, *driver.URL, error) {
	if os.Getenv(childEnv) != "" {
		// A program given as omsg that compares again would start
		// itself without end.
		return o, nil, fmt.Errorf("%w: a comparison cannot run inside a program of a comparison ($%s is set)", ErrInvalidOptions, childEnv)
	}
	if o.URL == "" {
		return o, nil, fmt.Errorf("%w: no broker URL", ErrInvalidOptions)
	}
	u, err := driver.ParseURL(o.URL)
	if err != nil {
		return o, nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if !isRabbitScheme(u.Scheme) {
		return o, nil, fmt.Errorf("%w: %s:// is not RabbitMQ: the comparison needs a rabbit:// URL", ErrInvalidOptions, u.Scheme)
	}
	switch {
	case o.Duration == 0:
		o.Duration = 5 * time.Second
	case o.Duration < 0:
		return o, nil, fmt.Errorf("%w: negative duration %v", ErrInvalidOptions, o.Duration)
	}
	if o.PayloadSize < 0 || o.PayloadSize > MaxPayloadSize {
		return o, nil, fmt.Errorf("%w: payload size %d not in 0..%d", ErrInvalidOptions, o.PayloadSize, MaxPayloadSize)
	}
	if o.Omsg == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, nil, fmt.Errorf("%w: finding omsg: %w", ErrInvalidOptions, err)
		}
		o.Omsg = exe
	}
	if o.Python == "" {
		o.Python = DefaultPython
	}
	if o.Simulator != "" && !o.NoPython {
		if fi, err := os.Stat(o.Simulator); err != nil || fi.IsDir() {
			return o, nil, fmt.Errorf("%w: simulator %s is not a file", ErrInvalidOptions, o.Simulator)
		}
	}
	for _, d := range []*time.Duration{&o.ReadyTimeout, &o.ClientTimeout, &o.DrainTimeout, &o.StopTimeout} {
		if *d < 0 {
			return o, nil, fmt.Errorf("%w: negative timeout %v", ErrInvalidOptions, *d)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ReadyTimeout, time.Minute)
	def(&o.ClientTimeout, time.Minute)
	def(&o.DrainTimeout, time.Minute)
	def(&o.StopTimeout, 20*time.Second)
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, u, nil
}
