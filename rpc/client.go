package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-oslo/messaging"
	"github.com/go-oslo/messaging/driver"
	"github.com/go-oslo/messaging/internal/version"
	"github.com/go-oslo/messaging/wire"
)

// Client invokes methods on the servers of a target: oslo's RPCClient.
// It is safe for concurrent use; [Client.Prepare] derives variants
// without changing the receiver.
type Client struct {
	tr   *messaging.Transport
	conn driver.RPCConn
	cfg  *clientConfig
	ci   callInfo
}

// NewClient returns a client whose calls go to target unless overridden
// per call. It does no I/O.
//
// It fails with an error wrapping messaging.ErrInvalidTarget if target
// has no topic, messaging.ErrInvalidOption for an invalid option, and an
// error naming the driver if the transport does not support RPC.
func NewClient(tr *messaging.Transport, target messaging.Target, opts ...ClientOption) (*Client, error) {
	if tr == nil {
		return nil, errors.New("rpc: NewClient with a nil transport")
	}
	conn, ok := tr.Conn().(driver.RPCConn)
	if !ok {
		return nil, fmt.Errorf("rpc: the %T driver does not support RPC", tr.Conn())
	}
	if target.Topic == "" {
		return nil, fmt.Errorf("%w: a topic is required to send: %v", messaging.ErrInvalidTarget, target)
	}
	c := &Client{
		tr:   tr,
		conn: conn,
		cfg:  &clientConfig{serializer: messaging.NoOpSerializer{}, logger: tr.Logger()},
		ci:   callInfo{target: target, timeout: DefaultTimeout, retry: -1},
	}
	if target.Version != "" {
		if _, err := version.Parse(target.Version); err != nil {
			return nil, fmt.Errorf("%w: %w", messaging.ErrInvalidOption, err)
		}
	}
	for _, o := range opts {
		if err := o.applyClient(c.cfg, &c.ci); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Target returns the client's target, with Prepare'd overrides applied.
func (c *Client) Target() messaging.Target { return c.ci.target }

// Prepare returns a copy of c that applies opts to every call and cast
// (oslo's prepare()). An invalid option makes the copy's calls fail with
// an error wrapping messaging.ErrInvalidOption.
func (c *Client) Prepare(opts ...CallOption) *Client {
	cp := *c
	for _, o := range opts {
		o(&cp.ci)
	}
	return &cp
}

// CanSendVersion reports whether a message at version v may be sent
// under the client's version cap: always with no cap; with a cap, only a
// version compatible with it (an empty v, oslo's None, is not).
func (c *Client) CanSendVersion(v string) bool {
	if c.ci.versionCap == "" {
		return true
	}
	return version.Compatible(c.ci.versionCap, v)
}

// Call invokes method on one server of the target with args, which must
// encode to a JSON object of keyword arguments (a struct with json tags,
// a map, or nil for none), and waits for the result, which it decodes
// into reply unless reply is nil.
//
// The ctx deadline is the call's timeout; without one, the client's
// timeout applies (default 60s). Errors matching messaging.ErrUnconfirmed
// mean the request may have been delivered (see [Retry]). The outgoing
// metadata of ctx
// (messaging.NewOutgoingContext) is sent as oslo's context.
//
// Call is at most once: after an error the method may or may not have
// run, and cancelling ctx stops only the wait. Errors: a *RemoteError
// (wrapped) when the method failed; an error matching
// context.DeadlineExceeded (or context.Canceled) when ctx ended first,
// naming the topic, method and message id; messaging.ErrHeartbeatTimeout
// when the call monitor expired; ErrVersionCap; messaging.ErrInvalidTarget
// for a fanout or topic-less target; messaging.ErrUndeliverable for a
// Mandatory call no queue receives; messaging.ErrClosed after the
// transport closed.
func (c *Client) Call(ctx context.Context, method string, args, reply any, opts ...CallOption) error {
	ci := c.callInfo(opts)
	if ci.target.Fanout {
		return fmt.Errorf("rpc: call %s: %w: a call cannot be used with fanout: %v", method, messaging.ErrInvalidTarget, ci.target)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ci.timeout)
		defer cancel()
	}
	req, err := c.newRequest(ctx, &ci, method, args)
	if err != nil {
		return err
	}
	req.MsgID = wire.NewID()
	so := driver.SendOptions{Mandatory: ci.mandatory, Retry: ci.retry, ResendUnconfirmed: ci.retrySet, MonitorTimeout: ci.monitor}
	res, err := c.conn.Call(ctx, c.tr.Address(ci.target), req, so)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, messaging.ErrHeartbeatTimeout) {
			return fmt.Errorf("rpc: call %s on %v: timed out waiting for a reply to message ID %s: %w", method, ci.target, req.MsgID, err)
		}
		return fmt.Errorf("rpc: call %s on %v (message ID %s): %w", method, ci.target, req.MsgID, err)
	}
	if res.Failure != nil {
		re := remoteErrorFrom(res.Failure, c.cfg.remoteErrors)
		return fmt.Errorf("rpc: call %s on %v: %w", method, ci.target, re)
	}
	if reply == nil {
		return nil
	}
	data, err := c.cfg.serializer.DeserializeEntity(ctx, res.Result)
	if err != nil {
		return fmt.Errorf("rpc: call %s: deserializing result: %w", method, err)
	}
	if len(data) == 0 {
		data = []byte("null")
	}
	if err := json.Unmarshal(data, reply); err != nil {
		return fmt.Errorf("rpc: call %s: decoding result: %w", method, err)
	}
	return nil
}

