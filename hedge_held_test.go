package resilient

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingHeldBufferedBodyKeptWhole: a success that a Classifier
// retries, read whole within its attempt (WithBufferedResponse) and
// returned once the retry is refused, reaches the caller whole, hedged or
// not (see holdResponse). The answer of a hedged attempt, its body wrapped
// so that the copy's context ends with it (see settle), was drained again
// and cut at 64 KiB, its reader failing with errBodyTruncated.
func TestHedgingHeldBufferedBodyKeptWhole(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	for _, hedged := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{body: big}}}
			opts := []Option{
				WithBufferedResponse(1 << 20),
				WithMaxElapsed(10 * time.Second),
				WithRateLimit(0.01, 1), // the retry would wait past the call's end: refused
				WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
					if resp != nil && resp.StatusCode == http.StatusOK {
						return Transient // a poll whose answer says "not yet"
					}
					return def
				}),
			}
			if hedged {
				opts = append(opts, WithHedging(Hedging{Delay: time.Second}))
			}
			tr := New(rt, opts...)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if len(b) != len(big) || err != nil {
				t.Errorf("hedged %v: read %d bytes, %v; want %d, nil (the body read whole within the attempt)", hedged, len(b), err, len(big))
			}
			if n := rt.numCalls(); n != 1 {
				t.Errorf("hedged %v: %d requests, want 1", hedged, n)
			}
		})
	}
}
