package examples

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
)

// closeTrackedBody is a response body that records its Close, after which
// its Read fails, as a closed http body's does; past its bytes, a Read
// waits for stall (zero for none) before it returns the end.
type closeTrackedBody struct {
	r      io.Reader
	stall  time.Duration
	closed atomic.Bool
}

func (b *closeTrackedBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errClosedBody
	}
	n, err := b.r.Read(p)
	if err == io.EOF && b.stall > 0 {
		time.Sleep(b.stall)
		if b.closed.Load() {
			return 0, errClosedBody
		}
	}
	return n, err
}

func (b *closeTrackedBody) Close() error { b.closed.Store(true); return nil }

var errClosedBody = &closedBodyError{}

type closedBodyError struct{}

func (*closedBodyError) Error() string { return "http: read on closed response body" }

// slowDownLong is S3's SlowDown with a message long enough that the body
// runs past the first KiB, which the recipe reads for the code.
var slowDownLong = `<Error><Code>SlowDown</Code><Message>` + strings.Repeat("x", 3000) + `</Message></Error>`

// TestAWSThrottledBodyOutlivesTheCut: the rest of a long 5xx error body,
// past the first KiB the recipe read for its code, is the SDK's to read
// whenever it does: the 2 s cut for a stall is stopped once that read is
// done, and does not close the body under the SDK, which reads it after
// resilient returned the response (here 3 s later: the SDK's retryer, a
// slow consumer). A cut left running closed it, and the SDK read the
// first KiB, then an error, and took the throttle's answer for a broken
// one.
func TestAWSThrottledBodyOutlivesTheCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeTrackedBody{r: strings.NewReader(slowDownLong)}
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: body}
		if class := awsThrottled(resp, nil, nil, resilient.Transient); class != resilient.Throttled {
			t.Errorf("class %v, want throttled", class)
		}
		time.Sleep(3 * time.Second)
		got, err := io.ReadAll(resp.Body)
		if string(got) != slowDownLong || err != nil {
			t.Errorf("the SDK read %d bytes, %v, 3s later; want all %d, and the end", len(got), err, len(slowDownLong))
		}
		resp.Body.Close()
	})
}

// TestAWSThrottledReadsTheFirstKiB: the recipe reads the first KiB of a
// 5xx's error body for its code, no more, so that a long body whose rest
// is slow to come (it stalls here, past its first KiB) is handed back to
// the SDK at once, not after the 2 s cut; and a code past that KiB is not
// read, as the doc says.
func TestAWSThrottledReadsTheFirstKiB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeTrackedBody{r: strings.NewReader(slowDownLong[:1024]), stall: time.Hour}
		resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: body}
		start := time.Now()
		if class := awsThrottled(resp, nil, nil, resilient.Transient); class != resilient.Throttled {
			t.Errorf("class %v, want throttled", class)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the classifier returned after %v, want at once: the first KiB came at once", d)
		}
		resp.Body.Close()
	})
	late := strings.Repeat(" ", 1024) + `<Error><Code>SlowDown</Code></Error>`
	resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(late))}
	if class := awsThrottled(resp, nil, nil, resilient.Transient); class != resilient.Transient {
		t.Errorf("a code past the first KiB: class %v, want transient (not read)", class)
	}
}

// TestAWSThrottledBodyClosesTheBody: the body the recipe hands to the SDK
// after reading the code closes the response's own body, so that the
// connection goes back to the pool (or is closed) when the SDK closes it.
func TestAWSThrottledBodyClosesTheBody(t *testing.T) {
	for _, tc := range []struct{ name, body string }{{"Short", `<Error><Code>SlowDown</Code></Error>`}, {"Long", slowDownLong}} {
		t.Run(tc.name, func(t *testing.T) {
			body := &closeTrackedBody{r: strings.NewReader(tc.body)}
			resp := &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: body}
			awsThrottled(resp, nil, nil, resilient.Transient)
			resp.Body.Close()
			if !body.closed.Load() {
				t.Error("the SDK closed the body it got, and the response's own body stayed open")
			}
		})
	}
}

// TestAWSCallersClassifierReplacesTheRecipes: a resilient.WithClassifier
// among AWSHTTPClient's options replaces awsThrottled, as the recipe's doc
// says: the caller's classifier decides, and S3's 503 SlowDown keeps the
// default decision.
func TestAWSCallersClassifierReplacesTheRecipes(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/xml"}},
			Body: io.NopCloser(strings.NewReader(`<Error><Code>SlowDown</Code></Error>`)), Request: r}, nil
	})
	var called int
	var class resilient.Class
	c := AWSHTTPClient(base,
		resilient.WithClassifier(func(_ *http.Response, _ *resilient.APIError, _ error, def resilient.Class) resilient.Class {
			called++
			return def
		}),
		resilient.WithObserver(func(a resilient.Attempt) { class = a.Class }))
	resp, err := c.Get("https://bucket.s3.test/key")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	resp.Body.Close()
	if called != 1 || class != resilient.Transient {
		t.Errorf("the caller's classifier called %d times, attempt recorded %v; want 1, transient", called, class)
	}
}
