package redisquota

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// part is one partition's state in one member: the leases it holds, the
// quota and the pause it knows, and its refiller. Take and PauseUntil take
// no lock and do no I/O while a lease has tokens; Pause, Learn and Reset do
// no I/O; the refiller (run) does the I/O.
type part struct {
	s        *Store
	name, id string
	key      string // the state's Redis key
	mkey     string // the key of its active members
	gkey     string // the key of its give-back fields
	gbField  string // its give-back field in the state: g:<member>:<instance>:<n>, the partition's own (totalField)

	cur, next atomic.Pointer[lease] // the lease tokens are taken from, and the one after it
	pause     atomic.Int64          // local ns before which nothing is sent; 0 for none; written under mu
	limit     atomic.Int64          // the quota known: limit per window; 0 unknown
	window    atomic.Int64          // ns
	ready     atomic.Pointer[chan struct{}]
	kick      chan struct{} // wakes the refiller; capacity 1
	running   atomic.Bool   // a refiller runs
	loaded    atomic.Bool   // the state was read from Redis while the Store reaches the partition (see Store.markLoaded); written under s.mu
	// read is set once the partition's state was first read from Redis
	// (a lease call, or a resync): until then, the member knows nothing of
	// the fleet's pause or quota, and an attempt that finds no quota
	// waits for the read (see TakeBefore).
	read atomic.Bool

	// What the refiller must write: a quota learned, a window reported
	// (confirm: see Learn), a pause.
	learnDirty atomic.Bool
	// seedLeft and seedReset are what the latest response the member
	// learned from said remains of the quota's window and when it resets
	// (local ns; 0 unknown): the seed of a bucket Redis does not hold (its
	// first, or one Redis lost), which grants no more than the server's
	// latest word (see Learn).
	seedLeft    atomic.Int64
	seedReset   atomic.Int64
	confirm     atomic.Pointer[report]
	confirmNext atomic.Int64 // local ns before which the member reports no window (see Learn)
	windowFor   atomic.Int64 // the dryUntil for which the member reported a new window (see Learn); 0 for none
	learnedAt   atomic.Int64 // local ns when the member last had a quota to write (see Learn); written under mu
	heard       atomic.Int64 // local ns of the member's last Learn: a response announced the quota; 0 for none
	fresh       atomic.Int64 // local ns when a member last heard the quota announced, as far as the member knows (see stale)
	pauseDirty  atomic.Int64 // local ns of a pause to write; 0 for none
	giveback    atomic.Int64 // tokens to give back with the next lease
	debt        atomic.Int64 // tokens taken from the local limiter, to charge to the bucket

	// Resets (Reset, and the fleet's "r" messages). gen counts the resets
	// applied, so that a reply read before one is not applied after it;
	// own is the member's latest pause, until Redis is known to hold it
	// from before a reset; hold, while the member's own reset has not come
	// back through the fleet's channel, makes the member ignore the
	// messages published before it. All written under mu.
	gen      atomic.Int64
	own      atomic.Pointer[ownPause]
	hold     atomic.Pointer[resetHold]
	resetReq atomic.Int64 // local ns of the latest Reset to write; 0 for none
	resetSeq atomic.Int64 // the number of the member's latest Reset (see Store.resetSeq)

	// resetAt is Redis's time (µs) of the latest reset the member applied,
	// told by the fleet's channel or read from the state (see applyLease);
	// told counts the quotas the fleet's channel told the member, so that
	// the reply of a call made before one does not undo it; readReset is
	// the state read that applied a reset whose message had not come (see
	// stateRead), nil for none. All guarded by mu.
	resetAt   int64
	told      int64
	readReset *stateRead
	// heardReset is Redis's time (µs) of the latest reset of the
	// partition whose message came before the Store made it (see
	// Store.unheard), 0 for none: that message, and those before it, are
	// not on their way. Set when the partition is made.
	heardReset int64

	// The give-back in doubt: tokens given back (gbPend) and charged
	// (debtPend) by a call whose reply was lost, sent again with the next
	// call, and gbCum, the net give-back the member had credited in all,
	// which the lease script compares with what it applied last, to credit
	// each once (see leaseScript); gbSeq numbers the running totals sent,
	// gbSent the last one, so that the script applies nothing of a call
	// that reaches Redis after a later one. Guarded by callMu, which the
	// refiller holds for the call.
	callMu   sync.Mutex
	gbCum    int64
	gbPend   int64
	debtPend int64
	gbGen    int64 // gen when the give-back in doubt was counted
	gbSeq    int64
	gbSent   int64
	// leaseDoubt is the number of the member's first call whose tokens it
	// may not have got (see inDoubt), since the last call it got the reply
	// of; 0 for none. Guarded by callMu.
	leaseDoubt int64

	members   atomic.Int64 // the partition's active members, as the last lease counted them
	lastBatch atomic.Int64 // the last lease's size
	callStart atomic.Int64 // local ns when the Redis call in progress started; 0 for none
	dryUntil  atomic.Int64 // local ns before which the fleet's bucket holds no token for the member, as the last lease call said; 0 for none
	degraded  atomic.Bool  // the last Redis call failed

	mu       sync.Mutex // promotes leases; guards the fallback limiter; orders the writes of pause, leases and resets
	fb       *rate.Limiter
	fbLimit  rate.Limit
	fbBurst  int
	promoted int64 // leases promoted, for the refiller's demand
}

