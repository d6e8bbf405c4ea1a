package redisquota_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// TestPauseReachesQuietMembers: issue 16 — "a 429 with Retry-After in one
// process does not pause the others" is what the store is for, and most
// APIs (Slack, Stripe, …) send a Retry-After on their 429s and no quota on
// their successes. Two members, each a Transport with a Store of its own
// and the default partitions, call such an API: their successes announce
// nothing, so neither has learned a quota. A's 429 (Retry-After: 2) still
// holds B's next request until the pause ends.
func TestPauseReachesQuietMembers(t *testing.T) {
	f := twoMembers(t)
	rec := &arrivals{}
	quiet := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	api := resilienttest.Wrap(quiet, resilienttest.Faults{},
		resilienttest.WithScript("GET /api/chat.postMessage", resilienttest.Normal(), resilienttest.Normal(), resilienttest.RateLimited(2*time.Second)),
		resilienttest.WithExchanges(rec.add))
	defer api.Close()
	url := api.URL + "/api/chat.postMessage"
	base := api.Transport()
	defer base.CloseIdleConnections()
	a := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(f.a))}
	b := &http.Client{Transport: resilient.New(base, resilient.WithQuotaStore(f.b))}

	getOK(t, a, url)
	getOK(t, b, url)
	done := make(chan struct{})
	go func() { defer close(done); getOK(t, a, url) }() // 429, Retry-After 2, then its retry
	name := "http://" + strings.TrimPrefix(api.URL, "http://") + " reads"
	waitFor(t, "B's store holds the pause", func() bool { return f.b.Partition(name).PauseUntil().After(time.Now()) })
	getOK(t, b, url)
	<-done
	in, out := rec.snapshot()
	if len(out) != 1 || len(in) != 5 {
		t.Fatalf("server: %d requests, %d 429s; want 5 and 1", len(in), len(out))
	}
	for i, at := range in[3:] {
		if at.Before(out[0].Add(2 * time.Second)) {
			t.Errorf("request %d arrived %v after the 429, within its 2s pause", i+4, at.Sub(out[0]))
		}
	}
}
