package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

// TestReportOnPanicKeepsTheAttemptsWait: when the base panics on an
// attempt that first waited for its turn of the rate limiter, or for a
// slot of its host (WithMaxInFlight), the Report filled before the panic
// goes on says that the call waited: Waited holds that wait, as it does
// for the same attempt when it returns. (It said 0s of a call of 1s.)
func TestReportOnPanicKeepsTheAttemptsWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"rate limiter", []Option{WithRateLimit(rate.Every(time.Second), 1)}},
		{"slot of the host", []Option{WithMaxInFlight(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if req.URL.Path == "/panic" {
						panic("base exploded")
					}
					time.Sleep(time.Second) // holds the host's one slot for 1s
					return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, tc.opts...)
				// Another call takes the limiter's token, or the
				// host's slot, for the next second.
				defer roundTripAt(t, tr, 0, http.MethodGet, "http://api.test/first")()
				synctest.Wait()
				var r Report
				ctx := WithReport(context.Background(), &r)
				mustPanic(t, "the base's panic", func() {
					tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/panic", nil))
				})
				if want := (Report{Attempts: 1, Waited: time.Second, Duration: time.Second}); r != want {
					t.Errorf("Report after a panic = %+v, want %+v: the attempt waited 1s", r, want)
				}
			})
		})
	}
}
