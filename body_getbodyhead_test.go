package resilient

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
)

// headData returns n bytes no part of which, past its start, begins as
// the whole does: a file's, a JSON document's, unlike a pattern repeated.
func headData(n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i/251 + 1)
	}
	data[0] = '{'
	return data
}

// TestGetBodyAfterABodyReadInPartBeginsAsIt: an attempt's body of unknown
// length that its transport stopped reading early (an answer that came
// first: a server that answers 503 before it reads a large PUT, whose
// client read a window's worth of it, over HTTP/1 or HTTP/2) teaches the
// retry only that its body is at least as long as what was read of it
// (see TestGetBodyAfterABodyReadInPartNotShorter). A careless GetBody
// (see carelessGetBodies) hands out what the attempt left of the body, a
// tail as long as that or longer where less than half of it was read: the
// retry sent it as the whole PUT, which the server stored, where a plain
// client sends the caller's bytes once and returns the 503. A body from
// GetBody must begin with the bytes the body before it began with: a tail
// does not, and is not sent; the call returns the 503. A correct one is.
func TestGetBodyAfterABodyReadInPartBeginsAsIt(t *testing.T) {
	data := headData(100)
	correct := correctGetBody(data)
	for _, read := range []int{1, 10, 30, 50} {
		for _, tc := range append(carelessGetBodies, correct) {
			t.Run(fmt.Sprintf("%d read/%s", read, tc.name), func(t *testing.T) {
				status, err := putAfterPartRead(t, data, read, tc.getBody)
				want := http.StatusServiceUnavailable
				if tc.name == correct.name {
					want = http.StatusCreated
				}
				if status != want {
					t.Errorf("RoundTrip = %d, %v; want %d", status, err, want)
				}
			})
		}
	}
}

// TestHedgingGetBodyAfterACopysBodyReadInPartBeginsAsIt: a hedged copy
// that took the attempt's body over and lost its connection after it read
// less than half of it left a careless GetBody's body (see
// carelessGetBodies) a tail at least as long as what it read: the
// attempt's body renewed from it (see hedgeRun.renew) was sent as the
// whole POST, which the server stored. It must begin as the copy's did:
// it fails, unsent, as a renewal whose GetBody failed does.
func TestHedgingGetBodyAfterACopysBodyReadInPartBeginsAsIt(t *testing.T) {
	data := headData(100)
	for _, tc := range carelessGetBodies {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hedgedCarelessPost(t, data, tc.getBody, func(got *bodyLog, r *http.Request) (*http.Response, error) {
					io.ReadFull(r.Body, make([]byte, 30))
					r.Body.Close()
					return nil, errors.New("read tcp: connection reset by peer")
				})
			})
		})
	}
}
