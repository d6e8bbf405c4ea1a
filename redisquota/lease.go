// Leases: runs of tokens a member takes from the fleet's GCRA bucket in
// Redis, how the refiller (refill.go) asks for them, and how unused ones
// are given back.

package redisquota

import (
	"context"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// lease is a run of n tokens granted by Redis: token j (1 to n) conforms
// at max(recv, base + j·interval), and expires, if nobody took it,
// expire after that.
type lease struct {
	base     int64   // local ns (Store.since)
	interval float64 // ns
	n        int64
	recv     int64        // local ns
	expire   int64        // ns
	taken    atomic.Int64 // tokens taken, or skipped once expired
	skipped  atomic.Int64 // tokens skipped once expired: given back
	kicked   atomic.Bool  // the refiller was asked for the next lease
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

// take reserves the next token at t for an attempt that must start
// before by (local ns; 0 for no bound). It returns the wait until the
// token conforms; not ok with no wait when none is left. A token that
// conforms later than now and not before by is not reserved (not ok, with
// its wait): the Transport refuses the attempt, which cannot wait for it,
// and sends nothing with it, and the next attempt takes it. (Reserved, it
// was lost: a run of attempts with short deadlines each took the next
// token, further ahead each time, so that under load no attempt got one
// while the fleet's bucket counted them all as sent.)
func (l *lease) take(t, by int64) (wait int64, left int64, ok bool) {
	for {
		k := l.taken.Load()
		j := max(k, l.expired(t))
		if j >= l.n {
			return 0, 0, false
		}
		c := l.conform(j + 1)
		if by != 0 && c > t && c >= by {
			return c - t, l.n - j, false
		}
		if l.taken.CompareAndSwap(k, j+1) {
			if j > k {
				l.skipped.Add(j - k)
			}
			return max(c-t, 0), l.n - j - 1, true
		}
	}
}

// left returns the tokens of l neither taken nor expired at t.
func (l *lease) left(t int64) int64 {
	return l.n - max(l.taken.Load(), l.expired(t))
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
	// Capped before the conversion: a quota past any pace (a huge limit
	// over a short window) is more tokens than an int64 holds.
	n := int64(min(max(math.Ceil(perNs*float64(p.s.cfg.leaseTime)), 1), maxLease))
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
	// Each lease call takes a number, the state's first read included:
	// one Redis runs after a later call (Close's, see giveBack) counts
	// the member among the active members no more.
	seq := p.givebackSeq(p.gbCum+net, true)
	var vals []any
	err := p.call(p.s.ctx, func(ctx context.Context) (err error) {
		vals, err = leaseScript.Run(ctx, p.s.rdb, []string{p.key, p.mkey, p.gkey},
			want, net, paceShare, burstFrac, (4 * p.s.cfg.leaseTime).Microseconds(), stateTTL.Milliseconds(),
			p.s.member, p.s.memberTTL().Microseconds(), p.gbField, p.gbCum+net, totalTTL.Microseconds(), maxPause.Microseconds(), maxWindow.Microseconds(), maxMemberTTL.Microseconds(),
			p.heardAge(t), maxHeard.Microseconds(), seq, maxSyncLag, p.leaseDoubt).Slice()
		return err
	})
	recv := time.Now()
	if err != nil {
		// The call may have run: what it gave back stays in doubt, sent
		// again with the next call, which the script credits once, and
		// so are the tokens it may have granted.
		p.inDoubt(seq)
		return 0, err
	}
	r, ok := parseLease(vals)
	if !ok {
		p.inDoubt(seq) // it ran: its tokens are the member's no more
		return 0, p.s.badReply()
	}
	if !p.answered(seq, r.held) {
		// Redis took the call for a late one, and applied nothing of
		// it: sent again with the next call.
		r.granted = 0
	} else {
		p.credited(net)
	}
	if r.members > 0 {
		p.members.Store(r.members)
	}
	var l *lease
	if r.granted > 0 {
		ivl := r.interval * 1e3
		l = &lease{
			base:     p.s.since(recv) + r.base*1e3,
			interval: ivl,
			n:        r.granted,
			recv:     p.s.since(recv),
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
	if p.resetAt > r.now {
		// The latest reset applied lies ahead of Redis's clock, which no
		// script records: a message's time from a corrupt or hostile
		// hand (a reset "run" centuries ahead). Believed, every reset the
		// state records read as applied, and a member that missed a
		// reset's message kept the pause it cleared. It is forgotten, as
		// by a member that has applied none: the state's latest reset is
		// applied, with what the state holds since.
		p.resetAt = 0
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
		// writes, is not believed.) The messages published before the
		// read that come after it, the reset's own included, are
		// ignored (see stateRead): the state applied holds what they
		// tell, or the reset cleared it.
		p.applyResetLocked(recv, r.reset, r.pause, r.now, r.limit, r.window)
		// A reset whose message came before the Store made the
		// partition (dropped: see Store.unheard) is awaited no more.
		p.readReset = &stateRead{reset: r.reset, at: r.now, recv: p.s.since(recv),
			awaits: r.now-at <= resetHoldMax.Microseconds() && p.heardReset < at}
		signal = true
	}
	// A quota the fleet's channel told since the call was made may be
	// newer than the one read, and one the member learned since is: its
	// refiller writes it next.
	fresh := p.told == told && !p.learnDirty.Load()
	if r.limit > 0 && r.window > 0 && fresh {
		p.known(r.limit, microsBetween(0, r.window))
	}
	if r.limit > 0 && r.heardAge >= 0 {
		p.heardAt(p.s.since(recv) - r.heardAge*1e3)
	}
	if d := microsBetween(r.now, r.pause); d > 0 && d <= maxPause && p.raisePauseLocked(p.s.since(recv.Add(d))) {
		signal = true
	}
	if r.limit == 0 && p.limit.Load() > 0 && p.told == told {
		if !p.stale(p.s.since(recv), p.heard.Load()) {
			// Redis lost the quota (restarted, or the state expired), or
			// no other member heard it announced for maxHeard: write it
			// again, then lease.
			p.learnDirty.Store(true)
			return time.Millisecond, signal
		}
		// No member heard it announced for maxHeard, the member
		// included: it paces the partition no more, as the Transport
		// forgets it (see resilient.MaxBelievedReset), until a response
		// announces it again.
		p.limit.Store(0)
		p.window.Store(0)
		p.learnDirty.Store(false)
		return 0, true
	}
	if l == nil {
		if r.limit == 0 || r.pause > r.now || want == 0 {
			return 0, signal
		}

		// The fleet holds the bucket's next tokens: ask again when the
		// first free one is within reach.
		free := time.Duration(float64(r.base)+r.interval) * time.Microsecond
		p.dryUntil.Store(p.s.since(recv.Add(free)))
		return max(free-4*p.s.cfg.leaseTime, time.Millisecond), signal
	}
	// The bucket holds tokens for the member: the time a call before
	// this one found it dry until is no longer its word (TakeBefore
	// refuses an attempt whose deadline comes before it).
	p.dryUntil.Store(0)
	p.lastBatch.Store(r.granted)
	p.s.st.leases.Add(1)
	p.s.st.tokens.Add(r.granted)
	p.installLocked(l)
	return 0, true
}

// installLocked puts a new lease after those held; the caller wakes the
// attempts waiting for a token. p.mu is held.
func (p *part) installLocked(l *lease) {
	t := p.s.now()
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

// givebackSeq returns the number of the running total cum, which the
// call about to be made sends: the number of the last one sent, or the
// next number when cum differs from it. The lease script applies nothing
// of a call whose number is not ahead of the one its field keeps (see
// leaseScript): a call that reaches Redis after a later one (its call
// timed out, or Close canceled it, and Redis ran it late) would credit
// the difference between the two totals backwards. A call that sends the
// total already applied has nothing to apply, and so shares its number,
// unless fresh: a lease call, or one that settles those a call in doubt
// may have granted (see inDoubt), takes the next number, so that the call
// in doubt, should Redis run it after this one, grants nothing.
// p.callMu is held.
func (p *part) givebackSeq(cum int64, fresh bool) int64 {
	if fresh || cum != p.gbSent {
		p.gbSeq++
		p.gbSent = cum
	}
	return p.gbSeq
}

// inDoubt records that the lease call numbered seq may have run without
// the member getting its tokens (its reply was lost, or did not parse):
// the lease script, told so by the member's next call, gives back what it
// granted, once, and grants nothing, nor counts the member, if it runs
// after that call (see leaseScript). The state's first read, which asks
// for no token, is in doubt too: Close's last call, which the doubt makes
// it send (see giveBack), keeps it from counting the closed member again
// (TestCloseLeaveNotUndoneByLateStateRead). A call in doubt after an
// earlier one adds nothing: the script gives back what the one that ran
// last granted. p.callMu is held.
func (p *part) inDoubt(seq int64) {
	if p.leaseDoubt == 0 {
		p.leaseDoubt = seq
	}
}

// answered records the reply of the call numbered seq, in which the give-back field holds the number held (-1 for
// none). It reports whether the script applied the call: the calls in
// doubt before it are settled (see inDoubt). A number ahead of seq is
// none of the member's, whose calls are made one after another (a corrupt
// or hostile hand's): the call was taken for a late one, and applied
// nothing; the member numbers its next calls past held, so that a number
// planted in its field holds back no more than this call
// (TestLeasePlantedSeqHoldsBackOneCall), and sends its give-back again
// with the next call. p.callMu is held.
func (p *part) answered(seq, held int64) bool {
	if held > seq {
		p.gbSeq = max(p.gbSeq, held)
		p.gbSent = math.MinInt64 // the next call takes a number
		return false
	}
	p.leaseDoubt = 0
	return true
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
	t := p.s.now()
	var gb int64
	for _, lp := range []*atomic.Pointer[lease]{&p.cur, &p.next} {
		if l := lp.Swap(nil); l != nil {
			gb += max(l.left(t), 0)
		}
	}
	p.mu.Unlock()
	p.giveBack(p.s.ctx, gen, gb, t)
}

// giveBack sends, under parent, gb tokens taken from the leases at t (local
// ns), with those to give back and to charge (see pendingGiveback), in a
// call of the lease script that asks for no token and leaves the
// partition's active members as they are. What it does not send
// (its call failed, or no quota is known and no lease call is in doubt:
// see inDoubt) is kept for the next call.
// p.callMu is held.
func (p *part) giveBack(parent context.Context, gen, gb, t int64) error {
	return p.runWrite(parent, p.givebackWrite(gen, gb, t))
}

// givebackWrite returns the write of giveBack's call, or nil when it has
// nothing to send, which is kept for the next call (see giveBack).
// p.callMu is held until its reply is applied.
func (p *part) givebackWrite(gen, gb, t int64) *write {
	net := p.pendingGiveback(gen, gb)
	if p.leaseDoubt == 0 && (net == 0 || p.limit.Load() == 0) {
		return nil // kept for the next call
	}
	seq := p.givebackSeq(p.gbCum+net, p.leaseDoubt != 0)
	return &write{p: p, script: leaseScript, keys: []string{p.key, p.mkey, p.gkey},
		args: []any{0, net, paceShare,
			burstFrac, 0, stateTTL.Milliseconds(), "", 0, p.gbField, p.gbCum + net, totalTTL.Microseconds(), maxPause.Microseconds(), maxWindow.Microseconds(), 0,
			p.heardAge(t), maxHeard.Microseconds(), seq, maxSyncLag, p.leaseDoubt},
		done: func(cmd *redis.Cmd) error {
			vals, err := cmd.Slice()
			if err != nil {
				return err
			}
			held, ok := toInt(vals, 12)
			if !ok {
				return p.s.badReply()
			}
			if p.answered(seq, held) {
				p.credited(net)
			}
			return nil
		}}
}

// leaseReply is leaseScript's reply.
type leaseReply struct {
	granted, base int64 // base: µs from now
	interval      float64
	limit, window int64 // window: µs
	pause, now    int64 // µs, Redis's clock
	members       int64
	reset         fleetReset // the latest reset the state records; at 0 for none
	heardAge      int64      // µs since a member last heard the quota announced, as Redis knows; -1 unknown
	held          int64      // the number the partition's give-back field holds after the call; -1 for none
}

func parseLease(v []any) (leaseReply, bool) {
	var r leaseReply
	if len(v) != 13 {
		return r, false
	}
	var ok bool
	if r.held, ok = toInt(v, 12); !ok {
		return r, false
	}
	r.heardAge = -1
	if a, ok := toInt(v, 11); ok && a >= 0 {
		r.heardAge = a
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
			// The interval is at most a window's over one token (no
			// script writes a longer one): an infinite one put every
			// token of the lease at once, and a longer one overflows
			// the lease's schedule.
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || !(f >= 0 && f <= float64(maxWindow.Microseconds())/paceShare) {
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
