package notify

import (
	"context"
	"fmt"
)

// HandlerFunc handles one notification. It returns nil when the
// notification is handled (oslo's HANDLED, or None). Returning
// ErrRequeue asks for it to be delivered again (oslo's REQUEUE), and so
// does any other error or a panic, as an exception does in oslo; the
// listener logs those. Requeueing needs WithAllowRequeue(true): without
// it the notification is acknowledged whatever the handler returns.
//
// ctx carries the request context the notification was sent with
// (messaging.FromIncomingContext; [Notification.Context] holds it too),
// after the serializer's DeserializeContext, and is cancelled when the
// listener is closed or its Serve context ends.
type HandlerFunc func(ctx context.Context, n *Notification) error

// BatchHandlerFunc handles a batch of notifications of one priority, in
// the order received. Its results are those of [HandlerFunc], for the
// whole batch: an error or ErrRequeue requeues every notification of
// the priority received in the batch, also those the endpoint's filter
// kept from it. ctx carries no request context, since each notification
// has its own: see [Notification.Context].
type BatchHandlerFunc func(ctx context.Context, batch []*Notification) error

// Endpoint receives the notifications of the priorities it has a
// handler for, among those its Filter accepts: an oslo notification
// endpoint, whose methods are named after the priorities. A listener
// consumes only the priorities that some endpoint handles.
//
// For each notification the listener calls, in order, the handler of
// every endpoint that handles its priority and accepts it, until one
// asks for a requeue: the later endpoints are then not called for this
// delivery, and are when it comes again, as in oslo.
type Endpoint struct {
	// Filter selects the notifications the endpoint receives; the zero
	// Filter accepts all.
	Filter Filter
	// The handlers, one per priority; nil handles nothing.
	Audit, Debug, Info, Warn, Error, Critical, Sample HandlerFunc
}

// BatchEndpoint is an [Endpoint] for batch listeners (see
// [NewBatchListener]): its handlers receive batches.
type BatchEndpoint struct {
	// Filter selects the notifications of each batch that the endpoint
	// receives; a handler is not called when it would get none.
	Filter Filter
	// The handlers, one per priority; nil handles nothing.
	Audit, Debug, Info, Warn, Error, Critical, Sample BatchHandlerFunc
}

// endpoint is an Endpoint or BatchEndpoint, compiled; handlers are
// indexed in oslo's priority order.
type endpoint struct {
	filter *compiledFilter
	single [len(priorities)]HandlerFunc
	batch  [len(priorities)]BatchHandlerFunc
}

func (e *endpoint) handles(i int) bool { return e.single[i] != nil || e.batch[i] != nil }

func compileEndpoint(i int, f *Filter) (endpoint, error) {
	cf, err := f.compile()
	if err != nil {
		return endpoint{}, fmt.Errorf("endpoint %d: %w", i, err)
	}
	return endpoint{filter: cf}, nil
}

func (e *Endpoint) compile(i int) (endpoint, error) {
	ep, err := compileEndpoint(i, &e.Filter)
	ep.single = [...]HandlerFunc{e.Audit, e.Debug, e.Info, e.Warn, e.Error, e.Critical, e.Sample}
	return ep, err
}

func (e *BatchEndpoint) compile(i int) (endpoint, error) {
	ep, err := compileEndpoint(i, &e.Filter)
	ep.batch = [...]BatchHandlerFunc{e.Audit, e.Debug, e.Info, e.Warn, e.Error, e.Critical, e.Sample}
	return ep, err
}
