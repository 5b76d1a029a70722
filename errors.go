package messaging

import (
	"errors"

	"github.com/go-oslo/messaging/driver"
)

// Errors shared by packages rpc and notify. Some are defined by package
// driver, so that drivers can return them; they are the same values.
var (
	// ErrClosed is returned by operations on a closed Transport, client,
	// server or listener.
	ErrClosed = driver.ErrClosed
	// ErrInvalidTarget is wrapped by errors for targets that do not fit
	// their use (oslo's InvalidTarget): sending without a topic, a
	// server without topic and server names, a call with fanout.
	ErrInvalidTarget = errors.New("messaging: invalid target")
	// ErrInvalidOption is wrapped by errors for options with invalid
	// values.
	ErrInvalidOption = errors.New("messaging: invalid option")
	// ErrInvalidURL is wrapped by errors for transport URLs that cannot
	// be parsed.
	ErrInvalidURL = driver.ErrInvalidURL
	// ErrUnknownDriver is wrapped by Open's error when no driver is
	// registered for the URL's scheme.
	ErrUnknownDriver = errors.New("messaging: unknown driver")
	// ErrUndeliverable is returned when a mandatory message could not be
	// routed to any queue (oslo's MessageUndeliverable).
	ErrUndeliverable = driver.ErrUndeliverable
	// ErrDeliveryFailure is returned when a message could not be handed
	// to the broker within the allowed retries (oslo's
	// MessageDeliveryFailure).
	ErrDeliveryFailure = driver.ErrDeliveryFailure
	// ErrUnconfirmed is returned when the connection was lost after a
	// message was published but before the broker confirmed it, so the
	// message may or may not have been delivered. Opting into retries
	// (rpc.Retry) re-sends it instead, with the same _unique_id.
	ErrUnconfirmed = driver.ErrUnconfirmed
	// ErrHeartbeatTimeout is returned when a call's monitor saw neither a
	// reply nor a heartbeat in time. It also matches
	// context.DeadlineExceeded.
	ErrHeartbeatTimeout = driver.ErrHeartbeatTimeout
)
