package resilient

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestAltProtocolSkipHedgedCopyGivesBack: a hedged copy of a GET that the
// base declines with http.ErrSkipAltProtocol never reached the wire, as a
// copy the breaker refuses: it gives back the retry budget it spent (see
// Hedging). It kept its token: with a Burst of 1, the host's next 503 was
// returned without its retry.
func TestAltProtocolSkipHedgedCopyGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked atomic.Int32
		alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			switch asked.Add(1) {
			case 1: // the first call's attempt, slow: a copy is sent
				time.Sleep(50 * time.Millisecond)
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			case 2: // its copy, declined
				return nil, http.ErrSkipAltProtocol
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})
		tr := New(alt, WithMaxRetries(1), WithRetryBudget(RetryBudget{Burst: 1}),
			WithHedging(Hedging{Delay: 10 * time.Millisecond}))
		req, _ := http.NewRequest("GET", "http://a.test/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		req, _ = http.NewRequest("GET", "http://a.test/", nil)
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("second call: %v; want the 503", err)
		}
		resp.Body.Close()
		if n := asked.Load(); n != 4 {
			t.Errorf("the base was asked %d times, want 4 (the second call's 503 retried: the declined copy spent no budget)", n)
		}
	})
}
