package faultsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/driver/rabbit"
	"github.com/go-oslo/messaging/internal/faulttest"
	"github.com/go-oslo/messaging/notify"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/wire"
)

// secCase is one malformed or malicious message of S20.
type secCase struct {
	name string
	msg  amqp.Publishing
	// class is the failure class of the reply the server must send to
	// the attacker's queue, or "" when it must send none.
	class string
	// reason is in the server's log line about the message.
	reason string
}

// secRejected is what the rabbit driver logs for a message that is not
// an oslo request.
const secRejected = "rejecting a message that is not an oslo request"

func TestIntegrationS20MalformedMessages(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S20", "malformed and malicious messages published raw on the RPC topic, between valid calls",
		"each rejected with a logged reason (a reply where oslo replies); valid calls all answered; no panic; memory bounded; topic queue drained",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	r = newSecRig(t, "S20", 75*time.Second, faulttest.NodeOptions{})
	ctx := r.ctx

	// The server accepts messages of up to 1 MiB (the option
	// max_message_size), and gives up replies to a missing queue after
	// 2 s.
	const maxSize = 1 << 20
	srvTr := r.open(secURL(r.node.URL(), append(secFast, fmt.Sprintf("max_message_size=%d", maxSize))...))
	var echoes atomic.Int64
	ep := r.workEndpoint("srv1")
	rpc.Handle(ep, "echo", func(_ context.Context, a map[string]any) (map[string]any, error) {
		echoes.Add(1)
		return a, nil
	})
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv1"}, []*rpc.Endpoint{ep})
	cliTr := r.open(secURL(r.node.URL(), secFast...))
	client := r.client(cliTr, messaging.Target{Topic: r.topic})
	if err := r.send(client, faulttest.OpCall, 10*time.Second); err != nil {
		t.Fatalf("first call: %v", err)
	}

	// The attacker: a raw AMQP client with a reply queue of its own.
	_, ch := r.rawConn(r.node.AMQPURL())
	attackQ, err := ch.QueueDeclare("sec_attacker_"+secHex(), false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	replies, err := ch.Consume(attackQ.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	call := func(fields map[string]any) map[string]any {
		fields["_msg_id"] = wire.NewID()
		fields["_reply_q"] = attackQ.Name
		fields["_unique_id"] = wire.NewID()
		return fields
	}
	req := func(fields map[string]any) amqp.Publishing { return secOslo(secRequest(t, call(fields))) }
	// envelope returns a request in an envelope of the given version.
	envelope := func(version string, fields map[string]any) []byte {
		inner, err := json.Marshal(call(fields))
		if err != nil {
			t.Fatal(err)
		}
		quoted, err := json.Marshal(string(inner))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(`{"oslo.version": "` + version + `", "oslo.message": ` + string(quoted) + `}`)
	}
	bomb := secBomb(t, 512)
	if len(bomb) >= maxSize {
		t.Fatalf("the bomb is %d bytes compressed, not under the limit", len(bomb))
	}
	bombMsg := secOslo(bomb)
	bombMsg.Headers = amqp.Table{"compression": "application/x-gzip"}
	huge := req(map[string]any{"method": "echo", "args": map[string]any{"pad": strings.Repeat("x", maxSize)}})
	missingQ := "reply_" + strings.ReplaceAll(wire.NewUUID(), "-", "") // no such queue
	ownQ := r.topic                                                    // the server's own topic queue

	cases := []secCase{
		{name: "not JSON", msg: secOslo([]byte("this is not JSON {")), reason: "invalid character"},
		{name: "empty body", msg: secOslo(nil), reason: "unexpected end of JSON input"},
		{name: "JSON but not an object", msg: secOslo([]byte(`[1, 2, 3]`)), reason: "not a JSON object"},
		{name: "wrong content type", msg: amqp.Publishing{ContentType: "text/plain", Body: secRequest(t, call(map[string]any{"method": "echo"}))}, reason: "content type"},
		{name: "envelope version 3.0", msg: secOslo(envelope("3.0", map[string]any{"method": "echo"})), reason: "unsupported envelope version"},
		{name: "over-size body", msg: huge, reason: "message too large"},
		{name: "deep nesting", msg: req(map[string]any{"method": "echo", "args": map[string]any{"x": secNested(wire.MaxDecodeDepth + 100)}}), reason: "exceeded max depth"},
		{name: "gzip bomb (512 MiB of zeros)", msg: bombMsg, reason: "message too large"},
		{name: "unknown compression", msg: amqp.Publishing{ContentType: "application/json", Headers: amqp.Table{"compression": "application/x-lzma"}, Body: []byte("x")}, reason: "unsupported compression"},
		{name: "args not an object", msg: req(map[string]any{"method": "echo", "args": []int{1}}), reason: "args is not an object"},
		{name: "_timeout not a number", msg: req(map[string]any{"method": "echo", "args": map[string]any{}, "_timeout": "soon"}), reason: "_timeout is not a number"},
		{name: "unknown method", msg: req(map[string]any{"method": "format_disk", "args": map[string]any{}}), class: "NoSuchMethod"},
		{name: "_private method", msg: req(map[string]any{"method": "_private", "args": map[string]any{}}), class: "NoSuchMethod"},
		{name: "no method", msg: req(map[string]any{"args": map[string]any{}}), class: "NoSuchMethod"},
		{name: "wrong namespace", msg: req(map[string]any{"method": "echo", "namespace": "admin", "args": map[string]any{}}), class: "UnsupportedVersion"},
		{name: "wrong major version", msg: req(map[string]any{"method": "echo", "version": "2.0", "args": map[string]any{}}), class: "UnsupportedVersion"},
		{name: "newer minor version", msg: req(map[string]any{"method": "echo", "version": "1.9", "args": map[string]any{}}), class: "UnsupportedVersion"},
		{name: "arguments of the wrong type", msg: req(map[string]any{"method": "work", "args": map[string]any{"ledger_id": 42}}), class: "TypeError"},
		{name: "bogus _reply_q", msg: secOslo(secRequest(t, map[string]any{"method": "echo", "args": map[string]any{}, "_msg_id": wire.NewID(), "_reply_q": missingQ, "_unique_id": wire.NewID()})), reason: "abandoning it"},
		{name: "_reply_q naming the server's own queue", msg: secOslo(secRequest(t, map[string]any{"method": "echo", "args": map[string]any{}, "_msg_id": wire.NewID(), "_reply_q": ownQ, "_unique_id": wire.NewID()}))},
	}
	wantEchoes := int64(2) // the two bogus _reply_q calls run: at most once, acknowledged first

	// Valid traffic throughout: 4 callers and 2 casters.
	stop := r.load(client, 4, 2, 60, 50*time.Millisecond)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for _, c := range cases {
		if err := secPublish(ctx, ch, "openstack", r.topic, c.msg); err != nil {
			t.Fatalf("publishing %s: %v", c.name, err)
		}
		// A valid call right after each, and the load meanwhile.
		if err := r.send(client, faulttest.OpCall, 2*time.Second); err != nil {
			t.Errorf("a valid call after %q failed: %v", c.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The replies the server owes the attacker.
	want := map[string]string{} // msg_id -> class
	for _, c := range cases {
		if c.class != "" {
			m, err := wire.DecodeRequest(c.msg.Body)
			if err != nil {
				t.Fatal(err)
			}
			want[m.MsgID] = c.class
		}
	}
	got := map[string]string{}
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	for len(got) < len(want) {
		select {
		case d := <-replies:
			m, err := wire.DecodeReply(d.Body)
			switch {
			case err != nil:
				t.Errorf("reply to the attacker: %v", err)
			case m.Failure == nil:
				got[m.MsgID] = "(result " + string(m.Result) + ")"
			default:
				got[m.MsgID] = m.Failure.Class
			}
		case <-wait.C:
			t.Errorf("only %d of %d replies reached the attacker's queue in 10 s", len(got), len(want))
			goto replied
		}
	}
replied:
	stop()
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	for id, class := range want {
		if got[id] != class {
			t.Errorf("reply to %s: %q, want a failure of class %s", id, got[id], class)
		}
	}
	// Wait for the abandoned reply (2 s of retries), then check that no
	// further reply came and that the topic queue is drained.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for r.logs.count("abandoning it") == 0 && wctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	extra := 0
	for drained := false; !drained; {
		select {
		case <-replies:
			extra++
		case <-time.After(500 * time.Millisecond):
			drained = true
		}
	}
	if extra > 0 {
		t.Errorf("%d replies beyond the %d owed reached the attacker", extra, len(want))
	}
	if err := r.send(client, faulttest.OpCall, 5*time.Second); err != nil {
		t.Errorf("a call after the attack: %v", err)
	}
	queues, err := r.node.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if q.Name == r.topic || q.Name == r.topic+".srv1" {
			if q.Messages != 0 {
				t.Errorf("queue %s holds %d messages after the attack (rejected messages must not be requeued)", q.Name, q.Messages)
			}
		}
	}

	// Each rejected message is logged with its reason.
	logs := r.logs.String()
	for _, c := range cases {
		if c.reason != "" && !strings.Contains(logs, c.reason) {
			t.Errorf("%s: no log line gives the reason %q", c.name, c.reason)
		}
	}
	rejected := r.logs.count(secRejected)
	wantRejected := 0
	for _, c := range cases {
		if c.class == "" && c.reason != "" && c.reason != "abandoning it" {
			wantRejected++
		}
	}
	if rejected < wantRejected {
		t.Errorf("%d messages logged as rejected, want at least %d", rejected, wantRejected)
	}
	if n := r.logs.count("panic"); n > 0 {
		t.Errorf("%d log lines mention a panic", n)
	}
	if n := echoes.Load(); n != wantEchoes {
		t.Errorf("echo ran %d times, want %d (the two calls with a bogus _reply_q)", n, wantEchoes)
	}
	// The 512 MiB bomb, the 1 MiB body and the valid traffic together:
	// far less than the bomb would cost if it were expanded.
	if allocated > 128<<20 {
		t.Errorf("the attack phase allocated %d MiB", allocated>>20)
	}
	notes.Store(fmt.Sprintf("%d malformed messages (%d rejected, %d answered with a failure, 2 run with a bad reply queue) in %v; rejections logged %d; attack phase allocated %d MiB",
		len(cases), wantRejected, len(want), time.Since(start).Round(100*time.Millisecond), rejected, allocated>>20))

	r.settle(5 * time.Second)
	r.assertCore()
	rep := r.l.Report()
	if rep.Calls.OK != rep.Calls.Sent || rep.Casts.OK != rep.Casts.Sent || rep.Casts.Executions != rep.Casts.Sent || rep.UnknownExecutions != 0 {
		t.Errorf("valid traffic was disturbed: %s", rep)
	}
	if rep.Calls.Sent < len(cases)+2 {
		t.Errorf("only %d calls were sent", rep.Calls.Sent)
	}
}

// errSecNotFound is the local error S21's client maps
// nova.exception.InstanceNotFound to.
var errSecNotFound = errors.New("instance not found")

func TestIntegrationS21RemoteExceptionMapping(t *testing.T) {
	var r *secRig
	record(t, "S21", "servers return crafted failures: registered, look-alike, unknown, plain, panicking, and with a 1 MiB traceback",
		"only registered names map to local errors; anything else is a RemoteError; traceback bounded to 64 KiB / 1000 lines and marked; message bounded to 64 KiB",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, nil)
	r = newSecRig(t, "S21", 60*time.Second, faulttest.NodeOptions{})

	bigTB := []string{"Traceback (most recent call last):\n"}
	for i := range 10000 {
		bigTB = append(bigTB, fmt.Sprintf("  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line %d, in frame_%d\n    raise\n", i, i))
	}
	bigTB = append(bigTB, "nova.exception.InstanceNotFound: instance i-1 could not be found.\n")
	bigMsg := strings.Repeat("é", 100<<10) // 200 KiB

	failures := map[string]func() error{
		"registered": func() error {
			return rpc.NewRemoteError("nova.exception.InstanceNotFound", "instance i-1 could not be found.")
		},
		"look_alike": func() error {
			return rpc.NewRemoteError("evil.nova.exception.InstanceNotFound", "not the one you mapped")
		},
		"unregistered": func() error { return rpc.NewRemoteError("nova.exception.Conflict", "conflict") },
		"plain":        func() error { return errors.New("disk on fire") },
		"panics":       func() error { panic("handler bug") },
		"huge": func() error {
			return &rpc.RemoteError{Module: "nova.exception", Class: "InstanceNotFound", Message: bigMsg, Traceback: bigTB}
		},
		"huge_unregistered": func() error {
			return &rpc.RemoteError{Module: "nova.exception", Class: "Other", Message: "x", Traceback: bigTB}
		},
	}
	ep := &rpc.Endpoint{}
	for name, fail := range failures {
		rpc.Handle(ep, name, func(_ context.Context, a secArgs) (string, error) {
			r.l.Executed(a.ID, "srv")
			return "", fail()
		})
	}
	srvTr := r.open(secURL(r.node.URL(), secFast...))
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv"}, []*rpc.Endpoint{ep})
	cliTr := r.open(secURL(r.node.URL(), secFast...))
	client := r.client(cliTr, messaging.Target{Topic: r.topic},
		rpc.WithRemoteErrors(map[string]error{"nova.exception.InstanceNotFound": errSecNotFound}))

	callErr := func(method string) error {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		defer cancel()
		id := r.l.Sent(ctx, faulttest.OpCall)
		err := client.Call(ctx, method, secArgs{ID: id}, nil)
		r.l.Returned(id, err)
		if err == nil {
			t.Errorf("%s: the call succeeded", method)
		}
		return err
	}
	remote := func(method string, err error) *rpc.RemoteError {
		var re *rpc.RemoteError
		if !errors.As(err, &re) {
			t.Errorf("%s: %v (%T) is not a RemoteError", method, err, err)
			return &rpc.RemoteError{}
		}
		return re
	}
	var tbBytes, tbLines int
	for range 2 { // each twice: one call per method and round
		err := callErr("registered")
		if re := remote("registered", err); !errors.Is(err, errSecNotFound) || re.Name() != "nova.exception.InstanceNotFound" {
			t.Errorf("registered: %v, want it mapped to %v", err, errSecNotFound)
		}
		for _, m := range []string{"look_alike", "unregistered", "plain", "panics", "huge_unregistered"} {
			err := callErr(m)
			re := remote(m, err)
			if re.Unwrap() != nil || errors.Is(err, errSecNotFound) || errors.Is(err, rpc.ErrNoSuchMethod) {
				t.Errorf("%s: %v maps to the local error %v", m, err, re.Unwrap())
			}
		}
		if re := remote("plain", callErr("plain")); re.Name() != "builtins.Exception" || re.Message != "disk on fire" {
			t.Errorf("plain error seen as %s: %q", re.Name(), re.Message)
		}
		if re := remote("panics", callErr("panics")); re.Name() != "builtins.Exception" || !strings.Contains(re.Message, "handler bug") {
			t.Errorf("panic seen as %s: %q", re.Name(), re.Message)
		}
		for _, m := range []string{"huge", "huge_unregistered"} {
			err := callErr(m)
			re := remote(m, err)
			if m == "huge" && !errors.Is(err, errSecNotFound) {
				t.Errorf("huge: %v, want it mapped to %v", err, errSecNotFound)
			}
			tbLines, tbBytes = len(re.Traceback), 0
			for _, l := range re.Traceback {
				tbBytes += len(l)
			}
			joined := strings.Join(re.Traceback, "")
			if tbBytes > 64<<10 || tbLines > 1000 || !strings.Contains(joined, "traceback truncated") {
				t.Errorf("%s: traceback of %d lines, %d bytes, marked %v; want at most 64 KiB and 1000 lines, marked",
					m, tbLines, tbBytes, strings.Contains(joined, "traceback truncated"))
			}
			if tbLines > 0 && (re.Traceback[0] != bigTB[0] || re.Traceback[tbLines-1] != bigTB[len(bigTB)-1]) {
				t.Errorf("%s: traceback from %q to %q, want its first and last lines kept", m, re.Traceback[0], re.Traceback[tbLines-1])
			}
			if m == "huge" && (len(re.Message) > 64<<10 || !strings.Contains(re.Message, "bytes omitted") || !strings.HasPrefix(bigMsg, strings.Split(re.Message, "...")[0])) {
				t.Errorf("huge: message of %d bytes (%.40q...), want its start within 64 KiB and the cut marked", len(re.Message), re.Message)
			}
		}
		if err := callErr("no_such_method"); !errors.Is(err, rpc.ErrNoSuchMethod) {
			t.Errorf("no_such_method: %v, want ErrNoSuchMethod", err)
		}
	}

	r.settle(3 * time.Second)
	r.assertCore()
	rep := r.l.Report()
	if rep.Calls.Errors[faulttest.ErrorRemote] != rep.Calls.Sent || rep.Calls.Sent == 0 {
		t.Errorf("want every call to fail with a remote error: %s", rep)
	}
	// Every call but no_such_method ran once.
	if rep.Calls.Executions != rep.Calls.Sent-2 {
		t.Errorf("%d executions for %d calls (2 to a missing method): %s", rep.Calls.Executions, rep.Calls.Sent, rep)
	}
	t.Logf("a 10002-line traceback of %d bytes arrived as %d lines, %d bytes", len(strings.Join(bigTB, "")), tbLines, tbBytes)
}

func TestIntegrationS23CredentialLeakage(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S23", "a password and an auth token travel through URLs, configs, failed connections, a forced reconnect, calls, casts and notifications",
		"neither the password (in any escaping) nor the auth token appears in fmt output (%v %+v %#v %s) of Transport, driver.URL, driver.Host, rabbit.Config, rabbit.Conn, Metadata, errors, events, or in the logs",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	r = newSecRig(t, "S23", 60*time.Second, faulttest.NodeOptions{})
	ctx := r.ctx

	const user = "secleak"
	password := "Pw" + secHex() + "@:/?#%&+ é"
	token := "gAAAAAtok" + secHex() + secHex()
	r.secUser(user, password, ".*", ".*", ".*")
	rawURL := secURL(r.userURL(user, password), secFast...)

	var outputs []string // everything formatted, with where it came from
	show := func(what string, v any) {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			outputs = append(outputs, what+" "+verb+": "+fmt.Sprintf(verb, v))
		}
	}
	var evMu sync.Mutex
	var events []string
	onEvent := func(ev driver.Event) {
		evMu.Lock()
		defer evMu.Unlock()
		events = append(events, fmt.Sprintf("%v | %+v | %#v | %v", ev, ev, ev, ev.Err))
	}

	// URL, hosts, config and the transport, connected.
	u, err := driver.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hosts[0].Password != password {
		t.Fatalf("the URL's password decodes to %q", u.Hosts[0].Password)
	}
	show("driver.URL", u)
	show("driver.URL value", *u)
	show("driver.Host", u.Hosts[0])
	show("[]driver.Host", u.Hosts)
	cfg, err := rabbit.ConfigFromURL(u)
	if err != nil {
		t.Fatal(err)
	}
	show("rabbit.Config", cfg)
	show("*rabbit.Config", &cfg)
	srvTr := r.open(rawURL, messaging.WithEventHandler(onEvent))
	cliTr := r.open(rawURL, messaging.WithEventHandler(onEvent))
	show("*messaging.Transport", cliTr)
	show("Transport.URL", cliTr.URL())
	show("rabbit.Conn", cliTr.Conn())

	// Traffic with an auth token in the request context.
	md := messaging.Metadata{"auth_token": token, "request_id": "req-" + secHex(), "user": "u1", "roles": []any{"admin"}}
	show("messaging.Metadata", md)
	var handlerSaw atomic.Value
	handlerSaw.Store("")
	ep := r.workEndpoint("srv")
	rpc.Handle(ep, "fail", func(ctx context.Context, a secArgs) (string, error) {
		r.l.Executed(a.ID, "srv")
		in, _ := messaging.FromIncomingContext(ctx)
		if in["auth_token"] != token {
			t.Errorf("the handler did not get the auth token: %v", in)
		}
		handlerSaw.Store(fmt.Sprintf("%v %+v %#v %s", in, in, in, in))
		return "", errors.New("refusing the request of user u1")
	})
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv"}, []*rpc.Endpoint{ep})
	var received atomic.Value
	received.Store("")
	r.serveNotifications(srvTr, "notifications", &notify.Endpoint{Info: func(_ context.Context, n *notify.Notification) error {
		r.l.Executed(secLedgerID(n), "listener")
		received.Store(fmt.Sprintf("%v %+v %#v", n, n.Context, n.Context))
		return nil
	}})
	client := r.client(cliTr, messaging.Target{Topic: r.topic})
	notifier, err := notify.NewNotifier(cliTr, "sec.host", notify.WithSinks(notify.MessagingV2(), notify.Log(r.log)))
	if err != nil {
		t.Fatal(err)
	}
	tctx := messaging.NewOutgoingContext(ctx, md)
	burst := func() {
		for range 5 {
			_ = r.sendCtx(tctx, client, faulttest.OpCall, 3*time.Second)
			_ = r.sendCtx(tctx, client, faulttest.OpCast, 3*time.Second)
			if err := r.notifyOne(tctx, notifier, 3*time.Second); err != nil {
				t.Logf("notification: %v", err)
			}
		}
	}
	burst()
	fctx, cancel := context.WithTimeout(tctx, 5*time.Second)
	id := r.l.Sent(fctx, faulttest.OpCall)
	err = client.Call(fctx, "fail", secArgs{ID: id}, nil)
	cancel()
	r.l.Returned(id, err)
	show("remote error", err)

	// A forced reconnect of every connection, with traffic.
	r.l.MarkFault()
	if _, err := r.node.CloseConnections(ctx, ""); err != nil {
		t.Fatal(err)
	}
	recovered := false
	for range 20 { // at most 20 calls of 3 s
		if r.sendCtx(tctx, client, faulttest.OpCall, 3*time.Second) == nil {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Error("no call succeeded after the connections were closed")
	}
	burst()

	// Failed connections: a wrong password, a closed port, a bad option.
	badPass := r.open(secURL(r.userURL(user, password+"x"), "rabbit_retry_interval=1", "rabbit_interval_max=1"), messaging.WithEventHandler(onEvent))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = badPass.Ping(pctx)
	cancel()
	if err == nil {
		t.Error("Ping with a wrong password succeeded")
	}
	show("wrong-password Ping error", err)
	badClient := r.client(badPass, messaging.Target{Topic: r.topic})
	cctx, cancel := context.WithTimeout(tctx, 3*time.Second)
	err = badClient.Call(cctx, "work", secArgs{ID: "none"}, nil)
	cancel()
	show("wrong-password Call error", err)
	closed := r.open("rabbit://"+url.UserPassword(user, password).String()+"@127.0.0.1:1/?rabbit_retry_interval=1", messaging.WithEventHandler(onEvent))
	pctx, cancel = context.WithTimeout(ctx, 3*time.Second)
	err = closed.Ping(pctx)
	cancel()
	show("closed-port Ping error", err)
	_, err = messaging.Open(rawURL + "&no_such_option=1")
	show("Open error", err)
	_, err = messaging.Open("rabbit://" + url.UserPassword(user, password).String() + "@[bad")
	show("Open error, malformed URL", err)

	r.settle(5 * time.Second)
	r.assertCore()

	show("handler's incoming metadata", handlerSaw.Load())
	show("received notification", received.Load())
	evMu.Lock()
	outputs = append(outputs, events...)
	nEvents := len(events)
	evMu.Unlock()
	logs := r.logs.String()
	outputs = append(outputs, "logs: "+logs)

	secrets := map[string]string{
		"password":               password,
		"password (query form)":  url.QueryEscape(password),
		"password (path form)":   url.PathEscape(password),
		"password (userinfo)":    strings.TrimPrefix(url.UserPassword("", password).String(), ":"),
		"auth token":             token,
		"_context_auth_token":    `_context_auth_token": "` + token,
		"password (Go-quoted)":   fmt.Sprintf("%q", password),
		"auth token (Go-quoted)": fmt.Sprintf("%q", token),
	}
	leaks := 0
	for name, s := range secrets {
		var where []string
		for _, out := range outputs {
			if i := strings.Index(out, s); i >= 0 {
				w, _, _ := strings.Cut(out, ":")
				if len(where) == 0 {
					around := out[max(0, i-200):min(len(out), i+len(s)+60)]
					t.Logf("the %s in %s: ...%s...", name, w, strings.ReplaceAll(around, s, "<"+strings.ToUpper(name)+">"))
				}
				where = append(where, w)
			}
		}
		if len(where) > 0 {
			leaks += len(where)
			t.Errorf("the %s appears in: %s", name, strings.Join(where, "; "))
		}
	}
	// The check must see what it looks for: the user name and the
	// request id are printed.
	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, user) || !strings.Contains(all, md["request_id"].(string)) {
		t.Errorf("the outputs show neither the user %q nor the request id: the check looks at nothing", user)
	}
	if !strings.Contains(logs, "refusing the request") || nEvents == 0 {
		t.Errorf("the logs miss the handler's failure, or no event was seen (%d): the check looks at nothing", nEvents)
	}
	rep := r.l.Report()
	if !rep.Recovered || rep.Notifications.OK == 0 || rep.Calls.OK == 0 {
		t.Errorf("traffic did not flow: %s", rep)
	}
	notes.Store(fmt.Sprintf("%d formatted outputs, %d events, %d KiB of logs checked for %d secret forms: %d leaks",
		len(outputs), nEvents, len(logs)>>10, len(secrets), leaks))
}

func TestIntegrationS22TLS(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S22", "TLS: server certificates for the wrong host, expired, from an untrusted CA; client certificates with EXTERNAL",
		"the three bad certificates are refused at once with an error naming the cause, hostname verification is on by default, a call over them fails by its deadline; EXTERNAL logs in as the certificate's name and calls, casts work over TLS",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	// The nodes with bad certificates first, so that the rig's goroutine
	// baseline counts their process watchers.
	wrongHost := faulttest.StartNode(t, faulttest.NodeOptions{Name: "secs22host", TLS: &faulttest.TLSOptions{Hosts: []string{"wrong.invalid"}}})
	expired := faulttest.StartNode(t, faulttest.NodeOptions{Name: "secs22exp", TLS: &faulttest.TLSOptions{Expired: true}})
	r = newSecRig(t, "S22", 80*time.Second, faulttest.NodeOptions{TLS: &faulttest.TLSOptions{External: true, ClientName: "sec-client"}})
	ctx := r.ctx
	good := r.node.TLS()

	ping := func(name, rawURL string) secTLSOutcome {
		tr, err := messaging.Open(rawURL, messaging.WithLogger(r.log))
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		defer tr.Close()
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		start := time.Now()
		err = tr.Ping(pctx)
		return secTLSOutcome{name, err, time.Since(start)}
	}
	var lines []string
	refused := func(o secTLSOutcome, want ...string) {
		lines = append(lines, fmt.Sprintf("%s: refused after %v", o.name, o.took.Round(time.Millisecond)))
		if o.err == nil {
			t.Errorf("%s: connected; want a refusal", o.name)
			return
		}
		for _, w := range want {
			if !strings.Contains(o.err.Error(), w) {
				t.Errorf("%s: %v; want an error mentioning %q", o.name, o.err, w)
			}
		}
		// A bad certificate is no transient failure: no retry loop
		// until the deadline.
		if errors.Is(o.err, context.DeadlineExceeded) || o.took > 10*time.Second {
			t.Errorf("%s: refused only after %v (%v): want the TLS error at once, not retries until the deadline", o.name, o.took, o.err)
		}
		t.Logf("%s: %v", o.name, o.err)
	}
	accepted := func(o secTLSOutcome) {
		lines = append(lines, fmt.Sprintf("%s: accepted", o.name))
		if o.err != nil {
			t.Errorf("%s: %v; want a connection", o.name, o.err)
		}
	}

	// Refusals.
	refused(ping("wrong host", secTLSURL(t, wrongHost.TLS(), "localhost")), "x509", "wrong.invalid")
	refused(ping("expired", secTLSURL(t, expired.TLS(), "localhost")), "x509", "expired")
	refused(ping("untrusted CA", secTLSURL(t, good, "localhost", "ssl_ca_file="+good.OtherCAFile)), "x509", "unknown authority")
	refused(ping("system roots only", secTLSURL(t, good, "localhost", "ssl_ca_file=")), "x509", "unknown authority")
	refused(ping("expired, hostname check off", secTLSURL(t, expired.TLS(), "localhost", "ssl_enforce_hostname_verification=false")), "expired")
	refused(ping("untrusted CA, hostname check off", secTLSURL(t, good, "localhost", "ssl_ca_file="+good.OtherCAFile, "ssl_enforce_hostname_verification=false")), "unknown authority")
	// Hostname verification is on by default: only switching it off
	// accepts the wrong host's (well signed) certificate.
	accepted(ping("wrong host, hostname check off", secTLSURL(t, wrongHost.TLS(), "localhost", "ssl_enforce_hostname_verification=false")))
	accepted(ping("good, by name", secTLSURL(t, good, "localhost")))
	accepted(ping("good, by address", secTLSURL(t, good, "127.0.0.1")))
	refused(ping("EXTERNAL without a client certificate",
		secTLSURL(t, good, "localhost", "rabbit_login_method=EXTERNAL", "ssl_cert_file=", "ssl_key_file=")), "403")

	// A call over a refused connection fails by its deadline.
	badTr := r.open(secTLSURL(t, wrongHost.TLS(), "localhost"))
	badClient := r.client(badTr, messaging.Target{Topic: r.topic})
	callErr := r.send(badClient, faulttest.OpCall, 2*time.Second)
	switch {
	case callErr == nil:
		t.Error("a call over a wrong-host connection succeeded")
	case !strings.Contains(callErr.Error(), "x509"):
		// The caller sees a timeout; the cause is in the logs.
		lines = append(lines, "call over the wrong host: a timeout that does not name the certificate")
		t.Logf("call over a wrong-host connection: %v", callErr)
	}
	if r.logs.count("x509: certificate is valid for wrong.invalid") == 0 {
		t.Error("the certificate error of the wrong host is not logged")
	}

	// EXTERNAL: the server and the client log in with the client
	// certificate, whose common name is the user.
	extURL := secURL(strings.Replace(secTLSURL(t, good, "localhost", "rabbit_login_method=EXTERNAL"), "guest:guest@", "", 1), secFast...)
	srvTr := r.open(extURL)
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv"}, []*rpc.Endpoint{r.workEndpoint("srv")})
	cliTr := r.open(extURL)
	client := r.client(cliTr, messaging.Target{Topic: r.topic})
	for range 10 {
		if err := r.send(client, faulttest.OpCall, 5*time.Second); err != nil {
			t.Errorf("call over TLS with EXTERNAL: %v", err)
		}
		if err := r.send(client, faulttest.OpCast, 5*time.Second); err != nil {
			t.Errorf("cast over TLS with EXTERNAL: %v", err)
		}
	}
	conns, err := r.node.ListConnections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]int{}
	for _, c := range conns {
		users[c.User]++
	}
	if users[good.ClientName] < 2 || users["guest"] > 0 {
		t.Errorf("connections by user %v: want the library's connections logged in as %q, none as guest", users, good.ClientName)
	}
	notes.Store(strings.Join(lines, "; ") + fmt.Sprintf("; EXTERNAL connections by user %v", users))

	r.settle(5 * time.Second)
	r.assertCore()
	rep := r.l.Report()
	if rep.Calls.OK != 10 || rep.Casts.OK != 10 || rep.Casts.Executions != 10 {
		t.Errorf("want 10 calls and 10 casts over EXTERNAL: %s", rep)
	}
}

func TestIntegrationS18PreconditionAndPermission(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S18", "queues and exchanges pre-declared with other arguments, type or durability; a user without configure permission",
		"each error reaches the caller (Listen, Call, Cast, Notify) with the broker's code (406, 403) at once, without a retry loop; the library keeps working for the rest",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	r = newSecRig(t, "S18", 60*time.Second, faulttest.NodeOptions{})
	ctx := r.ctx
	var lines []string

	// Objects declared beforehand by someone else, with other arguments.
	_, ch := r.rawConn(r.node.AMQPURL())
	if _, err := ch.QueueDeclare(r.topic, false, false, false, false, amqp.Table{"x-max-length": int32(5)}); err != nil {
		t.Fatal(err)
	}
	fanoutEx := "sec_fanout_" + secHex()
	if err := ch.ExchangeDeclare(fanoutEx, "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	durableEx := "sec_durable_" + secHex()
	if err := ch.ExchangeDeclare(durableEx, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	tr := r.open(secURL(r.node.URL(), secFast...))
	timed := func(name string, f func(context.Context) error) secRefusal {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		err := f(fctx)
		return secRefusal{name, err, time.Since(start)}
	}
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: r.topic, Server: "srv"}, []*rpc.Endpoint{r.workEndpoint("srv")})
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, secCheckRefusal(t, timed("Listen on a topic queue declared with x-max-length", srv.Listen), 406))
	_ = srv.Close()
	client := r.client(tr, messaging.Target{Topic: r.topic})
	castTo := func(exchange string) func(context.Context) error {
		return func(ctx context.Context) error {
			c := r.client(tr, messaging.Target{Topic: r.topic, Exchange: exchange})
			id := r.l.Sent(ctx, faulttest.OpCast)
			err := c.Cast(ctx, "work", secArgs{ID: id})
			r.l.Returned(id, err)
			return err
		}
	}
	lines = append(lines, secCheckRefusal(t, timed("Cast to a control exchange declared as fanout", castTo(fanoutEx)), 406))
	lines = append(lines, secCheckRefusal(t, timed("Cast to a control exchange declared durable", castTo(durableEx)), 406))

	// The library still works on a topic of its own.
	other := r.topic + "ok"
	r.serve(tr, messaging.Target{Topic: other, Server: "srv"}, []*rpc.Endpoint{r.workEndpoint("srv")})
	okClient := r.client(tr, messaging.Target{Topic: other})
	for range 5 {
		if err := r.send(okClient, faulttest.OpCall, 5*time.Second); err != nil {
			t.Errorf("a call to a sound topic: %v", err)
		}
	}

	// A user without configure permission: it may publish and consume
	// but declare nothing.
	r.secUser("secnoconf", "pw-noconf", "^$", ".*", ".*")
	ntr := r.open(secURL(r.userURL("secnoconf", "pw-noconf"), secFast...))
	nsrv, err := rpc.NewServer(ntr, messaging.Target{Topic: other, Server: "srv2"}, []*rpc.Endpoint{r.workEndpoint("srv2")})
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, secCheckRefusal(t, timed("Listen without configure permission", nsrv.Listen), 403))
	_ = nsrv.Close()
	nclient := r.client(ntr, messaging.Target{Topic: other})
	lines = append(lines, secCheckRefusal(t, timed("Call without configure permission", func(ctx context.Context) error {
		return r.sendCtx(ctx, nclient, faulttest.OpCall, 5*time.Second)
	}), 403))
	lines = append(lines, secCheckRefusal(t, timed("Cast without configure permission", func(ctx context.Context) error {
		return r.sendCtx(ctx, nclient, faulttest.OpCast, 5*time.Second)
	}), 403))
	notifier, err := notify.NewNotifier(ntr, "sec.host", notify.WithSinks(notify.MessagingV2()))
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, secCheckRefusal(t, timed("Notify without configure permission", func(ctx context.Context) error {
		return notifier.Info(ctx, "sec.event", secArgs{ID: "none"})
	}), 403))
	_ = client

	retries := r.logs.count("retrying")
	lines = append(lines, fmt.Sprintf("log lines about retrying: %d", retries))
	notes.Store(strings.Join(lines, "; "))
	r.settle(3 * time.Second)
	r.assertCore()
	rep := r.l.Report()
	if rep.Calls.OK != 5 {
		t.Errorf("want the 5 calls to the sound topic answered: %s", rep)
	}
}

