package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeManagement stands in for the RabbitMQ management API of virtual
// host "vh": the unacknowledged count of T.busy grows at every request.
type fakeManagement struct {
	mu       sync.Mutex
	requests []string // escaped paths
	samples  int
}

func (m *fakeManagement) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, r.URL.EscapedPath())
	if u, p, ok := r.BasicAuth(); !ok || u != "guest" || p != "SECRETPW" {
		http.Error(w, `{"error":"not_authorised"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.EscapedPath() {
	case "/api/queues/vh":
		m.samples++
		unacked := 2 * m.samples
		_ = json.NewEncoder(w).Encode([]map[string]any{
			{"name": "T", "messages": 0, "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 2, "durable": false, "auto_delete": false, "arguments": map[string]any{}},
			{"name": "T.stopped", "messages": 3, "messages_ready": 3, "messages_unacknowledged": 0, "consumers": 0, "durable": false, "auto_delete": false},
			{"name": "T.busy", "messages": unacked, "messages_ready": 0, "messages_unacknowledged": unacked, "consumers": 1},
			{"name": "T_fanout_0123456789abcdef0123456789abcdef", "messages": 0, "consumers": 1, "auto_delete": true},
			{"name": "T_fanout_x", "messages": 0, "consumers": 1},
			{"name": "Tother", "messages": 9, "consumers": 0},
			{"name": "other.s1", "messages": 9, "consumers": 0},
			{"name": "reply_fedcba9876543210fedcba9876543210", "messages": 1, "consumers": 1},
		})
	case "/api/exchanges/vh/nova/bindings/source":
		_ = json.NewEncoder(w).Encode([]map[string]any{
			{"source": "nova", "destination": "other.s1", "destination_type": "queue", "routing_key": "other.s1"},
			{"source": "nova", "destination": "nova_fanout", "destination_type": "exchange", "routing_key": "x"},
		})
	default:
		http.NotFound(w, r)
	}
}

// inspectMgmt runs omsg inspect against a fake management API, with no
// broker behind the transport URL and no discovery.
func inspectMgmt(t *testing.T, args ...string) (m *fakeManagement, code int, out, errOut string) {
	t.Helper()
	m = &fakeManagement{}
	ts := httptest.NewServer(m)
	t.Cleanup(ts.Close)
	args = append([]string{"inspect", "--url", "rabbit://guest:SECRETPW@127.0.0.1:1/vh", "--management-url", ts.URL,
		"--wait", "0", "--interval", "10ms"}, args...)
	code, out, errOut = runCmd(t, args...)
	if strings.Contains(out+errOut, "SECRETPW") {
		t.Errorf("omsg %q printed the password:\n%s%s", args, out, errOut)
	}
	return m, code, out, errOut
}

func TestInspectManagementTable(t *testing.T) {
	m, code, out, errOut := inspectMgmt(t, "--topic", "T")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if want := "Queues of topic T on exchange openstack (from the management API):"; lines[0] != want {
		t.Errorf("first line %q, want %q", lines[0], want)
	}
	// The table is aligned: columns start at the same offset.
	header := lines[1]
	for _, want := range []string{
		"  QUEUE                                      KIND    MESSAGES  READY  UNACKED  CONSUMERS  FLAGS",
		"  T                                          topic   0         0      0        2",
		"  T.busy                                     server  4         0      4        1          unacked growing",
		"  T.stopped                                  server  3         3      0        0          no consumer",
		"  T_fanout_0123456789abcdef0123456789abcdef  fanout  0         0      0        1",
	} {
		found := false
		for _, l := range lines {
			if strings.TrimRight(l, " ") == want {
				found = true
			}
		}
		if !found {
			t.Errorf("output lacks the line %q\n%s", want, out)
		}
	}
	if !strings.HasPrefix(header, "  QUEUE ") {
		t.Errorf("header %q", header)
	}
	for _, absent := range []string{"Tother", "other.s1", "reply_", "T_fanout_x", "Live servers"} {
		if strings.Contains(out, absent) {
			t.Errorf("output shows %q\n%s", absent, out)
		}
	}
	if m.samples != 2 {
		t.Errorf("%d samples taken, want 2", m.samples)
	}
}

func TestInspectManagementJSON(t *testing.T) {
	_, code, out, errOut := inspectMgmt(t, "--topic", "T", "--replies", "--json", "--interval", "0")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rep struct {
		Source   string      `json:"source"`
		Exchange string      `json:"exchange"`
		Queues   []queueInfo `json:"queues"`
		Servers  []any       `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output is not one object: %v\n%s", err, out)
	}
	if rep.Source != sourceManagement || rep.Exchange != "openstack" || rep.Servers == nil || len(rep.Servers) != 0 {
		t.Errorf("source %q, exchange %q, servers %v", rep.Source, rep.Exchange, rep.Servers)
	}
	var names []string
	for _, q := range rep.Queues {
		names = append(names, q.Name+":"+q.Kind+":"+strings.Join(q.Flags, "|"))
		if q.Unacked == nil || q.Ready == nil {
			t.Errorf("queue %s lacks its unacknowledged or ready count", q.Name)
		}
	}
	// One sample (--interval 0): nothing can be seen growing.
	want := "T:topic: T.busy:server: T.stopped:server:no consumer T_fanout_0123456789abcdef0123456789abcdef:fanout: reply_fedcba9876543210fedcba9876543210:reply:"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("queues\n got %s\nwant %s", got, want)
	}
}

