package resilient

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// This file holds the binding of a key set with WithIdempotencyKey to the
// one write it names.

// keyBinding is the write a key set with WithIdempotencyKey names: the
// first write made with its context (see WithIdempotencyKey). The contexts
// derived from that context share it; a new WithIdempotencyKey makes a
// new one. It is safe for concurrent use.
type keyBinding struct {
	first atomic.Pointer[boundWrite]
}

// boundWrite is the write a keyBinding names.
type boundWrite struct {
	method       string
	scheme, host string // canonical (see canonicalHost)
	// vhost is the virtual host its Host header names, canonical; "" for
	// its URL's own (see virtualHost).
	vhost  string
	target string // the request URI: path (or opaque) and query
}

// newBoundWrite returns the write req is: its method, its host in
// canonical form (and the virtual host its Host header names, another
// host behind the same address) and its request URI.
func newBoundWrite(req *http.Request) *boundWrite {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	scheme, host := urlKey(strings.ToLower(req.URL.Scheme), req.URL.Host)
	return &boundWrite{
		method: method,
		scheme: scheme,
		host:   canonicalHost(scheme, host),
		vhost:  virtualHostName(req),
		target: req.URL.RequestURI(),
	}
}

// redirectOrigin returns the write req is: the first request of the
// redirects http.Client followed to make req when they kept its method (a
// 307 or a 308, which keep its body too) and its host (see
// redirectedElsewhere), or took it from http to https on its host (see
// upgradedScheme, which it reports): the same write, sent on; else req
// itself; nil when that first request is unknown (see firstOfRedirects),
// and so the write req is. A request that does not follow its Response
// (see startOfRedirects) begins the chain: a write of its own (the
// caller's next one, cloned from the last one's resp.Request), which the
// binding then names or not as any other write; a hop sent elsewhere than
// its redirect's URL is a write other than the one the binding names.
func redirectOrigin(req *http.Request) (origin *http.Request, upgraded bool) {
	first, _ := startOfRedirects(req)
	if first == nil {
		return nil, false
	}
	if first == req || first.Method != req.Method {
		return req, false
	}
	if otherHost(req, first) {
		if upgradedScheme(first, req) {
			return first, true
		}
		return req, false
	}
	return first, false
}

// upgradedScheme reports whether b goes to the host of a, an http URL's,
// by https: the same name and port (each scheme's default one when its
// URL names none) and the same virtual host.
func upgradedScheme(a, b *http.Request) bool {
	if !strings.EqualFold(a.URL.Scheme, "http") || !strings.EqualFold(b.URL.Scheme, "https") {
		return false
	}
	_, h1 := canonicalName(a.URL.Scheme, a.URL.Host)
	_, h2 := canonicalName(b.URL.Scheme, b.URL.Host)
	return h1 == h2 && virtualHostName(a) == virtualHostName(b)
}

// applies reports whether the key bound by b applies to req, a request of
// a call with cfg (else req is sent as without it): not to a method that gets no key (a read, and a PUT or DELETE
// unless WithIdempotencyMethods names it); to the first write made with
// the key's context, which binds it, and to the same write again (the
// same method and URL: the caller's own retry), followed by http.Client
// through a redirect on its host, or from http to https on its host (see
// redirectOrigin, whose upgraded it returns); not to any other write,
// to its host or another, which a host that deduplicates would answer
// under that key with the first write's stored response.
func (b *keyBinding) applies(req *http.Request, cfg *config) (ok, upgraded bool) {
	if isIdempotentMethod(req.Method) && !generatesKeyFor(cfg, req.Method) {
		return false, false
	}
	origin, upgraded := redirectOrigin(req)
	if origin == nil {
		return false, false
	}
	w := newBoundWrite(origin)
	first := b.first.Load()
	if first == nil {
		if b.first.CompareAndSwap(nil, w) {
			return true, upgraded
		}
		first = b.first.Load()
	}
	return *first == *w, upgraded
}
