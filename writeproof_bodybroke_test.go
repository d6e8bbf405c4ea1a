package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestWriteRetryBodyBrokeOnAConnectionKeepsTheAnswer: the retry of a write
// to a host not known to deduplicate by key (resent after a 429, which
// proves it unprocessed) whose body (a GetBody copy) breaks mid-write, on
// a connection net/http got for it, never reached the server whole: the
// server could not act on it, so the 429 is still the host's last word,
// and the call returns it, as a plain client would have, rather than the
// body's error. The body's error proves the retry unsent on a connection
// as well as without one (see provablyUnsent).
func TestWriteRetryBodyBrokeOnAConnectionKeepsTheAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return // the body cut short: nothing to act on
			}
			w.WriteHeader(http.StatusTooManyRequests)
		})))
		defer srv.Close()
		tr := New(srv.Transport(), fastRetries, WithoutBreaker())
		defer tr.CloseIdleConnections()
		const payload = `{"content":"hello"}`
		req := newRequest(t, context.Background(), http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(payload))
		req.Body = streamBody(payload) // not in memory: the retry's body is GetBody's
		var copies atomic.Int32
		req.GetBody = func() (io.ReadCloser, error) {
			copies.Add(1)
			// Not an in-memory reader: read through the Transport's
			// check, which makes its error the caller's.
			return io.NopCloser(io.MultiReader(strings.NewReader(payload[:5]), errReader{errors.New("the upload's source went away")})), nil
		}
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatalf("err = %v, want the 429 of the attempt before the retry whose body broke", err)
		}
		resp.Body.Close()
		synctest.Wait()
		if resp.StatusCode != http.StatusTooManyRequests || copies.Load() != 1 || hits.Load() != 2 {
			t.Errorf("%d after %d body copies, %d requests seen; want the 429 after 1 copy, 2 requests", resp.StatusCode, copies.Load(), hits.Load())
		}
	})
}
