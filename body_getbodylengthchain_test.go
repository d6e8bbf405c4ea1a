package resilient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestGetBodyLengthKeptPastAnUnreadRetry: the length a retry's body of
// unknown length from GetBody must have is learned from the body the
// first attempt read to its end; a retry whose body the server answered
// before reading (a 503 at once, an Expect: 100-continue refused: net/http
// closes it unread) ends without one. The retry after it was not checked
// at all: a careless GetBody (see carelessGetBodies) sent it empty, and
// the server stored a PUT of 0 bytes with a 200, where a plain client
// sends the caller's bytes once and returns the 503. The length is kept
// from body to body: the third attempt's is refused as the second's
// would have been, and the call returns the 503.
func TestGetBodyLengthKeptPastAnUnreadRetry(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			got := new(bodyLog)
			base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
				status := http.StatusServiceUnavailable
				switch i {
				case 1: // read, refused
					if err := got.read(r); err != nil {
						return nil, err
					}
				case 2: // refused before its body was read
					r.Body.Close()
				default:
					if err := got.read(r); err != nil {
						return nil, err
					}
					status = http.StatusOK
				}
				return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			})
			var errs []string
			tr := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker(), WithObserver(func(a Attempt) {
				if a.Err != nil {
					errs = append(errs, a.Err.Error())
				}
			}))
			req := carelessRequest(t, t.Context(), http.MethodPut, data, tc.getBody)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			got.checkEach(t, "PUT", data)
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("RoundTrip = %v, %v; want the 503, as a plain client returns it", resp, err)
			}
			for _, e := range errs {
				if strings.Contains(e, "ContentLength") {
					t.Errorf("an attempt's error says %q: the caller set no ContentLength", e)
				}
			}
		})
	}
}

// TestCutReplayOfLearnedLengthMayHaveBeenSent: a retry's body of unknown
// length from GetBody is sent chunked as it is read: one that stalls
// midway (a pipe from a slow producer), or ends short of the body the
// attempt before read to its end, leaves the server what was read of it,
// which it may act on (a record a line long, a JSON value) before the
// request breaks, and the call ends with the retry's error, not with the
// 429 that says nothing was done (see bodyFault). Checked against that
// length as against a ContentLength, such a retry was read as one cut
// short before the server could act, and the call returned the 429 while
// the server had processed the retry's first record.
func TestCutReplayOfLearnedLengthMayHaveBeenSent(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() io.ReadCloser
		says string
	}{
		{"stalls", func() io.ReadCloser { return newStallAtEndBody("rec1\n") }, "request body stalled"},
		{"ends short", func() io.ReadCloser { return streamBody("rec1\n") }, "Request.GetBody's body, of unknown length, ended after 5 bytes, where the body sent before it had 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hits, processed atomic.Int32
				srv := resilienttest.NewPipeServer(resilienttest.Aidelly, resilienttest.WithHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if hits.Add(1) == 1 {
						io.ReadAll(r.Body)
						w.WriteHeader(http.StatusTooManyRequests) // provably unprocessed
						return
					}
					br := bufio.NewReader(r.Body)
					if line, err := br.ReadString('\n'); err == nil && line == "rec1\n" {
						processed.Add(1) // a record acted on as it comes
					}
					io.ReadAll(br)
					w.WriteHeader(http.StatusCreated)
				})))
				defer srv.Close()
				tr := New(srv.Transport(), WithAttemptTimeout(2*time.Second))
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/records", streamBody("rec1\nrec2\n"))
				req.GetBody = func() (io.ReadCloser, error) { return tc.body(), nil } // one record of two
				resp, err := tr.RoundTrip(req)
				if resp != nil {
					resp.Body.Close()
				}
				srv.Close() // waits for the handlers
				if processed.Load() != 1 {
					t.Fatalf("the server processed the retry's record %d times, want once", processed.Load())
				}
				if resp != nil || !errors.As(err, new(*RequestError)) || !strings.Contains(err.Error(), tc.says) {
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					t.Errorf("RoundTrip = %d, %v; want the retry's *RequestError saying %q, not the 429 the server answered before it acted on the retry", status, err, tc.says)
				}
			})
		})
	}
}
