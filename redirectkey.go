package resilient

import (
	"net/http"
	"runtime"
	"sync"
	"weak"
)

// This file holds the keys of writes answered with a 307 or 308, for the
// request http.Client follows them with.

// redirectKeys holds the key a Transport drew for a write (see hidesKey)
// answered with a 307 or 308, by that response, until the request
// http.Client follows it with, whose Response it is, takes it, or the
// response is garbage: that request is the same write, sent on, and a
// fresh key on it would have a host that deduplicates by key create the
// write twice. The response's Request stays the caller's (see
// callersRequest). The zero value is ready; it is safe for concurrent use.
type redirectKeys struct {
	mu sync.Mutex
	m  map[weak.Pointer[http.Response]]string
}

// isKeptRedirect reports whether resp, answered to an attempt of c, is a
// 307 or 308 whose key the request that follows it must carry.
func (c *call) isKeptRedirect(resp *http.Response) bool {
	return (resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect) && c.hidesKey()
}

// keep records key for the request that follows resp.
func (r *redirectKeys) keep(resp *http.Response, key string) {
	p := weak.Make(resp)
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[weak.Pointer[http.Response]]string)
	}
	r.m[p] = key
	r.mu.Unlock()
	runtime.AddCleanup(resp, r.drop, p)
}

// drop forgets the key kept for a response that is garbage.
func (r *redirectKeys) drop(p weak.Pointer[http.Response]) {
	r.mu.Lock()
	delete(r.m, p)
	r.mu.Unlock()
}

// keyOf returns the key kept for the write req follows on: req is the
// request http.Client made to follow a 307 or 308 this Transport
// answered, with its method, on the host of the request the redirect
// answered (see otherHost), whatever host the chain of redirects began
// at; "" for any other request.
func (r *redirectKeys) keyOf(req *http.Request) string {
	prev := req.Response
	if prev == nil || prev.Request == nil || prev.Request.URL == nil || req.URL == nil || prev.Request.Method != req.Method || otherHost(req, prev.Request) {
		return ""
	}
	p := weak.Make(prev)
	r.mu.Lock()
	k := r.m[p]
	delete(r.m, p)
	r.mu.Unlock()
	return k
}
