package resilient

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
	"github.com/sony/gobreaker/v2"
)

// ResetHost clears what the Transport learned about host: the quota, the
// reset and the pause of its rate-limit partitions (reads and writes, every
// scheme), and its circuit breaker, which the next attempt finds closed.
// Attempts waiting for the host's rate limit, and calls waiting for the
// Retry-After of its response before they retry, wake and try again at
// once, those waiting in a partition of the host that a table full of
// others evicted meanwhile included (the first of them to wake clears
// what the Transport learned of it; its store's partition ResetHost
// clears before it returns, as for those the Transport holds). A static
// limit set with WithRateLimit stays in force. Nothing else is changed: ResetHost is
// how a caller recovers from a server that announced a pause it did not
// mean, or from an outage it knows is over.
//
// host is a host name or address, with or without a port, as in URL.Host
// ("api.example.com", "api.example.com:8443", "[::1]:8080"); a URL is
// accepted too, and its host is used, an IPv6 zone in it escaped as a
// URL's ("%25eth0") or as in URL.Host, as BreakerChange.Key shows it
// ("https://[fe80::1%eth0]:443"). Any of the spellings of a host that
// net/http sends to the same place names it, as the Transport keys its
// state: the comparison ignores case, the final dot of a fully-qualified
// name ("api.example.com." is "api.example.com"), a port's leading zeros,
// the form of an IP address ("[0:0::1]" is "[::1]", "[::ffff:192.0.2.1]"
// is "192.0.2.1"), a name's Unicode or punycode spelling ("bücher.example"
// is "XN--BCHER-KVA.example") and the scheme; a host whose URL held user
// information is named as the Transport records it ("REDACTED@host"), and
// one with a credential in a parameter after it (a session id,
// "api.example.com;jsessionid=…") by any value of it, REDACTED as
// BreakerChange.Key shows it included.
// A host without a port names the host
// on every port; with a port, only that port, a URL without a port having
// its scheme's default one (443 for https, 80 for http). A partition or
// breaker named by a custom key (WithRateLimitKey, BreakerSettings.Key) is
// cleared when its key is host, under the same rule, or exactly host as
// given (a key that is a URL, or longer than 255 bytes, which the
// Transport holds bounded: see BreakerSettings.Key; a key, or a host, with
// user information or a parameter's value that a URL's host has REDACTED,
// "bob@tenant" or "tenant;session=2", which the key shows as it is, only
// so, as another tenant's key may differ from it by that only); the calls
// waiting for
// the Retry-After of an answer to a request of such a partition wake too.
//
// The state of a virtual host behind an address (requests whose Host
// header names another host than their URL's: see BreakerSettings.Key) is
// kept under the virtual host's name, which BreakerChange.Key and the
// errors of its refusals show ("http://up.internal:80"), and which names
// it here: ResetHost("up.internal") clears it, whatever address its
// requests dial. The address names only its own state, that of the
// requests sent to it without another Host: ResetHost("10.0.0.1:8080")
// leaves the virtual hosts behind it as they are, as their failures and
// quotas are theirs alone; name each of them to clear theirs. The retry
// budget, which ResetHost leaves as it is, is the address's, which the
// virtual hosts behind it share (see RetryBudget).
//
// With a QuotaStore (WithQuotaStore), ResetHost clears what the fleet
// shares of those partitions too, and of the host's global limit when the
// Transport holds its state (see QuotaStore), when the store's partitions
// implement QuotaResetter (package redisquota's do): the fleet's pause and
// the quota learned for them, for every member, this Transport at once and
// the others as soon as the store tells them. A store whose partitions do not
// implement it keeps its shared state, and a pause it holds stays in force
// for every member, this Transport included, until it ends. Only the
// partitions this Transport holds, or that attempts wait in, are cleared
// (a partition is created by the first response that announced a quota
// or a pause, or by the first request under a static limit, and evicted
// once idle): the
// fleet's state of any other is left alone, and so is what the other
// members' Transports learned themselves (a pause after a 429 they
// received). Attempts of the other members already waiting for the fleet's
// pause go as soon as the store tells them, when its partitions also
// implement QuotaWatcher (redisquota's do); otherwise they may wait it out,
// and only their next attempts are not held back by it.
func (t *Transport) ResetHost(host string) {
	if t.inner.rt == nil { // the zero Transport
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		t.zeroImpl.ResetHost(host)
		return
	}
	m, ok := newHostMatcher(host)
	if !ok {
		return
	}
	// The waiting calls wake last, once the observers were told, even
	// when one panics, or the store's Reset does: woken before, the first
	// of them to make the host's new breaker would deliver the change on
	// its own goroutine, and take an observer's panic from its caller.
	var woken []chan struct{}
	defer func() { t.wake(m, woken) }()
	// The breakers first: the rate limit's waiters, woken last, find the
	// host's breaker closed.
	if t.breakers != nil {
		t.breakers.resetHost(m)
		// The observers once the host is reset: one that panics takes
		// its panic to the caller with nothing left undone.
		defer t.breakers.flush(context.Background())
	}
	if t.rl != nil {
		t.rl.resetHost(m, &woken)
	}
}

