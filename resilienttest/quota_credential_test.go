package resilienttest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
)

// sendAs makes one GET of path to s with the credential header set to
// value ("" for none).
func sendAs(t *testing.T, s *Server, path, header, value string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set(header, value)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestQuotaPerCredential proves that the quota is counted per credential,
// as the vendors count it (Aidelly per API key, Postato per tenant): one
// tenant that spends its quota gets its 429, and another tenant's calls,
// under another Authorization (or X-Api-Key), are answered with their own
// quota's headers, as the real API would answer them. Requests without a
// credential share one quota. A test of a client that keeps tenants apart
// (one tenant's 429 must not hold another's calls) needs it.
func TestQuotaPerCredential(t *testing.T) {
	for _, d := range []Dialect{Aidelly, Altyaa, Postato} {
		for _, header := range []string{"Authorization", "X-Api-Key"} {
			t.Run(d.String()+"/"+header, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := NewPipeServer(d, WithQuota(Quota{Limit: 1}))
					defer s.Close()
					if r := sendAs(t, s, "/v1/posts", header, "Bearer tenant-a"); r.StatusCode != 200 {
						t.Fatalf("tenant A's first read: %d, want 200", r.StatusCode)
					}
					if r := sendAs(t, s, "/v1/posts", header, "Bearer tenant-a"); r.StatusCode != 429 {
						t.Fatalf("tenant A's second read: %d, want 429", r.StatusCode)
					}
					r := sendAs(t, s, "/v1/posts", header, "Bearer tenant-b")
					if r.StatusCode != 200 {
						t.Fatalf("tenant B's first read after tenant A spent its quota: %d, want 200 (the quota is per API key)", r.StatusCode)
					}
					if got := r.Header.Get("X-RateLimit-Remaining"); got != "0" {
						t.Errorf("tenant B: X-RateLimit-Remaining %q, want 0", got)
					}
					if r := sendAs(t, s, "/v1/posts", header, ""); r.StatusCode != 200 {
						t.Errorf("a read without a credential: %d, want 200 (a quota of its own)", r.StatusCode)
					}
					if r := sendAs(t, s, "/v1/posts", header, ""); r.StatusCode != 429 {
						t.Errorf("a second read without a credential: %d, want 429 (requests without one share a quota)", r.StatusCode)
					}
				})
			})
		}
	}
}

// TestQuotaPerCredentialWrapped proves the same of a server WithHandler.
func TestQuotaPerCredentialWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
		s := NewPipeServer(Altyaa, WithHandler(ok), WithQuota(Quota{Limit: 1}))
		defer s.Close()
		sendAs(t, s, "/x", "Authorization", "Bearer tenant-a")
		if r := sendAs(t, s, "/x", "Authorization", "Bearer tenant-a"); r.StatusCode != 429 {
			t.Fatalf("tenant A's second call: %d, want 429", r.StatusCode)
		}
		if r := sendAs(t, s, "/x", "Authorization", "Bearer tenant-b"); r.StatusCode != 200 {
			t.Errorf("tenant B's first call after tenant A spent its quota: %d, want 200", r.StatusCode)
		}
	})
}

// TestQuotaPerCredentialInjectedHeaders proves that the quota headers of
// an answer injected in front of the API are the caller's quota's.
func TestQuotaPerCredentialInjectedHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewPipeServer(Altyaa, WithQuota(Quota{Limit: 1}))
		defer s.Close()
		sendAs(t, s, "/v1/posts", "Authorization", "Bearer tenant-a")
		s.SetScript(RouteListPosts, Respond(503))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/posts", nil)
		req.Header.Set("Authorization", "Bearer tenant-b")
		s.ServeHTTP(rec, req)
		if rec.Code != 503 || rec.Header().Get("X-RateLimit-Remaining") != "1" {
			t.Errorf("tenant B's injected 503: %d with X-RateLimit-Remaining %q, want 503 with 1 (its own quota, untouched)",
				rec.Code, rec.Header().Get("X-RateLimit-Remaining"))
		}
	})
}
