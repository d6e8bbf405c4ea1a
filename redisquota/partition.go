package redisquota

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient"
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
	pause     atomic.Int64          // local Unix ns before which nothing is sent; 0 for none; written under mu
	limit     atomic.Int64          // the quota known: limit per window; 0 unknown
	window    atomic.Int64          // ns
	ready     atomic.Pointer[chan struct{}]
	kick      chan struct{} // wakes the refiller; capacity 1
	running   atomic.Bool   // a refiller runs

	// What the refiller must write: a quota learned, a window reported
	// (confirm: see Learn), a pause.
	learnDirty  atomic.Bool
	learnSeed   atomic.Pointer[seed]
	confirm     atomic.Pointer[report]
	confirmNext atomic.Int64 // local Unix ns before which the member reports no window (see Learn)
	pauseDirty  atomic.Int64 // local Unix ns of a pause to write; 0 for none
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
	resetReq atomic.Int64 // local Unix ns of the latest Reset to write; 0 for none
	resetSeq atomic.Int64 // the member's Resets, numbered

	// resetAt is Redis's time (µs) of the latest reset the member applied,
	// told by the fleet's channel or read from the state (see applyLease);
	// told counts the quotas the fleet's channel told the member, so that
	// the reply of a call made before one does not undo it. Both guarded
	// by mu.
	resetAt int64
	told    int64

	// The give-back in doubt: tokens given back (gbPend) and charged
	// (debtPend) by a call whose reply was lost, sent again with the next
	// call, and gbCum, the net give-back the member had credited in all,
	// which the lease script compares with what it applied last, to credit
	// each once (see leaseScript). Guarded by callMu, which the refiller
	// holds for the call.
	callMu   sync.Mutex
	gbCum    int64
	gbPend   int64
	debtPend int64
	gbGen    int64 // gen when the give-back in doubt was counted

	members   atomic.Int64 // the partition's active members, as the last lease counted them
	lastBatch atomic.Int64 // the last lease's size
	callStart atomic.Int64 // local Unix ns when the Redis call in progress started; 0 for none
	degraded  atomic.Bool  // the last Redis call failed

	mu       sync.Mutex // promotes leases; guards the fallback limiter; orders the writes of pause, leases and resets
	fb       *rate.Limiter
	fbLimit  rate.Limit
	fbBurst  int
	promoted int64 // leases promoted, for the refiller's demand
}

// ownPause is a pause the member set (Pause): until, local Unix ns, and
// pset, Redis's time (µs) when its write set it, zero until known. A reset
// that ran in Redis before pset, or before the write, did not clear it.
type ownPause struct {
	until, pset int64
}

// resetHold is a Reset of the member's own, numbered seq, that has not come
// back through the fleet's channel: the pauses and quotas published before
// it, which it cleared, are ignored. until (local Unix ns) bounds the hold,
// should its message be lost; zero while Redis has not run it, the hold
// then ending resetHoldMax after the Reset.
type resetHold struct {
	seq, at, until int64
}

// resetHoldMax bounds how long a member ignores the fleet's messages after
// its Reset, waiting for it to come back through the channel: from the
// Reset while Redis has not run it, from its run after.
const resetHoldMax = time.Second

// report is a window of the quota held that the member reports to Redis,
// with what the response it came with said remains of the quota (-1
// unknown), which reconfirms the held window, or replaces it when it is
// stale and at least half of the quota is left (see Learn).
type report struct {
	limit     int64
	window    time.Duration
	remaining int
}

// seed is what a response said remains of the quota's window, to seed a
// new bucket.
type seed struct {
	remaining int
	reset     time.Time
}

// lease is a run of n tokens granted by Redis: token j (1 to n) conforms
// at max(recv, base + j·interval), and expires, if nobody took it,
// expire after that.
type lease struct {
	base     int64   // local Unix ns
	interval float64 // ns
	n        int64
	recv     int64        // local Unix ns
	expire   int64        // ns
	taken    atomic.Int64 // tokens taken, or skipped once expired
	skipped  atomic.Int64 // tokens skipped once expired: given back
	kicked   atomic.Bool  // the refiller was asked for the next lease
}

// newPart returns the partition named name, id its id in Redis, whose
// give-back field in the state is gbField.
func newPart(s *Store, name, id, gbField string) *part {
	key := s.cfg.prefix + ":{" + id + "}"
	p := &part{s: s, name: name, id: id, key: key, mkey: key + ":members", gkey: key + ":gb", gbField: gbField, kick: make(chan struct{}, 1)}
	ch := make(chan struct{})
	p.ready.Store(&ch)
	return p
}

