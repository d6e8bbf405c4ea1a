package resilient

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
)

// TestQuotaNameEchoingCredentialNotShown: a server that names the quota a
// response counted against (X-RateLimit-Bucket, X-RateLimit-Resource) by
// the caller's API key has the key shown nowhere: not in the refusal's
// error, the log record, the Attempt, nor a QuotaStore's partition names,
// which show a credential as a one-way tag only (see credentialTag). The
// name was taken as it was: "rate limited: http://a.test bucket
// sk_live_…, credential …". The quota is the credential's, whose
// partition of the host keeps it: its 429's pause still holds the next
// call.
func TestQuotaNameEchoingCredentialNotShown(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	for _, header := range []string{"X-RateLimit-Bucket", "X-RateLimit-Resource"} {
		t.Run(header, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set(header, "q-"+key)
					w.Header().Set("Retry-After", "120")
					w.WriteHeader(http.StatusTooManyRequests)
				}}
				var logs bytes.Buffer
				var obs observed
				store := new(memQuota)
				tr := New(handlerRT{srv}, WithMaxRetries(0), WithQuotaStore(store),
					WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithObserver(obs.add))
				client := &http.Client{Transport: tr}
				var errs []error
				for range 2 {
					req, _ := http.NewRequest("GET", "http://a.test/x", nil)
					req.Header.Set("X-Api-Key", key)
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					errs = append(errs, err)
				}
				if !errors.Is(errs[1], ErrRateLimited) {
					t.Errorf("second call: err = %v, want ErrRateLimited (the 429's pause of 2 minutes)", errs[1])
				}
				if n := len(srv.seen("")); n != 1 {
					t.Errorf("the server got %d calls, want 1", n)
				}
				for _, err := range errs {
					if err != nil && containsFoldKey(err.Error(), key) {
						t.Errorf("error shows the API key: %v", err)
					}
				}
				if containsFoldKey(logs.String(), key) {
					t.Errorf("log records show the API key:\n%s", logs.String())
				}
				for _, a := range obs.all() {
					if a.Err != nil && containsFoldKey(a.Err.Error(), key) {
						t.Errorf("Attempt.Err shows the API key: %v", a.Err)
					}
				}
				store.mu.Lock()
				defer store.mu.Unlock()
				for _, name := range store.names {
					if containsFoldKey(name, key) {
						t.Errorf("QuotaStore partition name shows the API key: %q", name)
					}
				}
			})
		})
	}
}

// containsFoldKey reports whether s holds key in any case: a resource's
// name is lower-cased.
func containsFoldKey(s, key string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(key))
}

// keyRT sends each request to next on a copy that carries the API key, as
// a base that adds the caller's credentials does: the response's Request
// is that copy, the request the Transport sent has no key.
type keyRT struct {
	key  string
	next http.RoundTripper
}

func (rt keyRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Api-Key", rt.key)
	resp, err := rt.next.RoundTrip(r)
	if resp != nil {
		resp.Request = r
	}
	return resp, err
}

// TestQuotaNameEchoingBaseCredentialNotShown: a bucket named by a key that
// a base added below the Transport is looked at for the request the base
// sent, whose route is learned from the Transport's own: the key is shown
// in no QuotaStore partition name.
func TestQuotaNameEchoingBaseCredentialNotShown(t *testing.T) {
	const key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("X-RateLimit-Bucket", "q-"+r.Header.Get("X-Api-Key"))
			w.Header().Set("X-RateLimit-Limit", "5")
			w.Header().Set("X-RateLimit-Remaining", "4")
			w.Header().Set("X-RateLimit-Reset-After", "5")
		}}
		store := new(memQuota)
		tr := New(keyRT{key, handlerRT{srv}}, WithQuotaStore(store))
		for range 2 {
			resp, err := roundTrip(t, tr, newRequest(t, t.Context(), "GET", "http://a.test/x", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		for _, name := range store.names {
			if containsFoldKey(name, key) {
				t.Errorf("QuotaStore partition name shows the API key: %q", name)
			}
		}
	})
}
