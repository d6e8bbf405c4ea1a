package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// endFailingBody yields data, then fails where it ends: its Read with
// readErr instead of io.EOF (a decompressing reader whose checksum does not
// match, a pipe whose writer closed it with an error after its last byte),
// or its Close with closeErr.
type endFailingBody struct {
	r                 io.Reader
	readErr, closeErr error
}

func newEndFailingBody(data string, readErr, closeErr error) *endFailingBody {
	return &endFailingBody{r: strings.NewReader(data), readErr: readErr, closeErr: closeErr}
}

func (b *endFailingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF && b.readErr != nil {
		err = b.readErr
	}
	return n, err
}

func (b *endFailingBody) Close() error { return b.closeErr }

// endFailures are the ways a body fails once its ContentLength bytes were
// read: net/http's HTTP/1 client has then written them, the whole request,
// and the server may act on it.
var endFailures = []struct {
	name              string
	readErr, closeErr error
}{
	{"read fails at the end", errors.New("gzip: invalid checksum"), nil},
	{"close fails", nil, errors.New("close failed")},
}

// TestWriteRuleBodyFailingPastContentLength: a body whose Read fails only
// once its ContentLength bytes were read, or whose Close fails after it
// was read whole, is the caller's mistake, yet it does not prove the
// request unsent, as a body longer than its ContentLength does not
// (TestWriteRuleBodyLongerThanContentLength): net/http's HTTP/1 client
// has written the bytes it declared, straight to the connection, before it
// reads past them or closes the body, and the server has the whole request.
// So has it from a body of unknown length (ContentLength 0, sent chunked,
// each chunk flushed as it is read) that fails where it ends: the server
// acts on the bytes it expects once it has them, as a JSON decoder acts
// on a value read whole, before the body's end. A Classifier that retries
// the error gets no resend of a write to a host not known to honor keys.
// (net/http returns the server's answer instead of the body's error when
// it reads it first.)
func TestWriteRuleBodyFailingPastContentLength(t *testing.T) {
	retryErrors := func(_ *http.Response, _ *APIError, err error, def Class) Class {
		if err != nil {
			return Transient
		}
		return def
	}
	for _, f := range endFailures {
		for _, tc := range []struct {
			getBody       bool
			contentLength int64 // 0: unknown, sent chunked
		}{{false, 5}, {true, 5}, {false, 0}, {true, 0}} {
			getBody := tc.getBody
			t.Run(fmt.Sprintf("%s, GetBody %v, ContentLength %d", f.name, getBody, tc.contentLength), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var processed atomic.Int32
					srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if b, err := readBodyOf(r, 5); err == nil && string(b) == "abcde" {
							processed.Add(1) // the server has the whole request
						}
						io.Copy(io.Discard, r.Body)
						w.WriteHeader(http.StatusCreated)
					})))
					defer srv.Close()
					var stops []StopReason
					tr := New(srv.Transport(), WithClassifier(retryErrors),
						WithObserver(func(a Attempt) { stops = append(stops, a.StopReason) }))
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", newEndFailingBody("abcde", f.readErr, f.closeErr))
					req.ContentLength = tc.contentLength
					if getBody {
						req.GetBody = func() (io.ReadCloser, error) {
							return newEndFailingBody("abcde", f.readErr, f.closeErr), nil
						}
					}
					_, err := tr.RoundTrip(req)
					srv.Close() // waits for the handlers
					// net/http returns the body's error, or the server's
					// answer when it reads it first.
					if n := processed.Load(); n != 1 || len(stops) != 1 || err != nil && (!errors.As(err, new(*RequestError)) || stops[0] != StopUnsafeWrite) {
						t.Errorf("GetBody %v, ContentLength %d: the server got the whole write %d times, stop reasons %q, err %v; want once, and a *RequestError with %q or its answer", getBody, tc.contentLength, n, stops, err, StopUnsafeWrite)
					}
				})
			})
		}
	}
}

