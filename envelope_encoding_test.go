package resilient

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// encode returns s compressed as Content-Encoding enc says ("deflate-raw"
// for a deflate stream without its zlib wrapper, as some servers send it).
func encode(t testing.TB, enc, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "deflate-raw":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	}
	io.WriteString(w, s)
	w.Close()
	return buf.Bytes()
}

// TestCompressedEnvelopeClassified: an error body that reaches the
// Transport compressed, as net/http hands it over when the caller asked
// for an encoding itself (Accept-Encoding: gzip, which many SDKs set), is
// classified by its envelope as the same body uncompressed is: a server's
// "retryable": false is not retried, a throttling code is, and ParseError
// reads its code. The caller still gets the body as it came, compressed.
func TestCompressedEnvelopeClassified(t *testing.T) {
	const final = `{"error":{"code":"media_rejected","message":"m","retryable":false}}`
	for _, enc := range []string{"gzip", "deflate", "deflate-raw"} {
		t.Run(enc, func(t *testing.T) {
			raw := encode(t, enc, final)
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", strings.TrimSuffix(enc, "-raw"))
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write(raw)
			}))
			defer srv.Close()
			tr := New(srv.Client().Transport, WithBackoff(0, 0))
			req := newRequest(t, context.Background(), http.MethodGet, srv.URL, nil)
			req.Header.Set("Accept-Encoding", enc) // net/http leaves the body compressed
			resp, _ := roundTrip(t, tr, req)
			e := ParseError(resp)
			if got := readBody(t, resp); got != string(raw) {
				t.Errorf("body: %q, want the %d bytes the server sent", got, len(raw))
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("a 503 whose %s envelope says \"retryable\": false: %d server attempts, want 1", enc, n)
			}
			if e.Code != "media_rejected" || e.Retryable {
				t.Errorf("ParseError = %+v, want code media_rejected, not retryable", e)
			}
		})
	}

	t.Run("throttling code", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// A 403 is Throttled by its code alone: it is read from the
			// compressed body too.
			s := &rtScript{steps: []rtStep{
				{status: 403, header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}},
					rc: func() io.ReadCloser {
						return io.NopCloser(bytes.NewReader(encode(t, "gzip", `{"error":{"code":"rate_limited"}}`)))
					}},
				{status: 200},
			}}
			var attempts []Attempt
			tr := New(s, WithBackoff(0, 0), WithObserver(func(a Attempt) { attempts = append(attempts, a) }))
			resp, _ := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			resp.Body.Close()
			if a := attempts[0]; a.Code != "rate_limited" || a.Class != Throttled || s.numCalls() != 2 {
				t.Errorf("gzip-encoded 403 rate_limited: code %q class %v, %d attempts; want rate_limited Throttled, 2", a.Code, a.Class, s.numCalls())
			}
		})
	})

	t.Run("bomb", func(t *testing.T) {
		// A body that inflates past the peek is read no further than
		// the peek, decoded as encoded, and returned whole.
		big := `{"error":{"code":"invalid_request","details":"` + strings.Repeat("x", 64<<20) + `"}}`
		raw := encode(t, "gzip", big)
		resp := newResponse(rtStep{status: 503, header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}},
			rc: func() io.ReadCloser { return io.NopCloser(bytes.NewReader(raw)) }})
		var e *APIError
		body := readBodyAfter(t, resp, func() { e = ParseError(resp) })
		if body != string(raw) || e.Code != "" || !e.Retryable {
			t.Errorf("ParseError = %+v; body %d bytes, want %d", e, len(body), len(raw))
		}
	})

	t.Run("not encoded after all", func(t *testing.T) {
		// A server that names an encoding and sends the JSON as it is:
		// read as it is, as before.
		for _, enc := range []string{"gzip", "deflate", "br"} {
			resp := newResponse(rtStep{status: 503, header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {enc}}, body: final})
			var e *APIError
			body := readBodyAfter(t, resp, func() { e = ParseError(resp) })
			if body != final || e.Code != "media_rejected" || e.Retryable {
				t.Errorf("%s: ParseError = %+v; body %q", enc, e, body)
			}
		}
	})
}
