// Package ctxutil holds small context helpers shared by the rpc and
// notify packages.
package ctxutil

import "context"

// CancelOn returns a context derived from ctx that is also cancelled
// when done is closed, and its cancel function, which the caller must
// call to release the goroutine that watches done.
func CancelOn(ctx context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