// wake wakes the calls waiting for the host that m names, once ResetHost
// has reset it: those waiting for its rate limit (woken, the channels
// rateLimiter.resetHost returned), then those waiting for the Retry-After
// of its answer.
func (t *Transport) wake(m hostMatcher, woken []chan struct{}) {
	for _, c := range woken {
		close(c)
	}
	t.resetMu.Lock()
	sig, next := t.resets.Load(), newResetSignal()
	sig.m, sig.next = m, next
	t.resets.Store(next)
	close(sig.ch)
	t.resetMu.Unlock()
}

// resetReaches reports whether the ResetHost that m stands for reaches the
// call waiting for the Retry-After of its host's answer: m names its host
// (its URL's, or its virtual host's: see stateHost), or the partition key the caller gives its requests
// (WithRateLimitKey), whose pause that ResetHost cleared.
func (c *call) resetReaches(m hostMatcher) bool {
	if m.match(c.req.URL.Scheme, stateHost(c.req), false) {
		return true
	}
	if rl := c.t.rl; rl != nil && rl.keyFn != nil {
		k, ok := rl.key(c.keyRequest(), false)
		return ok && m.match(k.scheme, k.host, true)
	}
	return false
}

// hostMatcher tells whether a URL host, or a custom key, is the one given
// to ResetHost.
type hostMatcher struct {
	host, port string // canonical (canonicalHost); port "" matches every port
	key        string // the argument as a custom key is held (customKey)
	// schemeless is the canonical key of the breaker of the argument, a
	// host longer than maxCustomKey, as the set holds the host of a URL
	// without a scheme (see breakerKey.bounded); "" for a shorter one.
	schemeless string
	// redacted says that the argument's user information or the value of
	// a parameter after its host was REDACTED in host: it names a custom
	// key only exactly (see match).
	redacted bool
}

func newHostMatcher(s string) (hostMatcher, bool) {
	s = strings.TrimSpace(s)
	key := customKey(s)
	if strings.Contains(s, "://") {
		u, err := parseHostURL(s)
		if err != nil {
			return hostMatcher{}, false
		}
		s = u.Host
		if p := defaultPort(u.Scheme); p != "" && s != "" {
			// A URL without a port names its scheme's default one.
			if !hasPort(s) {
				s += p
			} else if strings.HasSuffix(s, ":") {
				s += p[1:]
			}
		}
	}
	m := hostMatcher{key: key, redacted: keyRedacted(s)}
	if len(s) > maxCustomKey {
		m.schemeless = canonicalHost("", schemelessKey(s))
	}
	_, s = urlKey("", s) // as the tables hold it: user information REDACTED
	// A session id after the host, REDACTED as BreakerChange.Key and the
	// errors show it, names the host whatever its value (see match).
	s = redact.HostParams(s)
	if at := strings.LastIndexByte(s, '@') + 1; strings.Count(s[at:], ":") > 1 && s[at] != '[' {
		s = s[:at] + "[" + s[at:] + "]" // a bare IPv6 address, bracketed as in URL.Host
	}
	m.host, m.port = splitHostPort(canonicalHost("", s))
	return m, m.host != "" || m.key != ""
}

// parseHostURL parses s, a URL given to ResetHost or BreakerState, as
// url.Parse does; an IPv6 zone may stand as in URL.Host, as a breaker's
// key shows it ("https://[fe80::1%eth0]:443": see breakerName), where
// url.Parse wants its "%" escaped ("%25eth0"). A URL that url.Parse
// refuses is read so: its host's zone, from its first "%" to the host's
// "]", is the zone as in URL.Host, escaped (escapeZone) for a second
// parse, which gives it back unchanged ("[fe80::1%en%30]" names the zone
// en%30, not en0). It costs that parse only for a URL that url.Parse
// refuses.
func parseHostURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err == nil {
		return u, nil
	}
	i := strings.Index(s, "://")
	if i < 0 {
		return nil, err
	}
	auth := s[i+3:]
	if end := strings.IndexAny(auth, "/?#"); end >= 0 {
		auth = auth[:end]
	}
	// As url.Parse reads the host: after the last '@', its "]" the last.
	open := strings.LastIndexByte(auth, '@') + 1
	end := strings.LastIndexByte(auth, ']')
	if open >= len(auth) || auth[open] != '[' || end < open {
		return nil, err
	}
	zone := strings.IndexByte(auth[open:end], '%')
	if zone < 0 {
		return nil, err
	}
	zone += open
	if u, err2 := url.Parse(s[:i+3+zone] + escapeZone(auth[zone:end]) + s[i+3+end:]); err2 == nil {
		return u, nil
	}
	return nil, err
}

