package oslocontext_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-oslo/messaging"
	_ "github.com/go-oslo/messaging/driver/memory"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
	"github.com/go-oslo/messaging/wire"
)

const testTimeout = 10 * time.Second

// serve runs a server for topic with the oslocontext Serializer until
// the test ends.
func serve(t *testing.T, tr *messaging.Transport, topic string, ep *rpc.Endpoint) {
	t.Helper()
	srv, err := rpc.NewServer(tr, messaging.Target{Topic: topic, Server: "host1"}, []*rpc.Endpoint{ep},
		rpc.WithSerializer(oslocontext.Serializer{}), rpc.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := srv.Listen(t.Context()); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
	})
}

func newClient(t *testing.T, tr *messaging.Transport, topic string) *rpc.Client {
	t.Helper()
	c, err := rpc.NewClient(tr, messaging.Target{Topic: topic}, rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

type seen struct {
	User      string   `json:"user"`
	Project   string   `json:"project"`
	RequestID string   `json:"request_id"`
	Token     string   `json:"token"`
	Roles     []string `json:"roles"`
	Extra     []string `json:"extra"`
	Incoming  bool     `json:"incoming"`
}

// TestSerializerOverRPC checks that a RequestContext travels from a
// client to a server, and on from that server to another, as a Python
// service passes its context to every RPC API it calls.
func TestSerializerOverRPC(t *testing.T) {
	tr, err := messaging.Open("memory:///oslocontext-" + wire.NewID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })

	backend := &rpc.Endpoint{}
	rpc.Handle(backend, "whoami", func(ctx context.Context, _ struct{}) (seen, error) {
		rc, ok := oslocontext.FromContext(ctx)
		if !ok {
			return seen{}, errors.New("no request context")
		}
		_, incoming := messaging.FromIncomingContext(ctx)
		var extra []string
		for k := range rc.Extra {
			extra = append(extra, k)
		}
		slices.Sort(extra)
		return seen{User: rc.UserID, Project: rc.ProjectID, RequestID: rc.RequestID, Token: rc.AuthToken,
			Roles: rc.Roles, Extra: extra, Incoming: incoming}, nil
	})
	serve(t, tr, "backend", backend)
	toBackend := newClient(t, tr, "backend")

	frontend := &rpc.Endpoint{}
	rpc.Handle(frontend, "relay", func(ctx context.Context, _ struct{}) (seen, error) {
		// The handler's ctx carries the caller's RequestContext: calls
		// made with it carry the context on.
		return rpc.Call[seen](ctx, toBackend, "whoami", nil)
	})
	serve(t, tr, "frontend", frontend)
	toFrontend := newClient(t, tr, "frontend")

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	rc := oslocontext.New()
	rc.UserID, rc.ProjectID, rc.AuthToken, rc.Roles = "u1", "p1", secret, []string{"member"}
	rc.Extra = map[string]any{"read_deleted": "no"}
	got, err := rpc.Call[seen](oslocontext.NewContext(ctx, rc), toFrontend, "relay", nil)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	want := seen{User: "u1", Project: "p1", RequestID: rc.RequestID, Token: secret, Roles: []string{"member"},
		Extra: []string{"read_deleted"}, Incoming: true}
	if !equalSeen(got, want) {
		t.Errorf("backend saw %+v, want %+v", got, want)
	}

	// Explicit metadata takes precedence over the RequestContext.
	octx := messaging.NewOutgoingContext(oslocontext.NewContext(ctx, rc), messaging.Metadata{"user": "explicit", "request_id": "req-explicit"})
	got, err = rpc.Call[seen](octx, toBackend, "whoami", nil)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if got.User != "explicit" || got.RequestID != "req-explicit" || got.Token != "" {
		t.Errorf("with explicit metadata the backend saw %+v", got)
	}

	// Without any context the server still makes one, as oslo's
	// from_dict({}) does.
	got, err = rpc.Call[seen](ctx, toBackend, "whoami", nil)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if got.User != "" || !requestIDRE.MatchString(got.RequestID) {
		t.Errorf("without a context the backend saw %+v, want a new request id only", got)
	}

	// A dictionary the server cannot read fails the call.
	bad := messaging.NewOutgoingContext(ctx, messaging.Metadata{"roles": "admin", "auth_token": secret})
	_, err = rpc.Call[seen](bad, toBackend, "whoami", nil)
	if err == nil || !strings.Contains(err.Error(), "invalid request context") || strings.Contains(err.Error(), secret) {
		t.Errorf("whoami with roles as a string = %v, want an invalid request context error without the token", err)
	}
}

func equalSeen(a, b seen) bool {
	return a.User == b.User && a.Project == b.Project && a.RequestID == b.RequestID && a.Token == b.Token &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Extra, b.Extra) && a.Incoming == b.Incoming
}
