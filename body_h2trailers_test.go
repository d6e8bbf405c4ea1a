package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestHTTP2TrailersAfterKnownLength: over HTTP/2, a body of known length
// may be followed by trailers the server declared (a checksum, a status),
// which net/http fills in resp.Trailer as the body's Read returns io.EOF,
// with the end of the stream: a plain client that reads the body to its
// end has them, however long after the last byte they come. The readers
// that stop at an HTTP/2 body's last byte (see endsAtLength) closed it
// there: a success read with WithBufferedResponse, and a 503 retried past
// then returned on a give-up, reached the caller with the trailers'
// values empty. Such a body's end is read: by the caller, for a success
// read within the attempt, which RoundTrip returns without waiting for it
// (the attempt's deadline does not cut it); by the drain (bounded as
// ever), for a response retried past.
func TestHTTP2TrailersAfterKnownLength(t *testing.T) {
	const body = `{"data":{"id":"p_1"}}`
	for _, tc := range []struct {
		name   string
		status int
		late   time.Duration // from the body's last byte to the trailers
		opts   []Option
		took   time.Duration // RoundTrip's time
	}{
		{"a success read within the attempt", 200, 0, []Option{WithBufferedResponse(1 << 20)}, 0},
		{"a success read within the attempt, trailers late", 200, 5 * time.Second, []Option{WithBufferedResponse(1 << 20), WithAttemptTimeout(time.Second)}, 0},
		{"a success handed over", 200, 0, nil, 0},
		{"a final error envelope, peeked", 400, 0, nil, 0},
		{"an error retried past, then returned", 503, 0, []Option{WithMaxElapsed(10 * time.Second)}, 10 * time.Second},
		{"an error retried past, trailers late, then returned", 503, time.Second, []Option{WithMaxElapsed(10 * time.Second)}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, _ := h2FirstAnswered(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.Header().Set("Trailer", "X-Checksum")
					w.WriteHeader(tc.status)
					io.WriteString(w, body)
					w.(http.Flusher).Flush()
					time.Sleep(tc.late)
					w.Header().Set("X-Checksum", "abc123")
				})
				defer srv.Close()
				tr := New(srv.Transport(), append([]Option{WithMaxRetries(2), WithBackoff(0, 0)}, tc.opts...)...)
				start := time.Now()
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				if took := time.Since(start); took != tc.took {
					t.Errorf("RoundTrip took %v, want %v", took, tc.took)
				}
				if err != nil {
					t.Fatalf("RoundTrip: %v; want the %d", err, tc.status)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || resp.ProtoMajor != 2 {
					t.Fatalf("status %d over HTTP/%d, want %d over HTTP/2", resp.StatusCode, resp.ProtoMajor, tc.status)
				}
				if string(got) != body || rerr != nil {
					t.Errorf("body = %q, %v; want %q, <nil>", got, rerr, body)
				}
				if v := resp.Trailer.Get("X-Checksum"); v != "abc123" {
					t.Errorf("Trailer X-Checksum = %q, want %q, as a plain client reads it", v, "abc123")
				}
			})
		})
	}
}

// TestHTTP2UndeclaredTrailers: a server may set trailers it never declared
// once its body is written (a key with http.TrailerPrefix), which HTTP/2
// sends with the end of the stream: net/http fills them in resp.Trailer,
// nil until then, as the body's Read returns io.EOF, and a plain client
// that reads the body to its end has them. A success read with
// WithBufferedResponse stopped at its last byte and closed the body
// unless resp.Trailer was set: undeclared trailers were lost. Each row
// reads the same answer with a plain client, then through the Transport,
// from a real HTTP/2 server.
func TestHTTP2UndeclaredTrailers(t *testing.T) {
	const body = `{"data":{"id":"p_1"}}`
	for _, tc := range []struct {
		name     string
		statuses []int // the answer to each attempt, the last repeated
		opts     []Option
	}{
		{"a success handed over", []int{200}, nil},
		{"a success read within the attempt", []int{200}, []Option{WithBufferedResponse(1 << 20)}},
		{"a success read within the attempt, after a 503 retried past", []int{503, 200}, []Option{WithBufferedResponse(1 << 20)}},
		{"a final error envelope, peeked", []int{400}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(tc.statuses[min(n, len(tc.statuses))-1])
				io.WriteString(w, body)
				w.(http.Flusher).Flush() // the headers go out without a Trailer
				w.Header().Set(http.TrailerPrefix+"X-Checksum", "abc123")
			}))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			var want string
			for _, rt := range []http.RoundTripper{
				srv.Client().Transport,
				New(srv.Client().Transport, append([]Option{WithMaxRetries(2), WithBackoff(0, 0)}, tc.opts...)...),
			} {
				hits.Store(0)
				resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v", err)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != 2 || string(got) != body || rerr != nil {
					t.Fatalf("over HTTP/%d, body = %q, %v; want HTTP/2, %q, <nil>", resp.ProtoMajor, got, rerr, body)
				}
				if _, plain := rt.(*http.Transport); plain {
					want = resp.Trailer.Get("X-Checksum")
					if want != "abc123" {
						t.Fatalf("a plain client's Trailer X-Checksum = %q, want %q", want, "abc123")
					}
					continue
				}
				if v := resp.Trailer.Get("X-Checksum"); v != want {
					t.Errorf("Trailer X-Checksum = %q, want %q, as a plain client reads it", v, want)
				}
			}
		})
	}
}