func TestInspectManagementServerAndExchange(t *testing.T) {
	_, code, out, errOut := inspectMgmt(t, "--topic", "T", "--server", "stopped")
	if code != exitOK || !strings.Contains(out, "T.stopped") || strings.Contains(out, "T.busy") || !strings.Contains(out, "\n  T  ") {
		t.Errorf("--server stopped: exit %d, stderr %q, stdout\n%s", code, errOut, out)
	}
	m, code, out, errOut := inspectMgmt(t, "--exchange", "nova")
	if code != exitOK || !strings.Contains(out, "Queues of exchange nova") || !strings.Contains(out, "  other.s1  bound") ||
		strings.Contains(out, "T.") || !strings.Contains(out, "no --topic") {
		t.Errorf("--exchange nova: exit %d, stderr %q, stdout\n%s", code, errOut, out)
	}
	if !strings.Contains(strings.Join(m.requests, " "), "/api/exchanges/vh/nova/bindings/source") {
		t.Errorf("requests %q do not list the exchange's bindings", m.requests)
	}
	_, code, _, errOut = inspectMgmt(t, "--exchange", "nosuch")
	if code != exitUnavailable || !strings.Contains(errOut, `exchange "nosuch" not found in virtual host "vh"`) {
		t.Errorf("--exchange nosuch: exit %d, stderr %q", code, errOut)
	}
}

func TestInspectManagementErrors(t *testing.T) {
	ts := httptest.NewServer(&fakeManagement{})
	defer ts.Close()
	// Wrong credentials on an explicit --management-url: unavailable.
	code, out, errOut := runCmd(t, "inspect", "--url", "rabbit://guest:WRONGPW@127.0.0.1:1/vh", "--management-url", ts.URL,
		"--wait", "0", "--topic", "T")
	if code != exitUnavailable || !strings.Contains(errOut, `refused the credentials of user "guest"`) || strings.Contains(out+errOut, "WRONGPW") {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// No management API and no broker: unavailable.
	code, _, errOut = runCmd(t, "inspect", "--url", "rabbit://guest:SECRETPW@127.0.0.1:1/vh", "--no-management", "--topic", "T", "--timeout", "2s")
	if code != exitUnavailable || !strings.Contains(errOut, "cannot reach the broker") || strings.Contains(errOut, "SECRETPW") {
		t.Errorf("no broker: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{
		{"inspect"},
		{"inspect", "--topic", "T", "extra"},
		{"inspect", "--topic", "T", "--interval", "-1s"},
		{"inspect", "--topic", "T", "--no-management", "--management-url", "http://h/"},
		{"inspect", "--topic", "T", "--bogus"},
	} {
		if code, _, errOut := runCmd(t, args...); code != exitUsage {
			t.Errorf("omsg %q = exit %d, stderr %q; want 64", args, code, errOut)
		}
	}
}

func TestQueueKind(t *testing.T) {
	for _, tc := range []struct{ name, topic, want string }{
		{"compute", "compute", "topic"},
		{"compute.host1", "compute", "server"},
		{"compute.", "compute", ""},
		{"compute_fanout_0123456789abcdef0123456789abcdef", "compute", "fanout"},
		{"compute_fanout_0123", "compute", ""},
		{"computer", "compute", ""},
		{"reply_0123456789abcdef0123456789abcdef", "compute", "reply"},
		{"reply_0123456789abcdef0123456789abcdef", "", "reply"},
		{"anything", "", "bound"},
	} {
		if got := queueKind(tc.name, tc.topic); got != tc.want {
			t.Errorf("queueKind(%q, %q) = %q, want %q", tc.name, tc.topic, got, tc.want)
		}
	}
}

// TestInspectLiveServersMemory checks the live servers on the
// in-process bus, which has no queues to show.
func TestInspectLiveServersMemory(t *testing.T) {
	url := memURL(t)
	startServe(t, "--url", url, "--topic", "live", "--server", "s1")
	code, out, errOut := runCmd(t, "inspect", "--url", url, "--topic", "live", "--wait", "300ms")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "(from no broker)") || !strings.Contains(out, "Live servers of topic live:") {
		t.Errorf("output:\n%s", out)
	}
	var row string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "  s1 ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 9 || f[2] != "omsg" || f[3] != "serve" {
		t.Errorf("server row %q, want s1 HOST omsg serve PID UPTIME RECEIVED IN-FLIGHT FAILURES\n%s", row, out)
	}
}

