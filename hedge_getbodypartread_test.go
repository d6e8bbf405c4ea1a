package resilient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestHedgingGetBodyAfterACopysBodyReadInPartNotShorter: a hedged copy
// that took the attempt's body over (its dial slow) and lost its
// connection midway through the body (a reset) read it in part, not to
// its end: the bodies made after it, a later copy's and the attempt's own
// renewed from GetBody (see hedgeRun.renew), learned no length from it.
// A careless GetBody (see carelessGetBodies) handed them what the copy
// left of the body, its tail, which the server stored as a whole POST,
// where a plain client sends the caller's bytes once. They must be at
// least as long as what the copy read (see checkedBody.replayLength).
func TestHedgingGetBodyAfterACopysBodyReadInPartNotShorter(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hedgedCarelessPost(t, data, tc.getBody, func(got *bodyLog, r *http.Request) (*http.Response, error) {
					io.ReadFull(r.Body, make([]byte, 60))
					r.Body.Close()
					return nil, errors.New("read tcp: connection reset by peer")
				})
			})
		})
	}
}
