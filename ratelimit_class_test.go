package resilient

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestRateLimitHeadAndOptionsAreReads: HEAD and OPTIONS count as reads, as
// GET does: a GET's 429 (Retry-After: 30) pauses them too, where a call's
// deadline of a second refuses them at once, while a POST, a write, goes.
func TestRateLimitHeadAndOptionsAreReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := throttledOnce("30")
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		if code, _ := do(t, client, "GET", "http://api.test/v1/posts"); code != http.StatusTooManyRequests {
			t.Fatalf("first read: %d, want 429", code)
		}
		for _, method := range []string{http.MethodHead, http.MethodOptions} {
			resp, err := client.Do(newRequest(t, timeoutCtx(t, time.Second), method, "http://api.test/v1/posts", nil))
			if resp != nil {
				resp.Body.Close()
			}
			if !errors.Is(err, ErrRateLimited) {
				t.Errorf("%s during the reads' pause: err = %v, want ErrRateLimited", method, err)
			}
		}
		if code, err := do(t, client, "POST", "http://api.test/v1/posts"); code != http.StatusOK {
			t.Errorf("a write during the reads' pause: %d, %v; want 200", code, err)
		}
		if n := len(srv.seen("")); n != 2 {
			t.Errorf("the server saw %d calls, want 2 (the GET and the POST)", n)
		}
	})
}
