package rabbit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Defaults applied to the zero fields of a [Config]; they are oslo's.
const (
	DefaultPort                        = 5672
	DefaultUser                        = "guest"
	DefaultPassword                    = "guest"
	DefaultTransientQueuesTTL          = 1800 * time.Second
	DefaultHeartbeat                   = 60 * time.Second
	DefaultRetryInterval               = 1 * time.Second
	DefaultRetryBackoff                = 2 * time.Second
	DefaultIntervalMax                 = 30 * time.Second
	DefaultReconnectDelay              = 1 * time.Second
	DefaultMissingConsumerRetryTimeout = 60 * time.Second
	// DefaultMaxMessageSize bounds the bodies of received messages:
	// 16 MiB, RabbitMQ 4's default max_message_size.
	DefaultMaxMessageSize = 16 << 20
)

// Failover strategies for [Config.FailoverStrategy] (oslo's
// kombu_failover_strategy).
const (
	RoundRobin = "round-robin"
	Shuffle    = "shuffle"
)

// Login methods for [Config.LoginMethod] (oslo's rabbit_login_method).
const (
	LoginAMQPlain = "AMQPLAIN"
	LoginPlain    = "PLAIN"
	LoginExternal = "EXTERNAL"
)

// Config configures a [Conn] made by [New]. The zero value connects to
// localhost:5672 as guest/guest, on the virtual host "/", with oslo's
// defaults for everything else.
//
// For the durations that oslo lets 0 switch off, the zero value here
// means oslo's default and a negative value means "none".
// [ConfigFromURL] makes that translation for the URL's options.
type Config struct {
	// Hosts are the brokers, tried in turn when connecting (failover).
	// Empty means localhost:5672. In a Host, an empty Hostname means
	// "localhost", Port 0 means 5672, and an empty Username or Password
	// means "guest", as oslo does.
	Hosts []driver.Host
	// VirtualHost is the broker's virtual host; "" means "/".
	VirtualHost string

	// DurableQueues makes the control exchange and the topic and server
	// queues durable (amqp_durable_queues). QuorumQueues implies it.
	DurableQueues bool
	// AutoDelete sets auto_delete on the control exchange and the topic
	// and server queues (amqp_auto_delete).
	AutoDelete bool
	// QuorumQueues declares the topic and server queues as quorum queues
	// (rabbit_quorum_queue). It cannot be combined with HAQueues.
	QuorumQueues bool
	// QuorumDeliveryLimit, QuorumMaxMemoryLength and QuorumMaxMemoryBytes
	// set x-delivery-limit, x-max-in-memory-length and
	// x-max-in-memory-bytes on quorum queues; 0 leaves them unset.
	QuorumDeliveryLimit   int
	QuorumMaxMemoryLength int
	QuorumMaxMemoryBytes  int
	// HAQueues adds the queue argument x-ha-policy=all
	// (rabbit_ha_queues), which RabbitMQ 3.0 and later ignore.
	HAQueues bool
	// TransientQueuesTTL is the x-expires of reply and fanout queues
	// (rabbit_transient_queues_ttl). Zero means 30 minutes; negative
	// means no x-expires.
	TransientQueuesTTL time.Duration
	// PrefetchCount is the basic.qos prefetch of listeners that do not
	// set their own (rabbit_qos_prefetch_count); 0 means no basic.qos.
	PrefetchCount int

	// Heartbeat is the AMQP heartbeat timeout requested from the broker
	// (heartbeat_timeout_threshold). Zero means 60 seconds; negative
	// means the broker's own value (the client library cannot switch
	// heartbeats off).
	Heartbeat time.Duration
	// TLS, when not nil, makes every connection use TLS with this
	// configuration. An empty ServerName is set to each host's name, so
	// the broker's hostname is verified unless InsecureSkipVerify is set.
	TLS *tls.Config
	// LoginMethod is the SASL mechanism: LoginAMQPlain (the default),
	// LoginPlain or LoginExternal (TLS client certificates).
	LoginMethod string
	// Compression compresses the bodies that this Conn sends: "" for
	// none, or "gzip" (kombu_compression=gzip: a zlib stream with the
	// header compression=application/x-gzip). Compressed bodies are
	// accepted on receipt whatever this is.
	Compression string

	// RetryInterval, RetryBackoff and IntervalMax shape the wait between
	// connection attempts (rabbit_retry_interval, rabbit_retry_backoff,
	// rabbit_interval_max): before attempt n+1 the driver waits
	// RetryInterval + RetryBackoff*(2^(n-1)-1), at most IntervalMax,
	// scaled by a random factor in [0.5, 1). Zero means 1 s, 2 s and
	// 30 s; negative means none.
	RetryInterval time.Duration
	RetryBackoff  time.Duration
	IntervalMax   time.Duration
	// ReconnectDelay is the wait before reconnecting a consumer whose
	// connection was lost or whose consumer the broker cancelled
	// (kombu_reconnect_delay). Zero means 1 s; negative means none.
	ReconnectDelay time.Duration
	// ReconnectSplay adds a random wait in [0, ReconnectSplay) to every
	// reconnection wait (kombu_reconnect_splay). Zero means none.
	ReconnectSplay time.Duration
	// FailoverStrategy chooses how hosts are tried: RoundRobin (the
	// default) or Shuffle. In both cases the host list is first shuffled,
	// as oslo does.
	FailoverStrategy string
	// MissingConsumerRetryTimeout bounds how long a server retries a
	// reply whose reply queue does not exist
	// (kombu_missing_consumer_retry_timeout). Zero means 60 s; negative
	// means no retry.
	MissingConsumerRetryTimeout time.Duration
	// NoDirectMandatory sends replies without the mandatory flag
	// (direct_mandatory_flag=false): a reply to a missing queue is then
	// silently lost instead of retried.
	NoDirectMandatory bool
	// CancelOnFailover adds the consumer argument
	// x-cancel-on-ha-failover=true (enable_cancel_on_failover).
	CancelOnFailover bool

	// MaxMessageSize is the largest body, in bytes, of a message this
	// Conn accepts: requests, replies and notifications alike. It is
	// checked before the body is decoded, on the body as received and,
	// for a compressed body, on the decompressed one (decompression
	// stops at the limit). A larger message is rejected (not requeued)
	// and logged with its size, as any message that is not oslo's; a
	// call whose reply is too large times out. Zero means
	// DefaultMaxMessageSize (16 MiB); the most is 512 MiB, RabbitMQ's
	// hard limit. The URL option max_message_size sets it; it is this
	// driver's own (oslo has no such limit), and Python oslo.messaging
	// refuses a transport URL that carries it (NoSuchOptError), so keep
	// it out of URLs shared with Python services and set the field
	// instead. Set it no lower than the largest message your peers
	// send; the broker's max_message_size (128 MiB by default in
	// RabbitMQ 3.x) bounds what is published.
	MaxMessageSize int

	// StampUserID sets the AMQP user_id property of every message the
	// Conn publishes to the user name it logged in with (PLAIN and
	// AMQPLAIN logins; not with EXTERNAL). RabbitMQ refuses a publish
	// whose user_id is not the connection's user (406
	// PRECONDITION_FAILED), so a receiver can trust the property: it is
	// the sender's identity, as driver.Request.SenderUserID and
	// rpc.Request.SenderUserID show it. Python oslo.messaging ignores the
	// property. The URL option stamp_user_id sets it; like
	// max_message_size it is this driver's own, which Python refuses in
	// a URL.
	StampUserID bool

	// ConnectionName is the connection_name client property shown by
	// the broker; "" means "<program>:<pid>:<uuid>", new for each
	// connection, as oslo does.
	ConnectionName string
	// Logger receives the driver's logs; nil means slog.Default().
	Logger *slog.Logger
}

