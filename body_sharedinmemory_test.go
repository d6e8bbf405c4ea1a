package resilient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestSharedGetBodyInMemoryEarlyAnswer is TestSharedGetBodyEarlyAnswer for a
// body in memory of known length: an io.NopCloser of one *bytes.Reader,
// which the caller's GetBody seeks back. net/http's HTTP/1 writer reads such
// a body on past its write buffer once an early answer came (a 1 MiB upload
// the server refused at once), and HTTP/2 sends it after the headers. The
// retry's GetBody was called at once, as for http.NewRequest's snapshots:
// the earlier writer read on from the source rewound (a data race on the
// caller's reader), and the retry's body came short: the server got a
// truncated upload, and the call failed with net/http's "ContentLength=…
// with Body length …" where a plain client returns the 503. A retry reads
// the bytes the call found (see memoryBody), never GetBody: each writer
// reads its body to its end, none rewound under it.
func TestSharedGetBodyInMemoryEarlyAnswer(t *testing.T) {
	for _, c := range []struct {
		early int
		limit int64
	}{{1, DefaultMaxBufferedBody}, {2, DefaultMaxBufferedBody}, {1, 512}, {2, 512}} {
		early := c.early
		t.Run(fmt.Sprintf("early=%d/limit=%d", early, c.limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				data := bytes.Repeat([]byte("abcdefghijklmnop"), 64) // 1 KiB
				var mu sync.Mutex
				var got [][]byte
				var werrs []error
				var writers sync.WaitGroup
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					n := len(got)
					got = append(got, nil)
					mu.Unlock()
					if n < early {
						// net/http's writer: the answer comes once the
						// first chunk was sent, the rest is sent on (64
						// bytes every 6ms), and the body closed at its
						// end.
						chunk := make([]byte, 64)
						req.Body.Read(chunk)
						writers.Go(func() {
							defer req.Body.Close()
							for {
								time.Sleep(6 * time.Millisecond)
								if _, err := req.Body.Read(chunk); err != nil {
									mu.Lock()
									werrs = append(werrs, err)
									mu.Unlock()
									return
								}
							}
						})
						return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: req}, nil
					}
					b, err := io.ReadAll(req.Body)
					req.Body.Close()
					mu.Lock()
					got[n] = b
					mu.Unlock()
					if err != nil {
						return nil, err
					}
					return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody, Request: req}, nil
				})
				src := bytes.NewReader(data)
				req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/upload", nil)
				req.Body, req.ContentLength = io.NopCloser(src), int64(len(data))
				var gets atomic.Int32
				req.GetBody = func() (io.ReadCloser, error) {
					gets.Add(1)
					_, err := src.Seek(0, io.SeekStart)
					return io.NopCloser(src), err
				}
				resp, err := New(base, WithBackoff(10*time.Millisecond, 10*time.Millisecond), WithMaxBufferedBody(c.limit)).RoundTrip(req)
				writers.Wait()
				if err != nil || resp.StatusCode != http.StatusCreated {
					t.Fatalf("RoundTrip = %v, %v; want the last retry's 201", resp, err)
				}
				resp.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				if len(got) != early+1 || !bytes.Equal(got[early], data) {
					t.Errorf("the server stored the write with a body of %d bytes, want the %d the caller sent", len(got[len(got)-1]), len(data))
				}
				if len(werrs) != early {
					t.Errorf("%d writers ended, want %d", len(werrs), early)
				}
				for i, err := range werrs {
					if err != io.EOF {
						t.Errorf("the writer of attempt %d ended with %v; want io.EOF, its body read to its end", i+1, err)
					}
				}
				if n := gets.Load(); n != 0 {
					t.Errorf("GetBody called %d times; want none: the retries read the bytes", n)
				}
			})
		})
	}
}

// TestSharedGetBodyInMemoryOneWrite: a body in memory with a GetBody of the
// caller's own that seeks one source back goes out as it is, with its
// headers in one write, as a plain client's (TestInMemoryBodyOneWrite),
// retries allowed or not: no retry calls that GetBody, which could rewind
// the source under an earlier reader (see memoryBody). With retries it was
// watched, and went out in two writes, its headers flushed first.
func TestSharedGetBodyInMemoryOneWrite(t *testing.T) {
	var fail atomic.Int32 // how many requests to answer 503 before a 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	writesOf := func(rt func(*http.Transport) http.RoundTripper) int32 {
		var w writeCounter
		base := &http.Transport{DialContext: w.dial}
		defer base.CloseIdleConnections()
		src := strings.NewReader(`{"content":"hello"}`)
		req := newRequest(t, context.Background(), http.MethodPut, srv.URL, nil)
		req.Body, req.ContentLength = io.NopCloser(src), src.Size()
		req.GetBody = func() (io.ReadCloser, error) {
			_, err := src.Seek(0, io.SeekStart)
			return io.NopCloser(src), err
		}
		resp, err := rt(base).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return w.writes.Load()
	}
	want := writesOf(func(b *http.Transport) http.RoundTripper { return b })
	if got := writesOf(func(b *http.Transport) http.RoundTripper { return New(b, WithMaxRetries(0)) }); got != want {
		t.Errorf("PUT with the caller's GetBody, WithMaxRetries(0): %d writes, want %d as a plain client", got, want)
	}
	if got := writesOf(func(b *http.Transport) http.RoundTripper { return New(b) }); got != want {
		t.Errorf("PUT with the caller's GetBody, retries allowed: %d writes, want %d as a plain client", got, want)
	}
	// A retry's body, a copy of the bytes or, over WithMaxBufferedBody,
	// the caller's bytes through a reader of their own, goes out in one
	// write with its headers too.
	for _, limit := range []int64{DefaultMaxBufferedBody, 4} {
		fail.Store(1)
		got := writesOf(func(b *http.Transport) http.RoundTripper {
			return New(b, WithBackoff(time.Millisecond, time.Millisecond), WithMaxBufferedBody(limit))
		})
		if got != 2*want {
			t.Errorf("PUT retried once, WithMaxBufferedBody(%d): %d writes, want %d, one a request as a plain client's", limit, got, 2*want)
		}
	}
}
