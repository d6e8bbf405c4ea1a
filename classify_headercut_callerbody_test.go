package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeaderCutTextInCallersBody: a caller's body whose Read fails with
// an error that quotes net/http's words for a header block cut short (a
// proxy that streams the parts of a client's multipart upload, whose
// part's header lacks its colon: mime/multipart's "malformed MIME header:
// missing colon"; a body relayed from an answer that did not parse) is the
// caller's mistake, as any failing body is: the call fails at once with a
// *RequestError, and is not retried as a cut the server made. Its GetBody
// makes a body that fails the same way.
func TestHeaderCutTextInCallersBody(t *testing.T) {
	for name, cause := range map[string]error{
		"missing colon":     textproto.ProtocolError(`malformed MIME header: missing colon: "Content-Dispositi"`),
		"status line":       fmt.Errorf("relaying the upstream's answer: malformed HTTP response %q", "HTTP/1."),
		"short status code": fmt.Errorf("relaying the upstream's answer: malformed HTTP status code %q", "20"),
	} {
		t.Run(name, func(t *testing.T) {
			var hits atomic.Int32
			srv, _ := countConns(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				io.Copy(io.Discard, r.Body)
			})
			failing := func() io.ReadCloser { return io.NopCloser(&failingReader{err: cause}) }
			for _, method := range []string{"PUT", "POST"} {
				hits.Store(0)
				var attempts atomic.Int32
				client := loopbackClient(t, WithBackoff(time.Millisecond, time.Millisecond),
					WithObserver(func(Attempt) { attempts.Add(1) }))
				req, _ := http.NewRequest(method, srv.URL+"/v1/uploads", failing())
				req.ContentLength = -1
				req.GetBody = func() (io.ReadCloser, error) { return failing(), nil }
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				var re *RequestError
				if n := attempts.Load(); n != 1 || !errors.As(err, &re) || !errors.Is(err, cause) {
					t.Errorf("%s whose body fails with %q: %d attempts, err = %v; want one attempt and a *RequestError with the body's error", method, cause, n, err)
				}
			}
		})
	}
}
