// Package rpcapi is the client side of the billing service, which
// records the usage of instances from the compute notifications.
//
// # Versions
//
//	1.0  get_usage
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

// APIVersion is the newest version of the billing service's RPC API.
const APIVersion = "1.0"

// Usage is the billing record of one instance.
type Usage struct {
	InstanceID string `json:"instance_id"`
	Name       string `json:"name"`
	ProjectID  string `json:"project_id"`
	Flavor     string `json:"flavor"`
	Host       string `json:"host"`
	// Started is the time of compute.instance.create.end, when billing
	// starts; nil until then.
	Started *time.Time `json:"started,omitempty"`
	// Ended is the time of compute.instance.delete.end; nil while the
	// instance exists.
	Ended *time.Time `json:"ended,omitempty"`
	// Events are the event types received for the instance, in the
	// order received.
	Events []string `json:"events"`
}

// API calls the billing service.
type API struct {
	client *rpc.Client
}

// NewAPI returns a client of the billing service on tr.
func NewAPI(tr *messaging.Transport) (*API, error) {
	c, err := rpc.NewClient(tr, messaging.Target{Topic: objects.BillingTopic, Version: "1.0"},
		rpc.WithSerializer(oslocontext.Serializer{}))
	if err != nil {
		return nil, fmt.Errorf("billing rpcapi: %w", err)
	}
	return &API{client: c}, nil
}

// GetUsage returns the usage records, sorted by instance ID.
func (a *API) GetUsage(ctx context.Context) ([]Usage, error) {
	return rpc.Call[[]Usage](ctx, a.client, "get_usage", nil)
}
