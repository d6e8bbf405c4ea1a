package redisquota_test

import (
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestDryMemberFollowsFleetQuotaChange: a quota of 1 a minute, whose one
// token member A takes; member B's lease then finds the fleet's bucket dry
// for about a minute, and its refiller waits for the next token. The
// server raises the quota to 1000 a second (1000 left), which A learns and
// writes, seeding a new bucket, and the fleet's channel tells B. B's
// refiller kept waiting for the old quota's next token, asking Redis for
// no lease whatever B's demand: B's attempts were held back (refused with
// ErrRateLimited past the Transport's WithMaxRetryAfter) for the rest of
// the minute, while the fleet's new bucket held hundreds of tokens.
func TestDryMemberFollowsFleetQuotaChange(t *testing.T) {
	f := twoMembers(t)
	const name = "https://api.example.com reads"
	qa := f.a.Partition(name)
	qa.Learn(resilient.RateLimitInfo{Limit: 1, Remaining: -1}, time.Minute)
	if !tokenWithin(qa, 5*time.Second) {
		t.Fatal("member A got no token of a fresh bucket")
	}
	qb := f.b.Partition(name)
	waitFor(t, "member B finds the fleet's bucket dry", func() bool {
		qb.Take(time.Now()) // demand: B's refiller leases
		return redisquota.DryUntil(qb) > 30*time.Second
	})
	// A quota that differs again within WithLeaseTime of the last is not
	// written (a flapping server's): this one comes later.
	time.Sleep(redisquota.DefaultLeaseTime)
	qa.Learn(resilient.RateLimitInfo{Limit: 1000, Remaining: 1000, Reset: time.Now().Add(time.Second)}, time.Second)
	waitFor(t, "member B hears the new quota", func() bool {
		limit, _ := redisquota.Known(qb)
		return limit == 1000
	})
	if !tokenWithin(qb, 5*time.Second) {
		t.Fatalf("member B got no token within 5s of the fleet's quota rising to 1000 a second (dry for %v more); stats %+v",
			redisquota.DryUntil(qb).Round(time.Second), f.b.Stats())
	}
}
