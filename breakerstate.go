package resilient

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sony/gobreaker/v2"
)

// BreakerState returns the state of the circuit breaker that attempts of a
// GET request for rawURL go through: BreakerOpen while it refuses them,
// BreakerHalfOpen while it lets its probes through (an open breaker whose
// OpenTimeout is over is half-open, as the next attempt finds it), else
// BreakerClosed. The breaker is looked up under the rules attempts follow:
// by default the URL's scheme, host and port, under any of the spellings
// that are one host (case, an explicit default port, a fully-qualified
// name's final dot, a port's leading zeros, the form of an IP address, a
// name's Unicode or punycode spelling: see ResetHost), so that
// "https://API.example.com:443/v1" names the breaker of
// "https://api.example.com/x", and a virtual host's name names the
// breaker of the requests whose Host header names it, whatever address
// they dial (an address names only the breaker of the requests sent to it
// without another Host: see ResetHost); with BreakerSettings.Key, the key it returns
// for such a request, which has no header. rawURL is an absolute URL, with
// a scheme and a host (an IPv6 zone in it escaped, "%25eth0", or as
// BreakerChange.Key shows it, "https://[fe80::1%eth0]:443"), or a host alone, as ResetHost takes it ("host" or
// "host:port", any case, an IPv6 address as "::1" or "[::1]:8443", its
// zone, if any, as in URL.Host: "fe80::1%eth0"), the spaces around it
// ignored as ResetHost ignores them: the state is then the
// one of the host's breakers for https, for http and for URLs without a
// scheme ("//host/path", which a custom base may serve) that refuses most
// (open, then half-open): of that port, or, for a host without a port, of
// every port, as ResetHost names it. A host with a credential in a
// parameter after it ("api.example.com;jsessionid=…") is named by any value
// of it, REDACTED as BreakerChange.Key shows it included, as ResetHost
// names it.
//
// BreakerClosed is also what it returns when there is no breaker to read: for
// a URL that cannot be parsed or has no host, for a host the Transport has
// not called (or whose breaker it has removed, closed and unused, or by
// ResetHost), for a request Key exempts, and when breakers are off
// (WithoutBreaker). It reads the breaker's state without taking its lock
// (for a host without a port, it walks the Transport's breakers under the
// lock of their table, as ResetHost does) and changes nothing, so it is
// cheap and safe to call at any time, from any goroutine.
func (t *Transport) BreakerState(rawURL string) BreakerState {
	if t.inner.rt == nil { // the zero Transport
		t.zeroOnce.Do(func() { t.zeroImpl = New(nil) })
		return t.zeroImpl.BreakerState(rawURL)
	}
	if t.breakers == nil {
		return BreakerClosed
	}
	rawURL = strings.TrimSpace(rawURL) // as ResetHost takes it
	if u, err := parseHostURL(rawURL); err == nil && u.Scheme != "" && u.Host != "" {
		s := t.breakers.stateOf(getRequest(u))
		if s != BreakerOpen && strings.IndexByte(u.Host, ';') >= 0 {
			// A session id after the host, which BreakerChange.Key
			// shows REDACTED: the host's breakers under any value of
			// it, as ResetHost names them.
			if m, ok := newHostMatcher(rawURL); ok {
				s = max(s, t.breakers.stateOfHost(m))
			}
		}
		return s
	}
	// A host alone: "api.example.com" parses as a path, and
	// "localhost:8080" as a scheme and an opaque part; an IPv6 address
	// may come without its brackets, as ResetHost takes it ("::1"), and with
	// its zone ("fe80::1%eth0").
	host := rawURL
	if strings.Count(host, ":") > 1 && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	// As in URL.Host, an IPv6 zone's "%" stands for itself ("fe80::1%eth0"),
	// where a URL escapes it ("%25"), and so do a "%", a space or a "[" in
	// the zone: escaped for the parse (see escapeZone), which then gives
	// host back unchanged.
	esc := strings.ReplaceAll(host, "%", "%25")
	if z, end := strings.IndexByte(host, '%'), strings.LastIndexByte(host, ']'); strings.HasPrefix(host, "[") && 0 < z && z < end {
		esc = host[:z] + escapeZone(host[z:end]) + host[end:]
	}
	u, err := url.Parse("//" + esc)
	if err != nil || u.Host == "" || u.Host != host {
		return BreakerClosed // a path, a query, user info: not a host
	}
	s := BreakerClosed
	for _, scheme := range [...]string{"https", "http", ""} {
		// BreakerOpen > BreakerHalfOpen > BreakerClosed: the state that
		// refuses most. The empty scheme is that of the requests whose
		// URL has none ("//host:port/path", which a custom base may
		// serve), whose host ResetHost names too.
		s = max(s, t.breakers.stateOf(getRequest(&url.URL{Scheme: scheme, Host: u.Host})))
	}
	if _, port := splitHostPort(u.Host); s != BreakerOpen && (port == "" || strings.IndexByte(u.Host, ';') >= 0) {
		// A host without a port (or with an empty one, "host:") names
		// the host on every port, as ResetHost's does: its breakers of
		// other ports than the schemes' defaults too. A session id
		// after the host names it under any value of it, as
		// ResetHost's does.
		if m, ok := newHostMatcher(u.Host); ok {
			s = max(s, t.breakers.stateOfHost(m))
		}
	}
	return s
}

// getRequest returns a GET request for u, without a header's values, as
// BreakerState looks a breaker up with.
func getRequest(u *url.URL) *http.Request {
	return &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: make(http.Header)}
}

// stateOf returns the state of the breaker of req, a GET request made from
// a URL alone, without creating it.
func (s *breakerSet) stateOf(req *http.Request) BreakerState {
	keys, n := hostKeys(s.keyFn, req)
	e := findHost(&s.table, keys[:n])
	if e == nil {
		return BreakerClosed
	}
	return s.entryState(e)
}

// stateOfHost returns the state of the breakers of the host m names (see
// Transport.ResetHost) that refuses most, without creating one. It walks
// the set under its lock.
func (s *breakerSet) stateOfHost(m hostMatcher) BreakerState {
	st := BreakerClosed
	s.mu.Lock()
	defer s.mu.Unlock()
	s.each(func(e *breakerEntry) {
		if m.match(e.node.key.scheme, e.node.key.host, s.keyFn != nil) {
			st = max(st, s.entryState(e))
		}
	})
	return st
}

// entryState returns the state of the breaker of e, as the next attempt
// through it finds it.
func (s *breakerSet) entryState(e *breakerEntry) BreakerState {
	switch gobreaker.State(e.state.Load()) {
	case gobreaker.StateOpen:
		// gobreaker moves an open breaker to half-open lazily, on the
		// first request after its timeout: say what that request will
		// find.
		if m := e.m.Load(); m != nil && s.now()-m.openedAt.Load() >= int64(s.timeout) {
			return BreakerHalfOpen
		}
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}
