package resilient

import (
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestStalledBodyCutIsATimeout: the body of an error response whose
// envelope peek the Transport cut at maxReadWait, as it stalled, fails
// with a timeout whatever the caller's context, as a body cut by the
// attempt's deadline does (TestCutBodyErrorIsATimeout): errors.Is(err,
// context.DeadlineExceeded), os.IsTimeout and a net.Error's Timeout, and
// never context.Canceled. Under a context that can be canceled (a server
// handler's, the common case), net/http's HTTP/1 body returns the cut's
// cause, which was a plain error, no timeout; under context.Background()
// the same cut failed with context.DeadlineExceeded.
func TestStalledBodyCutIsATimeout(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		for _, cancelable := range []bool{false, true} {
			name := "HTTP/1"
			srvOpts := []resilienttest.Option(nil)
			if h2 {
				name, srvOpts = "HTTP/2", []resilienttest.Option{resilienttest.WithTLS()}
			}
			if cancelable {
				name += ", cancelable context"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := resilienttest.NewPipeServer(resilienttest.Altyaa, append(srvOpts, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", "application/json")
						w.Header().Set("Content-Length", "100")
						w.WriteHeader(http.StatusBadRequest)
						w.Write([]byte(`{"error":`))
						w.(http.Flusher).Flush()
						<-r.Context().Done() // the rest never comes
					})))...)
					defer srv.Close()
					defer srv.Transport().CloseIdleConnections()
					ctx := context.Background()
					if cancelable {
						var cancel context.CancelFunc
						ctx, cancel = context.WithCancel(ctx)
						defer cancel()
					}
					// The default budget (minutes) outlasts the
					// stall: maxReadWait cuts the peek, not a deadline.
					resp, err := New(srv.Transport()).RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/posts", nil))
					if err != nil {
						t.Fatalf("RoundTrip: %v, want the 400", err)
					}
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					checkCutBodyError(t, err)
				})
			})
		}
	}
}
