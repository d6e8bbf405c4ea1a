package resilient

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestAttemptCtxAfterFuncOnceDone: a function registered with an attempt's
// context after its deadline fired still runs (on a goroutine of its own),
// and its stop reports that it could not be stopped. The context package
// registers a derived context (net/http derives one per request) after it
// found its parent's Done open: a deadline that fires in between would
// otherwise never cancel the request it should cut.
func TestAttemptCtxAfterFuncOnceDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &attemptCtx{parent: context.Background()}
		c.cancel(context.DeadlineExceeded)
		ran := make(chan struct{})
		stop := c.AfterFunc(func() { close(ran) })
		synctest.Wait()
		select {
		case <-ran:
		default:
			t.Fatal("a function registered after the deadline fired never ran")
		}
		if stop() {
			t.Error("stop() = true for a function registered once the context was done, want false")
		}
	})
}
