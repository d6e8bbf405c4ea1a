package resilient

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestGetBodyOfAnotherLengthNotSent: a careless GetBody that hands out the
// body the first attempt sent (returning req.Body, or a new io.NopCloser of
// the one reader it read), now drained, makes a retry's body empty. Of
// unknown length (ContentLength 0: no length to check it against), such a
// PUT was resent after a 503 with no body at all, and the server stored
// the resource empty, where a plain client sends the caller's bytes once
// and returns the 503. A retry's body from GetBody that is not as long as
// the body the first attempt read to its end is refused as a body longer
// or shorter than its ContentLength is: the server stores nothing but the
// caller's bytes, and the call returns the 503.
func TestGetBodyOfAnotherLengthNotSent(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range []struct {
		name    string
		getBody func(req *http.Request, src io.Reader) func() (io.ReadCloser, error)
	}{
		{"the request's own body", func(req *http.Request, _ io.Reader) func() (io.ReadCloser, error) {
			return func() (io.ReadCloser, error) { return req.Body, nil }
		}},
		{"its reader read again", func(_ *http.Request, src io.Reader) func() (io.ReadCloser, error) {
			return func() (io.ReadCloser, error) { return io.NopCloser(src), nil }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var stored [][]byte
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				first := requests == 1
				mu.Unlock()
				b, err := io.ReadAll(r.Body)
				if err != nil {
					return // a body cut short: nothing stored
				}
				if first {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				mu.Lock()
				stored = append(stored, b)
				mu.Unlock()
			}))
			defer srv.Close()
			base := &http.Transport{}
			defer base.CloseIdleConnections()

			// A reader of its own type: neither in memory nor a file, so
			// that http.NewRequest sets no ContentLength and no GetBody.
			src := struct{ io.Reader }{bytes.NewReader(data)}
			req, err := http.NewRequest(http.MethodPut, srv.URL+"/v1/files/f1", src)
			if err != nil {
				t.Fatal(err)
			}
			req.GetBody = tc.getBody(req, src)
			resp, err := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker()).RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range stored {
				if !bytes.Equal(b, data) {
					t.Errorf("the server stored a PUT of %d bytes, want only the caller's %d", len(b), len(data))
				}
			}
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("RoundTrip = %v, %v; want the 503, as a plain client returns it", resp, err)
			}
		})
	}
}
