package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestAttemptContextReleasedWithoutBody: the context an attempt under a
// deadline derives from a caller's cancelable context is released as soon
// as the attempt returns a response without a body (http.NoBody: a 204, a
// 304, the answer to a HEAD), which the caller has nothing to close for: a
// long-lived context (a server's, a signal's) would otherwise keep one
// registration per such call, until it ends.
func TestAttemptContextReleasedWithoutBody(t *testing.T) {
	for _, method := range readyMethods {
		t.Run(method, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := newAfterFuncCtx()
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, WithAttemptTimeout(time.Minute))
				for i := range 3 {
					resp, err := roundTrip(t, tr, newRequest(t, ctx, method, "http://api.test/", nil))
					if err != nil {
						t.Fatal(err)
					}
					if resp.Body != http.NoBody {
						t.Fatalf("body %T, want http.NoBody", resp.Body)
					}
					if n := ctx.numLive(); n != 0 {
						t.Fatalf("after call %d, answered 204 with http.NoBody: %d attempt contexts still registered with the caller's, want 0", i+1, n)
					}
				}
			})
		})
	}
}
