package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingNoCopyOfABrokenBody: a hedged copy of a write whose body,
// without GetBody and of unknown length, broke as the attempt sent it (its
// Read failed partway) is not sent: what was captured is only a prefix of
// the body, which a copy would send as the whole of it. (The attempt's
// base here reads on past the error and waits, as a RoundTripper that
// sends the body apart from waiting for the answer may.)
func TestHedgingNoCopyOfABrokenBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var bodies []string
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			b, err := io.ReadAll(req.Body)
			mu.Lock()
			i := len(bodies)
			if err == nil {
				bodies = append(bodies, string(b)) // a body the server takes whole
			} else {
				bodies = append(bodies, "")
			}
			mu.Unlock()
			wait := 10 * time.Millisecond
			if i == 0 {
				wait = time.Second
			}
			select {
			case <-time.After(wait):
				return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
		})
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithKeyHonoringHosts("api.test"))
		broken := io.NopCloser(io.MultiReader(strings.NewReader(`{"text":"hel`), errReader{errors.New("disk read failed")}))
		req := newRequest(t, context.Background(), "POST", "http://api.test/v1/posts", broken)
		req.ContentLength = 0 // unknown
		resp, err := roundTrip(t, tr, req)
		if err == nil {
			resp.Body.Close()
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for i, b := range bodies {
			if b != "" {
				t.Errorf("request %d carried %q, read to its end as a whole body; want no request with the broken body's prefix as its whole", i+1, b)
			}
		}
	})
}
