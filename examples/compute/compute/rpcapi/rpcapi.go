// Package rpcapi is the client side of the compute service: the calls
// and casts the conductor makes to the compute service of one host.
//
// # Versions
//
//	1.0  build_and_run_instance, reboot_instance, terminate_instance
package rpcapi

import (
	"context"
	"fmt"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// APIVersion is the newest version of the compute service's RPC API.
const APIVersion = "1.0"

// InstanceArgs carry an instance record: the arguments of
// build_and_run_instance and terminate_instance.
type InstanceArgs struct {
	Instance objects.Instance `json:"instance"`
}

// RebootInstanceArgs are the arguments of reboot_instance.
type RebootInstanceArgs struct {
	Instance   objects.Instance `json:"instance"`
	RebootType string           `json:"reboot_type"`
}

// API calls the compute services, each on its own host.
type API struct {
	client *rpc.Client
}

// NewAPI returns a client of the compute services on tr.
func NewAPI(tr *messaging.Transport) (*API, error) {
	c, err := rpc.NewClient(tr, messaging.Target{Topic: objects.ComputeTopic, Version: "1.0"},
		rpc.WithSerializer(oslocontext.Serializer{}),
		rpc.WithRemoteErrors(objects.RemoteErrors()))
	if err != nil {
		return nil, fmt.Errorf("compute rpcapi: %w", err)
	}
	return &API{client: c}, nil
}

// BuildAndRunInstance casts to the compute service of inst.Host to boot
// the instance.
func (a *API) BuildAndRunInstance(ctx context.Context, inst objects.Instance) error {
	return a.client.Prepare(rpc.ToServer(inst.Host)).Cast(ctx, "build_and_run_instance", InstanceArgs{Instance: inst})
}

// RebootInstance asks the compute service of inst.Host to reboot the
// instance, and returns its record once rebooted.
func (a *API) RebootInstance(ctx context.Context, inst objects.Instance, rebootType string) (objects.Instance, error) {
	return rpc.Call[objects.Instance](ctx, a.client.Prepare(rpc.ToServer(inst.Host)), "reboot_instance",
		RebootInstanceArgs{Instance: inst, RebootType: rebootType})
}

// TerminateInstance casts to the compute service of inst.Host to delete
// the instance.
func (a *API) TerminateInstance(ctx context.Context, inst objects.Instance) error {
	return a.client.Prepare(rpc.ToServer(inst.Host)).Cast(ctx, "terminate_instance", InstanceArgs{Instance: inst})
}
