package resilient

import (
	"log/slog"
	"net/http"
	"testing"
	"testing/synctest"
)

// TestResetHostCustomKeyExactly: a custom breaker key (BreakerSettings.Key)
// is shown as it is, in BreakerChange.Key and the refusals' text, not with
// a session id REDACTED nor with user information REDACTED as a URL's
// host is (see breakerName): ResetHost and BreakerState name it by its
// own spelling. Two tenants' keys that differ only in the value of a
// credential-named parameter ("tenant;session=1", "tenant;session=2") or
// in what precedes an '@' ("alice@tenant", "bob@tenant") are two
// breakers: the reset of one left the other open, and BreakerState of
// one read the other's state.
func TestResetHostCustomKeyExactly(t *testing.T) {
	for _, tc := range []struct{ reset, other string }{
		{"tenant;session=1", "tenant;session=2"},
		{"alice@tenant", "bob@tenant"},
		{"tenant;jsessionid=A:8443", "tenant;jsessionid=B:8443"},
	} {
		t.Run(tc.reset, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host := bkDead()
				tr := New(bkNet{"api.example.com": host}, WithMaxRetries(0), WithoutHedging(),
					WithLogger(slog.New(slog.DiscardHandler)),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1,
						Key: func(r *http.Request) string { return r.Header.Get("X-Tenant") }}))
				call := func(tenant string) error {
					req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1", nil)
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("X-Tenant", tenant)
					_, _, err = bkDo(t, tr, req)
					return err
				}
				call(tc.other) // the 500 trips the other tenant's breaker
				bkWantOpen(t, call(tc.other))
				if got, want := tr.BreakerState(tc.reset), BreakerClosed; got != want {
					t.Errorf("BreakerState(%q) = %v, want %v", tc.reset, got, want)
				}
				tr.ResetHost(tc.reset)
				hits := host.hits.Load()
				if err := call(tc.other); err == nil || host.hits.Load() != hits {
					t.Errorf("after ResetHost(%q): the %q breaker let a call through (err %v), hits = %d, want %d",
						tc.reset, tc.other, err, host.hits.Load(), hits)
				}
				tr.ResetHost(tc.other)
				if err := call(tc.other); err != nil || host.hits.Load() != hits+1 {
					t.Errorf("after ResetHost(%q): GET = %v, hits = %d, want a 500 and %d", tc.other, err, host.hits.Load(), hits+1)
				}
			})
		})
	}
}
