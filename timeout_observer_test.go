package resilient

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestSlowObserverLeavesTheReturnedBodyWhole: an answer the call returns
// (a 404, a 503 on the last attempt) is in once the Transport has read
// what it reads of it; the observers' time after it, as the breaker's
// observers' time (see flushClosing), is not the attempt's to be cut by,
// nor its body's. An observer slower than what is left of the attempt
// timeout (a synchronous export) once cut the rest of the body the
// envelope peek had not read: the caller read 64 KiB, then a timeout,
// where a plain client reads the whole body.
func TestSlowObserverLeavesTheReturnedBodyWhole(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		retries int
	}{
		{"404", http.StatusNotFound, 0},
		{"last 503", http.StatusServiceUnavailable, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := `{"error":"` + strings.Repeat("x", 200_000) + `"}` // past the 64 KiB peek
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					w.Write([]byte(body))
				})))
				defer srv.Close()
				tr := New(srv.Transport(), WithAttemptTimeout(time.Second), WithMaxRetries(tc.retries),
					WithBackoff(10*time.Millisecond, 10*time.Millisecond),
					WithObserver(func(Attempt) { time.Sleep(2 * time.Second) }))
				resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/v1/posts")
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || err != nil || len(got) != len(body) {
					t.Errorf("%d: read %d of %d bytes, then %v; want the whole body, as a plain client reads it", resp.StatusCode, len(got), len(body), err)
				}
			})
		})
	}
}
