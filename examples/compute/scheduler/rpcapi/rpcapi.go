// Package rpcapi is the client side of the scheduler services. Compute
// services tell every scheduler about their host with a fanout cast, so
// that each scheduler keeps its own view of the hosts.
//
// # Versions
//
//	1.0  update_host_state (fanout), get_host_states
package rpcapi

import (
	"context"
	"fmt"
	"time"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/examples/compute/objects"
	"github.com/go-oslo/messaging/oslocontext"
	"github.com/go-oslo/messaging/rpc"
)

// APIVersion is the newest version of the scheduler's RPC API.
const APIVersion = "1.0"

// HostState is what a compute host reports of itself.
type HostState struct {
	// Host names the compute host.
	Host string `json:"host"`
	// Instances are the IDs of the instances running on it, sorted.
	Instances []string `json:"instances"`
	// UpdatedAt is when the host sent the state, in UTC.
	UpdatedAt time.Time `json:"updated_at"`
}

// UpdateHostStateArgs are the arguments of update_host_state.
type UpdateHostStateArgs struct {
	State HostState `json:"state"`
}

// Status is a scheduler's view, as get_host_states returns it.
type Status struct {
	// Scheduler is the host of the scheduler that answered.
	Scheduler string `json:"scheduler"`
	// Updates counts the update_host_state casts it received.
	Updates int `json:"updates"`
	// Hosts are the latest states of the compute hosts, by host name.
	Hosts []HostState `json:"hosts"`
}

// API calls the scheduler services.
type API struct {
	client *rpc.Client
}

// NewAPI returns a client of the scheduler services on tr.
func NewAPI(tr *messaging.Transport) (*API, error) {
	c, err := rpc.NewClient(tr, messaging.Target{Topic: objects.SchedulerTopic, Version: "1.0"},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		return nil, fmt.Errorf("scheduler rpcapi: %w", err)
	}
	return &API{client: c}, nil
}

// UpdateHostState casts the state of a compute host to every scheduler:
// a fanout cast, which each running scheduler receives once.
func (a *API) UpdateHostState(ctx context.Context, st HostState) error {
	return a.client.Prepare(rpc.Fanout(true)).Cast(ctx, "update_host_state", UpdateHostStateArgs{State: st})
}

// GetHostStates returns the view of the scheduler of the given host, or
// of any scheduler if server is empty.
func (a *API) GetHostStates(ctx context.Context, server string) (Status, error) {
	c := a.client
	if server != "" {
		c = c.Prepare(rpc.ToServer(server))
	}
	return rpc.Call[Status](ctx, c, "get_host_states", nil)
}
