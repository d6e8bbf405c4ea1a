package resilient

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing/synctest"
	"time"
)

// renewBase returns the base of the tests of the attempt's renewal of its
// body: request 1, the attempt, dials for 20ms, past a 10ms hedging delay,
// then got reads its body and answers 201; request 2, the hedged copy that
// takes the body over, goes to hedged; later ones, the retries, got reads
// and answers 201 at once.
func renewBase(got *bodyLog, hedged func(*http.Request) (*http.Response, error)) roundTripFunc {
	return numberedBase(func(i int, r *http.Request) (*http.Response, error) {
		switch i {
		case 1:
			time.Sleep(20 * time.Millisecond) // the attempt's dial, past the hedging delay
		case 2:
			return hedged(r) // the copy
		}
		return got.created(r) // the attempt, or a retry
	})
}

// failGetBody makes the calls of req's GetBody for whose number (from 1:
// the hedged copy's first, then the attempt's renewal of its body) fails
// says true return err; the others rewind as before. It returns the count
// of the calls.
func failGetBody(req *http.Request, err error, fails func(n int32) bool) *atomic.Int32 {
	rewind := req.GetBody
	gets := new(atomic.Int32)
	req.GetBody = func() (io.ReadCloser, error) {
		if fails(gets.Add(1)) {
			return nil, err
		}
		return rewind()
	}
	return gets
}

// renewFailsCall sends tr a POST of data (see sharedSourcePost) under ctx,
// with its key and a Report, whose body's GetBody fails with errGone on its second
// call (the first copy's works, the attempt's renewal fails, see
// failGetBody), closes the response's body, if any, and waits for the
// bubble to settle: it returns the response, the Report, GetBody's calls
// and RoundTrip's error.
func renewFailsCall(ctx context.Context, tr http.RoundTripper, data []byte, errGone error) (*http.Response, *Report, *atomic.Int32, error) {
	req := sharedSourcePost(data)
	gets := failGetBody(req, errGone, func(n int32) bool { return n == 2 })
	r := new(Report)
	resp, err := tr.RoundTrip(req.WithContext(WithReport(WithIdempotencyKey(ctx, "k1"), r)))
	if err == nil {
		resp.Body.Close()
	}
	synctest.Wait()
	return resp, r, gets, err
}
