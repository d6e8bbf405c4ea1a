package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestNilHeaderRefusedLikeNetHTTP: a Request literal without a Header, sent
// through Transport.RoundTrip itself (http.Client gives every request a
// Header), is refused by http.Transport whatever its method ("http: nil
// Request.Header"). The Transport refused it on a GET, but sent a POST
// (and, under WithAttemptHeader, a GET), whose copy it gave a Header of
// its own: a plain transport refuses both. It now refuses any such request
// before any attempt: nothing sent, the body closed, no attempt
// observed, a *RequestError wrapping net/http's words.
func TestNilHeaderRefusedLikeNetHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/v1")
	for _, tc := range []struct {
		name   string
		method string
		opts   []Option
	}{
		{"GET", http.MethodGet, nil},
		{"POST", http.MethodPost, nil},
		{"PATCH", http.MethodPatch, nil},
		{"GET with WithAttemptHeader", http.MethodGet, []Option{WithAttemptHeader("X-Attempt")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What a plain http.Transport does with the same request.
			plainBody := newTrackedBody("x")
			_, perr := (&http.Transport{}).RoundTrip((&http.Request{Method: tc.method, URL: u, Body: plainBody}).WithContext(context.Background()))
			if perr == nil || !strings.Contains(perr.Error(), "nil Request.Header") || !plainBody.isClosed() {
				t.Fatalf("plain http.Transport: %v (body closed %v); want its nil Header refusal", perr, plainBody.isClosed())
			}

			base := &http.Transport{}
			defer base.CloseIdleConnections()
			hits.Store(0)
			var attempts atomic.Int32
			opts := append([]Option{WithObserver(func(Attempt) { attempts.Add(1) })}, tc.opts...)
			tr := New(base, opts...)
			body := newTrackedBody("x")
			var rep Report
			req := (&http.Request{Method: tc.method, URL: u, Body: body, ContentLength: 1}).WithContext(WithReport(context.Background(), &rep))
			resp, err := roundTrip(t, tr, req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s with a nil Header: sent (%d hits), status %d; want net/http's refusal", tc.method, hits.Load(), resp.StatusCode)
			}
			var re *RequestError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "nil Request.Header") || !strings.HasPrefix(err.Error(), "resilient: ") {
				t.Errorf("err = %v, want a *RequestError saying nil Request.Header", err)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the server got %d requests, want none", n)
			}
			if !body.isClosed() {
				t.Error("the request body was not closed")
			}
			if n := attempts.Load(); n != 0 || rep.Attempts != 0 {
				t.Errorf("%d attempts observed, Report.Attempts %d; want none", n, rep.Attempts)
			}
			if req.Header != nil {
				t.Errorf("the caller's request was given a Header: %v", req.Header)
			}
		})
	}
}