// newPart returns the partition named name, id its id in Redis, whose
// give-back field in the state is gbField. s.mu is held.
func newPart(s *Store, name, id, gbField string) *part {
	key := s.cfg.prefix + ":{" + id + "}"
	p := &part{s: s, name: name, id: id, key: key, mkey: key + ":members", gkey: key + ":gb", gbField: gbField, kick: make(chan struct{}, 1),
		heardReset: s.heardResetLocked(id)}
	ch := make(chan struct{})
	p.ready.Store(&ch)
	return p
}

// Take implements resilient.QuotaPartition.
func (p *part) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	return p.TakeBefore(now, time.Time{})
}

// TakeBefore implements resilient.QuotaDeadlineTaker: Take for an attempt
// that must start before deadline (zero for none). With no token held,
// while the member waits for Redis (for its refiller's call, or the
// subscription, or for the refiller to make its call), an attempt that
// cannot wait until the member would fall back (WithFallbackAfter after
// the call started) is paced locally at once, as after the fallback:
// Redis's trouble never refuses it. An attempt that waits for the fleet's
// next tokens (the last lease call found the bucket spent until later)
// waits for them as with Take, and is refused by the Transport if they
// come past its deadline, as a spent quota's attempt is without a store.
// So is an attempt whose deadline comes before the next token of the
// lease held, or of the local limiter: the token is not taken (ok false,
// with its wait), and goes to the next attempt, not to one the Transport
// refuses.
//
// Until the partition's state is first read from Redis, the member knows
// neither the fleet's pause nor its quota: an attempt that finds no quota
// known waits for the read (the partition's first Redis call), bounded in
// the same way, so that a member that joins while the fleet is paused (a
// process started during a pause, or a partition it had never used) does
// not send through the pause. Once read, a partition that knows no quota
// answers at once, unpaced, with no Redis call.
func (p *part) TakeBefore(now, deadline time.Time) (time.Duration, bool, <-chan struct{}) {
	t := p.s.since(now)
	ready := *p.ready.Load() // before looking: a lease stored after it closes it
	if pu := p.pause.Load(); pu > t {
		return time.Duration(pu - t), false, ready
	}
	var by int64 // the deadline, local ns; 0 for none
	if !deadline.IsZero() {
		// Read from now, as the Transport reads it: on the monotonic
		// clock, or on the wall clock for a deadline that carries no
		// monotonic reading (a date a caller gave). Read from the
		// Store's epoch, such a deadline was off by every step of the
		// wall clock since New: two hours early after a step back of two
		// hours, before any dry time, even none, and TakeBefore answered
		// a delay below zero (TestDryDeadlineOnWallClock).
		if d := int64(deadline.Sub(now)); d < math.MaxInt64-t {
			by = t + d
		} else {
			by = math.MaxInt64
		}
	}
	for {
		l := p.cur.Load()
		if l == nil {
			break
		}
		wait, left, ok := l.take(t, by)
		if ok {
			if left <= l.n/2 && p.next.Load() == nil && l.kicked.CompareAndSwap(false, true) {
				p.wake()
			}
			return time.Duration(wait), true, nil
		}
		if wait > 0 {
			// The lease's next token comes past the attempt's deadline
			// (the next lease's come later still): it is left for the
			// next attempt, and this one is refused by the Transport,
			// as it was when it held the token (see lease.take).
			return time.Duration(wait), false, ready
		}
		if !p.promote(l) {
			break
		}
	}
	// No token held.
	p.wake()
	if p.limit.Load() == 0 && p.read.Load() {
		p.s.st.unpaced.Add(1)
		return 0, true, nil
	}
	wait := p.s.cfg.fallbackAfter
	if cs := p.callStart.Load(); cs > 0 {
		wait = time.Duration(cs + int64(p.s.cfg.fallbackAfter) - t)
	}
	short := !deadline.IsZero() && !now.Add(wait).Before(deadline)
	if p.limit.Load() == 0 {
		// The state has not been read yet: the fleet may be paused (a
		// member that joins during a pause) or hold a quota. The attempt
		// waits for the read, as for a lease, unless Redis is late for it
		// or the attempt cannot wait for it.
		if p.fallback(t) || short {
			p.s.st.unpaced.Add(1)
			return 0, true, nil
		}
		return max(wait, time.Millisecond), false, ready
	}
	if p.fallback(t) || p.dryUntil.Load() <= t && short {
		if p.stale(t, p.heard.Load()) {
			// No member was heard announcing the quota for maxHeard:
			// unpaced, as the Transport would be (see Learn).
			p.s.st.unpaced.Add(1)
			return 0, true, nil
		}
		d, ok := p.fallbackTake(now, deadline)
		if !ok {
			return d, false, ready
		}
		p.s.st.fallbacks.Add(1)
		return d, true, nil
	}
	if du := p.dryUntil.Load(); by != 0 && du > t && du-int64(4*p.s.cfg.leaseTime) >= by && p.callStart.Load() == 0 && !p.toWrite() {
		// The last lease call found the fleet's bucket dry until past the
		// attempt's deadline, the member has nothing to write that
		// could change it (see waitForFleet), no Redis call of its is in
		// progress, and its refiller asks Redis again only 4×WithLeaseTime
		// before the dry time (see applyLease), at or after the
		// deadline: the wait reaches the deadline, and the Transport
		// refuses the attempt at once, as a spent quota's without a
		// store. (Told to look again in WithFallbackAfter, it held the
		// attempt to its deadline, to refuse it then.) A call in
		// progress may bring tokens, or fail, and the member then
		// paces locally (TestDryBucketCallInProgressFallsBack); the
		// refiller's next call, before the deadline, may find the
		// tokens the other members gave back since, or a bucket Redis
		// lost (TestDryBucketLookAgainBeforeNextLease): the attempt
		// waits for them, as before.
		return time.Duration(du - t), false, ready
	}
	return max(wait, time.Millisecond), false, ready
}

