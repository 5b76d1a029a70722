package rabbit

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	messaging "github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
)

func mustParse(t *testing.T, raw string) *driver.URL {
	t.Helper()
	u, err := driver.ParseURL(raw)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", raw, err)
	}
	return u
}

func TestConfigFromURLDefaults(t *testing.T) {
	cfg, err := ConfigFromURL(mustParse(t, "rabbit://"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.hosts) != 1 || s.hosts[0] != (driver.Host{Hostname: "localhost", Port: 5672, Username: "guest", Password: "guest"}) {
		t.Errorf("hosts = %v, want localhost:5672 guest/guest", s.hosts)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"vhost", s.vhost, "/"},
		{"durable", s.durable, false},
		{"autoDelete", s.autoDelete, false},
		{"ttl", s.ttl, 1800 * time.Second},
		{"heartbeat", s.heartbeat, 60 * time.Second},
		{"prefetch", s.prefetch, 0},
		{"login", s.login, "AMQPLAIN"},
		{"compress", s.compress, false},
		{"retryInterval", s.retryInterval, time.Second},
		{"retryBackoff", s.retryBackoff, 2 * time.Second},
		{"intervalMax", s.intervalMax, 30 * time.Second},
		{"reconnectWait", s.reconnectWait, time.Second},
		{"missingConsumer", s.missingConsumer, 60 * time.Second},
		{"directMandatory", s.directMandatory, true},
		{"shuffle", s.shuffle, false},
		{"tls", s.tls == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigFromURLOptions(t *testing.T) {
	raw := "kombu://u1:p1@h1:1234,h2/vh?amqp_durable_queues=yes&amqp_auto_delete=on&rabbit_transient_queues_ttl=0" +
		"&rabbit_qos_prefetch_count=7&heartbeat_timeout_threshold=0&kombu_compression=gzip&rabbit_retry_interval=0" +
		"&rabbit_retry_backoff=3&rabbit_interval_max=9&kombu_reconnect_delay=0.5&kombu_failover_strategy=shuffle" +
		"&kombu_reconnect_timeout=2&rabbit_login_method=PLAIN&direct_mandatory_flag=false&enable_cancel_on_failover=1" +
		"&rabbit_quorum_queue=t&rabbit_quroum_max_memory_length=5&rabbit_quorum_delivery_limit=3&heartbeat_rate=3" +
		"&rpc_conn_pool_size=10&conn_pool_min_size=1&conn_pool_ttl=5&heartbeat_in_pthread=false&ssl=false"
	cfg, err := ConfigFromURL(mustParse(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSettings(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []driver.Host{
		{Hostname: "h1", Port: 1234, Username: "u1", Password: "p1"},
		{Hostname: "h2", Port: 5672, Username: "guest", Password: "guest"},
	}
	if len(s.hosts) != 2 || s.hosts[0] != want[0] || s.hosts[1] != want[1] {
		t.Errorf("hosts = %#v, want %#v", s.hosts, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"vhost", s.vhost, "vh"},
		{"durable", s.durable, true},
		{"autoDelete", s.autoDelete, true},
		{"quorum", s.quorum, true},
		{"deliveryLimit", s.deliveryLimit, 3},
		{"maxMemoryLength", s.maxMemoryLength, 5},
		{"ttl", s.ttl, time.Duration(0)},
		{"heartbeat", s.heartbeat, time.Duration(0)},
		{"prefetch", s.prefetch, 7},
		{"login", s.login, "PLAIN"},
		{"compress", s.compress, true},
		{"retryInterval", s.retryInterval, time.Duration(0)},
		{"retryBackoff", s.retryBackoff, 3 * time.Second},
		{"intervalMax", s.intervalMax, 9 * time.Second},
		{"reconnectWait", s.reconnectWait, 500 * time.Millisecond},
		{"missingConsumer", s.missingConsumer, 2 * time.Second},
		{"directMandatory", s.directMandatory, false},
		{"cancelOnFailover", s.cancelOnFailover, true},
		{"shuffle", s.shuffle, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigFromURLErrors(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  string // in the error
	}{
		{"bogus_option=1", `unknown option "bogus_option"`},
		{"amqp_durable_queues=maybe", "amqp_durable_queues"},
		{"rabbit_qos_prefetch_count=x", "not an integer"},
		{"rabbit_qos_prefetch_count=-1", "between"},
		{"kombu_reconnect_delay=abc", "not a number"},
		{"kombu_failover_strategy=random", "round-robin or shuffle"},
		{"rabbit_login_method=RABBIT-CR-DEMO", "AMQPLAIN, PLAIN or EXTERNAL"},
		{"kombu_compression=bz2", "only gzip"},
		{"rabbit_quorum_queue=true&rabbit_ha_queues=true", "cannot be used together"},
		{"rpc_conn_pool_size=1&conn_pool_min_size=2", "conn_pool_min_size"},
		{"rabbit_stream_fanout=true", "not supported"},
		{"ssl=true&ssl_ca_file=/nonexistent/ca.pem", "ssl_ca_file"},
		{"ssl=true&ssl_version=sslv3", "ssl_version"},
		{"rabbit_login_method=EXTERNAL", "needs TLS"},
	} {
		_, err := ConfigFromURL(mustParse(t, "rabbit://h:1/?"+tc.query))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, messaging.ErrInvalidOption) {
			t.Errorf("ConfigFromURL(?%s) = %v, want an ErrInvalidOption mentioning %q", tc.query, err, tc.want)
		}
	}
	// Open reports the same errors and never shows the password.
	_, err := Driver{}.Open(mustParse(t, "rabbit://u:s3cret@h:1/?nope=1"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open = %v, want an error without the password", err)
	}
}

func TestConfigFromURLTLS(t *testing.T) {
	cfg, err := ConfigFromURL(mustParse(t, "rabbit://h/?ssl=1&ssl_version=tlsv1_2"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || cfg.TLS.InsecureSkipVerify || cfg.TLS.MaxVersion == 0 {
		t.Errorf("TLS = %+v, want hostname verification and TLS 1.2", cfg.TLS)
	}
	cfg, err = ConfigFromURL(mustParse(t, "rabbit://h/?ssl=1&ssl_enforce_hostname_verification=false"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS == nil || !cfg.TLS.InsecureSkipVerify || cfg.TLS.VerifyConnection == nil {
		t.Errorf("TLS = %+v, want chain-only verification", cfg.TLS)
	}
	// ssl_* options without ssl are ignored, as in oslo.
	cfg, err = ConfigFromURL(mustParse(t, "rabbit://h/?ssl_ca_file=/nonexistent"))
	if err != nil || cfg.TLS != nil {
		t.Errorf("ConfigFromURL(ssl_ca_file without ssl) = %+v, %v; want no TLS", cfg.TLS, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{FailoverStrategy: "zigzag"}); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("New(zigzag) = %v, want ErrInvalidOption", err)
	}
	if _, err := New(Config{PrefetchCount: 70000}); !errors.Is(err, messaging.ErrInvalidOption) {
		t.Errorf("New(prefetch 70000) = %v, want ErrInvalidOption", err)
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close of an unused Conn = %v", err)
	}
}

func TestPublishingProperties(t *testing.T) {
	body := []byte(`{"oslo.version": "2.0", "oslo.message": "{}"}`)
	p, err := publishing(body, false, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if p.ContentType != "application/json" || p.ContentEncoding != "utf-8" || p.DeliveryMode != 2 || p.Priority != 0 ||
		p.Expiration != "1500" || len(p.Headers) != 0 || !bytes.Equal(p.Body, body) {
		t.Errorf("publishing = %+v", p)
	}
	p, err = publishing(body, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Expiration != "" || p.Headers["compression"] != "application/x-gzip" {
		t.Errorf("compressed publishing = %+v", p)
	}
	zr, err := zlib.NewReader(bytes.NewReader(p.Body))
	if err != nil {
		t.Fatalf("body is not zlib: %v", err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, body) {
		t.Errorf("zlib body = %q, want %q", plain, body)
	}
	got, err := messageBody(&amqp.Delivery{ContentType: "application/json", Headers: p.Headers, Body: p.Body}, DefaultMaxMessageSize)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("messageBody(compressed) = %q, %v", got, err)
	}
	for _, d := range []amqp.Delivery{
		{ContentType: "text/plain", Body: body},
		{Body: body},
		{ContentType: "application/json", Headers: amqp.Table{"compression": "application/x-lzma"}, Body: body},
		{ContentType: "application/json", Headers: amqp.Table{"compression": "application/x-gzip"}, Body: body},
	} {
		if _, err := messageBody(&d, DefaultMaxMessageSize); err == nil {
			t.Errorf("messageBody(%q, %v) accepted", d.ContentType, d.Headers)
		}
	}
}

func TestDedup(t *testing.T) {
	d := newDedup(time.Minute, 3)
	now := time.Unix(1000, 0)
	if d.duplicate("a", now) || !d.duplicate("a", now) {
		t.Fatal("a: want new then duplicate")
	}
	d.duplicate("b", now)
	d.duplicate("c", now)
	d.duplicate("e", now) // evicts a (size cap)
	if d.duplicate("a", now) {
		t.Error("a still remembered beyond the size cap")
	}
	later := now.Add(2 * time.Minute)
	if d.duplicate("e", later) {
		t.Error("e still remembered after the TTL")
	}
}

func TestDeadQueues(t *testing.T) {
	q := newDeadQueues()
	now := time.Unix(1000, 0)
	q.add("reply_x", now)
	if !q.has("reply_x", now.Add(59*time.Second)) {
		t.Error("reply_x forgotten before 60 s")
	}
	if q.has("reply_x", now.Add(61*time.Second)) {
		t.Error("reply_x remembered after 60 s")
	}
	for i := range 250 {
		q.add(string(rune('a'+i%26))+strings.Repeat("x", i), now)
	}
	if len(q.at) > deadQueueMax {
		t.Errorf("cache holds %d queues, want at most %d", len(q.at), deadQueueMax)
	}
}

func TestRetryDelay(t *testing.T) {
	s := &settings{retryInterval: time.Second, retryBackoff: 2 * time.Second, intervalMax: 30 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 3 * time.Second, 3: 7 * time.Second, 4: 15 * time.Second, 5: 30 * time.Second, 50: 30 * time.Second} {
		for range 20 {
			if got := s.retryDelay(n); got < want/2 || got > want {
				t.Errorf("retryDelay(%d) = %v, want in [%v, %v]", n, got, want/2, want)
			}
		}
	}
	zero := &settings{}
	if d := zero.retryDelay(3); d != 0 {
		t.Errorf("retryDelay with no interval = %v, want 0", d)
	}
}

func TestHostRing(t *testing.T) {
	hosts := []driver.Host{{Hostname: "a"}, {Hostname: "b"}, {Hostname: "c"}}
	r := newHostRing(hosts, false)
	seen := map[string]int{}
	for range 6 {
		pos, h := r.current()
		seen[h.Hostname]++
		r.failed(pos)
		r.failed(pos) // a second report of the same failure does not skip a host
	}
	for _, h := range hosts {
		if seen[h.Hostname] != 2 {
			t.Errorf("host %s tried %d times in two rounds, want 2", h.Hostname, seen[h.Hostname])
		}
	}
}

func TestIntArgTypes(t *testing.T) {
	if _, ok := intArg(1800000).(int32); !ok {
		t.Error("intArg(1800000) is not an int32 (Python's AMQP client sends a signed 32-bit integer)")
	}
	if _, ok := intArg(1 << 40).(int64); !ok {
		t.Error("intArg(1<<40) is not an int64")
	}
}