func TestIntegrationS24LeastPrivilege(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S24", "a user whose permissions cover only its own topic's names (configure/write/read regexes and topic permissions on the control exchange)",
		"calls, casts, server casts, fanout casts and notifications all work under those permissions; names of other services are refused with 403",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	r = newSecRig(t, "S24", 60*time.Second, faulttest.NodeOptions{})
	ctx := r.ctx
	notifyTopic := "secnotif" + secHex()
	configure, write, read, routing := secPermissions(r.topic, notifyTopic)
	r.secUser("secsvc", "pw-svc", configure, write, read)
	if _, err := r.node.Ctl(ctx, "set_topic_permissions", "-p", "/", "secsvc", "openstack", routing, routing); err != nil {
		t.Fatal(err)
	}
	t.Logf("permissions: configure %s write %s read %s; topic (openstack) %s", configure, write, read, routing)
	svcURL := secURL(r.userURL("secsvc", "pw-svc"), secFast...)

	srvTr := r.open(svcURL)
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv1"}, []*rpc.Endpoint{r.workEndpoint("srv1")})
	r.serve(srvTr, messaging.Target{Topic: r.topic, Server: "srv2"}, []*rpc.Endpoint{r.workEndpoint("srv2")})
	r.serveNotifications(srvTr, notifyTopic, &notify.Endpoint{Info: func(_ context.Context, n *notify.Notification) error {
		r.l.Executed(secLedgerID(n), "listener")
		return nil
	}})
	cliTr := r.open(svcURL)
	client := r.client(cliTr, messaging.Target{Topic: r.topic})
	notifier, err := notify.NewNotifier(cliTr, "sec.host", notify.WithSinks(notify.MessagingV2()), notify.WithTopics(notifyTopic))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		for _, op := range []faulttest.Op{faulttest.OpCall, faulttest.OpCast, faulttest.OpFanout} {
			if err := r.send(client, op, 3*time.Second); err != nil {
				t.Errorf("%s under least privilege: %v", op, err)
			}
		}
		if err := r.send(client, faulttest.OpCall, 3*time.Second, rpc.ToServer("srv2")); err != nil {
			t.Errorf("call to srv2 under least privilege: %v", err)
		}
		if err := r.notifyOne(ctx, notifier, 3*time.Second); err != nil {
			t.Errorf("notification under least privilege: %v", err)
		}
	}

	// Another service's names are out of reach.
	var lines []string
	otherTopic := "secother" + secHex()
	osrv, err := rpc.NewServer(srvTr, messaging.Target{Topic: otherTopic, Server: "srv1"}, []*rpc.Endpoint{r.workEndpoint("srv1")})
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start := time.Now()
	err = osrv.Listen(lctx)
	cancel()
	lines = append(lines, secCheckRefusal(t, secRefusal{"Listen on another service's topic", err, time.Since(start)}, 403))
	_ = osrv.Close()
	oclient := r.client(cliTr, messaging.Target{Topic: otherTopic})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start = time.Now()
	err = oclient.Cast(cctx, "work", secArgs{ID: "none"})
	cancel()
	lines = append(lines, secCheckRefusal(t, secRefusal{"Cast to another service's topic", err, time.Since(start)}, 403))
	// And the service still works after those refusals.
	for range 3 {
		if err := r.send(client, faulttest.OpCall, 3*time.Second); err != nil {
			t.Errorf("call after the refusals: %v", err)
		}
	}
	notes.Store(strings.Join(lines, "; ") + "; configure " + configure)

	r.settle(5 * time.Second) // the notification queue stays, as oslo's do
	r.assertCore()
	rep := r.l.Report()
	if rep.Calls.OK != 23 || rep.Casts.Executions != 10 || rep.Fanouts.Executions != 20 || rep.Notifications.Executions != 10 {
		t.Errorf("want 23 calls answered, 10 casts, 10 fanout casts run by 2 servers, 10 notifications: %s", rep)
	}
}

