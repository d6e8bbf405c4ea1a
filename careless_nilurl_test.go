package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// callCounter is a Tracer that counts the calls it sees start and end.
type callCounter struct{ started, ended atomic.Int32 }

func (c *callCounter) StartCall(ctx context.Context, _ *http.Request) context.Context {
	c.started.Add(1)
	return ctx
}

func (c *callCounter) StartAttempt(*http.Request, AttemptInfo) (*http.Request, func(*http.Response, error)) {
	return nil, nil
}

func (c *callCounter) Attempt(context.Context, Attempt) {}
func (c *callCounter) EndCall(context.Context, *Report) { c.ended.Add(1) }

// TestNilURLRefusedInNetHTTPWords: a Request literal without a URL is
// refused as http.Transport refuses it, in its words, as one without a
// Header is (TestNilHeaderRefusedLikeNetHTTP): the RequestError said "nil
// Request.URL", where net/http says "http: nil Request.URL", and the
// README promised net/http's refusal. Neither refusal starts a call: a
// Tracer sees nothing of it, as observers see no attempt of it.
func TestNilURLRefusedInNetHTTPWords(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			_, perr := (&http.Transport{}).RoundTrip((&http.Request{Method: method, Header: http.Header{}}).WithContext(context.Background()))
			if perr == nil {
				t.Fatal("plain http.Transport sent a request without a URL")
			}
			var tracer callCounter
			tr := New(roundTripFunc(func(*http.Request) (*http.Response, error) {
				t.Fatal("sent")
				return nil, nil
			}), WithTracer(&tracer))
			body := newTrackedBody("x")
			_, err := roundTrip(t, tr, (&http.Request{Method: method, Header: http.Header{}, Body: body, ContentLength: 1}).WithContext(context.Background()))
			var re *RequestError
			if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "resilient: ") || !strings.Contains(err.Error(), perr.Error()) {
				t.Errorf("err = %v, want a *RequestError saying net/http's %q", err, perr)
			}
			if !body.isClosed() {
				t.Error("the request body was not closed")
			}
			u := http.Request{Method: method, URL: &url.URL{Scheme: "http", Host: "example.test"}}
			if _, err := roundTrip(t, tr, u.WithContext(context.Background())); !strings.Contains(err.Error(), "http: nil Request.Header") {
				t.Errorf("nil Header: err = %v, want net/http's refusal", err)
			}
			if s, e := tracer.started.Load(), tracer.ended.Load(); s != 0 || e != 0 {
				t.Errorf("the Tracer saw %d calls start and %d end, want none", s, e)
			}
		})
	}
}
