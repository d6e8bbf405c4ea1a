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
// credential.

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
// again) start paused.
func (rl *rateLimiter) pauseHost(k partKey, until, now time.Time) {
	rl.hostPauses.set(k, until, now)
	var ps []*partition
	rl.mu.Lock()
	rl.each(func(p *partition) {
		if p.key.scheme == k.scheme && p.key.host == k.host && p.key.cred == k.cred {
			ps = append(ps, p)
		}
	})
	rl.mu.Unlock()
	var clock lazyNow
	clock.t = now
	for _, write := range [...]bool{false, true} {
		base := rl.lookup(partKey{scheme: k.scheme, host: k.host, write: write, cred: k.cred}, true, &clock)
		if !slices.Contains(ps, base) {
			ps = append(ps, base)
		}
	}
	for _, p := range ps {
		p.pause(until)
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
			if hp.n.Load() >= maxHostPauses {
				return
			}
			if _, loaded := hp.m.LoadOrStore(hk, until); loaded {
				continue
			}
			hp.n.Add(1)
			return
		case !until.After(v.(time.Time)) || hp.m.CompareAndSwap(hk, v, until):
			return
		}
	}
}

// forget drops the pauses of the hosts m matches (Transport.ResetHost).
func (hp *hostPauses) forget(m hostMatcher) {
	hp.m.Range(func(key, v any) bool {
		if k := key.(hostKey); m.match(k.scheme, k.host) && hp.m.CompareAndDelete(key, v) {
			hp.n.Add(-1)
		}
		return true
	})
}

// pause pauses p until then, and its store's partition with it: also a p
// made for the pause, which starts with it (see newPartition), whose
// store has yet to hear of it.
func (p *partition) pause(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.pauseUntil) {
		p.pauseUntil = until
	}
	if p.quota != nil && until.After(p.quota.PauseUntil()) {
		p.quota.Pause(until)
	}
}
