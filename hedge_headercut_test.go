package resilient

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgedHeaderCutRetriedOncePerCall: a header block cut short is
// retried once per call (see cutHeaders), whichever copy of a hedged
// attempt met it. A GET whose attempt is cut in a header's name while its
// hedged copy is answered 503, the 503 deciding the attempt, is retried;
// a second cut on the retry is the server's framing, and ends the call,
// as it does without hedging (TestClassifyHeaderCutOnLaterAttempt). Before,
// the copy that decided carried its own state only, the first cut was
// forgotten, and the second was retried too.
func TestHedgedHeaderCutRetriedOncePerCall(t *testing.T) {
	// The error net/http's read of a header block cut in a name returns.
	_, cutErr := http.ReadResponse(bufio.NewReader(strings.NewReader(
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Contr")), nil)
	if cutErr == nil || !cutHeaders(cutErr) {
		t.Fatalf("ReadResponse of a cut header block: %v, want an error cutHeaders reads as a cut", cutErr)
	}
	for _, tc := range []struct {
		name          string
		attempt, copy time.Duration // when each of the first attempt's two is answered
		cutFirst      bool          // the attempt itself is cut, its copy answered 503; else the reverse
	}{
		{name: "attempt cut, copy 503", attempt: 100 * time.Millisecond, copy: 50 * time.Millisecond, cutFirst: true},
		{name: "copy cut, attempt 503", attempt: 100 * time.Millisecond, copy: 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits atomic.Int32
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					unavailable := &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}
					switch hits.Add(1) {
					case 1: // the first attempt itself
						time.Sleep(tc.attempt)
						if tc.cutFirst {
							return nil, cutErr
						}
						return unavailable, nil
					case 2: // its hedged copy
						time.Sleep(tc.copy)
						if tc.cutFirst {
							return unavailable, nil
						}
						return nil, cutErr
					case 3: // the retry: cut again
						return nil, cutErr
					}
					return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithBackoff(0, 0), WithHedging(Hedging{Delay: 20 * time.Millisecond, MaxHedges: 1}))
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", "http://api.test/v1/items", nil))
				if err == nil {
					resp.Body.Close()
				}
				synctest.Wait()
				if n := hits.Load(); n != 3 || err == nil || !errors.Is(err, cutErr) {
					t.Errorf("a cut and a 503 on a hedged attempt, then a cut: the host got the GET %d times (error %v); want 3 times, and the second cut's error", n, err)
				}
			})
		})
	}
}
