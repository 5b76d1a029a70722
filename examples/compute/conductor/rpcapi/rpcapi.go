// Package rpcapi is the client side of the conductor service: the typed
// calls and casts other services make to it, as the rpcapi module of an
// OpenStack service. Its argument types are the conductor's RPC
// contract; the conductor's manager decodes the same types.
//
// # Versions
//
// The API is versioned, and every method is sent with the version that
// introduced it, so that a conductor of an older release rejects what it
// cannot handle instead of misunderstanding it:
//
//	1.0  build_instance, list_instances, get_instance, delete_instance,
//	     list_hosts, report_host, instance_update
//	1.1  reboot_instance
//
// A client made with a version cap (the "upgrade level" of a deployment
// whose conductors are not all upgraded yet) sends nothing above the
// cap: [API.RebootInstance] then fails with [ErrVersionCapped] without
// sending, and callers choose a fallback.
package rpcapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// APIVersion is the newest version of the conductor's RPC API, the
// version its endpoint serves.
const APIVersion = "1.1"

// ErrVersionCapped is returned, wrapped, by a method whose version is
// above the client's version cap: the message was not sent.
var ErrVersionCapped = errors.New("conductor RPC API: method above the version cap")

// BuildInstanceArgs are the arguments of build_instance (1.0).
type BuildInstanceArgs struct {
	Name   string `json:"name"`
	Flavor string `json:"flavor"`
}

// InstanceArgs name an instance: the arguments of get_instance and
// delete_instance (1.0).
type InstanceArgs struct {
	InstanceID string `json:"instance_id"`
}

// Reboot types of reboot_instance.
const (
	RebootSoft = "SOFT"
	RebootHard = "HARD"
)

// RebootInstanceArgs are the arguments of reboot_instance (1.1).
type RebootInstanceArgs struct {
	InstanceID string `json:"instance_id"`
	RebootType string `json:"reboot_type"`
}

// ReportHostArgs are the arguments of report_host (1.0), which a compute
// service casts periodically to say it is alive.
type ReportHostArgs struct {
	Host string `json:"host"`
}

// InstanceUpdateArgs are the arguments of instance_update (1.0), which a
// compute service casts when an instance changes on its host.
type InstanceUpdateArgs struct {
	Instance objects.Instance `json:"instance"`
}

// Host is a compute host the conductor knows, as list_hosts returns it.
type Host struct {
	Host     string    `json:"host"`
	LastSeen time.Time `json:"last_seen"`
}

// API calls the conductor service.
type API struct {
	client *rpc.Client
}

// NewAPI returns a client of the conductor on tr. versionCap caps the
// versions it sends (empty: no cap); it fails with an error wrapping
// messaging.ErrInvalidOption if the cap is not "major.minor".
func NewAPI(tr *messaging.Transport, versionCap string) (*API, error) {
	c, err := rpc.NewClient(tr, messaging.Target{Topic: objects.ConductorTopic, Version: "1.0"},
		rpc.WithSerializer(oslocontext.Serializer{}),
		rpc.WithRemoteErrors(objects.RemoteErrors()),
		rpc.WithVersionCap(versionCap))
	if err != nil {
		return nil, fmt.Errorf("conductor rpcapi: %w", err)
	}
	return &API{client: c}, nil
}

// CanReboot reports whether the version cap allows reboot_instance (1.1).
func (a *API) CanReboot() bool { return a.client.CanSendVersion("1.1") }

// BuildInstance asks a conductor to place and build an instance, and
// returns its record once the conductor has chosen a host and sent the
// instance there; the host boots it asynchronously.
func (a *API) BuildInstance(ctx context.Context, name, flavor string) (objects.Instance, error) {
	return rpc.Call[objects.Instance](ctx, a.client, "build_instance", BuildInstanceArgs{Name: name, Flavor: flavor})
}

// ListInstances returns the instances the conductor knows, deleted ones
// excepted.
func (a *API) ListInstances(ctx context.Context) ([]objects.Instance, error) {
	return rpc.Call[[]objects.Instance](ctx, a.client, "list_instances", nil)
}

// GetInstance returns one instance, or an error matching
// objects.ErrNotFound.
func (a *API) GetInstance(ctx context.Context, id string) (objects.Instance, error) {
	return rpc.Call[objects.Instance](ctx, a.client, "get_instance", InstanceArgs{InstanceID: id})
}

// RebootInstance asks a conductor to reboot an instance on its host, and
// returns the instance once rebooted. It needs version 1.1: under a
// lower version cap it fails with an error wrapping ErrVersionCapped and
// sends nothing.
func (a *API) RebootInstance(ctx context.Context, id, rebootType string) (objects.Instance, error) {
	if !a.CanReboot() {
		return objects.Instance{}, fmt.Errorf("reboot_instance needs version 1.1: %w", ErrVersionCapped)
	}
	return rpc.Call[objects.Instance](ctx, a.client.Prepare(rpc.Version("1.1")), "reboot_instance",
		RebootInstanceArgs{InstanceID: id, RebootType: rebootType})
}

// DeleteInstance asks a conductor to delete an instance, and returns the
// instance marked deleting; its host deletes it asynchronously.
func (a *API) DeleteInstance(ctx context.Context, id string) (objects.Instance, error) {
	return rpc.Call[objects.Instance](ctx, a.client, "delete_instance", InstanceArgs{InstanceID: id})
}

// ListHosts returns the compute hosts the conductor knows.
func (a *API) ListHosts(ctx context.Context) ([]Host, error) {
	return rpc.Call[[]Host](ctx, a.client, "list_hosts", nil)
}

// ReportHost casts to a conductor that the compute service of host is
// alive and can take instances.
func (a *API) ReportHost(ctx context.Context, host string) error {
	return a.client.Cast(ctx, "report_host", ReportHostArgs{Host: host})
}

// InstanceUpdate casts the new record of an instance to a conductor.
func (a *API) InstanceUpdate(ctx context.Context, inst objects.Instance) error {
	return a.client.Cast(ctx, "instance_update", InstanceUpdateArgs{Instance: inst})
}
