package redisquota_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// TestDryBucketPastDeadlineRefusedAtOnce: the fleet's bucket holds no
// token for the next 15s (other members took them), which the member's
// last lease call said. An attempt that must start within 1s can get
// none: as a Transport without a store refuses a spent quota's attempt at
// once, TakeBefore must say that the token comes past its deadline (a
// delay that reaches it), so that the Transport refuses it at once. It
// said "look again in WithFallbackAfter" instead, each time, and the
// Transport held the call until its deadline, to fail it then.
func TestDryBucketPastDeadlineRefusedAtOnce(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	spendFleet(t, rdb, s.StateKey("p"), 15*time.Second)
	q := s.Partition("p")
	taker := q.(resilient.QuotaDeadlineTaker)
	q.Learn(quota(10), 10*time.Second)
	waitFor(t, "the lease refused", func() bool {
		q.Take(time.Now())
		// Its call over: an attempt during one waits for it.
		return redisquota.DryUntil(q) > 5*time.Second && !redisquota.Calling(q)
	})
	at := time.Now()
	deadline := at.Add(time.Second)
	d, ok, _ := taker.TakeBefore(at, deadline)
	if ok {
		t.Fatalf("TakeBefore = %v, true while the fleet holds every token for 10s more", d)
	}
	if !at.Add(d).After(deadline) {
		t.Errorf("TakeBefore(now, now+1s) = %v, false while the fleet's next token is %v away; want a delay past the deadline, for the Transport to refuse the attempt at once",
			d, redisquota.DryUntil(q).Round(time.Second))
	}
}

// takeCounter is a QuotaStore whose partitions count the Transport's
// TakeBefore calls: its looks at the store for a token.
type takeCounter struct {
	*redisquota.Store
	takes atomic.Int64
}

func (c *takeCounter) Partition(name string) resilient.QuotaPartition {
	return countedPart{c.Store.Partition(name), &c.takes}
}

type countedPart struct {
	resilient.QuotaPartition
	takes *atomic.Int64
}

func (p countedPart) TakeBefore(now, deadline time.Time) (time.Duration, bool, <-chan struct{}) {
	p.takes.Add(1)
	return p.QuotaPartition.(resilient.QuotaDeadlineTaker).TakeBefore(now, deadline)
}

// TestDryBucketPastDeadlineTransportRefuses: through the Transport, a call
// that must start within 1s (its context's deadline, or the longest wait
// WithMaxRetryAfter gives it) to a partition whose fleet bucket holds no
// token for 15s more is refused at once with ErrRateLimited, after one
// look at the store, and never sent, as a spent quota's call without a
// store is. It was held to its deadline, the Transport looking again each
// WithFallbackAfter (about ten looks), and refused then.
func TestDryBucketPastDeadlineTransportRefuses(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	name := "http://" + strings.TrimPrefix(srv.URL, "http://") + " reads"
	ctx := context.Background()
	spendFleet(t, rdb, s.StateKey(name), 15*time.Second)
	q := s.Partition(name)
	q.Learn(quota(10), 10*time.Second)
	waitFor(t, "the lease refused", func() bool {
		q.Take(time.Now())
		// Its call over: an attempt during one waits for it.
		return redisquota.DryUntil(q) > 5*time.Second && !redisquota.Calling(q)
	})
	store := &takeCounter{Store: s}
	c := &http.Client{Transport: resilient.New(srv.Client().Transport, resilient.WithMaxRetries(0),
		resilient.WithMaxRetryAfter(time.Second), resilient.WithQuotaStore(store))}
	for _, tc := range []struct {
		what     string
		deadline time.Duration // the context's; 0 for none
	}{
		{"a 1s context deadline", time.Second},
		{"WithMaxRetryAfter(1s), no context deadline", 0},
	} {
		store.takes.Store(0)
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if tc.deadline > 0 {
			// A longer WithMaxRetryAfter, so that the context's
			// deadline is the bound.
			cctx, cancel = context.WithTimeout(resilient.WithCallOptions(ctx, resilient.WithMaxRetryAfter(time.Minute)), tc.deadline)
		}
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, srv.URL, nil)
		resp, err := c.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, resilient.ErrRateLimited) {
			t.Errorf("%s: err = %v; want ErrRateLimited", tc.what, err)
		}
		if n := store.takes.Load(); n != 1 {
			t.Errorf("%s: the Transport looked at the store %d times; want 1: refused at once, the fleet's next token being %v away",
				tc.what, n, redisquota.DryUntil(q).Round(time.Second))
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests; want none", n)
	}
}

// TestGrantedLeaseEndsDry: the member's lease call found the fleet's
// bucket dry for 15s, and a later one was granted a token (other members
// gave theirs back). Once that token is taken, an attempt that must start
// within 1s waits for the refiller's next call, as before the bucket was
// found dry: the old reading is not the bucket's word any more, and does
// not refuse it at once.
func TestGrantedLeaseEndsDry(t *testing.T) {
	s, rdb, _ := scriptStore(t)
	key := s.StateKey("p")
	spendFleet(t, rdb, key, 15*time.Second)
	q := s.QuietPartition("p", 10, 10*time.Second)
	redisquota.Hush(q)
	taker := q.(resilient.QuotaDeadlineTaker)
	if err := redisquota.Lease(q); err != nil {
		t.Fatal(err)
	}
	if d := redisquota.DryUntil(q); d < 5*time.Second {
		t.Fatalf("after a lease of a bucket spent for 15s: dry for %v; want over 5s", d)
	}
	spendFleet(t, rdb, key, 0) // the others gave their tokens back
	if err := redisquota.Lease(q); err != nil {
		t.Fatal(err)
	}
	if n := redisquota.Held(q); n != 1 {
		t.Fatalf("after a lease of a bucket given back: %d tokens held; want 1", n)
	}
	at := time.Now()
	if d, ok, _ := taker.TakeBefore(at, at.Add(time.Second)); !ok {
		t.Fatalf("TakeBefore of the token held = %v, false; want it taken", d)
	}
	d, ok, _ := taker.TakeBefore(at, at.Add(time.Second))
	if ok {
		t.Fatalf("TakeBefore with no token held = %v, true; want none", d)
	}
	if !at.Add(d).Before(at.Add(time.Second)) {
		t.Errorf("TakeBefore(now, now+1s), a lease granted since the bucket was found dry = %v, false; want a look again before the deadline, not a refusal on the old reading", d)
	}
}
