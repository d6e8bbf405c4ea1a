package resilient

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestCallersMistakeRetriedByClassifierSpendsNoBudget: a Classifier that
// retries every network error retries a request net/http refuses to send
// (an invalid header value), as it was told; but those retries never left
// the process: they count against nothing, the host's retry budget
// included (a retry not sent gives back what it spent). Before, such
// calls kept all but one retry of the budget every caller of the host
// shares: one careless call left 1 of a budget of 3, and another
// caller's second retry of a 503 from the healthy host was refused.
func TestCallersMistakeRetriedByClassifierSpendsNoBudget(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	base := srv.Client().Transport
	defer base.(*http.Transport).CloseIdleConnections()
	tr := New(base, WithBackoff(0, 0), WithMaxRetries(3), WithoutBreaker(),
		WithRetryBudget(RetryBudget{Burst: 3}),
		WithClassifier(func(_ *http.Response, _ *APIError, err error, def Class) Class {
			if err != nil {
				return Transient
			}
			return def
		}))
	for range 1 {
		bad, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
		bad.Header.Set("X-Note", "line\nbreak")
		if resp, err := tr.RoundTrip(bad); err == nil {
			resp.Body.Close()
			t.Fatal("a request with an invalid header value was sent")
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the server saw %d requests, want none", hits.Load())
	}
	if st, _ := tr.HostState(newRequest(t, t.Context(), http.MethodGet, srv.URL, nil)); st.RetryBudget != 3 {
		t.Errorf("after a call whose attempts could never be sent: the host's retry budget holds %v, want 3", st.RetryBudget)
	}
	good, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/posts", nil)
	resp, err := tr.RoundTrip(good)
	if err != nil {
		t.Fatalf("another caller's valid request to the healthy host: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another caller's request: status %d after %d requests, want 200 (its two 503s retried)", resp.StatusCode, hits.Load())
	}
}
