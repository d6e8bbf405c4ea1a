package resilient

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds a host's global limit: Discord's per bot (see
// ratelimit_resource.go), whose 429 pauses every partition of the host and
// credential, in this Transport and, through a QuotaStore, in every member
// of the fleet.

// globalScope reports whether h, a 429's, says that the limit it hit is
// the host's for the credential, across routes: Discord's
// X-RateLimit-Global: true, or X-RateLimit-Scope: global.
func globalScope(h http.Header) bool {
	return strings.EqualFold(headerValue(h, "X-Ratelimit-Global"), "true") ||
		strings.EqualFold(headerValue(h, "X-Ratelimit-Scope"), "global")
}

// pauseHost pauses until then every partition of k's host and credential:
// those of its resources, buckets and limits, and the host's of both
// classes, which requests of routes not learned yet go to; the partitions
// made meanwhile (a bucket an answer in flight names, one evicted and made
// again) start paused. The store's global limit is paused last: a store
// that writes its pauses in the order they were made (see
// QuotaPartition.Pause) lets a member that sees the global pause, and
// calls ResetHost, find the host's other partitions paused in the store
// already, and clear them with it.
func (rl *rateLimiter) pauseHost(k partKey, until, now time.Time) {
	rl.hostPauses.set(k, until, now)
	var ps []*partition
	rl.mu.Lock()
	rl.each(func(p *partition) {
		if sameHost(p.key, k) {
			ps = append(ps, p)
		}
	})
	rl.mu.Unlock()
	var clock lazyNow
	clock.t = now
	for _, write := range [...]bool{false, true} {
		base := rl.lookup(partKey{scheme: k.scheme, host: k.host, write: write, custom: k.custom, cred: k.cred}, true, &clock)
		if !slices.Contains(ps, base) {
			ps = append(ps, base)
		}
	}
	for _, p := range ps {
		p.pause(until, !p.sharesGlobal())
	}
	if rl.quota != nil && k.scheme != "" {
		// The fleet's members whose requests go to partitions this one
		// never made (another route's bucket) find it there.
		if g := rl.fleetGlobal(k); until.After(g.q.PauseUntil()) {
			g.q.Pause(until)
		}
	}
}

// sharesGlobal reports whether p reads the store's state of its host's
// global limit and is a partition of a quota of its own (a resource, a
// bucket, a plain limit), which every member's partition of that quota
// reads too (see fleetGlobal): a pause of the global limit is written to
// the store in that state alone, not in p's. Written in p's, it held the
// members that share p's quota until it ended, whatever ResetHost, unless
// the member that called it had made p itself: a member resets only the
// partitions it holds, and the global limit. The host's partitions of
// each class (no resource) are paused in the store too: a member that has
// learned no quota of the host's own reads no global limit.
func (p *partition) sharesGlobal() bool {
	return p.key.resource != "" && p.global.Load() != nil
}

// globalResource is the resource of the partition key that names, in a
// QuotaStore, a host's global limit for a credential: no request goes to
// it, and no quota a server names has that name (a resource's is
// lower-cased, a bucket's starts with "bucket ", a plain limit's with
// "reads, " or "writes, ").
const globalResource = "Global limit"

// A globalLimit is the state a QuotaStore shares of a host's global limit
// for a credential: its pause, which a global 429 that any member of the
// fleet got sets (see pauseHost). The partitions of a host and credential
// that announced quotas of their own (a resource, a bucket, a plain limit)
// read it with their own pause: another member's pause of the partitions
// it made does not reach those it never made, another route's bucket. The
// partitions of other hosts, and every partition without a store, have
// none, and read nothing more.
type globalLimit struct {
	q     QuotaPartition
	watch QuotaWatcher // q when it is one, else nil
}

// fleetGlobal returns the store's state of the global limit of k's host
// and credential, asking the store for it the first time, and gives it to
// the partitions of that host and credential (newPartition gives it to
// those made later). rl.quota is not nil, and k is a default key.
func (rl *rateLimiter) fleetGlobal(k partKey) *globalLimit {
	hk := hostKey{k.scheme, k.host, k.cred}
	rl.mu.Lock()
	defer rl.mu.Unlock() // a store that panics leaves the table usable
	if g := rl.globals[hk]; g != nil {
		return g
	}
	if len(rl.globals) >= maxHostPauses {
		// The partitions keep theirs; a host that learns again in a
		// new one asks again.
		clear(rl.globals)
	}
	q := rl.quota.Partition(partKey{scheme: k.scheme, host: k.host, custom: rl.keyFn != nil, resource: globalResource, cred: k.cred}.String())
	g := &globalLimit{q: q}
	g.watch, _ = q.(QuotaWatcher)
	if rl.globals == nil {
		rl.globals = make(map[hostKey]*globalLimit)
	}
	rl.globals[hostKey{keepKey(k.scheme), keepKey(k.host), k.cred}] = g
	rl.each(func(p *partition) {
		if sameHost(p.key, k) {
			p.global.Store(g)
		}
	})
	return g
}

// globalOf returns the global limit that a partition of k gets when it is
// made, nil for none. rl.mu is held.
func (rl *rateLimiter) globalOf(k partKey) *globalLimit {
	if len(rl.globals) == 0 || k.scheme == "" {
		return nil
	}
	return rl.globals[hostKey{k.scheme, k.host, k.cred}]
}

// resetGlobals clears, for the fleet, the global limits of the hosts m
// matches (Transport.ResetHost), when the store's partitions implement
// QuotaResetter.
func (rl *rateLimiter) resetGlobals(m hostMatcher) {
	var gs []*globalLimit
	rl.mu.Lock()
	for k, g := range rl.globals {
		if m.match(k.scheme, k.host, rl.keyFn != nil) {
			gs = append(gs, g)
		}
	}
	rl.mu.Unlock()
	for _, g := range gs {
		if r, ok := g.q.(QuotaResetter); ok {
			r.Reset()
		}
	}
}

// globalBases makes the partitions of both classes of each host and
// credential m matches whose global limit the store shares, for
// Transport.ResetHost to clear them with the others: a global 429 that
// another member got paused them in the store (see pauseHost), for the
// members that read no global limit, whether this one made them or not.
func (rl *rateLimiter) globalBases(m hostMatcher) {
	var ks []partKey
	rl.mu.Lock()
	for k := range rl.globals {
		if m.match(k.scheme, k.host, rl.keyFn != nil) {
			for _, write := range [...]bool{false, true} {
				ks = append(ks, partKey{scheme: k.scheme, host: k.host, write: write, custom: rl.keyFn != nil, cred: k.cred})
			}
		}
	}
	rl.mu.Unlock()
	var clock lazyNow
	for _, k := range ks {
		rl.lookup(k, true, &clock)
	}
}

// hostKey names a host's partitions of a credential.
type hostKey struct {
	scheme, host string
	cred         uint64
}

// maxHostPauses bounds the global limits' pauses recorded; past it, a new
// one pauses the partitions that exist only.
const maxHostPauses = 4096

// hostPauses records the pauses of hosts' global limits while they are in
// force. Looking one up costs an atomic load while there is none.
type hostPauses struct {
	m sync.Map // hostKey → time.Time
	n atomic.Int32
}

// of returns the pause of k's host and credential; zero for none.
func (hp *hostPauses) of(k partKey) time.Time {
	if hp.n.Load() == 0 {
		return time.Time{}
	}
	v, ok := hp.m.Load(hostKey{k.scheme, k.host, k.cred})
	if !ok {
		return time.Time{}
	}
	return v.(time.Time)
}

// hostPaused reports whether the pause of the global limit of k's host and
// credential is in force at the time clock gives (see pauseHost). It costs
// an atomic load while no such pause is recorded, and reads the clock only
// when k's host and credential have one.
func (rl *rateLimiter) hostPaused(k partKey, clock *lazyNow) bool {
	until := rl.hostPauses.of(k)
	return !until.IsZero() && until.After(clock.get())
}

// set records the pause of k's host and credential until then, and
// forgets those that ended by now.
func (hp *hostPauses) set(k partKey, until, now time.Time) {
	hp.m.Range(func(key, v any) bool {
		if !v.(time.Time).After(now) && hp.m.CompareAndDelete(key, v) {
			hp.n.Add(-1)
		}
		return true
	})
	// A copy: the map keeps the key it is last given (see keepKey).
	hk := hostKey{keepKey(k.scheme), keepKey(k.host), k.cred}
	for {
		v, loaded := hp.m.Load(hk)
		switch {
		case !loaded:
			// Counted before it is stored, as it is counted out after it
			// is deleted: n is never below the pauses the map holds, and
			// of, which reads n == 0 as none, misses none. Stored first,
			// a pause a concurrent forget deleted before it was counted
			// was counted out first, and the count fell below the others
			// recorded. Counting first keeps the bound exact too.
			if hp.n.Add(1) > maxHostPauses {
				hp.n.Add(-1)
				return
			}
			if _, loaded := hp.m.LoadOrStore(hk, until); loaded {
				hp.n.Add(-1)
				continue
			}
			return
		case !until.After(v.(time.Time)) || hp.m.CompareAndSwap(hk, v, until):
			return
		}
	}
}

// forget drops the pauses of the hosts m matches (Transport.ResetHost),
// their keys custom ones when custom says so (WithRateLimitKey).
func (hp *hostPauses) forget(m hostMatcher, custom bool) {
	hp.m.Range(func(key, v any) bool {
		if k := key.(hostKey); m.match(k.scheme, k.host, custom) && hp.m.CompareAndDelete(key, v) {
			hp.n.Add(-1)
		}
		return true
	})
}

// pause pauses p until then, and, with shared, its store's partition
// with it: also a p made for the pause, which starts with it (see
// newPartition), whose store has yet to hear of it.
func (p *partition) pause(until time.Time, shared bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.raisePause(until)
	if shared && p.quota != nil && until.After(p.quota.PauseUntil()) {
		p.quota.Pause(until)
	}
}
