package resilient

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestBreakerObserverTimeIsNotTheAttempts: a breaker observer runs on the
// goroutine of the attempt whose outcome changed the breaker's state,
// before the Transport hands that attempt's response over, and may call
// the host through the Transport (WithBreakerObserver), which takes time.
// That time is not the attempt's: the half-open breaker's probe answered
// 200 within its attempt timeout, and the call returns that 200 with its
// body whole, as a plain client would. The attempt's deadline used to run
// on while the observer ran, then cut the body and turn the 200 into a
// timeout: the call resent the GET, or failed without retries.
func TestBreakerObserverTimeIsNotTheAttempts(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"breakers deliver", nil},
		{"WithMaxInFlight delivers", []Option{WithMaxInFlight(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/status" {
						time.Sleep(2 * time.Second) // the observer's call: slow
						return
					}
					if calls.Add(1) == 1 {
						w.WriteHeader(http.StatusInternalServerError)
						return
					}
					w.Write([]byte("ok"))
				})))
				defer srv.Close()
				defer srv.Transport().CloseIdleConnections()
				var tr *Transport
				var observed []error
				tr = New(srv.Transport(), append([]Option{WithMaxRetries(0), WithAttemptTimeout(time.Second),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second}),
					WithBreakerObserver(func(c BreakerChange) {
						if c.To == BreakerClosed {
							// A status check of the host, once it is back.
							ctx := WithCallOptions(context.Background(), WithAttemptTimeout(0))
							_, err := getIn(t, tr, ctx, srv.URL+"/status")
							observed = append(observed, err)
						}
					})}, tc.opts...)...)
				if code, err := getIn(t, tr, context.Background(), srv.URL+"/v1/posts"); code != http.StatusInternalServerError || err != nil {
					t.Fatalf("first call: %d, %v; want the 500 that opens the breaker", code, err)
				}
				time.Sleep(5 * time.Second) // the breaker lets a probe through
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, srv.URL+"/v1/posts", nil))
				if err != nil {
					t.Fatalf("the probe's call: %v after %d attempts; want its 200, answered within its attempt timeout", err, calls.Load())
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != "ok" || err != nil {
					t.Errorf("the probe's call: %d, body %q, %v; want 200, \"ok\"", resp.StatusCode, b, err)
				}
				if len(observed) != 1 || observed[0] != nil {
					t.Errorf("the observer's calls: %v, want one that succeeded", observed)
				}
				if n := calls.Load(); n != 2 {
					t.Errorf("%d requests to /v1/posts, want 2", n)
				}
			})
		})
	}
}