// ConfigFromURL returns the Config described by a transport URL: its
// hosts, virtual host and query options, which are oslo's
// [oslo_messaging_rabbit] options. It reads the TLS files named by the
// options but does no network I/O.
//
// It returns an error wrapping messaging.ErrInvalidOption for an option
// this driver does not know, a value that does not convert to the
// option's type (oslo's rules: booleans accept true/false, yes/no,
// on/off, 1/0, t/f, y/n), or a value out of range, and for TLS files that
// cannot be read.
//
// Options honoured: amqp_durable_queues, amqp_auto_delete,
// rabbit_quorum_queue, rabbit_quorum_delivery_limit,
// rabbit_quorum_max_memory_length, rabbit_quorum_max_memory_bytes (also
// under their 14.x names rabbit_quroum_*), rabbit_ha_queues,
// rabbit_transient_queues_ttl, rabbit_qos_prefetch_count,
// heartbeat_timeout_threshold, ssl, ssl_ca_file, ssl_cert_file,
// ssl_key_file, ssl_version, ssl_enforce_hostname_verification (default
// true), kombu_compression, rabbit_retry_interval, rabbit_retry_backoff,
// rabbit_interval_max, kombu_reconnect_delay, kombu_reconnect_splay,
// kombu_failover_strategy, kombu_missing_consumer_retry_timeout,
// rabbit_login_method, direct_mandatory_flag, enable_cancel_on_failover,
// and this driver's own max_message_size (bytes; see
// [Config.MaxMessageSize]) and stamp_user_id (see [Config.StampUserID]).
//
// Options accepted and validated but without effect: heartbeat_rate
// (the client library sends heartbeats at half the timeout),
// heartbeat_in_pthread, rpc_conn_pool_size, conn_pool_min_size and
// conn_pool_ttl (a Conn uses one publishing connection, not a pool),
// ssl_enforce_fips_mode. Options naming features this driver lacks
// (rabbit_transient_quorum_queue, rabbit_stream_fanout,
// use_queue_manager) are accepted only with their default value false,
// and hostname and processname only with use_queue_manager off.
func ConfigFromURL(u *driver.URL) (Config, error) {
	if u == nil {
		return Config{}, fmt.Errorf("rabbit: nil transport URL: %w", messaging.ErrInvalidOption)
	}
	cfg := Config{Hosts: append([]driver.Host(nil), u.Hosts...), VirtualHost: u.VirtualHost}
	// The pool sizes start at oslo's defaults, so that a URL setting
	// only one of them is checked against the other's default.
	st := &urlState{hostnameVerify: true, poolSize: 30, poolMinSize: 2}

	keys := make([]string, 0, len(u.Query))
	for k := range u.Query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if canon, ok := optionAliases[k]; ok {
			name = canon
			if _, both := u.Query[canon]; both {
				continue // the current name wins over its old alias
			}
		}
		set, ok := urlOptions[name]
		if !ok {
			return Config{}, fmt.Errorf("rabbit: unknown option %q in transport URL: %w", k, messaging.ErrInvalidOption)
		}
		if err := set(&cfg, st, u.Query[k]); err != nil {
			return Config{}, fmt.Errorf("rabbit: option %s=%q: %w: %w", k, u.Query[k], messaging.ErrInvalidOption, err)
		}
	}
	if st.poolSize < st.poolMinSize {
		return Config{}, fmt.Errorf("rabbit: rpc_conn_pool_size %d must be greater than or equal to conn_pool_min_size %d: %w",
			st.poolSize, st.poolMinSize, messaging.ErrInvalidOption)
	}
	if st.ssl {
		tc, err := st.tlsConfig()
		if err != nil {
			return Config{}, fmt.Errorf("rabbit: TLS options: %w: %w", messaging.ErrInvalidOption, err)
		}
		cfg.TLS = tc
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// urlState collects the URL options that do not map to one Config field.
type urlState struct {
	ssl            bool
	caFile         string
	certFile       string
	keyFile        string
	sslVersion     string
	hostnameVerify bool
	poolSize       int
	poolMinSize    int
}

func (st *urlState) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch strings.ToLower(st.sslVersion) {
	case "", "sslv23", "tls", "tlsv1_2":
		if strings.ToLower(st.sslVersion) == "tlsv1_2" {
			tc.MaxVersion = tls.VersionTLS12
		}
	case "tlsv1_3":
		tc.MinVersion = tls.VersionTLS13
	case "tlsv1":
		tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
	case "tlsv1_1":
		tc.MinVersion, tc.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
	default:
		return nil, fmt.Errorf("ssl_version %q is not supported", st.sslVersion)
	}
	if st.caFile != "" {
		pem, err := os.ReadFile(st.caFile)
		if err != nil {
			return nil, fmt.Errorf("ssl_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl_ca_file %s: no PEM certificate found", st.caFile)
		}
		tc.RootCAs = pool
	}
	if st.certFile != "" || st.keyFile != "" {
		if st.certFile == "" || st.keyFile == "" {
			return nil, errors.New("ssl_cert_file and ssl_key_file must be given together")
		}
		cert, err := tls.LoadX509KeyPair(st.certFile, st.keyFile)
		if err != nil {
			return nil, fmt.Errorf("ssl_cert_file/ssl_key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !st.hostnameVerify {
		// Verify the chain but not the name: Go has no switch for that,
		// so take verification over.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("rabbit: broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return tc, nil
}

type optionSetter func(c *Config, st *urlState, v string) error

// optionAliases maps old option names, which oslo still accepts, to the
// current ones.
var optionAliases = map[string]string{
	"rabbit_quroum_max_memory_length": "rabbit_quorum_max_memory_length",
	"rabbit_quroum_max_memory_bytes":  "rabbit_quorum_max_memory_bytes",
	"kombu_reconnect_timeout":         "kombu_missing_consumer_retry_timeout",
	"rabbit_use_ssl":                  "ssl",
	"kombu_ssl_version":               "ssl_version",
	"kombu_ssl_keyfile":               "ssl_key_file",
	"kombu_ssl_certfile":              "ssl_cert_file",
	"kombu_ssl_ca_certs":              "ssl_ca_file",
}

var urlOptions = map[string]optionSetter{
	"amqp_durable_queues":             boolField(func(c *Config) *bool { return &c.DurableQueues }),
	"amqp_auto_delete":                boolField(func(c *Config) *bool { return &c.AutoDelete }),
	"rabbit_quorum_queue":             boolField(func(c *Config) *bool { return &c.QuorumQueues }),
	"rabbit_quorum_delivery_limit":    intField(0, math.MaxInt32, func(c *Config) *int { return &c.QuorumDeliveryLimit }),
	"rabbit_quorum_max_memory_length": intField(0, math.MaxInt32, func(c *Config) *int { return &c.QuorumMaxMemoryLength }),
	"rabbit_quorum_max_memory_bytes":  intField(0, math.MaxInt32, func(c *Config) *int { return &c.QuorumMaxMemoryBytes }),
	"rabbit_ha_queues":                boolField(func(c *Config) *bool { return &c.HAQueues }),
	"stamp_user_id":                   boolField(func(c *Config) *bool { return &c.StampUserID }),
	"max_message_size":                intField(0, hardMaxMessageSize, func(c *Config) *int { return &c.MaxMessageSize }),
	"rabbit_qos_prefetch_count":       intField(0, math.MaxUint16, func(c *Config) *int { return &c.PrefetchCount }),
	"enable_cancel_on_failover":       boolField(func(c *Config) *bool { return &c.CancelOnFailover }),
	"direct_mandatory_flag": func(c *Config, _ *urlState, v string) error {
		b, err := parseBool(v)
		c.NoDirectMandatory = !b
		return err
	},
	"rabbit_transient_queues_ttl":          secondsField(false, func(c *Config) *time.Duration { return &c.TransientQueuesTTL }),
	"heartbeat_timeout_threshold":          secondsField(false, func(c *Config) *time.Duration { return &c.Heartbeat }),
	"rabbit_retry_interval":                secondsField(false, func(c *Config) *time.Duration { return &c.RetryInterval }),
	"rabbit_retry_backoff":                 secondsField(false, func(c *Config) *time.Duration { return &c.RetryBackoff }),
	"rabbit_interval_max":                  secondsField(false, func(c *Config) *time.Duration { return &c.IntervalMax }),
	"kombu_missing_consumer_retry_timeout": secondsField(false, func(c *Config) *time.Duration { return &c.MissingConsumerRetryTimeout }),
	"kombu_reconnect_delay":                secondsField(true, func(c *Config) *time.Duration { return &c.ReconnectDelay }),
	"kombu_reconnect_splay": func(c *Config, _ *urlState, v string) error {
		d, err := parseSeconds(v, true)
		c.ReconnectSplay = d
		return err
	},
	"kombu_compression": func(c *Config, _ *urlState, v string) error {
		c.Compression = v
		return nil
	},
	"kombu_failover_strategy": func(c *Config, _ *urlState, v string) error {
		c.FailoverStrategy = v
		return nil
	},
	"rabbit_login_method": func(c *Config, _ *urlState, v string) error {
		c.LoginMethod = v
		return nil
	},
	"ssl":         func(_ *Config, st *urlState, v string) (err error) { st.ssl, err = parseBool(v); return err },
	"ssl_ca_file": func(_ *Config, st *urlState, v string) error { st.caFile = v; return nil },
	"ssl_cert_file": func(_ *Config, st *urlState, v string) error {
		st.certFile = v
		return nil
	},
	"ssl_key_file": func(_ *Config, st *urlState, v string) error { st.keyFile = v; return nil },
	"ssl_version":  func(_ *Config, st *urlState, v string) error { st.sslVersion = v; return nil },
	"ssl_enforce_hostname_verification": func(_ *Config, st *urlState, v string) (err error) {
		st.hostnameVerify, err = parseBool(v)
		return err
	},
	"ssl_enforce_fips_mode": acceptBool,
	"heartbeat_in_pthread":  acceptBool,
	"heartbeat_rate": func(_ *Config, _ *urlState, v string) error {
		_, err := parseInt(v, 1, math.MaxInt32)
		return err
	},
	"rpc_conn_pool_size": func(_ *Config, st *urlState, v string) (err error) {
		st.poolSize, err = parseInt(v, 1, math.MaxInt32)
		return err
	},
	"conn_pool_min_size": func(_ *Config, st *urlState, v string) (err error) {
		st.poolMinSize, err = parseInt(v, 0, math.MaxInt32)
		return err
	},
	"conn_pool_ttl": func(_ *Config, _ *urlState, v string) error {
		_, err := parseInt(v, 0, math.MaxInt32)
		return err
	},
	"rabbit_transient_quorum_queue": unsupportedBool,
	"rabbit_stream_fanout":          unsupportedBool,
	"use_queue_manager":             unsupportedBool,
	// Only used by the queue manager, which must be off.
	"hostname":    acceptString,
	"processname": acceptString,
}

func boolField(f func(*Config) *bool) optionSetter {
	return func(c *Config, _ *urlState, v string) error {
		b, err := parseBool(v)
		*f(c) = b
		return err
	}
}

func intField(lo, hi int, f func(*Config) *int) optionSetter {
	return func(c *Config, _ *urlState, v string) error {
		n, err := parseInt(v, lo, hi)
		*f(c) = n
		return err
	}
}

// secondsField parses oslo's whole (or, for float options, fractional)
// seconds; 0 becomes "none" (negative) in the Config.
func secondsField(float bool, f func(*Config) *time.Duration) optionSetter {
	return func(c *Config, _ *urlState, v string) error {
		d, err := parseSeconds(v, float)
		if err != nil {
			return err
		}
		if d == 0 {
			d = -1
		}
		*f(c) = d
		return nil
	}
}

func acceptBool(_ *Config, _ *urlState, v string) error {
	_, err := parseBool(v)
	return err
}

func acceptString(*Config, *urlState, string) error { return nil }

func unsupportedBool(_ *Config, _ *urlState, v string) error {
	b, err := parseBool(v)
	if err != nil {
		return err
	}
	if b {
		return errors.New("not supported by this driver")
	}
	return nil
}

// parseBool follows oslo.config's Boolean type.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "on", "yes", "t", "y":
		return true, nil
	case "false", "0", "off", "no", "f", "n":
		return false, nil
	}
	return false, errors.New("not a boolean")
}

// parseInt follows Python's int(): surrounding spaces allowed.
func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(v), "_", ""))
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	}
	return n, nil
}