func TestIntegrationS25SenderIdentity(t *testing.T) {
	var r *secRig
	var notes atomic.Value
	notes.Store("")
	record(t, "S25", "messages published with the AMQP user_id property: the sender's own, a forged one, and the library's own publishes",
		"the broker refuses a forged user_id (channel error 406); a true one is delivered and served; the library sets no user_id by default and the login user with stamp_user_id",
		func() *faulttest.Report {
			if r == nil {
				return nil
			}
			return r.report()
		}, func() string { return notes.Load().(string) })
	r = newSecRig(t, "S25", 60*time.Second, faulttest.NodeOptions{})
	ctx := r.ctx
	tr := r.open(secURL(r.node.URL(), secFast...))
	r.serve(tr, messaging.Target{Topic: r.topic, Server: "srv"}, []*rpc.Endpoint{r.workEndpoint("srv")})
	client := r.client(tr, messaging.Target{Topic: r.topic})
	if err := r.send(client, faulttest.OpCall, 10*time.Second); err != nil {
		t.Fatalf("first call: %v", err)
	}

	// A raw sender, logged in as guest, casts with user_id guest: the
	// broker validates it and the server runs the cast.
	conn, ch := r.rawConn(r.node.AMQPURL())
	cast := func(userID string) (string, error) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		id := r.l.Sent(cctx, faulttest.OpCast)
		msg := secOslo(secRequest(t, map[string]any{"method": "work", "args": map[string]any{"ledger_id": id}, "_unique_id": wire.NewID()}))
		msg.UserId = userID
		err := secPublish(cctx, ch, "openstack", r.topic, msg)
		r.l.Returned(id, err)
		return id, err
	}
	if _, err := cast("guest"); err != nil {
		t.Errorf("a cast with the sender's own user_id: %v", err)
	}

	// A forged user_id closes the channel with 406.
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	_, err := cast("nova-admin")
	var forged *amqp.Error
	select {
	case forged = <-closed:
	case <-time.After(10 * time.Second):
	}
	switch {
	case forged == nil:
		t.Errorf("a cast with a forged user_id was not refused (publish error %v)", err)
	case forged.Code != amqp.PreconditionFailed || !strings.Contains(forged.Reason, "user_id"):
		t.Errorf("a forged user_id: channel closed with %v; want 406 about user_id", forged)
	default:
		t.Logf("forged user_id refused: %v (publish returned %v)", forged, err)
	}
	if err == nil {
		t.Error("the forged publish was confirmed")
	}

	// What the library sends: a raw consumer takes a cast of the
	// library from a queue of its own on the same exchange.
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	probeTopic := r.topic + "probe"
	if _, err := ch2.QueueDeclare(probeTopic, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch2.QueueBind(probeTopic, probeTopic, "openstack", false, nil); err != nil {
		t.Fatal(err)
	}
	// The library's casts, without and with stamp_user_id: the first
	// carries no user_id, the second the login user, which the broker
	// accepted.
	probe := func(ptr *messaging.Transport) amqp.Delivery {
		pclient := r.client(ptr, messaging.Target{Topic: probeTopic})
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		id := r.l.Sent(cctx, faulttest.OpCast)
		err := pclient.Cast(cctx, "work", secArgs{ID: id})
		cancel()
		r.l.Returned(id, err)
		if err != nil {
			t.Fatal(err)
		}
		var got amqp.Delivery
		var ok bool
		for range 50 { // at most 50 gets, 5 s
			if got, ok, err = ch2.Get(probeTopic, true); err != nil || ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			t.Fatalf("the library's cast did not reach the probe queue: %v", err)
		}
		if req, derr := wire.DecodeRequest(got.Body); derr == nil && strings.Contains(string(req.Args), id) {
			r.l.Executed(id, "probe")
		}
		return got
	}
	plain := probe(tr)
	stamped := probe(r.open(secURL(r.node.URL(), append(append([]string(nil), secFast...), "stamp_user_id=true")...)))
	if _, err := ch2.QueueDelete(probeTopic, false, false, false); err != nil {
		t.Errorf("deleting the probe queue: %v", err)
	}
	if plain.UserId != "" {
		t.Errorf("without stamp_user_id the library set user_id %q, want none", plain.UserId)
	}
	if stamped.UserId != "guest" {
		t.Errorf("with stamp_user_id the library set user_id %q, want the login user guest", stamped.UserId)
	}
	notes.Store(fmt.Sprintf("own user_id delivered and served; forged user_id: %v; library publishes carry user_id %q, and %q with stamp_user_id", forged, plain.UserId, stamped.UserId))

	r.settle(5 * time.Second)
	r.assertCore()
	rep := r.l.Report()
	if rep.Casts.OK != 3 || rep.Casts.Executions != 3 || rep.Casts.Sent != 4 {
		t.Errorf("want the true user_id cast and the library's two casts delivered, the forged one refused: %s", rep)
	}
}
