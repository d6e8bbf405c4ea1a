package resilient

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestRenewFailedIsNotTheCallersCause: a Read of an attempt's body cut by
// the caller's cancel (see cutBy) is no renewal whose GetBody failed (see
// checkedBody.renewFailed), whatever the cancel's cause wraps: a caller
// may cancel with the error of a sibling call of the Transport (errgroup
// does), which wraps errBodyNotReplayable. It was taken for one, which
// refuses every later copy's and retry's GetBody as after a renewal that
// failed. A renewal that failed is still told.
func TestRenewFailedIsNotTheCallersCause(t *testing.T) {
	sibling := &Error{Method: "POST", URL: "http://api.test/v1/posts", Attempts: 1, Err: notReplayable(errors.New("the file is gone"))}
	for _, cause := range []error{sibling, errBodyNotReplayable, fmt.Errorf("group: %w", sibling)} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		var b checkedBody
		b.cutBy(ctx)
		if b.cut.Load() == nil {
			t.Fatalf("cutBy(a context canceled with %q) cut nothing, want the cause", cause)
		}
		if err := b.renewFailed(); err != nil {
			t.Errorf("cause %q: renewFailed() = %q, want nil: the caller's cancel is no renewal that failed", cause, err)
		}
	}
}
