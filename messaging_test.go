package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	_ "github.com/go-oslo/messaging/driver/memory"
)

func TestTargetString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target messaging.Target
		want   string
	}{
		{messaging.Target{}, "<Target >"},
		{messaging.Target{Topic: "t", Server: "s", Fanout: true, Version: "1.0"}, "<Target topic=t, version=1.0, server=s, fanout=True>"},
		{messaging.Target{Exchange: "nova", Topic: "compute", Namespace: "ns"}, "<Target exchange=nova, topic=compute, namespace=ns>"},
	}
	for _, tc := range tests {
		if got := tc.target.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.target, got, tc.want)
		}
	}
}

func TestMetadataRedaction(t *testing.T) {
	t.Parallel()
	md := messaging.Metadata{
		"auth_token":      "tok-SECRET1",
		"request_id":      "req-1",
		"password":        "SECRET2",
		"service_catalog": []any{map[string]any{"admin_password": "SECRET3", "name": "nova"}},
		"nested":          map[string]any{"api_key": "SECRET4"},
	}
	outs := []string{md.String(), fmt.Sprint(md), fmt.Sprintf("%v|%+v|%#v|%s|%q", md, md, md, md, md)}
	outs = append(outs, fmt.Sprintf("%v", map[string]any{"ctx": md}), fmt.Sprintf("%+v", struct{ MD messaging.Metadata }{md}))
	for _, s := range outs {
		for _, secret := range []string{"SECRET1", "SECRET2", "SECRET3", "SECRET4"} {
			if strings.Contains(s, secret) {
				t.Errorf("printed metadata shows %s: %s", secret, s)
			}
		}
		if !strings.Contains(s, "req-1") {
			t.Errorf("printed metadata lost a plain value: %s", s)
		}
	}
	if md["auth_token"] != "tok-SECRET1" {
		t.Error("Redacted changed the original")
	}
}

func TestContexts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, ok := messaging.FromIncomingContext(ctx); ok {
		t.Error("incoming metadata on an empty context")
	}
	in := messaging.Metadata{"request_id": "r", "client_timeout": nil}
	ctx = messaging.NewIncomingContext(ctx, in)
	if _, ok := messaging.FromOutgoingContext(ctx); ok {
		t.Error("incoming metadata became outgoing without ForwardContext")
	}
	out, ok := messaging.FromOutgoingContext(messaging.ForwardContext(ctx))
	if !ok || out["request_id"] != "r" {
		t.Errorf("ForwardContext = %v, %v", out, ok)
	}
	if _, has := out["client_timeout"]; has {
		t.Error("ForwardContext forwarded client_timeout")
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tr, err := messaging.Open("memory://")
	if err != nil {
		t.Fatalf("Open(memory://): %v", err)
	}
	if tr.ControlExchange() != "openstack" {
		t.Errorf("ControlExchange = %q", tr.ControlExchange())
	}
	if err := tr.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	tr, err = messaging.Open("fake:", messaging.WithControlExchange("nova"))
	if err != nil {
		t.Fatalf("Open(fake:): %v", err)
	}
	if got := tr.Address(messaging.Target{Topic: "compute"}); got != (driver.Address{Exchange: "nova", Topic: "compute"}) {
		t.Errorf("Address = %+v", got)
	}
	_ = tr.Close()

	_, err = messaging.Open("rabbit://u:SECRETPW@h:5672/")
	if !errors.Is(err, messaging.ErrUnknownDriver) || !strings.Contains(err.Error(), "driver/rabbit") {
		t.Errorf("Open(rabbit) without the driver = %v, want ErrUnknownDriver naming the import", err)
	}
	for _, bad := range []string{"", "no scheme", "rabbit://u:SECRETPW@h:notaport/", "rabbit://u:SECRETPW@[::1/"} {
		_, err := messaging.Open(bad)
		if err == nil {
			t.Errorf("Open(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("Open(%q) error shows the password: %v", bad, err)
		}
	}
	if _, err := messaging.Open("nosuch://h/"); !errors.Is(err, messaging.ErrUnknownDriver) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("Open(nosuch) = %v, want ErrUnknownDriver listing registered drivers", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(){
		"nil":       func() { messaging.Register("x-nil", nil) },
		"empty":     func() { messaging.Register("", driverFunc(nil)) },
		"duplicate": func() { messaging.Register("memory", driverFunc(nil)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register %s did not panic", name)
				}
			}()
			f()
		}()
	}
	found := false
	for _, s := range messaging.Drivers() {
		found = found || s == "fake"
	}
	if !found {
		t.Errorf("Drivers() = %v, want fake among them", messaging.Drivers())
	}
}

type driverFunc func(*driver.URL) (driver.Conn, error)

func (f driverFunc) Open(u *driver.URL) (driver.Conn, error) { return f(u) }
