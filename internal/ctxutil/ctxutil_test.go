package ctxutil

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCancelOn(t *testing.T) {
	done := make(chan struct{})
	ctx, cancel := CancelOn(context.Background(), done)
	defer cancel()
	select {
	case <-ctx.Done():
		t.Fatal("cancelled before done was closed")
	default:
	}
	close(done)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not cancelled 10 s after done was closed")
	}

	// Cancelling releases the watcher although done stays open.
	ctx2, cancel2 := CancelOn(context.Background(), make(chan struct{}))
	cancel2()
	if ctx2.Err() == nil {
		t.Fatal("cancel did not cancel")
	}
}
