package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxElapsedSpentOnARedirectHop: a layer above the Transport that
// spends time before a hop of a redirect (a wait for a token refreshed
// between the hops) and counts it with WithMaxElapsedSpent has it counted
// as spent of what the hops before left: the chain stays within the one
// budget. Until 2026-12-06 the hop had what the hops before left, the
// time spent before it not counted: a 5m budget, a first hop of 3m and a
// wait of 1m before the second, which hangs, ended after 6m.
func TestMaxElapsedSpentOnARedirectHop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hitsB int
		base := foundThenHang(&hitsB)
		tr := New(base, WithoutBreaker(), WithoutRetryBudget())
		// The layer above: a minute's wait before the second hop.
		above := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Response == nil {
				return tr.RoundTrip(r)
			}
			time.Sleep(time.Minute)
			ctx := WithCallOptions(r.Context(), WithMaxElapsedSpent(time.Minute))
			return tr.RoundTrip(r.WithContext(ctx))
		})
		cl := &http.Client{Transport: above}
		began := time.Now()
		resp, err := cl.Do(newRequest(t, context.Background(), http.MethodGet, "http://api.test/a", nil))
		if err == nil {
			resp.Body.Close()
			t.Fatal("the call succeeded while /b hangs, want the budget's timeout")
		}
		if took := time.Since(began); took != DefaultMaxElapsed {
			t.Errorf("the call failed after %v (%v; %d attempts at /b), want %v: the chain's budget, the wait before the hop counted", took, err, hitsB, DefaultMaxElapsed)
		}
	})
}

// TestMaxElapsedSpentBeforeTheChainCountedOnce: a call whose caller
// counted a minute as spent before the chain of redirects began (its
// context, which http.Client gives every hop, carries
// WithMaxElapsedSpent) has that minute counted once, by the first hop:
// what the first hop left to the second already holds it; so when a
// middleware above the Transport copies the redirect so that nothing
// tells whose hop it is (its body wrapped, its header cloned: see
// takeCopy). Until 2026-12-06 such a copy's hop counted the minute again:
// the call failed after 3m, before any attempt at /b.
func TestMaxElapsedSpentBeforeTheChainCountedOnce(t *testing.T) {
	tests := []struct {
		name   string
		copied bool // a middleware above copies the redirect
	}{
		{"response", false},
		{"untold copy", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hitsB int
				base := foundThenHang(&hitsB)
				var rt http.RoundTripper = New(base, WithoutBreaker(), WithoutRetryBudget())
				if tc.copied {
					rt = Chain(rt, copyResponses(true, false))
				}
				cl := &http.Client{Transport: rt}
				ctx := WithCallOptions(context.Background(), WithMaxElapsedSpent(time.Minute))
				began := time.Now()
				resp, err := cl.Do(newRequest(t, ctx, http.MethodGet, "http://api.test/a", nil))
				if err == nil {
					resp.Body.Close()
					t.Fatal("the call succeeded while /b hangs, want the budget's timeout")
				}
				if took, want := time.Since(began), DefaultMaxElapsed-time.Minute; took != want || hitsB != 1 {
					t.Errorf("the call failed after %v (%v; %d attempts at /b), want %v and 1 attempt at /b: the minute spent before the chain counted once", took, err, hitsB, want)
				}
			})
		})
	}
}

// foundThenHang is the host of the WithMaxElapsedSpent redirect tests: /a
// answers a 302 to /b after 3 minutes; /b, whose requests it counts in
// hitsB, hangs until its attempt's context is done.
func foundThenHang(hitsB *int) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/a") {
			time.Sleep(3 * time.Minute)
			return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"/b"}}, Body: http.NoBody, Request: r}, nil
		}
		*hitsB++
		<-r.Context().Done()
		return nil, r.Context().Err()
	})
}
