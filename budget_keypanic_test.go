package resilient

import (
	"context"
	"net/http"
	"testing"
)

// TestRetryBudgetKeyPanicClosesResponse: with the breakers off, the retry
// budget is the first to call BreakerSettings.Key (see RetryBudget), for
// the deposit of an answer once a host's budget is not full. A Key that
// panics on a request there takes the answer from the caller, who never
// sees it: its body must be closed on the way out, as around every
// function a caller plugs in (closeOnPanic), or its connection leaks with
// each panic a server recovers from.
func TestRetryBudgetKeyPanicClosesResponse(t *testing.T) {
	key := func(req *http.Request) string {
		if req.URL.Host == "tenantless.test" {
			panic("Key exploded")
		}
		return req.URL.Host
	}
	var body *trackedBody
	s := &rtScript{steps: []rtStep{{status: 503}, {status: 200}}}
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host == "tenantless.test" {
			body = newTrackedBody("ok")
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: req}, nil
		}
		return s.RoundTrip(req)
	})
	tr := New(base, fastRetries, WithBreaker(BreakerSettings{Key: key}), WithoutBreaker())
	// A retry of another host: its budget is no longer full, and answers
	// are deposited from now on.
	resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.numCalls() != 2 {
		t.Fatalf("%d attempts, want 2 (one retry)", s.numCalls())
	}
	mustPanic(t, "Key's panic did not reach the caller", func() {
		tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://tenantless.test/", nil))
	})
	if body == nil {
		t.Fatal("the request was not sent")
	}
	if !body.isClosed() {
		t.Error("the response that Key's panic took from the caller was not closed")
	}
}
