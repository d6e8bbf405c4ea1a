package resilient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestAltProtocolSkipRetriedFirstKeepsCallersBody: a Classifier that
// retries every error retries the first attempt that the base declines
// with http.ErrSkipAltProtocol; its retry, declined too, ends the call
// with the bare sentinel, and the http.Transport above sends the caller's
// request itself, its body unread. That body (a file, without GetBody,
// replayed by seeking) must still be open then: a plain client over the
// base sends it whole.
func TestAltProtocolSkipRetriedFirstKeepsCallersBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	for _, name := range []string{"file", "pipe"} {
		t.Run(name, func(t *testing.T) {
			var asked atomic.Int32
			alt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				asked.Add(1)
				return nil, http.ErrSkipAltProtocol // its body untouched, as http2's
			})
			retryAll := func(resp *http.Response, apiErr *APIError, err error, def Class) Class {
				if err != nil {
					return Transient
				}
				return def
			}
			tr := New(alt, WithBackoff(0, 0), WithMaxRetries(1), WithClassifier(retryAll))
			outer := &http.Transport{}
			defer outer.CloseIdleConnections()
			outer.RegisterProtocol("http", tr)
			client := &http.Client{Transport: outer}

			var body io.Reader
			switch name {
			case "file":
				path := filepath.Join(t.TempDir(), "upload")
				if err := os.WriteFile(path, []byte("the upload"), 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				body = f
			case "pipe":
				pr, pw := io.Pipe()
				go func() {
					io.Copy(pw, strings.NewReader("the upload"))
					pw.Close()
				}()
				body = pr
			}
			req, _ := http.NewRequest("PUT", srv.URL, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("PUT = %v; want the answer of the outer transport, as a plain client gets", err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "the upload" {
				t.Errorf("the server got %q, want %q", b, "the upload")
			}
			if n := asked.Load(); n != 2 {
				t.Errorf("the alternate base was asked %d times, want 2 (the attempt, its retry)", n)
			}
		})
	}
}
