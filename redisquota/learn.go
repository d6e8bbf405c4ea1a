// The quota learned from responses: written to Redis once for the fleet,
// and read back from it.

package redisquota

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
)

// report is a window of the quota held that the member reports to Redis,
// with what the response it came with said remains of the quota (-1
// unknown), which reconfirms the held window, or replaces it when it is
// stale and at least half of the quota is left (see Learn).
type report struct {
	limit     int64
	window    time.Duration
	remaining int
	// reset is the reset of a new window (see newWindow), with which
	// the script may seed a held bucket anew; zero for a report of the
	// window alone.
	reset time.Time
}

// Learn implements resilient.QuotaPartition: a quota that differs from the
// one known is used at once, and written to Redis by the refiller. Its
// limit is the larger of the limit and the remaining count the response
// announced, which the Transport paces by too. For the
// same limit, a longer window is written when it is longer by more than 1%,
// so that members whose estimates differ a little do not overwrite each
// other. A window not longer is not used: a member that has seen only part
// of a window (the Transport's estimate of it is the longest time to a
// reset seen) would make the fleet pace too fast. It is reported to Redis
// instead, by the refiller, at most once per window held (or when Redis
// says the held one is stale, if sooner): a window of at least half of the
// held one reconfirms it, and a shorter one replaces it when no member has
// reported the held one for two of its windows (or for MaxBelievedReset,
// if that is shorter) and the response says that
// at least half of the quota is left, or does not say (see learnScript), as
// the Transport forgets an estimate that no response comes close to while
// its quota is not in use: about one Redis call per member per window
// held, whatever the responses. A quota that differs again less than
// WithLeaseTime after the member last had one to write (a server whose
// announced limit flaps) is used at once but not written: the next lease
// brings back the fleet's, and a response that announces it after that
// writes it, so that each response does not cost a Redis write and a
// message to every member.
//
// What each response says remains of the quota until its reset is kept,
// the latest only, to seed a bucket Redis does not hold: its first, or one
// Redis lost (a restart), which the member writes again. Seeded from the
// response that first announced the quota, a bucket lost in its first
// window granted what remained of it then once more, the fleet having
// spent it.
func (p *part) Learn(info resilient.RateLimitInfo, window time.Duration) {
	// A remaining count above the limit says that the quota counted is at
	// least that, and the Transport paces by it: paced by the limit, the
	// fleet would refuse the calls the server says remain.
	limit := int64(max(info.Limit, info.Remaining))
	if limit <= 0 || window <= 0 {
		return
	}
	now := p.s.now()
	p.heard.Store(now)
	p.heardAt(now)
	var reset int64 // info.Reset, local ns; 0 unknown
	if info.Remaining >= 0 && !info.Reset.IsZero() {
		// Two stores, not one pair: a Learn that runs alongside may
		// pair its count with this reset, both the server's latest.
		reset = p.s.local(info.Reset)
		p.seedLeft.Store(int64(info.Remaining))
		p.seedReset.Store(reset)
	}
	if held := time.Duration(p.window.Load()); limit == p.limit.Load() && window <= held*101/100 {
		if 2*int64(info.Remaining) >= limit && reset != 0 && p.newWindow(now, reset, held) {
			// Reported at once, whenever the window was last: the
			// fleet's bucket holds the member's calls meanwhile.
			p.confirm.Store(&report{limit: limit, window: min(window, held), remaining: info.Remaining, reset: info.Reset})
			p.wake()
			return
		}
		next := p.confirmNext.Load()
		if now < next || !p.confirmNext.CompareAndSwap(next, now+int64(held)) {
			return
		}
		p.confirm.Store(&report{limit: limit, window: min(window, held), remaining: info.Remaining})
		p.wake()
		return
	}
	p.mu.Lock()
	if !p.learnDirty.Load() && now-p.learnedAt.Load() < int64(p.s.cfg.leaseTime) {
		p.known(limit, window)
		p.mu.Unlock()
		return
	}
	p.fellLocked(limit, window)
	p.known(limit, window)
	p.learnedAt.Store(now)
	if info.Remaining < 0 || info.Reset.IsZero() {
		p.seedReset.Store(0) // a new quota, unseeded: not the old one's count
	}
	p.learnDirty.Store(true)
	p.confirmNext.Store(now + int64(window))
	p.mu.Unlock()
	p.wake()
}

// newWindow reports whether a response of the quota held, at now, whose
// quota resets at reset (local ns), says that the server counts a new
// window while the fleet's bucket holds its next token for an old one:
// the member's last lease found the bucket dry past a margin (a seed's
// reset, a spent cap, see learnScript), and reset is later than that
// token by the margin. The member then reports the response's remaining
// count at once, for the script to seed the bucket anew: a Transport
// without a store believes a later reset to start a new window, and
// sends. A response that says less than half of the quota remains is
// not reported: the script takes it for a late response of the same
// window (see learnScript), and the member keeps its report for one that
// says more. It reports so once per dry bucket the member found: a report
// the script refuses (another member seeded it first, the bucket moved)
// is not made again for each response.
func (p *part) newWindow(now, reset int64, held time.Duration) bool {
	d := p.dryUntil.Load()
	m := int64(max(2*time.Second, held/100)) // as learnScript's margin
	if d-now <= m || reset-d <= m {
		return false
	}
	old := p.windowFor.Load()
	return old != d && p.windowFor.CompareAndSwap(old, d)
}

