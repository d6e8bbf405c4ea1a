package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRefilledQuotaSpentWaitsOneRequest: a quota refilled continuously
// (OpenAI's) that the first response announces spent, 60 requests a minute
// with none left and full again in a minute, holds the next request until
// one request is back, a second later: not sent at once into the spent
// quota, where the server's 429 awaits it, though the pace learned with it
// starts with a token.
func TestRefilledQuotaSpentWaitsOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-Ratelimit-Limit-Requests", "60")
			w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
			w.Header().Set("X-Ratelimit-Reset-Requests", "1m0s")
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		for range 2 {
			if _, err := do(t, client, http.MethodPost, "https://api.openai.com/v1/chat/completions"); err != nil {
				t.Fatal(err)
			}
		}
		a := srv.seen("")
		if len(a) != 2 {
			t.Fatalf("the server saw %d calls, want 2", len(a))
		}
		if d := a[1].at.Sub(t0); d < time.Second {
			t.Errorf("the second call arrived after %v, want at least 1s (one request of 60 a minute refilled)", d)
		}
	})
}