// escapeZone escapes zone, an IPv6 zone as in URL.Host with its "%"
// ("%eth0"), for url.Parse, which gives it back unescaped: a "%" as
// "%25", and the bytes it takes only escaped, a space and a "[".
func escapeZone(zone string) string {
	var b strings.Builder
	for i := 0; i < len(zone); i++ {
		switch c := zone[i]; c {
		case '%':
			b.WriteString("%25")
		case ' ':
			b.WriteString("%20")
		case '[':
			b.WriteString("%5B")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// match reports whether host, the URL host of a request with scheme (or,
// with custom, a custom key, whose scheme is empty), is m's host: a custom
// key matches too when it is the argument of ResetHost exactly (a key
// that is a URL, or longer than maxCustomKey, which only its bounded form
// names); the host of a URL without a scheme (custom false, an empty
// scheme) is a URL's host, matched as one, and, held bounded when longer
// than maxCustomKey, when the argument is a spelling of it (see
// breakerKey.bounded) or its bounded form. A custom key is shown as it is
// (see breakerName), not REDACTED as a URL's host: one with user
// information or a parameter's value that a URL's host has REDACTED
// ("bob@tenant", "tenant;session=2"), and any key for an argument with
// them, matches only exactly, not another tenant's key of the same name
// but for its secret.
func (m hostMatcher) match(scheme, host string, custom bool) bool {
	if scheme == "" && host != "" {
		if host == m.key || !custom && host == m.schemeless {
			return true
		}
		if custom && (m.redacted || keyRedacted(host)) {
			return false
		}
	}
	if m.host == "" {
		return false // a custom key given as a URL without a host
	}
	scheme, host = urlKey(scheme, host)
	scheme = lowerASCII(scheme)
	h, port := splitHostPort(canonicalHost(scheme, redact.HostParams(host)))
	if h != m.host {
		return false
	}
	if m.port == "" {
		return true
	}
	if port == "" {
		port = strings.TrimPrefix(defaultPort(scheme), ":")
	}
	return port == m.port
}

// keyRedacted reports whether the tables' name of host, a URL's host,
// REDACTS part of it: user information (urlKey) or the value of a
// parameter after it (redact.HostParams).
func keyRedacted(host string) bool {
	return strings.IndexByte(host, '@') >= 0 || redact.HostParams(host) != host
}

// splitHostPort splits a URL host into its host, without IPv6 brackets
// nor the final dot of a fully-qualified name (see withoutFinalDot), and
// its port ("" when none).
func splitHostPort(s string) (host, port string) {
	s = withoutFinalDot(s)
	host = s
	if hasPort(s) {
		i := strings.LastIndexByte(s, ':')
		host, port = s[:i], s[i+1:]
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1] // a pair only: "0]" is no "0"
	}
	return host, port
}

// resetHost clears the learned state of the partitions of m's host, and
// appends to woken the channels that wake their waiters, for the caller to
// close (see Transport.ResetHost): they find the partitions cleared. It
// resets their store's partitions, and those of the partitions of m's host
// that the table evicted while attempts wait in them (see orphans), once
// each. A store's Reset that panics takes its panic to the caller once
// every partition is cleared.
func (rl *rateLimiter) resetHost(m hostMatcher, woken *[]chan struct{}) {
	rl.hostPauses.forget(m, rl.keyFn != nil)
	rl.globalBases(m)
	rl.mu.Lock()
	var ps []*partition
	rl.each(func(p *partition) {
		if m.match(p.key.scheme, p.key.host, rl.keyFn != nil) {
			ps = append(ps, p)
		}
	})
	rl.mu.Unlock()
	// The global limits last: a store that tells the fleet its resets in
	// the order they were made (see QuotaResetter) tells a member whose
	// wait for the global pause ends that the host's other partitions
	// were cleared first. The waiters wake after it, to find it cleared.
	defer rl.resetGlobals(m)
	// The evicted partitions' waiters, woken by the Transport's signal,
	// do not reset the store's partitions: reset after ResetHost
	// returned, each wiped a pause the fleet had learned since.
	defer rl.resetOrphans(m, ps)
	rl.forgetEach(ps, time.Now(), woken)
}

// forgetEach forgets each of ps, what the fleet learned included (see
// forget), and appends to woken the channels that wake their waiters: when
// a store's Reset panics, the partitions after it are forgotten before the
// panic goes on.
func (rl *rateLimiter) forgetEach(ps []*partition, now time.Time, woken *[]chan struct{}) {
	i := 0
	defer func() {
		if i < len(ps) { // ps[i]'s Reset panicked
			rl.forgetEach(ps[i+1:], now, woken)
		}
	}()
	for ; i < len(ps); i++ {
		rl.forget(ps[i], now, true, true, woken)
	}
}

// forget forgets what p learned from the server, and, with shared, its
// store's partition what the fleet learned (QuotaResetter); it keeps p's
// attempts in flight counted and its static limit. Without shared, the
// state p's store holds for the fleet (its pause, its quota) is kept, and
// p, whose quota a split handed over, takes no token of it (handedOver).
// It appends to woken the channels that wake p's waiters, for the caller
// to close, before the store's Reset, which may panic: they find p
// forgotten. Those of a turn of the pace p learned are woken only with
// shared (Transport.ResetHost). The store's partition is reset only with
// reset too: not for a partition removed from the table, whose store's
// partition the ResetHost reset (see resetWatch).
func (rl *rateLimiter) forget(p *partition, now time.Time, shared, reset bool, woken *[]chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now = p.at(now)
	if !shared && p.quota != nil {
		p.handedOver = true
	}
	rl.dropPace(p, now)
	p.announced = announced{}
	p.storePaced = time.Time{} // forgotten with what p learned
	// A global limit's pause in force holds p still; its waiters find it
	// (ResetHost forgets the host's before it clears).
	p.pauseUntil = rl.hostPauses.of(p.key)
	if p.reopened != nil {
		*woken = append(*woken, p.reopened)
		p.reopened = nil
	}
	if !shared {
		return // a split: the waiters' turns are those of the limit p's routes still have
	}
	if p.forgot != nil {
		*woken = append(*woken, p.forgot)
		p.forgot = nil
	}
	if r, ok := p.quota.(QuotaResetter); ok && reset {
		r.Reset() // the fleet's pause and quota (quota.go)
	}
}

// resetWatch returns the channel that a wait of p listens to, besides
// those of its own (see wait), for a Transport.ResetHost that would not
// reach p otherwise; nil for none. ResetHost forgets only the partitions
// the table holds, and p may be removed from it while its attempts wait
// (a table full of paused partitions evicts the back one, whatever it
// holds). While p is in the table, the channel is closed when p is
// removed (see remove). Once p is removed, it is the signal of the next
// ResetHost, and a ResetHost of p's host made since p was removed forgets
// p here, as it forgets those of the table, and wakes p's waiters, which
// try again at once; woke says so. Each such ResetHost is looked at once,
// by the first waiter of p that sees it, in the order they were made.
// What p's store shares of it is not reset here: that ResetHost reset it
// before it returned (see orphans), and reset again now, after the
// waiter's own store round trip maybe, it wiped what the fleet learned
// since. (A wait listens to the Transport's signal only once its
// partition is removed: a wait in a testing/synctest bubble is durably
// blocked only on channels made in the bubble, and the Transport may have
// been made outside.)
func (rl *rateLimiter) resetWatch(p *partition) (wake <-chan struct{}, woke bool) {
	if rl.resets == nil {
		return nil, false
	}
	for {
		p.mu.Lock()
		if !p.removed.Load() {
			if p.gone == nil {
				p.gone = make(chan struct{})
			}
			wake = p.gone
			p.mu.Unlock()
			return wake, woke
		}
		sig := p.resets
		if !isClosed(sig.ch) {
			p.mu.Unlock()
			return sig.ch, woke
		}
		p.resets = sig.next
		p.mu.Unlock()
		if sig.m.match(p.key.scheme, p.key.host, rl.keyFn != nil) {
			rl.forgetRemoved(p)
			woke = true
		}
	}
}

// forgetRemoved forgets p, removed from the table, for a ResetHost of its
// host (see resetWatch), and wakes its waiters; the store's partition of
// p is left as it is (see orphans).
func (rl *rateLimiter) forgetRemoved(p *partition) {
	var woken []chan struct{}
	rl.forget(p, time.Now(), true, false, &woken)
	for _, c := range woken {
		close(c)
	}
}

// resetHost forgets the breakers of m's host; the next attempt creates a
// closed one. The change to closed of a breaker that was not is queued for
// the observers and the logger (see remove), which Transport.ResetHost
// delivers once the rest of the host is reset.
func (s *breakerSet) resetHost(m hostMatcher) {
	var removed []*breakerEntry
	s.mu.Lock()
	s.each(func(e *breakerEntry) {
		if m.match(e.node.key.scheme, e.node.key.host, s.keyFn != nil) {
			removed = append(removed, e)
		}
	})
	for _, e := range removed {
		e.reset.Store(true) // before removed: see rehome
		s.remove(e)
	}
	s.mu.Unlock()
	for _, e := range removed {
		if gobreaker.State(e.state.Load()) != gobreaker.StateClosed {
			// Attempts that found it before are let through too.
			s.changed(e, gobreaker.StateClosed)
		}
	}
}
