package wire_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/wire"
)

// Benchmarks of the codec on messages of a typical size: 1 KB of
// arguments (or result, or payload) and a request context of the size
// that OpenStack services send. They do not run with the tests; run
// them with
//
//	go test -run '^$' -bench . -benchmem ./wire

// benchPayload returns a JSON object of exactly size bytes, shaped like
// the keyword arguments of a typical call.
func benchPayload(size int) json.RawMessage {
	head := `{"instance": {"uuid": "0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20", "name": "vm-1", ` +
		`"flavor": {"vcpus": 2, "ram": 4096, "disk": 20}, "metadata": {"k1": "v1", "k2": "v2"}}, ` +
		`"block_device_info": null, "reboot_type": "SOFT", "data": "`
	tail := `"}`
	n := size - len(head) - len(tail)
	if n < 0 {
		n = 0
	}
	return json.RawMessage(head + strings.Repeat("x", n) + tail)
}

// benchContext returns a request context with the keys and value sizes
// of a typical service's context dictionary (a Fernet-sized token, role
// list, ids).
func benchContext() map[string]any {
	return map[string]any{
		"user":                "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e",
		"user_id":             "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e",
		"user_name":           "admin",
		"user_domain":         "default",
		"user_domain_id":      "default",
		"project":             "8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b",
		"project_id":          "8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b",
		"project_name":        "admin",
		"project_domain":      "default",
		"tenant":              "8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b",
		"domain":              nil,
		"system_scope":        nil,
		"is_admin":            true,
		"is_admin_project":    true,
		"read_only":           false,
		"show_deleted":        false,
		"roles":               []any{"admin", "member", "reader"},
		"auth_token":          "gAAAAAB" + strings.Repeat("Ab3_", 45),
		"request_id":          "req-3b2f6a1e-9c4d-4e7a-8b5f-1d2c3e4f5a6b",
		"global_request_id":   nil,
		"resource_uuid":       nil,
		"user_identity":       "5f2c0a9b7d1e4c3a8b6f0e2d1c4a7b9e 8e1d3c5b7a9f4e2d6c0b1a3f5e7d9c2b - default default",
		"remote_address":      "192.0.2.10",
		"timestamp":           "2026-01-15T10:20:30.123456",
		"quota_class":         nil,
		"service_catalog":     []any{},
		"read_deleted":        "no",
		"instance_lock_check": false,
	}
}

func benchRequest() *driver.Request {
	return &driver.Request{
		Method:    "reboot_instance",
		Args:      benchPayload(1024),
		Namespace: "compute",
		Version:   "6.0",
		Context:   benchContext(),
		MsgID:     wire.NewID(),
		ReplyTo:   "reply_" + wire.NewID(),
		UniqueID:  wire.NewID(),
	}
}

func benchFailure() *driver.Failure {
	return &driver.Failure{
		Class:   "InstanceNotFound",
		Module:  "nova.exception",
		Message: "Instance 0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20 could not be found.",
		Traceback: []string{
			"Traceback (most recent call last):\n",
			"  File \"/usr/lib/python3/dist-packages/oslo_messaging/rpc/server.py\", line 165, in _process_incoming\n    res = self.dispatcher.dispatch(message)\n",
			"  File \"/usr/lib/python3/dist-packages/oslo_messaging/rpc/dispatcher.py\", line 309, in dispatch\n    return self._do_dispatch(endpoint, method, ctxt, args)\n",
			"  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 4012, in reboot_instance\n    instance = self._get_instance(context, instance_uuid)\n",
			"nova.exception.InstanceNotFound: Instance 0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20 could not be found.\n",
		},
		Args:   json.RawMessage(`[]`),
		Kwargs: json.RawMessage(`{"instance_id": "0b5f4e1c-6a4d-4b8e-9d51-2f3c7a1e9b20", "code": 404}`),
	}
}

func benchNotification() *driver.Notification {
	return &driver.Notification{
		MessageID:   wire.NewUUID(),
		PublisherID: "compute.host1",
		EventType:   "compute.instance.create.end",
		Priority:    "INFO",
		Payload:     benchPayload(1024),
		Timestamp:   "2026-01-15 10:20:30.123456",
		Context:     benchContext(),
		UniqueID:    wire.NewID(),
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	req := benchRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.EncodeRequest(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	body, err := wire.EncodeRequest(benchRequest())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeReply(b *testing.B) {
	r := &driver.Reply{Result: benchPayload(1024)}
	msgID, uid := wire.NewID(), wire.NewID()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.EncodeReply(r, msgID, uid, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReply(b *testing.B) {
	body, err := wire.EncodeReply(&driver.Reply{Result: benchPayload(1024)}, wire.NewID(), wire.NewID(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeReply(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeReplyFailure(b *testing.B) {
	r := &driver.Reply{Failure: benchFailure()}
	msgID, uid := wire.NewID(), wire.NewID()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.EncodeReply(r, msgID, uid, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReplyFailure(b *testing.B) {
	body, err := wire.EncodeReply(&driver.Reply{Failure: benchFailure()}, wire.NewID(), wire.NewID(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := wire.DecodeReply(body)
		if err != nil {
			b.Fatal(err)
		}
		if m.Failure == nil {
			b.Fatal("DecodeReply lost the failure")
		}
	}
}

func BenchmarkEncodeNotification(b *testing.B) {
	n := benchNotification()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.EncodeNotification(n, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeNotification(b *testing.B) {
	body, err := wire.EncodeNotification(benchNotification(), true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeNotification(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.NewID()
	}
}