// readState records that the partition's state was read from Redis, and
// wakes the attempts waiting for it (see TakeBefore).
func (p *part) readState() {
	if !p.read.Swap(true) {
		p.signal()
	}
}

// promote replaces the exhausted lease l by the next one. It reports
// whether a lease took its place.
func (p *part) promote(l *lease) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur.Load() != l {
		return true // another goroutine did
	}
	nx := p.next.Swap(nil)
	p.cur.Store(nx)
	p.promoted++
	// Tokens that expired untaken go back to the bucket: a member slower
	// than its lease does not waste the fleet's quota.
	p.giveback.Add(l.skipped.Load() + max(l.n-l.taken.Load(), 0))
	return nx != nil

}

// fallback reports whether the partition paces locally at t: Redis failed
// last, or has not answered for WithFallbackAfter, or the Store is closed.
func (p *part) fallback(t int64) bool {
	if p.degraded.Load() || p.s.ctx.Err() != nil {
		return true
	}
	cs := p.callStart.Load()
	return cs > 0 && t-cs >= int64(p.s.cfg.fallbackAfter)
}

// fallbackTake reserves a token of the local limiter, paced at the
// member's share of the last known quota, and returns its wait. Once the
// Store is closed, the member's requests are charged to the fleet's bucket
// no more, and the open members may take the whole of it: the limiter then
// paces at the member's share of closedShare of the quota (the part the
// bucket never grants), one token at a time, so that the fleet stays
// within the quota however many of its members were closed; its tokens
// are no debt, which Close's last write of the partition would charge to
// the bucket (see flushRest). A token
// further ahead than WithLeaseTime, as far as a lease's tokens go, or
// than the attempt's deadline (zero for none), is not reserved (ok
// false): the caller takes again when it is due, or is refused. The
// Transport refuses an attempt whose wait passes its deadline without
// giving its token back, and tokens held far ahead for attempts that gave
// up would hold every later attempt behind them (attempts of deadlines
// shorter than WithLeaseTime, held each a token past it, left none near
// enough for any of them while Redis was down).
func (p *part) fallbackTake(now, deadline time.Time) (wait time.Duration, ok bool) {
	limit, window := p.limit.Load(), time.Duration(p.window.Load())
	members := max(p.s.members.Load(), p.members.Load(), 1)
	share, b := paceShare, max(1, int(burstFrac*float64(limit))/int(members))
	closed := p.s.ctx.Err() != nil
	if closed {
		share, b = closedShare, 1
	}
	r := rate.Limit(share * float64(limit) / window.Seconds() / float64(members))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.fb == nil:
		p.fb = rate.NewLimiter(r, b)
	case r != p.fbLimit || b != p.fbBurst:
		p.fb.SetLimitAt(now, r)
		p.fb.SetBurstAt(now, b)
	}
	p.fbLimit, p.fbBurst = r, b
	res := p.fb.ReserveN(now, 1)
	d := res.DelayFrom(now)
	if d > p.s.cfg.leaseTime || d > 0 && !deadline.IsZero() && !now.Add(d).Before(deadline) {
		res.CancelAt(now)
		return d, false
	}
	if !closed {
		// A closed member's tokens are of the part of the quota the
		// bucket never grants: Close's last write charges them not.
		p.debt.Add(1)
	}
	return d, true
}