// TestHTTP2BufferedSuccessRetriedPastKeptWhole: a success read whole with
// WithBufferedResponse, which a Classifier retries, is kept whole for a
// give-up, whatever its length: it is in memory already. An HTTP/2 one
// whose server declared trailers was drained again as a body still on the
// network, to maxDrain (64 KiB): on the give-up, the caller got 64 KiB of
// a 100 KiB body, then errBodyTruncated, where a plain client gets it
// whole. Its trailers, which come with the stream's end, are read too.
func TestHTTP2BufferedSuccessRetriedPastKeptWhole(t *testing.T) {
	body := strings.Repeat("x", 100<<10)
	for _, tc := range []struct {
		name    string
		trailer string // the trailer's key, as the handler sets it
	}{
		{"trailers declared", "X-Checksum"},
		{"trailers undeclared", http.TrailerPrefix + "X-Checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, hits := h2FirstAnswered(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.Header().Set("X-Not-Ready", "1")
					if !strings.HasPrefix(tc.trailer, http.TrailerPrefix) {
						w.Header().Set("Trailer", tc.trailer)
					}
					io.WriteString(w, body)
					w.(http.Flusher).Flush()
					w.Header().Set(tc.trailer, "abc123")
				})
				defer srv.Close()
				tr := New(srv.Transport(), WithMaxRetries(2), WithBackoff(0, 0), WithMaxElapsed(10*time.Second), WithBufferedResponse(1<<20),
					WithClassifier(notReadyTransient))
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v; want the 200 retried past", err)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if len(got) != len(body) || rerr != nil {
					t.Errorf("body = %d bytes, %v; want %d bytes, <nil>", len(got), rerr, len(body))
				}
				if n := hits.Load(); n != 2 {
					t.Errorf("%d requests, want 2", n)
				}
				// Undeclared trailers are nil here: the drain does not wait
				// for the end of a stream that announced none.
				if resp.Trailer != nil && resp.Trailer.Get("X-Checksum") != "abc123" {
					t.Errorf("Trailer X-Checksum = %q, want %q, as a plain client reads it", resp.Trailer.Get("X-Checksum"), "abc123")
				}
			})
		})
	}
}

// TestHTTP2HeldTrailersStalledIsATimeout: the drain of a response retried
// past whose server declared trailers reads its HTTP/2 stream to its end,
// for at most maxReadWait; one that stalls there is cut, and the caller of
// the give-up reads the body's bytes, then errBodyTruncated wrapping the
// timeout that cut it, whether the success was read within the attempt
// (WithBufferedResponse) or not (a 503), hedged or not. The end of a body
// read whole within the attempt was cut by closing the original body
// under the Transport's wrappers: its reader got "http2: response body
// closed", a read after the caller's own Close, and no timeout.
func TestHTTP2HeldTrailersStalledIsATimeout(t *testing.T) {
	const body = `{"data":{"id":"p_1"}}`
	for _, tc := range []struct {
		name   string
		status int
		opts   []Option
	}{
		{"an error retried past", 503, nil},
		{"a success read within the attempt, retried past", 200, []Option{WithBufferedResponse(1 << 20)}},
		{"a success read within the attempt, retried past, hedged", 200, []Option{WithBufferedResponse(1 << 20), WithHedging(Hedging{Delay: time.Minute})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, _ := h2FirstAnswered(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					w.Header().Set("X-Not-Ready", "1")
					w.Header().Set("Trailer", "X-Checksum")
					w.WriteHeader(tc.status)
					io.WriteString(w, body)
					w.(http.Flusher).Flush()
					<-r.Context().Done() // the stream's end stalls; the retry hangs past the call's budget
				})
				defer srv.Close()
				tr := New(srv.Transport(), append([]Option{WithMaxRetries(2), WithBackoff(0, 0), WithMaxElapsed(10 * time.Second),
					WithClassifier(notReadyTransient)}, tc.opts...)...)
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", srv.URL+"/v1/posts", nil))
				if err != nil {
					t.Fatalf("RoundTrip: %v; want the %d retried past", err, tc.status)
				}
				got, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != body || !errors.Is(rerr, errBodyTruncated) || !errors.Is(rerr, context.DeadlineExceeded) {
					t.Errorf("body = %q, %v; want %q, then errBodyTruncated wrapping the timeout that cut its end", got, rerr, body)
				}
			})
		})
	}
}
