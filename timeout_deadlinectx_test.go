package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestAttemptContextDeadlineWhateverTheCaller: the context of an attempt
// under a deadline of the Transport's own (the attempt timeout, the call's
// budget) says that deadline, whether the caller's context can be canceled
// or not, as a plain client's request under its Timeout does: a base that
// reads it (to tell the server how long it has) sees the same deadline
// for every caller. The
// deadline still cuts the attempt when it passes, and a context derived
// from the attempt's (as net/http derives one) ends with it.
func TestAttemptContextDeadlineWhateverTheCaller(t *testing.T) {
	for _, method := range readyMethods {
		for _, caller := range []string{"background", "cancelable", "later deadline"} {
			for _, tc := range []struct {
				name string
				opt  Option
				want time.Duration
			}{
				{"attempt timeout", WithAttemptTimeout(time.Second), time.Second},
				{"budget", WithMaxElapsed(2 * time.Second), 2 * time.Second},
			} {
				t.Run(method+"/"+caller+"/"+tc.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						ctx := context.Background()
						switch caller {
						case "cancelable":
							c, cancel := context.WithCancel(ctx)
							defer cancel()
							ctx = c
						case "later deadline":
							c, cancel := context.WithTimeout(ctx, time.Hour)
							defer cancel()
							ctx = c
						}
						var deadline time.Time
						var hasDeadline bool
						var derivedErr error
						base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
							deadline, hasDeadline = req.Context().Deadline()
							derived, cancel := context.WithCancel(req.Context())
							defer cancel()
							<-derived.Done()
							derivedErr = derived.Err()
							return nil, context.Cause(req.Context())
						})
						start := time.Now()
						_, err := roundTrip(t, New(base, tc.opt, WithMaxRetries(0)), newRequest(t, ctx, method, "http://api.test/", nil))
						if !hasDeadline || deadline.Sub(start) != tc.want {
							t.Errorf("the attempt's context said its deadline was %v after the start (%v), want %v", deadline.Sub(start), hasDeadline, tc.want)
						}
						if d := time.Since(start); d != tc.want {
							t.Errorf("cut after %v, want %v", d, tc.want)
						}
						if !errors.Is(err, ErrAttemptTimeout) {
							t.Errorf("err = %v, want ErrAttemptTimeout", err)
						}
						if derivedErr == nil {
							t.Error("a context derived from the attempt's did not end with it")
						}
					})
				})
			}
		}
	}
}