// inspectJSON runs omsg inspect --json with args and decodes its report.
func inspectJSON(t *testing.T, args ...string) inspectReport {
	t.Helper()
	code, out, errOut := runCmd(t, append([]string{"inspect", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("omsg inspect %q: exit %d, stderr %q", args, code, errOut)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("omsg inspect %q: %v\n%s", args, err, out)
	}
	return rep
}

// queueByName returns the queue of rep named name.
func queueByName(rep inspectReport, name string) (queueInfo, bool) {
	for _, q := range rep.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return queueInfo{}, false
}

// TestRabbitInspectStoppedServer: a stopped server's queue keeps the
// casts sent to it, with no consumer, and inspect says so; a running
// server is among the live servers.
func TestRabbitInspectStoppedServer(t *testing.T) {
	url := rabbitVhost(t)
	s := startServe(t, "--url", url, "--topic", "insp", "--server", "s1")

	rep := inspectJSON(t, "--url", url, "--topic", "insp", "--interval", "0", "--wait", "1s")
	if len(rep.Servers) != 1 || rep.Servers[0].Server != "s1" || rep.Servers[0].Binary != "omsg serve" {
		t.Errorf("live servers %+v, want s1 of omsg serve", rep.Servers)
	}
	mgmt := rep.Source == sourceManagement
	if mgmt {
		t.Log("the management API answers on this machine: inspect used it (and AMQP with --no-management below)")
	} else {
		t.Logf("no management API on this machine (%q): inspect used AMQP passive declares", rep.Notes)
	}
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exited %d", code)
	}
	for i := range 3 {
		if code, _, errOut := runCmd(t, "cast", "--url", url, "--topic", "insp", "--server", "s1", "echo", "n="+string(rune('1'+i))); code != exitOK {
			t.Fatalf("cast: exit %d, stderr %q", code, errOut)
		}
	}

	check := func(what string, args ...string) {
		t.Helper()
		// The management API's statistics lag by its collection
		// interval: wait for them.
		deadline := time.Now().Add(30 * time.Second)
		for {
			rep := inspectJSON(t, append([]string{"--url", url, "--topic", "insp", "--interval", "0", "--wait", "500ms"}, args...)...)
			q, ok := queueByName(rep, "insp.s1")
			if ok && q.Messages == 3 && q.Consumers == 0 && strings.Join(q.Flags, ",") == flagNoConsumer {
				if len(rep.Servers) != 0 {
					t.Errorf("%s: a stopped server is live: %+v", what, rep.Servers)
				}
				t.Logf("%s (source %s): insp.s1 has 3 messages, no consumer", what, rep.Source)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: insp.s1 = %+v (found %v), want 3 messages, 0 consumers, flagged %q; report %+v", what, q, ok, flagNoConsumer, rep)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	if mgmt {
		check("management API")
	}
	check("AMQP, server named", "--no-management", "--server", "s1")

	// The table says the same.
	args := []string{"inspect", "--url", url, "--topic", "insp", "--interval", "0", "--wait", "500ms", "--server", "s1"}
	if !mgmt {
		args = append(args, "--no-management")
	}
	code, out, errOut := runCmd(t, args...)
	var row string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "  insp.s1 ") {
			row = l
		}
	}
	if f := strings.Fields(row); code != exitOK || len(f) < 8 || f[2] != "3" || f[5] != "0" || !strings.HasSuffix(row, "no consumer") {
		t.Errorf("exit %d, stderr %q, row %q\n%s", code, errOut, row, out)
	}
	if strings.Contains(out+errOut, "guest:guest") {
		t.Error("inspect printed the password")
	}
}
