package resilient

import (
	"io"
	"net/http"
	"net/url"
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
	// sentKey is the key of a write answered with a 307 or 308, whoever
	// set it, when an earlier attempt of the call may have been processed
	// under it: it got no answer after it may have been sent (lost, see
	// call.lost: the server may still hold the key), or was answered with
	// a failure that does not prove it unprocessed (unproven, see
	// call.answeredUnproven). The request that follows the redirect with
	// that key, on its host, with its method, the same write sent on, is
	// told so (see take); "" for none.
	sentKey        string
	lost, unproven bool
	// sent is what take checks the request that follows the redirect
	// against before it carries key or sentKey (see take): the method, URL scheme
	// and host and Host of the request the redirect answered, as it was
	// sent, not as its caller may have changed it since (a request reused
	// for the next send); nil without key or sentKey.
	sent *http.Request
	// left is what was left of the call's budget (WithMaxElapsed) when it
	// returned the redirect, when budgeted: the hop that follows it has
	// that much, not a budget of its own, so that one budget bounds the
	// whole chain of hops. The time between the hops, the caller's and
	// http.Client's, is not counted.
	left     time.Duration
	budgeted bool
	// vals are what the caller set for the call that left it (see
	// followRedirect): what WithMaxElapsedSpent counted there, which left
	// holds, and what the hop that follows counts again is told by them.
	vals *callValues
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
	// for a copy of their response; a hop found by one map leaves both.
	byRequest map[weak.Pointer[http.Request]]*requestHops
}

// requestHops is what redirectKeys holds for one request: its hops, and
// what is known of those it let go of without knowing whose they were.
type requestHops struct {
	hops []keptHop // oldest first
	// unsure says that a hop of the request left without being told (one
	// dropped for maxHopsPerRequest, one an untold copy took): its copy
	// may still come, and find its own hop gone; it then gets no more
	// than floor.
	unsure bool
	// floor is the least left of the budgets of the hops that so left,
	// when budgeted: an untold copy gets no more than that (nor than any
	// hop held), which is no more than its own call left.
	floor    time.Duration
	budgeted bool
	// lastHeader is the address of the Header map of the hop kept last
	// for the request, not held (a map later at that address may be
	// another), and sharedHeader says that two of its hops had one Header
	// map (a base that serves its redirects as copies of one it stored):
	// a Header then tells no copy of the request's (see takeCopy).
	lastHeader   uintptr
	sharedHeader bool
}