// signal wakes the attempts waiting for a token.
func (p *part) signal() {
	ch := make(chan struct{})
	old := p.ready.Swap(&ch)
	close(*old)
}

// wake asks the refiller to look at the partition, starting it when it
// does not run.
func (p *part) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
	if !p.running.Load() && p.running.CompareAndSwap(false, true) {
		if !p.s.start(p.run) {
			// Closed: stay marked running, so that nothing tries again.
			return
		}
	}
}

// call runs one Redis call of the partition under parent (see
// Store.callIn: the Store's context, or Close's bound for the writes
// Close makes), marked in progress: an attempt that finds it has not
// answered for WithFallbackAfter paces locally, whatever the call (a
// lease, or a reset, a pause or a quota to write, which the refiller
// writes before it leases). A call of a step that made one before it
// counts from the step's start (see step): the attempts waiting for a
// token wait for the step's calls together.
func (p *part) call(parent context.Context, fn func(ctx context.Context) error) error {
	if p.callStart.CompareAndSwap(0, p.s.now()) {
		defer p.callStart.Store(0)
	}
	return p.s.callIn(parent, fn)
}

// toInt returns v[i] as an integer, an int64 or a string of digits.
func toInt(v []any, i int) (int64, bool) {
	if i >= len(v) {
		return 0, false
	}
	switch x := v[i].(type) {
	case int64:
		return x, true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}
