package resilient

import (
	"io"
	"net/http"
	"reflect"
	"runtime"
	"slices"
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
// it (its entry then stays, empty, until the response is garbage, for a
// request sent again with it), or the response is garbage. The
// response's Request stays the caller's (see callersRequest). A
// middleware above the Transport may return a shallow copy of the
// response (a logging or header-rewriting one), which is then the
// Response of the request that follows it: what was left is found by the
// copy's Request too (see takeCopy), held by that request until it is
// taken or the request is garbage, at most maxHopsPerRequest for one
// request. The zero value is ready; it is safe for concurrent use.
type redirectKeys struct {
	mu sync.Mutex
	m  map[weak.Pointer[http.Response]]keptHop
	// byRequest holds the hops of m again, by their response's Request,
	// oldest first, for a copy of their response; a hop found by one map
	// leaves both.
	byRequest map[weak.Pointer[http.Request]][]keptHop
}

// maxHopsPerRequest is how many hops byRequest holds for one request: a
// request sent again and again (a poller's), whose redirects are not
// followed, holds no more than that, the oldest dropped first.
const maxHopsPerRequest = 4

// keptHop is a hop redirectKeys holds.
type keptHop struct {
	hop  redirectHop
	resp weak.Pointer[http.Response] // the redirect's response
	req  weak.Pointer[http.Request]  // its Request's; zero for none
	// unsure says that a copy of a response of the same request could not
	// be told apart from this one's (see takeCopy): a copy does not take
	// its key.
	unsure bool
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

// keep records h for the request that follows resp, by resp and by its
// Request.
func (r *redirectKeys) keep(resp *http.Response, h redirectHop) {
	k := keptHop{hop: h, resp: weak.Make(resp)}
	if resp.Request != nil {
		k.req = weak.Make(resp.Request)
	}
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[weak.Pointer[http.Response]]keptHop)
		r.byRequest = make(map[weak.Pointer[http.Request]][]keptHop)
	}
	r.m[k.resp] = k
	hops, held := r.byRequest[k.req]
	if resp.Request != nil {
		if len(hops) == maxHopsPerRequest {
			hops = slices.Delete(hops, 0, 1)
			// The copy of the hop dropped may come: it would take one
			// of these, or this one, for its own.
			for j := range hops {
				hops[j].unsure = true
			}
			k.unsure = true
		}
		r.byRequest[k.req] = append(hops, k)
	}
	r.mu.Unlock()
	self := weak.Make(r)
	runtime.AddCleanup(resp, dropResponse, droppedResponse{self, k.resp})
	if resp.Request != nil && !held {
		// Once for the request, whose entry stays until it is garbage:
		// a request sent again adds no cleanup. The cleanup holds r
		// weakly: a request the caller keeps does not keep the
		// Transport alive.
		runtime.AddCleanup(resp.Request, dropRequest, droppedRequest{self, k.req})
	}
}

// droppedResponse is what dropResponse forgets: r's entry for resp.
type droppedResponse struct {
	r    weak.Pointer[redirectKeys]
	resp weak.Pointer[http.Response]
}

// dropResponse forgets what was kept for a response that is garbage, but
// for a copy of it (see byRequest). It holds the table weakly, as a
// cleanup of the response: a response the caller keeps does not keep the
// Transport alive.
func dropResponse(d droppedResponse) {
	if r := d.r.Value(); r != nil {
		r.mu.Lock()
		delete(r.m, d.resp)
		r.mu.Unlock()
	}
}

// droppedRequest is what dropRequest forgets: r's entry for req.
type droppedRequest struct {
	r   weak.Pointer[redirectKeys]
	req weak.Pointer[http.Request]
}

// dropRequest forgets what was kept for the responses to a request that
// is garbage.
func dropRequest(d droppedRequest) {
	if r := d.r.Value(); r != nil {
		r.mu.Lock()
		delete(r.byRequest, d.req)
		r.mu.Unlock()
	}
}

