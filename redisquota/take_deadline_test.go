package redisquota_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestLeaseTokenPastDeadlineNotTaken: an attempt whose deadline comes
// before the next token of the lease held conforms is refused by the
// Transport ("past the call's deadline"), which sends nothing with the
// token. The partition took the token for it all the same, and nobody
// sent it: a run of callers with short deadlines (a service answering in
// 100ms) each burned the next token of the lease, the tokens of the
// leases after it lying further ahead each time (up to four lease times),
// so that under load no caller got one, while the fleet sent none of its
// quota. A token past the attempt's deadline is not taken: the attempt is
// refused with the token's wait, and the token stays for the next one.
func TestLeaseTokenPastDeadlineNotTaken(t *testing.T) {
	addr := redisAddr()
	prefix := testPrefix(t, addr)
	s := redisquota.New(newRedis(t, addr), redisquota.WithPrefix(prefix), redisquota.WithFallbackAfter(time.Minute))
	defer s.Close()
	q := s.Partition("https://api.example.com reads")
	taker := q.(resilient.QuotaDeadlineTaker)
	q.Learn(quota(100), time.Second) // a token each 10.5ms
	// Take tokens without sending them until the next one lies ahead, with
	// tokens left in the lease held. The attempts below are made at that
	// instant (at), so that no token comes due while they are made,
	// however slow the machine.
	deadline := time.Now().Add(10 * time.Second)
	var at time.Time
	for {
		if time.Now().After(deadline) {
			t.Fatal("no lease with a token ahead within 10s")
		}
		at = time.Now()
		if redisquota.Held(q) >= 3 {
			if d, ok, _ := q.Take(at); ok && d > 5*time.Millisecond {
				break
			}
			continue
		}
		if _, ok, retry := q.Take(at); !ok {
			select {
			case <-retry:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for i := range 2 {
		if d, ok, _ := taker.TakeBefore(at, at.Add(time.Millisecond)); ok {
			t.Errorf("attempt %d, whose deadline comes 1ms before the next token of the lease: TakeBefore = %v, true; want no token taken", i, d)
		}
	}
	// The token is the next attempt's, which can wait for it.
	if d, ok, _ := taker.TakeBefore(at, at.Add(time.Second)); !ok || d <= 5*time.Millisecond {
		t.Errorf("the next attempt, which can wait: TakeBefore = %v, %v; want the next token, over 5ms ahead", d, ok)
	}
}

// TestFallbackTokenPastDeadlineNotTaken: while Redis is down, the
// partition paces on its local limiter, which holds a token for an
// attempt up to WithLeaseTime ahead (TestFallbackWaitsNotHoarded). An
// attempt whose deadline came first was refused by the Transport, the
// token held for it all the same: attempts with deadlines shorter than the
// lease time (100ms, a service's own) each held the next token, further
// ahead each time, and under load none was ever near enough to be sent,
// Redis's outage refusing every call. A token past the attempt's deadline
// is not held: the next attempt takes it.
func TestFallbackTokenPastDeadlineNotTaken(t *testing.T) {
	rdb := newRedis(t, "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s := redisquota.New(rdb, redisquota.WithPrefix("rqtest:fallback-deadline"))
	defer s.Close()
	q := s.Partition("p")
	taker := q.(resilient.QuotaDeadlineTaker)
	q.Learn(quota(100), time.Second) // alone: 95 a second, a token each 10.5ms, a burst of 2
	waitFor(t, "pacing locally", func() bool {
		q.Take(time.Now())
		return s.Stats().Fallbacks > 0
	})
	t0 := time.Now().Add(time.Second) // the limiter full again
	for range 20 {
		taker.TakeBefore(t0, t0.Add(5*time.Millisecond))
	}
	// The burst went to the first two; the next token comes 10.5ms after
	// them.
	at := t0.Add(15 * time.Millisecond)
	if d, ok, _ := q.Take(at); !ok || d > 10*time.Millisecond {
		t.Errorf("15ms after 20 attempts of 5ms deadlines, Take = %v, %v; want a token within 10ms, not behind those the refused attempts held", d, ok)
	}
}