func parseSeconds(v string, float bool) (time.Duration, error) {
	if !float {
		n, err := parseInt(v, 0, math.MaxInt32)
		return time.Duration(n) * time.Second, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a number")
	}
	if f < 0 || f > math.MaxInt32 {
		return 0, errors.New("must not be negative")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// validate checks the fields that have a fixed set of values.
func (c *Config) validate() error {
	bad := func(field, val, why string) error {
		return fmt.Errorf("rabbit: %s %q: %w: %s", field, val, messaging.ErrInvalidOption, why)
	}
	switch c.FailoverStrategy {
	case "", RoundRobin, Shuffle:
	default:
		return bad("failover strategy", c.FailoverStrategy, "want round-robin or shuffle")
	}
	switch strings.ToUpper(c.LoginMethod) {
	case "", LoginAMQPlain, LoginPlain, LoginExternal:
	default:
		return bad("login method", c.LoginMethod, "want AMQPLAIN, PLAIN or EXTERNAL")
	}
	switch strings.ToLower(c.Compression) {
	case "", "gzip", "zlib", mimeGzip:
	default:
		return bad("compression", c.Compression, "only gzip is supported for sending")
	}
	if c.QuorumQueues && c.HAQueues {
		return fmt.Errorf("rabbit: quorum queues and HA queues cannot be used together: %w", messaging.ErrInvalidOption)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"quorum delivery limit", c.QuorumDeliveryLimit}, {"quorum max memory length", c.QuorumMaxMemoryLength}, {"quorum max memory bytes", c.QuorumMaxMemoryBytes}} {
		if f.v < 0 {
			return bad(f.name, strconv.Itoa(f.v), "must not be negative")
		}
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > hardMaxMessageSize {
		return bad("max message size", strconv.Itoa(c.MaxMessageSize), "must be between 0 and 536870912 bytes")
	}
	if c.PrefetchCount < 0 || c.PrefetchCount > math.MaxUint16 {
		return bad("prefetch count", strconv.Itoa(c.PrefetchCount), "must be between 0 and 65535")
	}
	if strings.ToUpper(c.LoginMethod) == LoginExternal && c.TLS == nil {
		return fmt.Errorf("rabbit: login method EXTERNAL needs TLS: %w", messaging.ErrInvalidOption)
	}
	return nil
}

// orDefault returns def for 0, 0 for a negative d, and d otherwise.
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// settings are a Config with its defaults applied: what the driver uses.
type settings struct {
	hosts            []driver.Host
	vhost            string
	durable          bool // control exchange, topic and server queues
	autoDelete       bool
	quorum           bool
	deliveryLimit    int
	maxMemoryLength  int
	maxMemoryBytes   int
	ha               bool
	ttl              time.Duration // x-expires of reply and fanout queues; 0: none
	prefetch         int
	heartbeat        time.Duration // 0: the broker's
	tls              *tls.Config
	login            string
	compress         bool
	retryInterval    time.Duration
	retryBackoff     time.Duration
	intervalMax      time.Duration
	reconnectWait    time.Duration
	splay            time.Duration
	shuffle          bool
	missingConsumer  time.Duration
	directMandatory  bool
	cancelOnFailover bool
	connName         string
	maxMessage       int // bytes
	stampUserID      bool
	log              *slog.Logger
}

func newSettings(c Config) (*settings, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := &settings{
		vhost:            c.VirtualHost,
		durable:          c.DurableQueues || c.QuorumQueues,
		autoDelete:       c.AutoDelete,
		quorum:           c.QuorumQueues,
		deliveryLimit:    c.QuorumDeliveryLimit,
		maxMemoryLength:  c.QuorumMaxMemoryLength,
		maxMemoryBytes:   c.QuorumMaxMemoryBytes,
		ha:               c.HAQueues,
		ttl:              orDefault(c.TransientQueuesTTL, DefaultTransientQueuesTTL),
		prefetch:         c.PrefetchCount,
		heartbeat:        orDefault(c.Heartbeat, DefaultHeartbeat),
		login:            strings.ToUpper(c.LoginMethod),
		compress:         c.Compression != "",
		retryInterval:    orDefault(c.RetryInterval, DefaultRetryInterval),
		retryBackoff:     orDefault(c.RetryBackoff, DefaultRetryBackoff),
		intervalMax:      orDefault(c.IntervalMax, DefaultIntervalMax),
		reconnectWait:    orDefault(c.ReconnectDelay, DefaultReconnectDelay),
		splay:            max(c.ReconnectSplay, 0),
		shuffle:          c.FailoverStrategy == Shuffle,
		missingConsumer:  orDefault(c.MissingConsumerRetryTimeout, DefaultMissingConsumerRetryTimeout),
		directMandatory:  !c.NoDirectMandatory,
		cancelOnFailover: c.CancelOnFailover,
		connName:         c.ConnectionName,
		maxMessage:       c.MaxMessageSize,
		stampUserID:      c.StampUserID && !strings.EqualFold(c.LoginMethod, LoginExternal),
		log:              c.Logger,
	}
	if s.vhost == "" {
		s.vhost = "/"
	}
	if s.login == "" {
		s.login = LoginAMQPlain
	}
	if s.maxMessage == 0 {
		s.maxMessage = DefaultMaxMessageSize
	}
	if c.TLS != nil {
		s.tls = c.TLS.Clone()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(c.Hosts) == 0 {
		s.hosts = []driver.Host{{}}
	} else {
		s.hosts = append([]driver.Host(nil), c.Hosts...)
	}
	for i := range s.hosts {
		h := &s.hosts[i]
		if h.Hostname == "" {
			h.Hostname = "localhost"
		}
		if h.Port == 0 {
			h.Port = DefaultPort
		}
		if h.Username == "" {
			h.Username = DefaultUser
		}
		if h.Password == "" {
			h.Password = DefaultPassword
		}
	}
	return s, nil
}

// connectionName returns the connection_name client property: the
// configured one, or oslo's "<program>:<pid>:<uuid4>", new for every
// connection.
func (s *settings) connectionName() string {
	if s.connName != "" {
		return s.connName
	}
	prog := "go"
	if len(os.Args) > 0 && os.Args[0] != "" {
		prog = filepath.Base(os.Args[0])
	}
	return fmt.Sprintf("%s:%d:%s", prog, os.Getpid(), wire.NewUUID())
}