// let records that h left r without being told.
func (r *requestHops) let(h redirectHop) {
	r.unsure = true
	if h.budgeted && (!r.budgeted || h.left < r.floor) {
		r.floor, r.budgeted = h.left, true
	}
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
	// header is the response's Header, held while the hop is, so that a
	// shallow copy of the response, which shares it, is told by it
	// whether or not the response is still alive (a middleware that
	// returns `r2 := *resp` leaves it garbage at once).
	header http.Header
	// taken says that a request that follows the response took the hop:
	// one sent with it again is a call of its own (see take).
	taken bool
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

// sentOn reports whether status is that of a redirect http.Client follows
// with the same method and body: a 307 or 308, the same write sent on,
// whose key the request that follows it must carry.
func sentOn(status int) bool {
	return status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect
}

// followRedirect takes what the call that got the redirect req follows
// left to it (see redirectKeys.take), once setDeadline has run: what was
// left of its budget, less what WithMaxElapsedSpent counted as spent
// before the hop by values of its own (see hopSpent), which becomes the
// call's when it is less than a budget of its own (one budget bounds the
// chain of hops; a hop left nothing fails before its first attempt, see
// call.run), and the key of a write answered with a 307 or 308, and what
// an earlier attempt of that write may have left under its key (see
// redirectHop.sentKey), which it returns (see call.inheritMarks).
func (c *call) followRedirect(req *http.Request) redirectHop {
	hop, resent := c.t.redirects.takeHop(req)
	c.resent = resent
	if hop.budgeted && c.cfg.elapsedSpent > 0 {
		prev := hop.vals
		if prev == nil && req.Response.Request != nil {
			// A copy whose hop was not told (see takeCopy): the hops
			// its request held, whose least budget it got, are those of
			// calls made with the values of that request.
			prev = callValuesIn(req.Response.Request.Context())
		}
		hop.left -= c.hopSpent(callValuesIn(req.Context()), prev)
	}
	if hop.budgeted && !c.budget.IsZero() && hop.left < c.cfg.maxElapsed {
		c.budget = c.start.Add(hop.left)
		if c.budget.Before(c.deadline) {
			c.deadline = c.budget
		}
	}
	return hop
}

// inheritMarks gives the call the marks of the call whose 307 or 308 it
// follows (hop; see call.lost, call.answeredUnproven) when it sends that
// write on under the key an earlier attempt of it may have been processed
// under: the same write.
func (c *call) inheritMarks(hop redirectHop) {
	if hop.sentKey != "" && c.key == hop.sentKey {
		c.lost, c.answeredUnproven = hop.lost, hop.unproven
	}
}

// hopSpent returns what WithMaxElapsedSpent counted as spent before a
// hop of a redirect, whose values are cur, that the hops before it did
// not: what cur's own options counted beyond what the values cur and
// prev, those of the hop before it, were both derived from counted (see
// callValues.outer). Those shared values are a context given to
// http.Client, which every hop carries: the first hop counted them, and
// what it left holds them. What a layer between http.Client and the
// Transport gave a hop with WithCallOptions (its wait before the hop) is
// counted whole, whatever the hop before it was given.
func (c *call) hopSpent(cur, prev *callValues) time.Duration {
	shared := commonValues(cur, prev)
	if shared == cur {
		return 0
	}
	if extra := c.cfg.elapsedSpent - c.t.callConfig(shared).elapsedSpent; extra > 0 {
		return extra
	}
	return 0
}

// commonValues returns the values a and b were both derived from, or are
// (see callValues.outer); nil for none.
func commonValues(a, b *callValues) *callValues {
	for x := a; x != nil; x = x.outer {
		for y := b; y != nil; y = y.outer {
			if x == y {
				return x
			}
		}
	}
	return nil
}

// keepRedirect records, for the request that follows resp, the response
// the call returns, what it leaves to it when resp is a redirect
// http.Client follows: its key, the key an earlier attempt of its write
// may have been processed under (see redirectHop) and what is left of its
// budget.
func (c *call) keepRedirect(resp *http.Response) {
	if followedRedirect(resp.StatusCode) { // inlined: a success pays no call
		c.keepHop(resp)
	}
}

// keepHop is keepRedirect for a redirect http.Client follows.
func (c *call) keepHop(resp *http.Response) {
	var h redirectHop
	if !c.budget.IsZero() {
		h.left, h.budgeted, h.vals = c.budget.Sub(c.t.clock.now()), true, callValuesIn(c.req.Context())
	}
	if r := resp.Request; r != nil && r.URL != nil && sentOn(resp.StatusCode) {
		if c.hidesKey() {
			h.key = c.key
		}
		if (c.lost || c.answeredUnproven) && c.key != "" {
			h.sentKey, h.lost, h.unproven = c.key, c.lost, c.answeredUnproven
		}
		if h.key != "" || h.sentKey != "" {
			h.sent = &http.Request{Method: r.Method, URL: &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host}, Host: r.Host}
		}
	}
	if h.budgeted || h.sent != nil || c.report != nil {
		// (Kept for a Report alone too: the request that follows resp
		// is then told from one sent with it again, see take.)
		c.t.redirects.keep(resp, h)
	}
}

