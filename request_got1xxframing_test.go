package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"testing"
)

// TestGot1xxHookNotBlamedForBadFraming: a server whose HTTP/1 response
// carries a Content-Length that is not a number or an empty one, or
// declares a trailer no message may carry (Content-Length), is the
// server's fault, which it sends again to a retry (classify: Permanent,
// sent once as by a plain client, counted by the breaker), with or without a
// Got1xxResponse hook that returns nil in the request's trace (one
// otelhttptrace installs on every call): the error is not the caller's
// *RequestError, and a breaker that opens after one failure refuses the
// next call.
func TestGot1xxHookNotBlamedForBadFraming(t *testing.T) {
	nilHook := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil },
	})
	for _, head := range []string{
		"Content-Length: twelve",
		"Content-Length: ",
		"Trailer: Content-Length\r\nTransfer-Encoding: chunked",
	} {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.Write([]byte("HTTP/1.1 200 OK\r\n" + head + "\r\n\r\n0\r\n\r\n"))
		}))
		base := &http.Transport{}
		get := func(tr http.RoundTripper, ctx context.Context) error {
			resp, err := tr.RoundTrip(newRequest(t, ctx, "GET", srv.URL+"/v1/items", nil))
			if err == nil {
				resp.Body.Close()
			}
			return err
		}
		for _, ctx := range []context.Context{context.Background(), nilHook} {
			hooked := ctx != context.Background()
			hits.Store(0)
			err := get(New(base, WithBackoff(0, 0), WithMaxRetries(2)), ctx)
			var re *RequestError
			if errors.As(err, &re) || hits.Load() != 1 {
				t.Errorf("%q, hook %v: the server got the GET %d times, err = %v (a *RequestError: %v); want once, the server's fault", head, hooked, hits.Load(), err, re != nil)
			}
			tr := New(base, WithBackoff(0, 0), WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
			get(tr, ctx)
			if err := get(tr, ctx); !errors.Is(err, ErrCircuitOpen) {
				t.Errorf("%q, hook %v: the call after the answer: %v; want ErrCircuitOpen (the breaker counts the server's fault)", head, hooked, err)
			}
		}
		base.CloseIdleConnections()
		srv.Close()
	}
}
