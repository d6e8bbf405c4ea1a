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

// TestHedgingCopyWithABrokenBodyGivesBack checks that a hedged copy whose
// body, made by the caller's GetBody, fails as the base reads it (a
// *RequestError: the server could not act on it) gives back what it took
// from the host's hedge allowance and retry budget, as an attempt of the
// retry loop that fails so does: the caller's mistake counts against
// nothing. (The copy kept both spent: a caller whose GetBody made broken
// bodies emptied its host's allowance and budget with copies the server
// could not act on, and the retries of the host's other calls were then
// refused.)
func TestHedgingCopyWithABrokenBodyGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var errs []error
		rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			_, err := io.ReadAll(req.Body) // as net/http writes it
			req.Body.Close()
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			if err != nil {
				return nil, err
			}
			time.Sleep(100 * time.Millisecond) // the attempt itself: slow, then answered
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
		})
		tr := New(rt, WithHedging(Hedging{Delay: 20 * time.Millisecond}))
		req := newRequest(t, context.Background(), "GET", "http://api.test/search", strings.NewReader("query"))
		req.Body = streamBody("query") // not in memory: the copy's body is GetBody's
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(errReader{errors.New("disk read failed")}), nil
		}
		hb := tr.budgets.get(req)
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		time.Sleep(time.Minute) // the copy ends
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(errs) != 2 || errs[0] != nil || errs[1] == nil {
			t.Fatalf("the base read bodies with errors %v; want the attempt's whole, then the copy's broken", errs)
		}
		if got, want := hb.hedgeTokens.Load(), int64(hedgeBurst*budgetUnit); got != want {
			t.Errorf("hedge allowance %v after a copy whose body broke, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
		}
		if got, want := hb.tokens.Load(), tr.budgets.burst; got != want {
			t.Errorf("retry budget %v after a copy whose body broke, want %v (full)", float64(got)/budgetUnit, float64(want)/budgetUnit)
		}
	})
}
