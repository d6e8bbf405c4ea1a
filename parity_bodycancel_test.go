package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestBodyReadCancelParity: a caller that cancels its context (with a cause,
// or by its deadline) after the headers came, while the body still streams,
// reads the same error from the body through resilient.New(base) as
// through base: context.Canceled or context.DeadlineExceeded for errors.Is,
// a timeout for os.IsTimeout as net/http says it, and the cause given to
// context.WithCancelCause as context.Cause tells it.
func TestBodyReadCancelParity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		cause := errors.New("the caller's cause")
		view := func(how string, wrap func(http.RoundTripper) http.RoundTripper) string {
			s := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(h))
			defer s.Close()
			var ctx context.Context
			var cancel func()
			switch how {
			case "cause":
				c, cc := context.WithCancelCause(t.Context())
				ctx, cancel = c, func() { cc(cause) }
			case "deadline":
				c, cc := context.WithTimeout(t.Context(), time.Second)
				defer cc()
				ctx, cancel = c, func() { <-c.Done() }
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/stream", nil)
			resp, err := (&http.Client{Transport: wrap(s.Transport())}).Do(req)
			if err != nil {
				return "error " + err.Error()
			}
			defer resp.Body.Close()
			buf := make([]byte, 4)
			io.ReadFull(resp.Body, buf)
			cancel()
			_, err = io.ReadAll(resp.Body)
			return fmt.Sprintf("canceled %v, deadline %v, cause %v, os.IsTimeout %v",
				errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, cause), os.IsTimeout(err))
		}
		for _, how := range []string{"cause", "deadline"} {
			plain := view(how, func(base http.RoundTripper) http.RoundTripper { return base })
			ours := view(how, func(base http.RoundTripper) http.RoundTripper { return resilient.New(base) })
			if plain != ours {
				t.Errorf("%s: body read error:\n ours  %s\n plain %s", how, ours, plain)
			}
		}
	})
}
