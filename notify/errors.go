package notify

import "errors"

// Errors of package notify.
var (
	// ErrInvalidPriority is wrapped by the error of [Notifier.Notify] and
	// [ParsePriority] for a priority that is not one of oslo's seven.
	ErrInvalidPriority = errors.New("notify: invalid priority")
	// ErrRequeue, returned (possibly wrapped) by a handler, asks for the
	// notification to be delivered again later: oslo's
	// NotificationResult.REQUEUE. It is honoured only by listeners made
	// with WithAllowRequeue(true); others acknowledge the notification.
	// It is a control-flow value, like fs.SkipDir, and is not logged.
	ErrRequeue = errors.New("notify: requeue")
	// ErrListenerClosed is returned by [Listener.Serve] and
	// [Listener.Listen] after [Listener.Shutdown] or [Listener.Close].
	ErrListenerClosed = errors.New("notify: listener closed")
)
