package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging/driver"
)

const novaURL = "rabbit://nova:Sup3r%2Fs3cret@rabbit1.example.org:5672,nova:Sup3r%2Fs3cret@rabbit2.example.org:5672/nova"

// fromText parses text and reads the messaging options from it.
func fromText(t *testing.T, text string, opts ...Option) (*Messaging, []Notice) {
	t.Helper()
	m, notices, err := FromFile(parse(t, text), opts...)
	if err != nil {
		t.Fatalf("FromFile: %v", err)
	}
	return m, notices
}

func TestNovaConf(t *testing.T) {
	for _, drivers := range []string{"driver = messagingv2\n", "driver = messagingv2\ndriver = messagingv2\n"} {
		data := strings.Replace(readTestdata(t, "nova.conf"), "driver = messagingv2\n", drivers, 1)
		f, err := Parse("nova.conf", []byte(data), WithEnviron(nil))
		if err != nil {
			t.Fatal(err)
		}
		m, notices, err := FromFile(f, Strict())
		if err != nil {
			t.Fatalf("FromFile: %v", err)
		}
		if len(notices) != 0 {
			t.Errorf("notices: %v", notices)
		}
		want := &Messaging{
			TransportURL:           novaURL,
			ControlExchange:        "nova",
			RPCResponseTimeout:     180 * time.Second,
			ExecutorThreadPoolSize: 64,
			RPCPingEnabled:         false,
			Notifications: Notifications{
				Drivers: []string{"messagingv2"}, // once, however often it is given
				Topics:  []string{"notifications", "billing"},
			},
			Rabbit: map[string]string{
				"amqp_durable_queues":         "true",
				"rabbit_quorum_queue":         "true",
				"heartbeat_timeout_threshold": "30",
				"ssl":                         "true",
				"ssl_ca_file":                 "/etc/ssl/certs/rabbit-ca.pem",
			},
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("FromFile =\n%#v\nwant\n%#v", m, want)
		}

		u, err := m.RPCURL()
		if err != nil {
			t.Fatal(err)
		}
		p, err := driver.ParseURL(u.Unredacted())
		if err != nil {
			t.Fatal(err)
		}
		wantQuery := map[string]string{
			"amqp_durable_queues": "true", "rabbit_quorum_queue": "true", "heartbeat_timeout_threshold": "30",
			"ssl": "true", "ssl_ca_file": "/etc/ssl/certs/rabbit-ca.pem",
		}
		if len(p.Hosts) != 2 || p.Hosts[0].Password != "Sup3r/s3cret" || p.Hosts[1].Hostname != "rabbit2.example.org" ||
			p.VirtualHost != "nova" || !reflect.DeepEqual(p.Query, wantQuery) {
			t.Errorf("RPCURL() parses as %#v", p)
		}
		nu, err := m.NotificationURL()
		if err != nil || nu != u {
			t.Errorf("NotificationURL() = %v, %v; want the RPC URL", nu, err)
		}
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDefaults(t *testing.T) {
	m, notices := fromText(t, "")
	if len(notices) != 0 {
		t.Errorf("notices: %v", notices)
	}
	if !reflect.DeepEqual(m, Default()) {
		t.Errorf("FromFile(empty) = %#v, want Default() = %#v", m, Default())
	}
	if m, _, err := FromFile(nil); err != nil || !reflect.DeepEqual(m, Default()) {
		t.Errorf("FromFile(nil) = %#v, %v; want Default()", m, err)
	}
	d := Default()
	if d.TransportURL != "rabbit://" || d.ControlExchange != "openstack" || d.RPCResponseTimeout != time.Minute ||
		d.ExecutorThreadPoolSize != 64 || d.RPCPingEnabled || len(d.Notifications.Drivers) != 0 ||
		!reflect.DeepEqual(d.Notifications.Topics, []string{"notifications"}) || d.Notifications.Retry != nil ||
		d.Notifications.TransportURL != "" || len(d.Rabbit) != 0 {
		t.Errorf("Default() = %#v: not oslo's defaults", d)
	}
	u, err := d.RPCURL()
	if err != nil || u != "rabbit://" {
		t.Errorf("Default().RPCURL() = %q, %v", u, err)
	}
}

func TestDEFAULTOptions(t *testing.T) {
	m, notices := fromText(t, `[DEFAULT]
rpc_thread_pool_size = 8
rpc_ping_enabled = Yes
[oslo_messaging_notifications]
retry = 3
routing_config = /etc/nova/routing.yaml
`)
	if m.ExecutorThreadPoolSize != 8 || !m.RPCPingEnabled || m.Notifications.Retry == nil || *m.Notifications.Retry != 3 ||
		m.Notifications.RoutingConfig != "/etc/nova/routing.yaml" {
		t.Errorf("FromFile = %#v", m)
	}
	if len(notices) != 1 || notices[0].Kind != DeprecatedOption || notices[0].Option != "rpc_thread_pool_size" ||
		notices[0].Hint != "use [DEFAULT] executor_thread_pool_size" {
		t.Errorf("notices = %v", notices)
	}
	// A blank integer is oslo's None: the default.
	m, _ = fromText(t, "[DEFAULT]\nrpc_response_timeout =\n[oslo_messaging_notifications]\nretry =\n")
	if m.RPCResponseTimeout != time.Minute || m.Notifications.Retry != nil {
		t.Errorf("blank values: %#v", m)
	}
}

func TestNotificationURLFallback(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unset", "[DEFAULT]\ntransport_url = rabbit://rpc//\n", "rabbit://rpc//"},
		{"empty", "[DEFAULT]\ntransport_url = rabbit://rpc//\n[oslo_messaging_notifications]\ntransport_url =\n", "rabbit://rpc//"},
		{"set", "[DEFAULT]\ntransport_url = rabbit://rpc//\n[oslo_messaging_notifications]\ntransport_url = rabbit://notif//\n", "rabbit://notif//"},
		{"deprecated name", "[DEFAULT]\ntransport_url = rabbit://rpc//\nnotification_transport_url = rabbit://old//\n", "rabbit://old//"},
		{"default", "", "rabbit://"},
	} {
		m, _ := fromText(t, tt.text)
		u, err := m.NotificationURL()
		if err != nil || u.Unredacted() != tt.want {
			t.Errorf("%s: NotificationURL() = %q, %v; want %q", tt.name, u.Unredacted(), err, tt.want)
		}
	}
}

func TestURLQueryPrecedence(t *testing.T) {
	m, _ := fromText(t, `[DEFAULT]
transport_url = rabbit://u:p@h1:5672/vh?amqp_durable_queues=false&kombu_ssl_ca_certs=/url/ca.pem&heartbeat_timeout_threshold=10
[oslo_messaging_notifications]
transport_url = kombu://u:p@h2/?rabbit_qos_prefetch_count=5
[oslo_messaging_rabbit]
amqp_durable_queues = true
ssl_ca_file = /file/ca.pem
heartbeat_timeout_threshold = 30
rabbit_qos_prefetch_count = 10
rabbit_retry_interval = 2
`)
	u, err := m.RPCURL()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := driver.ParseURL(u.Unredacted())
	want := map[string]string{
		"amqp_durable_queues":         "false",       // the URL wins
		"kombu_ssl_ca_certs":          "/url/ca.pem", // under an older name too
		"heartbeat_timeout_threshold": "10",          // the URL wins
		"rabbit_qos_prefetch_count":   "10",          // from the file
		"rabbit_retry_interval":       "2",           // from the file
	}
	if !reflect.DeepEqual(p.Query, want) {
		t.Errorf("RPC query = %v, want %v", p.Query, want)
	}
	if len(p.Hosts) != 1 || p.Hosts[0].Password != "p" || p.VirtualHost != "vh" {
		t.Errorf("RPCURL() = %v: the rest of the URL changed", p)
	}
	nu, _ := m.NotificationURL()
	np, _ := driver.ParseURL(nu.Unredacted())
	if np.Scheme != "kombu" || np.Query["rabbit_qos_prefetch_count"] != "5" || np.Query["amqp_durable_queues"] != "true" ||
		np.Query["ssl_ca_file"] != "/file/ca.pem" {
		t.Errorf("notification query = %v", np.Query)
	}
}

func TestRabbitOptionsOnlyForRabbit(t *testing.T) {
	m, _ := fromText(t, "[DEFAULT]\ntransport_url = memory://\n[oslo_messaging_rabbit]\namqp_durable_queues = true\n")
	if u, err := m.RPCURL(); err != nil || u != "memory://" {
		t.Errorf("RPCURL() = %q, %v; want the memory URL unchanged", u, err)
	}
	m, _ = fromText(t, "[DEFAULT]\ntransport_url = rabbit://h/\n")
	if u, _ := m.RPCURL(); u != "rabbit://h/" {
		t.Errorf("RPCURL() = %q: changed without rabbit options", u)
	}
}

func TestRabbitOptions(t *testing.T) {
	m, notices := fromText(t, `[DEFAULT]
rabbit_ha_queues = on
rpc_conn_pool_size = 10
[oslo_messaging_rabbit]
rabbit_use_ssl = 1
kombu_reconnect_delay = 0.5
rabbit_quroum_max_memory_length = 100
kombu_compression =
kombu_failover_strategy = shuffle
heartbeat_rate =
`)
	want := map[string]string{
		"rabbit_ha_queues": "true", "rpc_conn_pool_size": "10", "ssl": "true", "kombu_reconnect_delay": "0.5",
		"rabbit_quorum_max_memory_length": "100", "kombu_failover_strategy": "shuffle",
	}
	if !reflect.DeepEqual(m.Rabbit, want) {
		t.Errorf("Rabbit = %v, want %v", m.Rabbit, want)
	}
	var got []string
	for _, n := range notices {
		got = append(got, n.String())
	}
	wantNotices := []string{
		"test.conf:2: deprecated option [DEFAULT] rabbit_ha_queues: use [oslo_messaging_rabbit] rabbit_ha_queues",
		"test.conf:5: deprecated option [oslo_messaging_rabbit] rabbit_use_ssl: use [oslo_messaging_rabbit] ssl",
		"test.conf:7: deprecated option [oslo_messaging_rabbit] rabbit_quroum_max_memory_length: use [oslo_messaging_rabbit] rabbit_quorum_max_memory_length",
	}
	if !reflect.DeepEqual(got, wantNotices) {
		t.Errorf("notices =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantNotices, "\n"))
	}
	if names := RabbitOptions(); !slices.IsSorted(names) || !slices.Contains(names, "amqp_durable_queues") || len(names) != 38 {
		t.Errorf("RabbitOptions() = %v", names)
	}
}

func TestUnknownOptions(t *testing.T) {
	text := `[DEFAULT]
debug = true
compute_driver = libvirt.LibvirtDriver
transport_ur1 = rabbit://x
rpc_response_time0ut = 30
rabbit_host = rabbit1
amqp_durable_queues = true
driver = something
[oslo_messaging_rabbit]
amqp_durable_queus = true
rabbit_password = hunter2
transport_url = rabbit://x
totally_new_option = 1
[oslo_messaging_notifications]
drivers = log
[database]
connection = sqlite://
[rpc_notifier2]
topics = old
other = ignored
`
	f, err := Parse("nova.conf", []byte(text), WithEnviron([]string{
		"OS_DEFAULT__DEBUG=true",
		"OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUS=true",
		"OS_OSLO_MESSAGING_RABBIT__SSL=true",
		"OS_DEFAULT__NOTIFICATION_DRIVER=log",
		"OS_DEFAULT__RPC_RESPONSE_TIMEOUTT=1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	m, notices, err := FromFile(f)
	if err != nil || m == nil {
		t.Fatalf("FromFile: %v", err)
	}
	var got []string
	for _, n := range notices {
		got = append(got, n.String())
	}
	want := []string{
		"nova.conf:4: unknown option [DEFAULT] transport_ur1: did you mean transport_url?",
		"nova.conf:5: unknown option [DEFAULT] rpc_response_time0ut: did you mean rpc_response_timeout?",
		"nova.conf:6: unknown option [DEFAULT] rabbit_host: removed from oslo.messaging: give the brokers in transport_url",
		"nova.conf:7: unknown option [DEFAULT] amqp_durable_queues: did you mean [oslo_messaging_rabbit] amqp_durable_queues?",
		"nova.conf:10: unknown option [oslo_messaging_rabbit] amqp_durable_queus: did you mean amqp_durable_queues?",
		"nova.conf:11: unknown option [oslo_messaging_rabbit] rabbit_password: removed from oslo.messaging: give the credentials in transport_url",
		"nova.conf:12: unknown option [oslo_messaging_rabbit] transport_url: did you mean [DEFAULT] transport_url?",
		"nova.conf:13: unknown option [oslo_messaging_rabbit] totally_new_option",
		"nova.conf:15: unknown option [oslo_messaging_notifications] drivers: did you mean driver?",
		"nova.conf:19: deprecated option [rpc_notifier2] topics: use [oslo_messaging_notifications] topics",
		"environment variable OS_DEFAULT__NOTIFICATION_DRIVER: unknown option [DEFAULT] notification_driver: " +
			"the environment sets options by their current name: OS_OSLO_MESSAGING_NOTIFICATIONS__DRIVER",
		"environment variable OS_DEFAULT__RPC_RESPONSE_TIMEOUTT: unknown option [DEFAULT] rpc_response_timeoutt: did you mean rpc_response_timeout?",
		"environment variable OS_OSLO_MESSAGING_RABBIT__AMQP_DURABLE_QUEUS: unknown option [oslo_messaging_rabbit] amqp_durable_queus: did you mean amqp_durable_queues?",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("notices =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, n := range notices {
		if strings.Contains(n.String(), "hunter2") {
			t.Errorf("notice %q shows a value", n)
		}
	}
	if !reflect.DeepEqual(m.Notifications.Topics, []string{"old"}) {
		t.Errorf("[rpc_notifier2] topics not read: %q", m.Notifications.Topics)
	}

	// Strict mode fails on each unknown option, and only on those.
	m, notices2, err := FromFile(f, Strict())
	if m != nil || !errors.Is(err, ErrUnknownOption) || !reflect.DeepEqual(notices2, notices) {
		t.Fatalf("Strict: FromFile = %v, %v", m, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 12 || lines[0] != "config: "+want[0] {
		t.Errorf("Strict error:\n%v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("the strict error shows a value")
	}
}

func TestFromFileErrors(t *testing.T) {
	text := `[DEFAULT]
transport_url = rabbit://nova:hunter2@host:port/
control_exchange =
rpc_response_timeout = 0
executor_thread_pool_size = many
rpc_ping_enabled = sometimes
[oslo_messaging_notifications]
transport_url = rabbit://nova:hunter2@[::1/
topics = a,,b
retry = often
driver = $nope
[oslo_messaging_rabbit]
amqp_durable_queues = perhaps
heartbeat_timeout_threshold = 1.5
kombu_reconnect_delay = soon
`
	m, _, err := FromFile(parse(t, text))
	if m != nil || err == nil {
		t.Fatalf("FromFile = %v, %v", m, err)
	}
	wantOptions := []string{
		"[DEFAULT] transport_url (test.conf:2)",
		"[DEFAULT] control_exchange (test.conf:3): must not be empty",
		"[DEFAULT] rpc_response_timeout (test.conf:4): 0: must be at least 1",
		`[DEFAULT] executor_thread_pool_size (test.conf:5): "many": not an integer`,
		`[DEFAULT] rpc_ping_enabled (test.conf:6): "sometimes": not a boolean`,
		"[oslo_messaging_notifications] transport_url (test.conf:8)",
		`[oslo_messaging_notifications] topics (test.conf:9): "a,,b": empty topic name`,
		`[oslo_messaging_notifications] retry (test.conf:10): "often": not an integer`,
		"[oslo_messaging_notifications] driver (test.conf:11): $nope: no such option",
		`[oslo_messaging_rabbit] amqp_durable_queues (test.conf:13): "perhaps": not a boolean`,
		`[oslo_messaging_rabbit] heartbeat_timeout_threshold (test.conf:14): "1.5": not an integer`,
		`[oslo_messaging_rabbit] kombu_reconnect_delay (test.conf:15): "soon": not a number`,
	}
	msg := err.Error()
	for _, w := range wantOptions {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not contain %q:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error shows a password:\n%s", msg)
	}
	if !errors.Is(err, ErrInvalidValue) || !errors.Is(err, driver.ErrInvalidURL) || !errors.Is(err, ErrSubstitution) {
		t.Errorf("error does not wrap the sentinels: %v", err)
	}
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Group != "DEFAULT" || oe.Option != "transport_url" {
		t.Errorf("first OptionError = %+v", oe)
	}
}

func TestFromFileRejects(t *testing.T) {
	for _, text := range []string{
		"[DEFAULT]\ntransport_url =\n",
		"[DEFAULT]\nexecutor_thread_pool_size = 0\n",
		"[DEFAULT]\nrpc_response_timeout = -5\n",
		"[DEFAULT]\nrpc_response_timeout = 9223372037\n",
	} {
		if _, _, err := FromFile(parse(t, text)); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%q: error = %v, want ErrInvalidValue", text, err)
		}
	}
}

func TestMessagingString(t *testing.T) {
	m, _ := fromText(t, readTestdata(t, "nova.conf"))
	got := m.String()
	want := `[DEFAULT]
transport_url = rabbit://nova:***@rabbit1.example.org:5672,nova:***@rabbit2.example.org:5672/nova
control_exchange = nova
rpc_response_timeout = 180
executor_thread_pool_size = 64
rpc_ping_enabled = false

[oslo_messaging_notifications]
driver = messagingv2
# transport_url: unset, [DEFAULT] transport_url is used
topics = notifications,billing
# retry: unset

[oslo_messaging_rabbit]
amqp_durable_queues = true
heartbeat_timeout_threshold = 30
rabbit_quorum_queue = true
ssl = true
ssl_ca_file = /etc/ssl/certs/rabbit-ca.pem
`
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	// The String form is itself a configuration file, passwords aside.
	m2, notices := fromText(t, strings.ReplaceAll(got, "***", "Sup3r%2Fs3cret"))
	if len(notices) != 0 || !reflect.DeepEqual(m2, m) {
		t.Errorf("String() does not read back: %#v, %v", m2, notices)
	}
	if keys := slices.Sorted(maps.Keys(m.Rabbit)); len(keys) != 5 {
		t.Errorf("Rabbit keys = %v", keys)
	}
}
