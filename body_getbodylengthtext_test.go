package resilient

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestGetBodyOfAnotherLengthSaysSo: a retry's body of unknown length from
// a careless GetBody (see carelessGetBodies), refused as not as long as
// the body the attempt before read to its end, fails its attempt with an
// error that says so. It said "http: ContentLength=100 with Body length
// 0", in the Attempt record and the log: a ContentLength the caller never
// set, as if the caller's declared length were wrong, where its GetBody
// is.
func TestGetBodyOfAnotherLengthSaysSo(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			got := new(bodyLog)
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if err := got.read(r); err != nil {
					return nil, err
				}
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
			})
			var errs []error
			tr := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker(), WithObserver(func(a Attempt) {
				if a.Err != nil {
					errs = append(errs, a.Err)
				}
			}))
			resp, err := tr.RoundTrip(carelessRequest(t, t.Context(), http.MethodPut, data, tc.getBody))
			if err != nil {
				t.Fatalf("RoundTrip: %v; want the 503", err)
			}
			resp.Body.Close()
			const want = "resilient: invalid request: Request.GetBody's body, of unknown length, ended after 0 bytes, where the body sent before it had 100"
			if len(errs) != 1 || errs[0].Error() != want {
				t.Fatalf("the attempts' errors are %q; want one, %q", errs, want)
			}
			if strings.Contains(errs[0].Error(), "ContentLength") {
				t.Errorf("the attempt's error names a ContentLength the caller never set: %q", errs[0])
			}
		})
	}
}
