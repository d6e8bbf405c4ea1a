package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// carelessGetBodies are GetBody functions that hand out the body the
// first attempt sends (req.Body itself, or its one reader wrapped anew):
// drained once it was read, a body of unknown length made by them is
// empty.
var carelessGetBodies = []struct {
	name    string
	getBody func(req *http.Request, src io.Reader) func() (io.ReadCloser, error)
}{
	{"the request's own body", func(req *http.Request, _ io.Reader) func() (io.ReadCloser, error) {
		body := req.Body
		return func() (io.ReadCloser, error) { return body, nil }
	}},
	{"its reader read again", func(_ *http.Request, src io.Reader) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(src), nil }
	}},
}

// carelessRequest returns a request of method with a body of data, of
// unknown length (neither in memory nor a file: no ContentLength), under
// ctx, whose GetBody is made by getBody.
func carelessRequest(t *testing.T, ctx context.Context, method string, data []byte, getBody func(*http.Request, io.Reader) func() (io.ReadCloser, error)) *http.Request {
	src := struct{ io.Reader }{bytes.NewReader(data)}
	req := newRequest(t, ctx, method, "http://api.test/v1/files/f1", src)
	req.GetBody = getBody(req, src)
	return req
}

// hedgedCarelessPost sends a keyed POST of data, of unknown length, whose
// GetBody getBody makes (see carelessRequest), through a Transport that
// hedges after 10ms, to a base whose attempt waits for the copy's body to
// be sent, and whose hedged copy is answered by hedged (see renewBase),
// got recording the bodies read. It waits until every copy ended,
// reports an error for each body read that is not data (see
// bodyLog.checkEach), and returns RoundTrip's results, the body closed. It
// runs in a synctest bubble.
func hedgedCarelessPost(t *testing.T, data []byte, getBody func(*http.Request, io.Reader) func() (io.ReadCloser, error), hedged func(got *bodyLog, r *http.Request) (*http.Response, error)) (*http.Response, error) {
	t.Helper()
	got := new(bodyLog)
	base := renewBase(got, func(r *http.Request) (*http.Response, error) { return hedged(got, r) })
	tr := New(base, WithHedging(Hedging{Delay: 10 * time.Millisecond}), WithoutRateLimit(), WithoutBreaker())
	req := carelessRequest(t, WithIdempotencyKey(context.Background(), "k1"), http.MethodPost, data, getBody)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	time.Sleep(time.Minute) // every copy ends
	synctest.Wait()
	got.checkEach(t, http.MethodPost, data)
	return resp, err
}

// TestHedgingCopyGetBodyOfAnotherLengthNotSent: a hedged copy's body from
// a careless GetBody (see carelessGetBodies), made once the attempt's body
// was read to its end, is empty. Of unknown length, it was sent so: the
// server got a GET's query, or a keyed POST's resource, empty from
// the copy, and the copy, answered first, decided the call (an empty
// resource stored, 200), where a plain client sends the caller's bytes
// once. The copy's body is checked as a retry's is against the length of
// the body read to its end before it: it fails as a body cut short, the
// server acts on nothing but the caller's bytes, and the attempt answers.
func TestHedgingCopyGetBodyOfAnotherLengthNotSent(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, tc := range carelessGetBodies {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					got := new(bodyLog)
					base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
						if err := got.read(r); err != nil {
							return nil, err
						}
						if i == 1 {
							time.Sleep(100 * time.Millisecond) // the attempt: slow to answer
						}
						return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
					})
					tr := New(base, WithHedging(Hedging{Delay: 20 * time.Millisecond}), WithoutRateLimit(), WithoutBreaker())
					ctx := context.Background()
					if method != http.MethodGet {
						ctx = WithIdempotencyKey(ctx, "k1")
					}
					req := carelessRequest(t, ctx, method, data, tc.getBody)
					resp, err := roundTrip(t, tr, req)
					if err != nil {
						t.Fatalf("RoundTrip: %v; want the attempt's 200", err)
					}
					resp.Body.Close()
					time.Sleep(time.Minute) // the copy ends
					synctest.Wait()
					got.checkEach(t, method, data)
				})
			})
		}
	}
}

// TestHedgingRenewGetBodyOfAnotherLengthNotSent: an attempt whose body a
// hedged copy took over before it was read (its dial slow), and whose
// Read begins once the copy's body was read to its end, renews its body
// from GetBody (see hedgeRun.renew). A careless GetBody (see
// carelessGetBodies) gave the copy the caller's bytes, and the attempt
// the body they drained: sent so, of unknown length, the server got a
// second keyed POST, empty (a copy of a host that dedupes, whose key the
// first had not yet taken when it came). The renewed body is
// checked against the length of the copy's: it fails as a body cut short,
// and the server acts on nothing but the caller's bytes.
func TestHedgingRenewGetBodyOfAnotherLengthNotSent(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				resp, err := hedgedCarelessPost(t, data, tc.getBody, func(got *bodyLog, r *http.Request) (*http.Response, error) {
					if err := got.read(r); err != nil {
						return nil, err
					}
					time.Sleep(100 * time.Millisecond) // the copy: slow to answer
					return &http.Response{StatusCode: http.StatusCreated, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
				})
				if err != nil || resp.StatusCode != http.StatusCreated {
					t.Errorf("RoundTrip = %v, %v; want the copy's 201", resp, err)
				}
			})
		})
	}
}
