package resilient

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// heardQuota is a QuotaStore whose partitions pace by the quota learned
// until no Learn has told them of it for MaxBelievedReset, as the
// QuotaPartition contract has a store do (redisquota's heard age): then
// they pace by nothing until the next Learn. A Take that gets no token
// reserves none.
type heardQuota struct {
	mu    sync.Mutex
	parts map[string]*heardPart
}

func (q *heardQuota) Partition(name string) QuotaPartition {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.parts == nil {
		q.parts = make(map[string]*heardPart)
	}
	p := q.parts[name]
	if p == nil {
		p = new(heardPart)
		q.parts[name] = p
	}
	return p
}

type heardPart struct {
	mu    sync.Mutex
	pause time.Time
	lim   *rate.Limiter
	heard time.Time // of the last Learn
}

func (p *heardPart) Learn(info RateLimitInfo, window time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heard = time.Now()
	r := rate.Limit(0.95 * float64(info.Limit) / window.Seconds())
	if p.lim == nil || p.lim.Limit() != r {
		p.lim = rate.NewLimiter(r, 1)
	}
}

func (p *heardPart) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim == nil || now.Sub(p.heard) > MaxBelievedReset {
		return 0, true, nil
	}
	r := p.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false, nil
	}
	return 0, true, nil
}

func (p *heardPart) PauseUntil() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pause
}

func (p *heardPart) Pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.pause) {
		p.pause = until
	}
}

// TestQuotaStoreWindowExpiresWithoutResets is
// TestRateLimitWindowExpiresWithoutResets with a QuotaStore, the fleet's:
// one response's hour (a reset 59 minutes ahead, or a policy announced
// once), then responses that repeat the limit and count without a reset
// nor a policy. The store paces the fleet by what its Learns tell it, and
// stops once none has told it of the quota for MaxBelievedReset; a
// response that confirms no window tells it nothing of one. The fleet is
// slowed no longer than MaxBelievedReset after the response that announced
// the window, as a Transport without a store is. (Each response without a
// reset gave the store the window no reset confirmed, until the Transport
// dropped it, MaxBelievedReset later: the fleet was held for twice
// MaxBelievedReset.)
func TestQuotaStoreWindowExpiresWithoutResets(t *testing.T) {
	runResetlessWindow(t, "the store", func() Option { return WithQuotaStore(new(heardQuota)) })
}
