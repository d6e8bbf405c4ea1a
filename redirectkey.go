package resilient

import (
	"net/http"
	"runtime"
	"sync"
	"time"
	"weak"
)

// This file holds what the request http.Client follows a redirect with
// takes from the call that got the redirect: the key of a write answered
// with a 307 or 308, and what is left of the call's budget.

// redirectHop is what a call that got a redirect leaves to the request
// that follows it.
type redirectHop struct {
	// key is the key the Transport drew for a write answered with a 307
	// or 308 (see hidesKey); "" for none.
	key string
	// left is what was left of the call's budget (WithMaxElapsed) when it
	// returned the redirect, when budgeted: the hop that follows it has
	// that much, not a budget of its own, so that one budget bounds the
	// whole chain of hops. The time between the hops, the caller's and
	// http.Client's, is not counted.
	left     time.Duration
	budgeted bool
}

// redirectKeys holds what calls that got a redirect leave to the requests
// that follow them (see redirectHop), by the redirect's response, until
// the request http.Client follows it with, whose Response it is, takes
// it, or the response is garbage. The response's Request stays the
// caller's (see callersRequest). The zero value is ready; it is safe for
// concurrent use.
type redirectKeys struct {
	mu sync.Mutex
	m  map[weak.Pointer[http.Response]]redirectHop
}

// followedRedirect reports whether status is that of a redirect
// http.Client follows.
func followedRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// isKeptRedirect reports whether resp, answered to an attempt of c, is a
// 307 or 308 whose key the request that follows it must carry.
func (c *call) isKeptRedirect(resp *http.Response) bool {
	return (resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect) && c.hidesKey()
}

// followRedirect takes what the call that got the redirect req follows
// left to it (see redirectKeys.take), once setDeadline has run: what was
// left of its budget, which becomes the call's when it is less than a
// budget of its own (one budget bounds the chain of hops; a hop left
// nothing fails before its first attempt, see call.run), and the key of
// a write answered with a 307 or 308, which it returns.
func (c *call) followRedirect(req *http.Request) string {
	hop := c.t.redirects.take(req)
	if hop.budgeted && !c.budget.IsZero() && hop.left < c.cfg.maxElapsed {
		c.budget = c.start.Add(hop.left)
		if c.budget.Before(c.deadline) {
			c.deadline = c.budget
		}
	}
	return hop.key
}

// keepRedirect records, for the request that follows resp, the response
// the call returns, what it leaves to it when resp is a redirect
// http.Client follows: its key (see isKeptRedirect) and what is left of
// its budget.
func (c *call) keepRedirect(resp *http.Response) {
	if followedRedirect(resp.StatusCode) { // inlined: a success pays no call
		c.keepHop(resp)
	}
}

// keepHop is keepRedirect for a redirect http.Client follows.
func (c *call) keepHop(resp *http.Response) {
	var h redirectHop
	if !c.budget.IsZero() {
		h.left, h.budgeted = c.budget.Sub(c.t.clock.now()), true
	}
	if c.isKeptRedirect(resp) {
		h.key = c.key
	}
	if h.budgeted || h.key != "" {
		c.t.redirects.keep(resp, h)
	}
}

// keep records h for the request that follows resp.
func (r *redirectKeys) keep(resp *http.Response, h redirectHop) {
	p := weak.Make(resp)
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[weak.Pointer[http.Response]]redirectHop)
	}
	r.m[p] = h
	r.mu.Unlock()
	runtime.AddCleanup(resp, r.drop, p)
}

// drop forgets what was kept for a response that is garbage.
func (r *redirectKeys) drop(p weak.Pointer[http.Response]) {
	r.mu.Lock()
	delete(r.m, p)
	r.mu.Unlock()
}

// take returns what was kept for the redirect req follows, req.Response,
// which must not be nil, and forgets it: the request http.Client follows
// it with takes it once, and a request sent again (a hop the caller
// resends, one it builds by hand with that Response) is a call of its
// own. The key is kept for req only when it follows a 307 or 308 with its
// method, on the host of the request the redirect answered (see
// otherHost), whatever host the chain of redirects began at.
func (r *redirectKeys) take(req *http.Request) redirectHop {
	prev := req.Response
	r.mu.Lock()
	if len(r.m) == 0 {
		r.mu.Unlock()
		return redirectHop{}
	}
	p := weak.Make(prev)
	h := r.m[p]
	delete(r.m, p)
	r.mu.Unlock()
	if h.key != "" && (prev.Request == nil || prev.Request.URL == nil || req.URL == nil || prev.Request.Method != req.Method || otherHost(req, prev.Request)) {
		h.key = ""
	}
	return h
}
