package resilienttest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
)

// TestHandlerRespondNoBodyStatus proves that Respond of a status that
// carries no body (204, 304) over a handler's answer that set its
// Content-Length reaches the client as that status with no body, over
// HTTP/1 and HTTP/2, as from a plain server. The handler's Content-Length
// was sent with it: net/http's HTTP/1 server drops it, but over HTTP/2
// the client read a 204 declaring 100 bytes and failed with an unexpected
// EOF.
func TestHandlerRespondNoBodyStatus(t *testing.T) {
	for _, status := range []int{http.StatusNoContent, http.StatusNotModified} {
		for _, tls := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/tls=%v", status, tls), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					body := make([]byte, 100)
					h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Length", strconv.Itoa(len(body)))
						w.Write(body)
					})
					opts := []Option{WithHandler(h), WithScript("GET /v1/things/1", Respond(status))}
					if tls {
						opts = append(opts, WithTLS())
					}
					s := NewPipeServer(Altyaa, opts...)
					defer s.Close()
					resp, err := s.Client().Get(s.URL + "/v1/things/1")
					if err != nil {
						t.Fatal(err)
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != status || n != 0 || err != nil {
						t.Errorf("status %d, %d bytes, then %v; want %d, no body, no error", resp.StatusCode, n, err, status)
					}
				})
			})
		}
	}
}