// keep records h for the request that follows resp, by resp and by its
// Request.
func (r *redirectKeys) keep(resp *http.Response, h redirectHop) {
	k := keptHop{hop: h, resp: weak.Make(resp), header: resp.Header}
	if resp.Request != nil {
		k.req = weak.Make(resp.Request)
	}
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[weak.Pointer[http.Response]]keptHop)
		r.byRequest = make(map[weak.Pointer[http.Request]]*requestHops)
	}
	r.m[k.resp] = k
	rh, held := r.byRequest[k.req]
	if resp.Request != nil {
		if !held {
			rh = new(requestHops)
			r.byRequest[k.req] = rh
		}
		if hp := headerAddr(resp.Header); hp != 0 {
			if hp == rh.lastHeader || slices.ContainsFunc(rh.hops, func(o keptHop) bool { return sameHeader(o.header, resp.Header) }) {
				rh.sharedHeader = true
			}
			rh.lastHeader = hp
		}
		if len(rh.hops) == maxHopsPerRequest {
			// The copy of the hop dropped may come: it would take one
			// of these, or a later one, for its own.
			rh.let(rh.hops[0].hop)
			rh.hops = slices.Delete(rh.hops, 0, 1)
		}
		rh.hops = append(rh.hops, k)
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
// host of the request the redirect answered (see otherHost), as that
// request was sent (see redirectHop.sent), whatever host the chain of
// redirects began at.
func (r *redirectKeys) take(req *http.Request) redirectHop {
	h, _ := r.takeHop(req)
	return h
}

// takeHop is take, and reports whether the hop was taken already: req is
// then a request sent again with that Response (a hop the caller resends,
// one it builds by hand with it), a call of its own, whose Report tells
// it alone, as its budget is its own.
func (r *redirectKeys) takeHop(req *http.Request) (h redirectHop, resent bool) {
	prev := req.Response
	r.mu.Lock()
	if len(r.m) == 0 && len(r.byRequest) == 0 {
		r.mu.Unlock()
		return redirectHop{}, false
	}
	p := weak.Make(prev)
	k, ok := r.m[p]
	copied := false
	if ok {
		// Taken: the entry stays, empty, until the response is garbage,
		// so that a request sent again with it, which is a call of its
		// own, takes nothing, not a hop of its request's (see takeCopy).
		resent = k.taken
		r.m[p] = keptHop{taken: true}
		if rh := r.byRequest[k.req]; rh != nil {
			if i := slices.IndexFunc(rh.hops, func(o keptHop) bool { return o.resp == p }); i >= 0 {
				rh.hops = slices.Delete(rh.hops, i, i+1)
			}
		}
	} else if prev.Request != nil {
		if k, copied = r.takeCopy(prev); copied {
			r.m[p] = keptHop{taken: true} // so is the copy
		}
	}
	r.mu.Unlock()
	if copied {
		runtime.AddCleanup(prev, dropResponse, droppedResponse{weak.Make(r), p})
	}
	h = k.hop
	if h.sent != nil && (req.URL == nil || h.sent.Method != req.Method || otherHost(req, h.sent)) {
		h.key, h.sentKey = "", ""
	}
	return h, resent
}

// takeCopy is take, with r.mu held, for prev, a response r holds nothing
// for: a copy a middleware made of a response to prev.Request, whose hop
// it returns and forgets; false for none. The copy is told by its Header,
// the same map as its response's (see keptHop.header), unless two
// responses to its request had that map (see requestHops.sharedHeader), or by its Body, the
// same as its response's while that is not garbage: nothing else tells
// whose hop it is (the only hop held for its request may be another
// call's, its own taken or never kept). When it cannot be told (a request
// sent more than once at a time, the copy's header cloned, a hop of its
// request dropped for maxHopsPerRequest), it takes no key: a write is
// better sent on with a key of its own than with another's; and the least
// budget left of the hops held for the request or let go of untold, which
// is no more than its own call left. It lets
// go of the hop kept last (see requestHops.let), which stays for the
// request that follows its response itself, which is sure of it.
func (r *redirectKeys) takeCopy(prev *http.Response) (keptHop, bool) {
	rh := r.byRequest[weak.Make(prev.Request)]
	if rh == nil || len(rh.hops) == 0 && !rh.unsure {
		return keptHop{}, false
	}
	i := -1
	for j, o := range rh.hops {
		if !rh.sharedHeader && sameHeader(o.header, prev.Header) || sameOrigBody(o, prev) {
			if i >= 0 {
				i = -1 // two alike: no telling
				break
			}
			i = j
		}
	}
	if i >= 0 {
		k := rh.hops[i]
		rh.hops = slices.Delete(rh.hops, i, i+1)
		if _, held := r.m[k.resp]; held {
			r.m[k.resp] = keptHop{taken: true} // taken, as take leaves it
		}
		return k, true
	}
	var k keptHop
	k.hop.left, k.hop.budgeted = rh.floor, rh.budgeted
	for _, o := range rh.hops {
		if o.hop.budgeted && (!k.hop.budgeted || o.hop.left < k.hop.left) {
			k.hop.left, k.hop.budgeted = o.hop.left, true
		}
	}
	if n := len(rh.hops); n > 0 {
		rh.let(rh.hops[n-1].hop)
		rh.hops = rh.hops[:n-1]
	}
	return k, true
}

// sameOrigBody reports whether prev's Body is that of o's response, while
// that is not garbage.
func sameOrigBody(o keptHop, prev *http.Response) bool {
	orig := o.resp.Value()
	return orig != nil && sameBody(orig.Body, prev.Body)
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

// headerAddr returns the address of h's map, 0 for none.
func headerAddr(h http.Header) uintptr {
	if h == nil {
		return 0
	}
	return reflect.ValueOf(h).Pointer()
}

// sameHeader reports whether a and b are the Header of one response: the
// same map, which a shallow copy shares.
func sameHeader(a, b http.Header) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