// Cast invokes method on the target's servers without waiting for it
// to run: on one server of the topic, on the named server with
// ToServer, or on every server with Fanout(true). It returns once the
// transport accepted the message (for RabbitMQ, once the broker
// confirmed it). A cast to a topic no server consumes is dropped, unless
// Mandatory(true), which makes it fail with messaging.ErrUndeliverable.
// Other errors are those of [Client.Call] that apply to sending.
func (c *Client) Cast(ctx context.Context, method string, args any, opts ...CallOption) error {
	ci := c.callInfo(opts)
	req, err := c.newRequest(ctx, &ci, method, args)
	if err != nil {
		return err
	}
	so := driver.SendOptions{Mandatory: ci.mandatory, Retry: ci.retry, ResendUnconfirmed: ci.retrySet}
	if err := c.conn.Cast(ctx, c.tr.Address(ci.target), req, so); err != nil {
		return fmt.Errorf("rpc: cast %s on %v: %w", method, ci.target, err)
	}
	return nil
}

// Call is the typed form of [Client.Call]: it returns the decoded result.
func Call[Reply any](ctx context.Context, c *Client, method string, args any, opts ...CallOption) (Reply, error) {
	var r Reply
	err := c.Call(ctx, method, args, &r, opts...)
	return r, err
}

func (c *Client) callInfo(opts []CallOption) callInfo {
	ci := c.ci
	for _, o := range opts {
		o(&ci)
	}
	return ci
}

// newRequest validates the call and builds its request.
func (c *Client) newRequest(ctx context.Context, ci *callInfo, method string, args any) (*driver.Request, error) {
	if ci.err != nil {
		return nil, fmt.Errorf("rpc: %s: %w", method, ci.err)
	}
	if method == "" {
		return nil, errors.New("rpc: empty method name")
	}
	if ci.target.Topic == "" {
		return nil, fmt.Errorf("rpc: %s: %w: a topic is required to send: %v", method, messaging.ErrInvalidTarget, ci.target)
	}
	if ci.versionCap != "" && !version.Compatible(ci.versionCap, ci.target.Version) {
		return nil, fmt.Errorf("%w: requested message version, %s is incompatible; it needs to be equal in major version and less than or equal in minor version as the specified version cap %s",
			ErrVersionCap, orNone(ci.target.Version), ci.versionCap)
	}
	md, _ := messaging.FromOutgoingContext(ctx)
	md, err := c.cfg.serializer.SerializeContext(ctx, md)
	if err != nil {
		return nil, fmt.Errorf("rpc: %s: serializing context: %w", method, err)
	}
	v, err := c.cfg.serializer.SerializeEntity(ctx, args)
	if err != nil {
		return nil, fmt.Errorf("rpc: %s: serializing arguments: %w", method, err)
	}
	raw, err := encodeArgs(v)
	if err != nil {
		return nil, fmt.Errorf("rpc: %s: %w", method, err)
	}
	return &driver.Request{
		Method:    method,
		Args:      raw,
		Namespace: ci.target.Namespace,
		Version:   ci.target.Version,
		Context:   md,
		UniqueID:  wire.NewID(),
	}, nil
}

// marshalJSON encodes v as compact JSON without escaping <, > and &,
// as Python's json module writes them.
func marshalJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// encodeArgs encodes keyword arguments, which must form a JSON object.
func encodeArgs(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	raw, err := marshalJSON(v)
	if err != nil {
		return nil, fmt.Errorf("encoding arguments: %w", err)
	}
	trimmed := bytes.TrimSpace(raw)
	if bytes.Equal(trimmed, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("arguments must encode to a JSON object of keyword arguments, not %s", jsonKind(trimmed))
	}
	return raw, nil
}

func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "nothing"
	case b[0] == '[':
		return "an array"
	case b[0] == '"':
		return "a string"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	default:
		return "a number"
	}
}

func orNone(v string) string {
	if v == "" {
		return "None"
	}
	return v
}
