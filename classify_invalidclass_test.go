package resilient

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestClassifierInvalidClassIsPermanent: a Classifier (per call, as a
// careless caller computes one: Class(resp.StatusCode/100), an enum of its
// own) that returns a value that is none of the four classes had it taken
// for Permanent by the Report and the Attempt's Outcome, but kept as it
// was everywhere else: the Attempt's Class said class(9), and the breaker
// counted a 507 so classified as a success, where it counts a Permanent
// 507 (the host failing) as a failure, and a refused dial as a failure,
// where it excludes a Permanent one (never sent). An invalid class is
// Permanent throughout, as WithCodes refuses one: each call below ends as
// the same call classified Permanent does.
func TestClassifierInvalidClassIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name string
		step rtStep
	}{
		{"507", rtStep{status: http.StatusInsufficientStorage}},
		{"refused dial", rtStep{err: errRefused}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What each call of the class does: attempts the server saw,
			// and whether the third call was refused by the breaker.
			type result struct {
				hits    int
				refused bool
				classes []Class
			}
			run := func(cl Class) (r result) {
				synctest.Test(t, func(t *testing.T) {
					s := &rtScript{steps: []rtStep{tc.step}}
					tr := New(s, WithBreaker(BreakerSettings{ConsecutiveFailures: 2}),
						WithObserver(func(a Attempt) { r.classes = append(r.classes, a.Class) }))
					ctx := WithCallOptions(context.Background(), WithMaxRetries(0),
						WithClassifier(func(*http.Response, *APIError, error, Class) Class { return cl }))
					for range 3 {
						resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", "http://api.test/", nil))
						if err == nil {
							resp.Body.Close()
						}
						r.refused = errors.Is(err, ErrCircuitOpen)
					}
					r.hits = s.numCalls()
				})
				return r
			}
			want := run(Permanent)
			for _, cl := range []Class{9, -1} {
				got := run(cl)
				if got.hits != want.hits || got.refused != want.refused {
					t.Errorf("Classifier returning %v: %d attempts sent, third call refused by the breaker %v; want %d and %v, as for Permanent",
						cl, got.hits, got.refused, want.hits, want.refused)
				}
				for i, c := range got.classes {
					if c != Permanent {
						t.Errorf("Classifier returning %v: Attempt %d Class = %v, want permanent", cl, i+1, c)
					}
				}
			}
		})
	}
}