// knownFromFleet sets the quota known, told by the fleet at recv, unless
// the member holds its own reset, or it was published before a reset that
// a state read applied, which cleared it (see quotaCovered). The write
// that told it changed the fleet's bucket (seeded it anew, or moved its
// schedule): a member whose last lease found the bucket dry asks again,
// instead of waiting for the old bucket's next token (an hour away, for a
// quota of one an hour).
func (p *part) knownFromFleet(recv time.Time, limit int64, window time.Duration) {
	p.mu.Lock()
	dry := false
	if t := p.s.since(recv); !p.quotaCovered(t) && !p.holding(t) {
		changed := p.limit.Load() != limit || time.Duration(p.window.Load()) != window
		p.fellLocked(limit, window)
		p.known(limit, window)
		p.heardAt(p.s.since(recv)) // written by a member that just heard it
		p.told++
		// The member's own write, or one of the quota it knew, told
		// back: the bucket its last lease found dry is the same.
		dry = changed && p.dryUntil.Swap(0) != 0
	}
	p.mu.Unlock()
	if dry {
		p.signal() // the waiting attempts take again, which wakes the refiller
	}
}

// reseeded records that the fleet's bucket, which the member's last lease
// found dry, was seeded anew for a new window (see learnScript): the
// attempts waiting for a token take again, and the refiller asks Redis
// for a lease at once instead of waiting for the old reset.
func (p *part) reseeded() {
	if p.dryUntil.Swap(0) != 0 {
		p.signal()
	}
}

// known sets the quota known, unless it is not believable (see
// believable).
func (p *part) known(limit int64, window time.Duration) {
	if !believable(limit, window) {
		return
	}
	p.window.Store(int64(window))
	p.limit.Store(limit)
}

// fellLocked drops the leases held when the quota of limit per window,
// which the member is about to write or the fleet told, is slower than
// the pace of the one known (the bucket's share of it): the leases' tokens
// were granted at that pace, faster than the new quota itself, and, sent
// on top of what the fleet's bucket grants at the new one (seeded anew
// from what the server said remains, for a new limit), they took the
// fleet past the quota the server now announces. Their tokens are not
// given back: the bucket counted them at the old pace. A quota used and
// not written (a flapping server's) drops nothing: the next lease brings
// back the fleet's. p.mu is held.
func (p *part) fellLocked(limit int64, window time.Duration) {
	old, w := p.limit.Load(), p.window.Load()
	if old > 0 && w > 0 && believable(limit, window) && float64(limit)*float64(w) < paceShare*float64(old)*float64(window) {
		p.cur.Store(nil)
		p.next.Store(nil)
	}
}

// believable reports whether a quota of limit per window may be believed:
// both positive, and the window no longer than maxWindow, which no member
// writes (a longer one, from a corrupt or hostile hand, would lock the
// partition out).
func believable(limit int64, window time.Duration) bool {
	return limit > 0 && window > 0 && window <= maxWindow
}

// writeQuota writes the quota limit per window to Redis: the quota known,
// or, with confirm, a window the member reports of the quota it holds,
// which reconfirms the held window or replaces it when it is stale (see
// learnScript), with what the response said remains of the quota (-1
// unknown) until reset (zero unknown), under parent. The member reports no
// window again before Redis says (the held window, or until it is stale).
func (p *part) writeQuota(parent context.Context, limit int64, window time.Duration, remaining int, reset time.Time, confirm bool) error {
	return p.runWrite(parent, p.quotaWrite(limit, window, remaining, reset, confirm))
}

// quotaWrite returns the write of the quota limit per window (see
// writeQuota), or nil when a reset forgot it.
func (p *part) quotaWrite(limit int64, window time.Duration, remaining int, reset time.Time, confirm bool) *write {
	if limit <= 0 || window <= 0 {
		return nil // forgotten by a reset
	}
	resetIn := int64(-1)
	if !reset.IsZero() {
		resetIn = max(time.Until(reset).Microseconds(), 0)
	}
	c := 0
	if confirm {
		c = 1
	}
	// Redis holds the window in whole µs, rounded up: a window shorter
	// than 1µs (a reset a server put 500ns away) written as 0 would be no
	// quota to the lease script, which grants no lease, and the member
	// would write it again and again while its attempts waited for one.
	us := (window + time.Microsecond - 1) / time.Microsecond
	return &write{p: p, script: learnScript, keys: []string{p.key},
		args: []any{limit, int64(us), remaining, resetIn, paceShare, burstFrac,
			p.s.channel, p.id, stateTTL.Milliseconds(), p.s.instance, c, maxWindow.Microseconds(), maxWindow.Microseconds()},
		done: func(cmd *redis.Cmd) error {
			vals, err := cmd.Slice()
			if err != nil {
				return err
			}
			next, ok := toInt(vals, 1)
			if !ok || next < 0 {
				return p.s.badReply()
			}
			p.confirmNext.Store(p.s.now() + next*1e3)
			if seeded, _ := toInt(vals, 2); seeded == 1 {
				p.reseeded() // told to the fleet too, the member included
			}
			return nil
		}}
}

// heardAt records that a member heard the quota announced at t (local ns),
// unless the member knows of a later time.
func (p *part) heardAt(t int64) {
	for {
		f := p.fresh.Load()
		if f >= t || p.fresh.CompareAndSwap(f, t) {
			return
		}
	}
}

// stale reports whether, at t, the quota known was last heard announced,
// by any member as far as the member knows (or at heard, if later), longer
// than maxHeard ago: no member's Transport would pace by it any more (see
// resilient.MaxBelievedReset).
func (p *part) stale(t, heard int64) bool {
	return t-max(p.fresh.Load(), heard) > int64(maxHeard)
}

// heardAge returns how long before t (µs) the member last heard the quota
// announced, for the lease script, which keeps the latest time a member
// did; -1 when it never did.
func (p *part) heardAge(t int64) int64 {
	h := p.heard.Load()
	if h == 0 {
		return -1
	}
	return max(t-h, 0) / 1e3
}
