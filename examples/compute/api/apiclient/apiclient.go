// Package apiclient is a Go client of the compute example's REST API,
// for the example's tests and its scripted demonstration.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-oslo/messaging/examples/compute/api"
	conductorapi "github.com/go-oslo/messaging/examples/compute/conductor/rpcapi"
	"github.com/go-oslo/messaging/examples/compute/objects"
)

// PollInterval is the interval between two requests of the Wait
// methods.
const PollInterval = 20 * time.Millisecond

// Error is an error response of the API.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the API's message.
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message) }

// StatusCode returns the HTTP status of an *Error in err, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// Client calls the REST API at BaseURL. It is safe for concurrent use.
type Client struct {
	// BaseURL is the API's URL, such as "http://127.0.0.1:8774".
	BaseURL string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// ProjectID, if set, is sent as X-Project-Id.
	ProjectID string
}

// Create creates an instance and returns it as accepted (building).
func (c *Client) Create(ctx context.Context, name, flavor string) (objects.Instance, error) {
	var r api.InstanceResponse
	err := c.do(ctx, http.MethodPost, "/v1/instances", api.CreateRequest{Name: name, Flavor: flavor}, http.StatusAccepted, &r)
	return r.Instance, err
}

// List returns the instances.
func (c *Client) List(ctx context.Context) ([]objects.Instance, error) {
	var r api.InstancesResponse
	err := c.do(ctx, http.MethodGet, "/v1/instances", nil, http.StatusOK, &r)
	return r.Instances, err
}

// Get returns one instance.
func (c *Client) Get(ctx context.Context, id string) (objects.Instance, error) {
	var r api.InstanceResponse
	err := c.do(ctx, http.MethodGet, "/v1/instances/"+id, nil, http.StatusOK, &r)
	return r.Instance, err
}

// Reboot reboots an instance ("SOFT" or "HARD"; "" is SOFT) and returns
// it rebooted.
func (c *Client) Reboot(ctx context.Context, id, rebootType string) (objects.Instance, error) {
	var r api.InstanceResponse
	err := c.do(ctx, http.MethodPost, "/v1/instances/"+id+"/reboot", api.RebootRequest{Type: rebootType}, http.StatusOK, &r)
	return r.Instance, err
}

// Delete asks for the deletion of an instance and returns it as
// accepted (deleting).
func (c *Client) Delete(ctx context.Context, id string) (objects.Instance, error) {
	var r api.InstanceResponse
	err := c.do(ctx, http.MethodDelete, "/v1/instances/"+id, nil, http.StatusAccepted, &r)
	return r.Instance, err
}

// Hosts returns the compute hosts the conductor knows.
func (c *Client) Hosts(ctx context.Context) ([]conductorapi.Host, error) {
	var r api.HostsResponse
	err := c.do(ctx, http.MethodGet, "/v1/hosts", nil, http.StatusOK, &r)
	return r.Hosts, err
}

// WaitHosts polls the API until the conductor knows at least n compute
// hosts, or ctx ends.
func (c *Client) WaitHosts(ctx context.Context, n int) ([]conductorapi.Host, error) {
	return poll(ctx, func() ([]conductorapi.Host, bool, error) {
		hosts, err := c.Hosts(ctx)
		return hosts, err == nil && len(hosts) >= n, err
	})
}

// WaitState polls the API until the instance is in state, or ctx ends.
// The state objects.StateDeleted waits until the API answers 404.
func (c *Client) WaitState(ctx context.Context, id, state string) (objects.Instance, error) {
	return poll(ctx, func() (objects.Instance, bool, error) {
		inst, err := c.Get(ctx, id)
		if state == objects.StateDeleted && StatusCode(err) == http.StatusNotFound {
			return inst, true, nil
		}
		return inst, err == nil && inst.State == state, err
	})
}

// poll calls fn every PollInterval until it reports done or ctx ends;
// then it returns the last value and, if ctx ended, ctx's error with
// the last error of fn.
func poll[T any](ctx context.Context, fn func() (T, bool, error)) (T, error) {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		v, done, err := fn()
		if done {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("waiting: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ProjectID != "" {
		req.Header.Set("X-Project-Id", c.ProjectID)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error.Message == "" {
			e.Error.Message = string(bytes.TrimSpace(data))
		}
		return &Error{StatusCode: resp.StatusCode, Message: e.Error.Message}
	}
	return json.Unmarshal(data, out)
}
