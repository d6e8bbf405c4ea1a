package resilient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGetBodyAfterABodyReadInPartNotShorter: an attempt's body of unknown
// length that its transport stopped reading before it saw the body end
// (an answer that came first: HTTP/2 stops sending a body once the
// server's response ends the stream, a server answering 503 before it
// reads a body past its flow-control window) was not read to its end, and
// taught the retry no length: a careless GetBody (see carelessGetBodies)
// handed out what was left of the body the attempt drained, nothing or
// its tail, and the retry sent it as the whole PUT, which the server
// stored, where a plain client sends the caller's bytes once and returns
// the 503. A body from GetBody must be at least as long as what was read
// of the body before it: an empty one is not sent, and the call returns
// the 503; a tail, sent chunked as it is read, ends the call with its
// error (see TestCutReplayOfLearnedLengthMayHaveBeenSent); a correct
// one, which is as long, is sent.
func TestGetBodyAfterABodyReadInPartNotShorter(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10)
	correct := correctGetBody(data)
	for _, read := range []int{len(data), 60} {
		for _, tc := range append(carelessGetBodies, correct) {
			t.Run(fmt.Sprintf("%d read/%s", read, tc.name), func(t *testing.T) {
				status, err := putAfterPartRead(t, data, read, tc.getBody)
				switch {
				case tc.name == correct.name:
					if status != http.StatusCreated {
						t.Errorf("RoundTrip = %d, %v; want the retry's 201", status, err)
					}
				case read == len(data):
					if status != http.StatusServiceUnavailable {
						t.Errorf("RoundTrip = %d, %v; want the 503, as a plain client returns it", status, err)
					}
				default:
					const says = "Request.GetBody's body, of unknown length, ended after 40 bytes, where 60 bytes of the body sent before it were read"
					if !errors.As(err, new(*RequestError)) || !strings.Contains(err.Error(), says) {
						t.Errorf("RoundTrip = %d, %v; want the retry's *RequestError saying %q", status, err, says)
					}
				}
			})
		}
	}
}

// correctGetBody is a GetBody, beside carelessGetBodies, that hands out
// a new body of data each time, of unknown length.
func correctGetBody(data []byte) struct {
	name    string
	getBody func(req *http.Request, src io.Reader) func() (io.ReadCloser, error)
} {
	return struct {
		name    string
		getBody func(req *http.Request, src io.Reader) func() (io.ReadCloser, error)
	}{"a correct one", func(*http.Request, io.Reader) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			return io.NopCloser(struct{ io.Reader }{bytes.NewReader(data)}), nil
		}
	}}
}

// putAfterPartRead sends a PUT of data, of unknown length, with GetBody
// made by getBody, to a base whose first attempt reads read bytes of the
// body, then answers 503 (the answer came before the Read that would have
// seen the body end), and whose later ones store the body they read and
// answer 201. It reports a stored body other than data as an error, and
// returns RoundTrip's status (0 for none) and error.
func putAfterPartRead(t *testing.T, data []byte, read int, getBody func(*http.Request, io.Reader) func() (io.ReadCloser, error)) (int, error) {
	t.Helper()
	got := new(bodyLog)
	base := numberedBase(func(i int, r *http.Request) (*http.Response, error) {
		if i == 1 {
			io.ReadFull(r.Body, make([]byte, read))
			r.Body.Close()
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}
		return got.created(r)
	})
	tr := New(base, fastRetries, WithoutRateLimit(), WithoutBreaker())
	resp, err := tr.RoundTrip(carelessRequest(t, t.Context(), http.MethodPut, data, getBody))
	status := 0
	if err == nil {
		status = resp.StatusCode
		resp.Body.Close()
	}
	got.checkEach(t, "PUT", data)
	return status, err
}