// TestBrokenReplayPastContentLengthIsNoUnsentRetry: a retry of a write
// after a 429 whose body, from GetBody, fails only once its ContentLength
// bytes were read (or at its Close) reached the server whole, which may
// have processed it: the call does not end with the 429, which would tell
// the caller that its write was not processed (see
// TestBrokenReplayKeepsTheResponse), but with the retry's error (or the
// server's answer, when net/http reads it first). So does one of unknown
// length (ContentLength 0: sent chunked) that fails where it ends.
func TestBrokenReplayPastContentLengthIsNoUnsentRetry(t *testing.T) {
	for _, f := range endFailures {
		for _, contentLength := range []int64{5, 0} {
			t.Run(fmt.Sprintf("%s, ContentLength %d", f.name, contentLength), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var hits, processed atomic.Int32
					srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						b, err := readBodyOf(r, 5)
						io.Copy(io.Discard, r.Body)
						if hits.Add(1) == 1 {
							w.WriteHeader(http.StatusTooManyRequests) // provably unprocessed
							return
						}
						if err == nil && string(b) == "abcde" {
							processed.Add(1)
						}
						w.WriteHeader(http.StatusCreated)
					})))
					defer srv.Close()
					tr := New(srv.Transport())
					req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader("abcde"))
					req.ContentLength = contentLength
					req.GetBody = func() (io.ReadCloser, error) {
						return newEndFailingBody("abcde", f.readErr, f.closeErr), nil
					}
					resp, err := tr.RoundTrip(req)
					srv.Close() // waits for the handlers
					if resp != nil {
						resp.Body.Close()
					}
					if processed.Load() != 1 {
						t.Fatalf("the server processed the retry %d times, want once", processed.Load())
					}
					if resp != nil && resp.StatusCode != http.StatusCreated || resp == nil && !errors.As(err, new(*RequestError)) {
						status := 0
						if resp != nil {
							status = resp.StatusCode
						}
						t.Errorf("RoundTrip = %d, %v; want the retry's *RequestError (or its 201), not the 429 the server answered before processing the retry", status, err)
					}
				})
			})
		}
	}
}

// readBodyOf reads the first n bytes of r's body: the request a server
// acts on once it has them, as a JSON decoder acts on a value read whole,
// before the body's end (which a chunked body that broke never sends).
func readBodyOf(r *http.Request, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r.Body, b)
	return b, err
}

// stallAtEndBody yields data, then its Read blocks where it would return
// io.EOF (a pipe whose writer wrote it all, then stalled) until it is
// closed, or for 10 s, and fails. (net/http's HTTP/1 client waits for the
// Read in progress before its RoundTrip returns.)
type stallAtEndBody struct {
	r      io.Reader
	closed chan struct{}
	once   sync.Once
}

func newStallAtEndBody(data string) *stallAtEndBody {
	return &stallAtEndBody{r: strings.NewReader(data), closed: make(chan struct{})}
}

func (b *stallAtEndBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		select {
		case <-b.closed:
		case <-time.After(10 * time.Second):
		}
		return 0, errors.New("the writer went away")
	}
	return n, err
}

func (b *stallAtEndBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestStalledReplayPastContentLengthIsNoUnsentRetry: a retry of a write
// after a 429 whose body, from GetBody, stalls only once its ContentLength
// bytes were read (net/http's HTTP/1 client reads past them before it
// waits for the answer) reached the server whole: the server may be
// processing it when the attempt timeout cuts it. The call ends with the
// retry's error, which says the body stalled, not with the 429. So does
// one of unknown length (ContentLength 0: sent chunked) that stalls where
// it ends.
func TestStalledReplayPastContentLengthIsNoUnsentRetry(t *testing.T) {
	for _, contentLength := range []int64{5, 0} {
		t.Run(fmt.Sprintf("ContentLength %d", contentLength), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits, processed atomic.Int32
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b := make([]byte, 5)
					_, err := io.ReadFull(r.Body, b)
					if hits.Add(1) == 1 {
						w.WriteHeader(http.StatusTooManyRequests) // provably unprocessed
						return
					}
					if err == nil && string(b) == "abcde" {
						processed.Add(1)
					}
					select { // a slow create
					case <-time.After(5 * time.Second):
					case <-r.Context().Done():
					}
					w.WriteHeader(http.StatusCreated)
				})))
				defer srv.Close()
				tr := New(srv.Transport(), WithAttemptTimeout(2*time.Second))
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader("abcde"))
				req.ContentLength = contentLength
				req.Body = streamBody("abcde") // not in memory: the retry's body is GetBody's
				req.GetBody = func() (io.ReadCloser, error) { return newStallAtEndBody("abcde"), nil }
				resp, err := tr.RoundTrip(req)
				if resp != nil {
					resp.Body.Close()
				}
				srv.Close() // waits for the handlers
				if processed.Load() != 1 {
					t.Fatalf("the server processed the retry %d times, want once", processed.Load())
				}
				if resp != nil || !errors.As(err, new(*RequestError)) || !strings.Contains(err.Error(), "request body stalled") {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					t.Errorf("RoundTrip = %d, %v; want the retry's *RequestError saying the body stalled, not the 429 the server answered before processing the retry", status, err)
				}
			})
		})
	}
}