// take returns what was kept for the redirect req follows, req.Response,
// which must not be nil, or for the response it is a copy of (see
// takeCopy), and forgets it: the request http.Client follows it with
// takes it once, and a request sent again (a hop the caller resends, one
// it builds by hand with that Response) is a call of its own. The key is
// kept for req only when it follows a 307 or 308 with its method, on the
// host of the request the redirect answered (see otherHost), whatever
// host the chain of redirects began at.
func (r *redirectKeys) take(req *http.Request) redirectHop {
	prev := req.Response
	r.mu.Lock()
	if len(r.m) == 0 && len(r.byRequest) == 0 {
		r.mu.Unlock()
		return redirectHop{}
	}
	p := weak.Make(prev)
	k, ok := r.m[p]
	copied := false
	if ok {
		// Taken: the entry stays, empty, until the response is garbage,
		// so that a request sent again with it, which is a call of its
		// own, takes nothing, not a hop of its request's (see takeCopy).
		r.m[p] = keptHop{}
		hops := r.byRequest[k.req]
		if i := slices.IndexFunc(hops, func(o keptHop) bool { return o.resp == p }); i >= 0 {
			r.byRequest[k.req] = slices.Delete(hops, i, i+1)
		}
	} else if prev.Request != nil {
		k = r.takeCopy(prev)
		if copied = k.resp != (weak.Pointer[http.Response]{}); copied {
			r.m[p] = keptHop{} // so is the copy
		}
	}
	r.mu.Unlock()
	if copied {
		runtime.AddCleanup(prev, dropResponse, droppedResponse{weak.Make(r), p})
	}
	h := k.hop
	if h.key != "" && (prev.Request == nil || prev.Request.URL == nil || req.URL == nil || prev.Request.Method != req.Method || otherHost(req, prev.Request)) {
		h.key = ""
	}
	return h
}

// takeCopy is take, with r.mu held, for prev, a response r holds nothing
// for: a copy a middleware made of a response to prev.Request, whose hop
// it returns and forgets; the zero keptHop for none. The copy is told by
// its Body or its Header, the same as its response's while that is not
// garbage; failing that, by being the only one held for its request. When it cannot
// be told (a request sent more than once at a time, the copy's body
// wrapped, a hop of its request dropped for maxHopsPerRequest), it takes
// the hop kept last, without its key, and the others held for the
// request lose theirs for a copy (see keptHop.unsure): a write is better
// sent on with a key of its own than with another's; the hop stays for
// the request that follows its response itself, which is sure of it.
func (r *redirectKeys) takeCopy(prev *http.Response) keptHop {
	q := weak.Make(prev.Request)
	hops := r.byRequest[q]
	if len(hops) == 0 {
		return keptHop{}
	}
	i := -1
	for j, o := range hops {
		if orig := o.resp.Value(); orig != nil && (sameBody(orig.Body, prev.Body) || sameHeader(orig.Header, prev.Header)) {
			if i >= 0 {
				i = -1 // two alike: no telling
				break
			}
			i = j
		}
	}
	sure := i >= 0
	if i < 0 {
		i = len(hops) - 1
		sure = len(hops) == 1 && !hops[i].unsure
	}
	k := hops[i]
	hops = slices.Delete(hops, i, i+1)
	if !sure {
		k.hop.key = ""
		for j := range hops {
			hops[j].unsure = true
		}
	}
	r.byRequest[q] = hops
	if _, held := r.m[k.resp]; held && sure {
		// Taken, as take leaves it. Unsure, it is left to the response
		// itself: the request that follows it is sure of its hop.
		r.m[k.resp] = keptHop{}
	}
	return k
}

// sameBody reports whether a and b are the body of one response: the same
// pointer. A body that is none (http.NoBody, the body of every response
// without one) tells no response; nor does a pointer to a value of no
// size, which Go may give every such value.
func sameBody(a, b io.ReadCloser) bool {
	if a == nil || b == nil {
		return false
	}
	if v := reflect.ValueOf(a); v.Kind() != reflect.Pointer || v.IsNil() || v.Type().Elem().Size() == 0 {
		return false
	}
	return a == b // a pointer: comparable, and of another type when b is not
}

// sameHeader reports whether a and b are the Header of one response: the
// same map, which a shallow copy shares.
func sameHeader(a, b http.Header) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