// conform returns when token j conforms.
func (l *lease) conform(j int64) int64 {
	return max(l.recv, l.base+int64(float64(j)*l.interval))
}

// expired returns how many of the tokens have expired at t, taken or not:
// those that conformed more than expire before t.
func (l *lease) expired(t int64) int64 {
	t -= l.expire
	if t < l.recv {
		return 0
	}
	k := int64(math.Floor(float64(t-l.base) / l.interval))
	return min(max(k, 0), l.n)
}

// take reserves the next token at t. It returns the wait until the token
// conforms; exhausted when none is left.
func (l *lease) take(t int64) (wait int64, left int64, ok bool) {
	for {
		k := l.taken.Load()
		j := max(k, l.expired(t))
		if j >= l.n {
			return 0, 0, false
		}
		if l.taken.CompareAndSwap(k, j+1) {
			if j > k {
				l.skipped.Add(j - k)
			}
			return max(l.conform(j+1)-t, 0), l.n - j - 1, true
		}
	}
}

// left returns the tokens of l neither taken nor expired at t.
func (l *lease) left(t int64) int64 {
	return l.n - max(l.taken.Load(), l.expired(t))
}

// Take implements resilient.QuotaPartition.
func (p *part) Take(now time.Time) (time.Duration, bool, <-chan struct{}) {
	t := now.UnixNano()
	ready := *p.ready.Load() // before looking: a lease stored after it closes it
	if pu := p.pause.Load(); pu > t {
		return time.Duration(pu - t), false, ready
	}
	for {
		l := p.cur.Load()
		if l == nil {
			break
		}
		if wait, left, ok := l.take(t); ok {
			if left <= l.n/2 && p.next.Load() == nil && l.kicked.CompareAndSwap(false, true) {
				p.wake()
			}
			return time.Duration(wait), true, nil
		}
		if !p.promote(l) {
			break
		}
	}
	// No token held.
	if p.limit.Load() == 0 {
		p.wake()
		p.s.st.unpaced.Add(1)
		return 0, true, nil
	}
	p.wake()
	if p.fallback(t) {
		p.s.st.fallbacks.Add(1)
		return p.fallbackTake(now), true, nil
	}
	wait := p.s.cfg.fallbackAfter
	if cs := p.callStart.Load(); cs > 0 {
		wait = time.Duration(cs + int64(p.s.cfg.fallbackAfter) - t)
	}
	return max(wait, time.Millisecond), false, ready
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
// member's share of the last known quota, and returns its wait.
func (p *part) fallbackTake(now time.Time) time.Duration {
	limit, window := p.limit.Load(), time.Duration(p.window.Load())
	members := max(p.s.members.Load(), p.members.Load(), 1)
	r := rate.Limit(paceShare * float64(limit) / window.Seconds() / float64(members))
	b := max(1, int(burstFrac*float64(limit))/int(members))
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
	p.debt.Add(1)
	return p.fb.ReserveN(now, 1).DelayFrom(now)
}

// PauseUntil implements resilient.QuotaPartition.
func (p *part) PauseUntil() time.Time {
	if pu := p.pause.Load(); pu > 0 {
		return time.Unix(0, pu)
	}
	return time.Time{}
}

// PauseChanged implements resilient.QuotaWatcher: the channel is closed at
// the partition's next signal, the one that wakes the requests waiting for
// a token too: a pause raised (the member's own or the fleet's), a reset
// (the member's own or another's, told through the fleet's channel), a
// lease granted, a fall back to local pacing.
func (p *part) PauseChanged() <-chan struct{} { return *p.ready.Load() }

// Pause implements resilient.QuotaPartition: the member sees the pause at
// once, and the refiller writes it to Redis, which tells the fleet.
func (p *part) Pause(until time.Time) {
	u := until.UnixNano()
	p.mu.Lock()
	rose := p.raisePauseLocked(u)
	if rose {
		p.own.Store(&ownPause{until: u})
		if u > p.pauseDirty.Load() {
			p.pauseDirty.Store(u)
		}
	}
	p.mu.Unlock()
	if rose {
		p.signal()
		p.wake()
	}
}

// pauseFor applies a pause of d from recv, told by the fleet's channel,
// unless the member holds its own reset.
func (p *part) pauseFor(recv time.Time, d time.Duration) {
	if d <= 0 || d > maxPause {
		return
	}
	p.mu.Lock()
	rose := !p.holding(recv.UnixNano()) && p.raisePauseLocked(recv.Add(d).UnixNano())
	p.mu.Unlock()
	if rose {
		p.signal()
	}
}

// raisePauseLocked raises the pause to u (local Unix ns) and drops the
// leases held (their tokens would all conform when it ends, in one burst).
// It reports whether the pause rose: the caller then wakes the attempts
// waiting for a token (signal). p.mu is held.
func (p *part) raisePauseLocked(u int64) bool {
	if u <= p.pause.Load() {
		return false
	}
	p.pause.Store(u)
	t := time.Now().UnixNano()
	for _, lp := range []*atomic.Pointer[lease]{&p.cur, &p.next} {
		if l := lp.Swap(nil); l != nil {
			p.giveback.Add(max(l.left(t), 0))
		}
	}
	return true
}

// holding reports whether the member ignores, at t (local Unix ns), the
// fleet's messages: they were published before its own reset ran in Redis,
// and the reset cleared what they say, or will tell what it kept. p.mu is
// held.
func (p *part) holding(t int64) bool {
	h := p.hold.Load()
	if h == nil {
		return false
	}
	if h.until > 0 {
		return t < h.until
	}
	return t < h.at+int64(resetHoldMax)
}

// Reset implements resilient.QuotaResetter: the member forgets the pause
// and the quota at once (its leases with them: the bucket they came from
// is cleared), and the refiller runs the reset in Redis, which clears the
// pause and the quota there, unless another member set them after the
// Reset, and tells the fleet. Until the reset comes back through the
// fleet's channel (for resetHoldMax at most), the member ignores the
// pauses and quotas published before it, its own pause being written
// included: the reset cleared them, or its message tells what it kept.
func (p *part) Reset() {
	now := time.Now().UnixNano()
	p.mu.Lock()
	seq := p.resetSeq.Add(1)
	p.hold.Store(&resetHold{seq: seq, at: now})
	p.own.Store(nil)
	p.pauseDirty.Store(0)
	p.resetLocked(0, 0, 0, false)
	p.resetReq.Store(now)
	p.mu.Unlock()
	p.signal()
	p.wake()
}

// fleetReset is a reset run in Redis: the reset numbered seq of the Store
// whose instance id is store, run at at (Redis's µs), told by its message
// or read from the state (rat, rby, rseq).
type fleetReset struct {
	store   string
	seq, at int64
}

// applyReset applies a reset told by the fleet's channel (a message
// received at recv), r, which left the pause until pause and the quota
// limit per window µs (0 for none), at now, Redis's times in µs. While the
// member holds a reset of its own, it ignores the earlier resets of the
// others, which its own follows.
func (p *part) applyReset(recv time.Time, r fleetReset, pause, now, limit, window int64) {
	p.mu.Lock()
	if h := p.hold.Load(); h != nil {
		if r.store == p.s.instance && r.seq >= h.seq {
			p.hold.Store(nil)
		} else if p.holding(recv.UnixNano()) {
			p.mu.Unlock()
			return // an earlier reset: the member's own clears more
		}
	}
	p.applyResetLocked(recv, r, pause, now, limit, window)
	p.mu.Unlock()
	p.signal()
}

// applyResetLocked applies the reset r, received at recv, after which the
// state held the pause until pause and the quota limit per window µs (0
// for none) at now, Redis's times in µs. The member keeps a pause of its
// own that Redis set after the reset, or has not set yet, and a quota it
// learned that its refiller has yet to write. p.mu is held; the caller
// signals.
func (p *part) applyResetLocked(recv time.Time, r fleetReset, pause, now, limit, window int64) {
	t := recv.UnixNano()
	p.resetAt = max(p.resetAt, r.at)
	keep := int64(0)
	if d := time.Duration(pause-now) * time.Microsecond; d > 0 && d <= maxPause {
		keep = t + int64(d)
	}
	if o := p.own.Load(); o != nil {
		if o.pset == 0 || o.pset > r.at {
			keep = max(keep, o.until)
		} else {
			p.own.Store(nil)
		}
	}
	if keep <= t {
		keep = 0
	}
	p.resetLocked(keep, limit, time.Duration(window)*time.Microsecond, p.learnDirty.Load())
}

// resetLocked applies a reset: the pause becomes pause (local Unix ns, 0
// for none), and the quota limit per window, or, without one, none (unless
// keepLearned: a quota the member learned, not written yet), with the
// leases and the tokens to give back or charge, which belong to the bucket
// the reset cleared. The caller signals. p.mu is held.
func (p *part) resetLocked(pause, limit int64, window time.Duration, keepLearned bool) {
	p.gen.Add(1)
	p.pause.Store(pause)
	if believable(limit, window) {
		p.known(limit, window) // the bucket is kept: so are the leases
		return
	}
	if !keepLearned {
		p.limit.Store(0)
		p.window.Store(0)
		p.learnDirty.Store(false)
		p.learnSeed.Store(nil)
		p.confirm.Store(nil)
		p.confirmNext.Store(0)
	}
	p.cur.Store(nil)
	p.next.Store(nil)
	p.giveback.Store(0)
	p.debt.Store(0)
	p.lastBatch.Store(0)
}

// Learn implements resilient.QuotaPartition: a quota that differs from the
// one known is used at once, and written to Redis by the refiller. For the
// same limit, a longer window is written when it is longer by more than 1%,
// so that members whose estimates differ a little do not overwrite each
// other. A window not longer is not used: a member that has seen only part
// of a window (the Transport's estimate of it is the longest time to a
// reset seen) would make the fleet pace too fast. It is reported to Redis
// instead, by the refiller, at most once per window held (or when Redis
// says the held one is stale, if sooner): a window of at least half of the
// held one reconfirms it, and a shorter one replaces it when no member has
// reported the held one for two of its windows and the response says that
// at least half of the quota is left, or does not say (see learnScript), as
// the Transport forgets an estimate that no response comes close to while
// its quota is not in use: about one Redis call per member per window
// held, whatever the responses.
func (p *part) Learn(info resilient.RateLimitInfo, window time.Duration) {
	limit := int64(info.Limit)
	if limit <= 0 || window <= 0 {
		return
	}
	now := time.Now().UnixNano()
	if held := time.Duration(p.window.Load()); limit == p.limit.Load() && window <= held*101/100 {
		next := p.confirmNext.Load()
		if now < next || !p.confirmNext.CompareAndSwap(next, now+int64(held)) {
			return
		}
		p.confirm.Store(&report{limit: limit, window: min(window, held), remaining: info.Remaining})
		p.wake()
		return
	}
	p.mu.Lock()
	p.learnSeed.Store(&seed{remaining: info.Remaining, reset: info.Reset})
	p.known(limit, window)
	p.learnDirty.Store(true)
	p.confirmNext.Store(now + int64(window))
	p.mu.Unlock()
	p.wake()
}

// knownFromFleet sets the quota known, told by the fleet at recv, unless
// the member holds its own reset.
func (p *part) knownFromFleet(recv time.Time, limit int64, window time.Duration) {
	p.mu.Lock()
	if !p.holding(recv.UnixNano()) {
		p.known(limit, window)
		p.told++
	}
	p.mu.Unlock()
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

// believable reports whether a quota of limit per window may be believed:
// both positive, and the window no longer than maxWindow, which no member
// writes (a longer one, from a corrupt or hostile hand, would lock the
// partition out).
func believable(limit int64, window time.Duration) bool {
	return limit > 0 && window > 0 && window <= maxWindow
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

// run is the partition's refiller: it writes what the member learned,
// takes leases while there is demand, and stops after idleExit without
// any.
func (p *part) run() {
	if !p.awaitSubscribed() {
		return
	}
	backoff := time.Duration(0)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	idle := time.Now()
	lastActivity := p.activity()
	loaded := false
	for {
		wait, err := p.step(&loaded)
		if err != nil {
			p.degraded.Store(true)
			p.signal() // the waiting attempts fall back at once
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait = backoff
		} else {
			if p.degraded.Swap(false) {
				p.signal()
			}
			backoff = 0
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.s.ctx.Done():
				return
			case <-timer.C:
				if err != nil {
					if a := p.activity(); a != lastActivity {
						lastActivity, idle = a, time.Now()
					} else if time.Since(idle) >= idleExit && p.failedIdle() {
						return // no demand while Redis fails
					}
					continue // Redis fails: idle counts from the last demand
				}
			case <-p.kick:
				if err != nil {
					// Redis fails: do not try again sooner than the
					// backoff, whatever the demand.
					select {
					case <-p.s.ctx.Done():
						return
					case <-timer.C:
					}
				} else {
					timer.Stop()
				}
			}
			idle = time.Now()
			continue
		}
		timer.Reset(idleExit - time.Since(idle))
		select {
		case <-p.s.ctx.Done():
			return
		case <-p.kick:
			timer.Stop()
			idle = time.Now()
			continue
		case <-timer.C:
		}
		if a := p.activity(); a != lastActivity {
			// Tokens were taken from a lease that needed no refill yet:
			// not idle.
			lastActivity, idle = a, time.Now()
			continue
		}
		// Idle: give back what is left and stop, unless work came.
		p.running.Store(false)
		if len(p.kick) == 0 && p.pauseDirty.Load() == 0 && !p.learnDirty.Load() && p.confirm.Load() == nil && p.resetReq.Load() == 0 {
			p.lastBatch.Store(0)
			p.returnTokens()
			return
		}
		if !p.running.CompareAndSwap(false, true) {
			return // another refiller took over
		}
	}
}

// failedIdle stops the refiller, whose Redis calls fail, of a partition
// that nobody used for idleExit, unless it must still write a reset (which
// the member promises the fleet) or a pause not over yet: without it, every
// partition used once while Redis is down or unreachable would keep a
// goroutine calling Redis until it answers. A quota to write stays to
// write, by the refiller the next demand starts. It reports whether the
// refiller stops; when work came meanwhile, it keeps running.
func (p *part) failedIdle() bool {
	if p.resetReq.Load() != 0 || p.pauseDirty.Load() > time.Now().UnixNano() {
		return false
	}
	p.running.Store(false)
	if len(p.kick) == 0 {
		return true
	}
	return !p.running.CompareAndSwap(false, true) // another refiller took over
}

// awaitSubscribed waits until the Store subscribed to the fleet's channel
// (or failed to), so that what the refiller loads first is not older than
// the messages the member receives: a quota written between the two
// would reach it by neither. The wait counts as a Redis call in progress:
// an attempt that finds it longer than WithFallbackAfter paces locally. It
// reports false when the Store is closed.
func (p *part) awaitSubscribed() bool { return p.s.awaitSubscribed(&p.callStart) }

// activity returns what changes when the member takes tokens: the leases
// held and how many of them were taken.
func (p *part) activity() [3]int64 {
	var a [3]int64
	if l := p.cur.Load(); l != nil {
		a[0], a[1] = l.recv, l.taken.Load()
	}
	if l := p.next.Load(); l != nil {
		a[2] = l.recv
	}
	return a
}

// step does what the partition needs from Redis now: the reset, the pause
// and the quota to write (a pause and a quota made after a Reset are
// written after it), the window to report, the state to load, a lease. It
// returns how long to wait before the next step, zero for until a kick.
func (p *part) step(loaded *bool) (time.Duration, error) {
	// One look at what to write, under the lock Reset, Pause and Learn
	// take: a pause or a quota seen with a Reset came after it.
	p.mu.Lock()
	reset, seq, u := p.resetReq.Load(), p.resetSeq.Load(), p.pauseDirty.Load()
	learn := p.learnDirty.Swap(false)
	conf := p.confirm.Swap(nil)
	p.mu.Unlock()
	fail := func(err error) (time.Duration, error) {
		if learn {
			p.learnDirty.Store(true)
		}
		if conf != nil {
			p.confirm.CompareAndSwap(nil, conf)
		}
		return 0, err
	}
	if reset > 0 {
		if err := p.writeReset(reset, seq); err != nil {
			return fail(err)
		}
		p.resetReq.CompareAndSwap(reset, 0)
	}
	if u > 0 {
		if err := p.writePause(u); err != nil {
			return fail(err)
		}
		p.pauseDirty.CompareAndSwap(u, 0)
	}
	if learn {
		// What the member reported, the write reports too.
		limit, window := p.limit.Load(), time.Duration(p.window.Load())
		remaining, reset := -1, time.Time{}
		if sd := p.learnSeed.Load(); sd != nil {
			remaining, reset = sd.remaining, sd.reset
		}
		if err := p.writeQuota(limit, window, remaining, reset, false); err != nil {
			return fail(err)
		}
	} else if conf != nil {
		if err := p.writeQuota(conf.limit, conf.window, conf.remaining, time.Time{}, true); err != nil {
			return fail(err)
		}
	}
	t := time.Now().UnixNano()
	if !*loaded || p.needLease(t) {
		wait, err := p.lease(t)
		if err != nil {
			return 0, err
		}
		*loaded = true
		return wait, nil
	}
	return 0, nil
}

// needLease reports whether the member needs a lease at t: the quota is
// known, no pause is in force, and the tokens held run low.
func (p *part) needLease(t int64) bool {
	if p.limit.Load() == 0 || p.pause.Load() > t {
		return false
	}
	l := p.cur.Load()
	if l == nil || l.left(t) <= 0 {
		return p.next.Load() == nil || p.next.Load().left(t) <= 0
	}
	return p.next.Load() == nil && l.left(t) <= l.n/2
}

// batch returns the size of the next lease: the member's share of the
// quota over WithLeaseTime, the partition's active members as the last
// lease counted them. A member starts with one token and doubles each
// lease up to that size: a member that misjudges the number of members
// when the fleet starts does not take a large lease ahead of the others.
func (p *part) batch() int64 {
	limit, window := p.limit.Load(), p.window.Load()
	if limit <= 0 || window <= 0 {
		return 0
	}
	members := max(p.members.Load(), 1)
	perNs := paceShare * float64(limit) / float64(window) / float64(members)
	n := min(max(int64(math.Ceil(perNs*float64(p.s.cfg.leaseTime))), 1), maxLease)
	return min(n, max(2*p.lastBatch.Load(), 1))
}

// lease asks Redis for a lease (or only for the state, when no quota is
// known) and installs it. It returns how long to wait before asking again,
// when Redis granted nothing.
func (p *part) lease(t int64) (time.Duration, error) {
	want := p.batch()
	p.callMu.Lock()
	defer p.callMu.Unlock()
	p.mu.Lock()
	gen, told, resetting := p.gen.Load(), p.told, p.resetReq.Load() != 0
	p.mu.Unlock()
	if resetting {
		// A Reset came since the step began: Redis holds what it clears
		// until the next step writes it.
		return time.Millisecond, nil
	}
	net := p.pendingGiveback(gen, 0)
	var vals []any
	err := p.call(func(ctx context.Context) (err error) {
		vals, err = leaseScript.Run(ctx, p.s.rdb, []string{p.key, p.mkey, p.gkey},
			want, net, paceShare, burst(p.limit.Load()), (4 * p.s.cfg.leaseTime).Microseconds(), stateTTL.Milliseconds(),
			p.s.member, (3 * p.s.cfg.heartbeat).Microseconds(), p.gbField, p.gbCum+net, totalTTL.Microseconds(), maxPause.Microseconds(), maxWindow.Microseconds()).Slice()
		return err
	})
	recv := time.Now()
	if err != nil {
		// The call may have run: what it gave back stays in doubt, sent
		// again with the next call, which the script credits once.
		return 0, err
	}
	r, ok := parseLease(vals)
	if !ok {
		return 0, errBadReply
	}
	p.credited(net)
	if r.members > 0 {
		p.members.Store(r.members)
	}
	var l *lease
	if r.granted > 0 {
		ivl := r.interval * 1e3
		l = &lease{
			base:     recv.UnixNano() + r.base*1e3,
			interval: ivl,
			n:        r.granted,
			recv:     recv.UnixNano(),
			expire:   max(int64(p.s.cfg.leaseTime/4), int64(4*ivl)),
		}
	}
	p.mu.Lock()
	wait, signal := p.applyLease(r, l, gen, told, want, recv)
	p.mu.Unlock()
	if signal {
		p.signal()
	}
	return wait, nil
}

// applyLease applies the reply r of a lease call made at gen, l its lease
// (nil for none), unless a reset came since. It returns how long to wait
// before asking again, and whether the attempts waiting for a token must
// look again (a lease installed, a pause). p.mu is held.
func (p *part) applyLease(r leaseReply, l *lease, gen, told, want int64, recv time.Time) (wait time.Duration, signal bool) {
	if p.gen.Load() != gen {
		// A reset came while the call was out: what it read may be what
		// the reset cleared. Its tokens, if any, are the cleared bucket's.
		return time.Millisecond, false
	}
	if at := r.reset.at; at > p.resetAt && at <= r.now {
		// A reset the member has not applied: its message is on its way,
		// or was lost (see Store.resync), or it ran before the member
		// used the partition. It is applied as its message would be,
		// with what the state holds since: a pause told before it, which
		// it cleared, ends; a later one stays. The call was made after
		// the member's own latest Reset ran in Redis (none was left to
		// write, and gen says none came since): the state records that
		// one or a later one, and a hold of the member's own stays, for
		// the messages published before it that are still on their way.
		// (A reset recorded ahead of Redis's clock, which no script
		// writes, is not believed.)
		p.applyResetLocked(recv, r.reset, r.pause, r.now, r.limit, r.window)
		signal = true
	}
	// A quota the fleet's channel told since the call was made may be
	// newer than the one read, and one the member learned since is: its
	// refiller writes it next.
	fresh := p.told == told && !p.learnDirty.Load()
	if r.limit > 0 && r.window > 0 && fresh {
		p.known(r.limit, time.Duration(r.window)*time.Microsecond)
	}
	if d := time.Duration(r.pause-r.now) * time.Microsecond; d > 0 && d <= maxPause && p.raisePauseLocked(recv.Add(d).UnixNano()) {
		signal = true
	}
	if r.limit == 0 && p.limit.Load() > 0 && p.told == told {
		// Redis lost the quota (restarted, or the state expired): write
		// it again, then lease.
		p.learnDirty.Store(true)
		return time.Millisecond, signal
	}
	if l == nil {
		if r.limit == 0 || r.pause > r.now || want == 0 {
			return 0, signal
		}

		// The fleet holds the bucket's next tokens: ask again when the
		// first free one is within reach.
		ahead := time.Duration(float64(r.base)+r.interval)*time.Microsecond - 4*p.s.cfg.leaseTime
		return max(ahead, time.Millisecond), signal
	}
	p.lastBatch.Store(r.granted)
	p.s.st.leases.Add(1)
	p.s.st.tokens.Add(r.granted)
	p.installLocked(l)
	return 0, true
}

// installLocked puts a new lease after those held; the caller wakes the
// attempts waiting for a token. p.mu is held.
func (p *part) installLocked(l *lease) {
	t := time.Now().UnixNano()
	if c := p.cur.Load(); c == nil || c.left(t) <= 0 {
		if nx := p.next.Swap(nil); nx != nil && nx.left(t) > 0 {
			p.cur.Store(nx)
			p.next.Store(l)
		} else {
			p.cur.Store(l)
		}
	} else if nx := p.next.Load(); nx == nil || nx.left(t) <= 0 {
		p.next.Store(l)
	} else {
		p.giveback.Add(l.n) // cannot happen: the refiller leases only when needed
	}
}

// chargeable takes the debt of the tokens the member sent on its local
// limiter, up to its share of one window (tokens sent longer ago no longer
// count in the server's window) less pending, the debt already in doubt,
// to charge it to the bucket.
func (p *part) chargeable(pending int64) int64 {
	d := p.debt.Swap(0)
	if d <= 0 {
		return 0
	}
	return min(d, max(max(p.limit.Load()/max(p.members.Load(), p.s.members.Load(), 1), 1)-pending, 0))
}

// pendingGiveback adds gb tokens (taken from the leases) and those to give
// back and to charge to the give-back in doubt, and returns the net amount
// to send. A reset since the last call (gen) drops what was in doubt: it
// was the cleared bucket's, credited or not. p.callMu is held.
func (p *part) pendingGiveback(gen, gb int64) int64 {
	if gen != p.gbGen {
		p.gbCum += p.gbPend - p.debtPend
		p.gbPend, p.debtPend, p.gbGen = 0, 0, gen
	}
	p.gbPend += gb + p.giveback.Swap(0)
	p.debtPend += p.chargeable(p.debtPend)
	return p.gbPend - p.debtPend
}

// credited records that Redis credited net, the give-back in doubt. p.callMu
// is held.
func (p *part) credited(net int64) {
	p.gbCum += net
	p.s.st.returned.Add(p.gbPend)
	p.gbPend, p.debtPend = 0, 0
}

// returnTokens gives back the tokens of the leases held, when the
// partition goes idle.
func (p *part) returnTokens() {
	p.callMu.Lock()
	defer p.callMu.Unlock()
	p.mu.Lock()
	gen := p.gen.Load()
	t := time.Now().UnixNano()
	var gb int64
	for _, lp := range []*atomic.Pointer[lease]{&p.cur, &p.next} {
		if l := lp.Swap(nil); l != nil {
			gb += max(l.left(t), 0)
		}
	}
	p.mu.Unlock()
	net := p.pendingGiveback(gen, gb)
	if net == 0 || p.limit.Load() == 0 {
		return // kept for the next call
	}
	err := p.call(func(ctx context.Context) error {
		return leaseScript.Run(ctx, p.s.rdb, []string{p.key, p.mkey, p.gkey},
			0, net, paceShare,
			burst(p.limit.Load()), 0, stateTTL.Milliseconds(), "", 0, p.gbField, p.gbCum+net, totalTTL.Microseconds(), maxPause.Microseconds(), maxWindow.Microseconds()).Err()
	})
	if err == nil {
		p.credited(net)
	}
}

// call runs one Redis call of the partition (see Store.call), marked in
// progress: an attempt that finds it has not answered for WithFallbackAfter
// paces locally, whatever the call (a lease, or a reset, a pause or a quota
// to write, which the refiller writes before it leases).
func (p *part) call(fn func(ctx context.Context) error) error {
	p.callStart.Store(time.Now().UnixNano())
	defer p.callStart.Store(0)
	return p.s.call(fn)
}

// writePause writes the pause until u (local Unix ns) to Redis.
func (p *part) writePause(u int64) error {
	d := time.Duration(u - time.Now().UnixNano())
	if d <= 0 {
		return nil // over already
	}
	var vals []any
	err := p.call(func(ctx context.Context) (err error) {
		vals, err = pauseScript.Run(ctx, p.s.rdb, []string{p.key},
			d.Microseconds(), p.s.channel, p.id, stateTTL.Milliseconds(), p.s.instance).Slice()
		return err
	})
	if err != nil {
		return err
	}
	set, ok1 := toInt(vals, 0)
	now, ok2 := toInt(vals, 1)
	if !ok1 || !ok2 {
		return errBadReply
	}
	if set == 1 {
		p.s.st.pausesSent.Add(1)
	}
	// Redis holds the pause (or a later one) from now: a reset that runs
	// after clears it, and the member with it.
	p.mu.Lock()
	if o := p.own.Load(); o != nil && o.until == u && o.pset == 0 {
		p.own.Store(&ownPause{until: u, pset: now})
	}
	p.mu.Unlock()
	return nil
}

// writeReset runs the member's reset numbered seq, made at at (local Unix
// ns), in Redis.
func (p *part) writeReset(at, seq int64) error {
	age := max(time.Since(time.Unix(0, at)), 0)
	err := p.call(func(ctx context.Context) error {
		return resetScript.Run(ctx, p.s.rdb, []string{p.key},
			age.Microseconds(), p.s.channel, p.id, p.s.instance, seq, stateTTL.Milliseconds()).Err()
	})
	if err != nil {
		return err
	}
	p.s.st.resetsSent.Add(1)
	p.mu.Lock()
	if h := p.hold.Load(); h != nil && h.seq == seq && h.until == 0 {
		p.hold.Store(&resetHold{seq: seq, at: h.at, until: time.Now().UnixNano() + int64(resetHoldMax)})
	}
	p.mu.Unlock()
	return nil
}

// writeQuota writes the quota limit per window to Redis: the quota known,
// or, with confirm, a window the member reports of the quota it holds,
// which reconfirms the held window or replaces it when it is stale (see
// learnScript), with what the response said remains of the quota (-1
// unknown) until reset (zero unknown). The member reports no window again
// before Redis says (the held window, or until it is stale).
func (p *part) writeQuota(limit int64, window time.Duration, remaining int, reset time.Time, confirm bool) error {
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
	var vals []any
	err := p.call(func(ctx context.Context) (err error) {
		vals, err = learnScript.Run(ctx, p.s.rdb, []string{p.key},
			limit, window.Microseconds(), remaining, resetIn, paceShare, burst(limit),
			p.s.channel, p.id, stateTTL.Milliseconds(), p.s.instance, c).Slice()
		return err
	})
	if err != nil {
		return err
	}
	next, ok := toInt(vals, 1)
	if !ok || next < 0 {
		return errBadReply
	}
	p.confirmNext.Store(time.Now().UnixNano() + next*1e3)
	return nil
}

// burst returns the bucket's tolerance for a quota of limit: 2% of it, at
// least one token.
func burst(limit int64) int64 {
	return max(int64(burstFrac*float64(limit)), 1)
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

// leaseReply is leaseScript's reply.
type leaseReply struct {
	granted, base int64 // base: µs from now
	interval      float64
	limit, window int64 // window: µs
	pause, now    int64 // µs, Redis's clock
	members       int64
	reset         fleetReset // the latest reset the state records; at 0 for none
}

func parseLease(v []any) (leaseReply, bool) {
	var r leaseReply
	if len(v) != 11 {
		return r, false
	}
	// The latest reset: a value that does not parse (not a member's) is
	// none, and fails no lease.
	r.reset.store, _ = v[9].(string)
	if at, ok := toInt(v, 8); ok && at > 0 {
		r.reset.at = at
		r.reset.seq, _ = toInt(v, 10)
	}
	v = v[:8]
	ints := [...]*int64{&r.granted, &r.base, nil, &r.limit, &r.window, &r.pause, &r.now, &r.members}

	for i, dst := range ints {
		var s string
		switch x := v[i].(type) {
		case int64:
			s = strconv.FormatInt(x, 10)
		case string:
			s = x
		default:
			return r, false
		}
		if dst == nil {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f >= 0) {
				return r, false
			}
			r.interval = f
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return r, false
		}
		*dst = n
	}
	return r, r.granted == 0 || r.interval > 0
}
