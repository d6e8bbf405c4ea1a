package resilient

import (
	"fmt"
	"net/http"
	"net/url"
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
	scheme, host string  // canonical (see canonicalHost)
	target       string  // the request URI: path (or opaque) and query
	url          url.URL // for the error of a write refused (see keyReusedError)
}

// keyUse is how a key set with WithIdempotencyKey applies to a request.
type keyUse int

const (
	keyNotMeant keyUse = iota // a read, or a write to another host: sent as without the key
	keyApplies                // the write the key names
	keyReused                 // another write to the same host: refused
)

// newBoundWrite returns the write req is: its method, its host in
// canonical form and its request URI.
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
		target: req.URL.RequestURI(),
		url:    *req.URL,
	}
}

// use returns how the key bound by b applies to req, a request of a call
// with cfg: not to a method that gets no key (a read, and a PUT or DELETE
// unless WithIdempotencyMethods names it); to the first write made with
// the key's context, which binds it, and to the same write again (the
// same method and URL: the caller's own retry); not to a write to another
// host, which the key was not set for; and never to another write to the
// same host, which the host would answer with the first write's stored
// response, or a conflict.
func (b *keyBinding) use(req *http.Request, cfg *config) (keyUse, *boundWrite) {
	if isIdempotentMethod(req.Method) && !generatesKeyFor(cfg, req.Method) {
		return keyNotMeant, nil
	}
	w := newBoundWrite(req)
	first := b.first.Load()
	if first == nil {
		if b.first.CompareAndSwap(nil, w) {
			return keyApplies, w
		}
		first = b.first.Load()
	}
	switch {
	case first.scheme != w.scheme || first.host != w.host:
		return keyNotMeant, first
	case first.method != w.method || first.target != w.target:
		return keyReused, first
	}
	return keyApplies, first
}

// keyReusedError is the error of a write refused because the key of its
// context names another write to the same host (see keyBinding.use).
type keyReusedError struct {
	first, method string // the write the key names, and the refused one's method
	url           string // the refused write's URL, redacted
}

func newKeyReusedError(first *boundWrite, req *http.Request) *RequestError {
	return &RequestError{Err: &keyReusedError{
		first:  first.method + " " + redactURL(&first.url),
		method: req.Method,
		url:    redactURL(req.URL),
	}}
}

func (e *keyReusedError) Error() string {
	return fmt.Sprintf("the idempotency key set with WithIdempotencyKey names %s: not sent with %s %s, which its host would answer with that write's stored response (set a key per write, with WithIdempotencyKey on a context of its own)",
		safeText(e.first, maxErrorText), safeText(e.method, maxErrorToken), safeText(e.url, maxErrorText))
}
