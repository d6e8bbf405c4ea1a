package resilient

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestHedgingTakesNoSharedToken: a hedged copy takes no token of a fleet's
// quota (WithQuotaStore) that paces what the host announced, since a
// store's token is never given back. Before, each copy took the store's
// next token and waited for it, to be canceled when the attempt answered:
// six calls of 300ms to a host of 60 a minute, hedged at 100ms, took 9s
// instead of 4.8s, the store handing out 12 tokens for 6 requests.
func TestHedgingTakesNoSharedToken(t *testing.T) {
	for _, hedged := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
				resilienttest.WithQuota(resilienttest.Quota{Limit: 60, Window: time.Minute, ResetFormat: resilienttest.IETF}),
				resilienttest.WithLatency(300*time.Millisecond))
			defer srv.Close()
			store := new(memQuota)
			opts := []Option{WithQuotaStore(store)}
			if hedged {
				opts = append(opts, WithHedging(Hedging{Delay: 100 * time.Millisecond}))
			}
			tr := New(srv.Transport(), opts...)
			start := time.Now()
			for range 6 {
				if got := get(t, tr, srv.URL+"/v1/usage"); got != 200 {
					t.Fatalf("status %d", got)
				}
			}
			// The first call's takes are free (no quota known yet), its copy's
			// included; the five others take a token each, at 0.95 a second.
			took := time.Since(start)
			perToken := 0.95
			want := 300*time.Millisecond + 4*time.Duration(float64(time.Second)/perToken) + 300*time.Millisecond
			part := store.part("http://altyaa.test reads")
			if took < want || took > want+time.Millisecond || part.takes > 7 {
				t.Errorf("hedged %v: 6 calls took %v and %d tokens of the store, want %v and at most 7", hedged, took, part.takes, want)
			}
		})
	}
}
