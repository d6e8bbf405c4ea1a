package resilient

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient/internal/redact"
)

// Some APIs keep several quotas per key and name the one a response counts
// against: GitHub's X-RateLimit-Resource (core, search, graphql, …). The
// rate limiter then keeps a partition per resource, so that a spent search
// quota does not hold core calls, and learns which requests count against
// which resource by the first segment of their path (/search/…, /graphql),
// as the server names it (after an API's prefix, such as GitHub Enterprise
// Server's /api/v3: see firstSegment). A request whose segment has not been
// seen yet goes to the host's partition of its class, as without resources; so does
// one whose segment has been named for two resources (GitHub counts
// /search/code against code_search and /search/issues against search), since
// its segment cannot tell which quota it counts against: a spent quota of
// one must not hold the requests of the other.
//
// Others keep a quota per route and name its bucket: Discord's
// X-RateLimit-Bucket (a channel's messages, a webhook, …). Pooled in the
// host's partition, one webhook's 5 requests a couple of seconds would
// pace every other webhook of the host, where a plain client sends each
// at its own bucket's rate. Such a response is learned in a partition of
// its bucket and of its route's top-level resource (see topLevelID: the
// same bucket of another channel is another quota), and requests with the
// same method and path go to it from then on (the path, not its first
// segment: a bucket is a route and its channel or webhook); a route named
// for two buckets goes to the host's partition. Discord also keeps a
// global limit per bot (50 requests a
// second), whose 429 says X-RateLimit-Global: true (or X-RateLimit-Scope:
// global) and names no bucket: its Retry-After pauses every partition of
// the host and credential, buckets and classes alike, for any other
// route's request would get the same 429 (and Discord bans a client that
// keeps sending into them); with a QuotaStore, in every member of the
// fleet (see ratelimit_global.go).
//
// Others again keep a quota per endpoint without naming it: X counts
// GET /2/users/me at 75 requests per 15 minutes and its searches at 450,
// each announced as X-Rate-Limit-Limit with the endpoint's own remaining
// and reset. Pooled, a spent users/me would hold every read of the token
// for up to 15 minutes, where a plain client's searches go through. So a
// partition whose responses announce different plain limits (the
// X-RateLimit-Limit or X-Rate-Limit-Limit header, without a policy or a
// window) from different routes is taken for per-endpoint quotas: from
// then on each response that announces a plain limit is learned in a
// partition of that limit (per class and credential, "reads, limit 75"),
// and requests with the same method and path go to it. Routes that share a
// limit share its partition (a route with an id, /2/tweets/:id, is one
// quota across ids; two endpoints of one limit are held together, as
// before). A limit that changes on one route (a plan's upgrade) changes
// nothing; one that shows first on another route splits a host with one
// quota until every route announced it (a 429 per limit's partition and
// window at most, meanwhile); limits announced under a policy (the IETF RateLimit-Policy),
// where the binding one of several quotas is announced, are not read
// here. A 429's pause, like any learned state, holds the partition its
// response is learned in: a 429 that announces its route's plain limit
// pauses that limit's partition once the host's limits are split. A 429
// splits nothing: the limit it announces may be that of the rule that
// throttled it (a burst limit over an hourly quota), and until the
// successes of two routes announce different limits its pause holds every
// route.

// hdrResource names the quota a response counted against.
const hdrResource = "X-Ratelimit-Resource"

// hdrBucket names the per-route bucket a response counted against.
const hdrBucket = "X-Ratelimit-Bucket"

// ambiguousRoute marks a route whose responses named several resources: its
// requests go to the host's partition of their class. A resource name is
// never empty.
const ambiguousRoute = ""

// maxResourceRoutes bounds the routes learned, and apart the partitions
// whose plain limits are known: when the routes' table is full, it is
// emptied and learned again (see clearRoutes); when that of plain limits
// is, the limits of the partitions not split are forgotten first (see
// makePlainRoom).
const maxResourceRoutes = 4096

// resourceRoute is a host's path segment, for a resource; or, for a
// bucket, a method (never empty) and a path; or, for a plain limit, a
// method, a path, the class and the credential (limit set).
type resourceRoute struct {
	scheme, host, method, path string
	limit                      bool   // a route of plain limits
	write                      bool   // its class, when limit is set
	cred                       uint64 // its credential, when limit is set
}

// clone returns r in strings the tables may keep (see keepKey): its path
// is part of a request's URL.
func (r resourceRoute) clone() resourceRoute {
	r.scheme, r.host, r.method, r.path = keepKey(r.scheme), keepKey(r.host), keepKey(r.method), keepKey(r.path)
	return r
}

// resources maps routes to the resource their responses named, or to
// ambiguousRoute.
type resources struct {
	m      sync.Map     // resourceRoute → string
	n      atomic.Int32 // entries of m
	limits atomic.Int32 // entries of m for plain limits
	// plain maps the key of a host's partition of a class and a credential
	// to the *plainLimits its responses announced; nplain counts its
	// entries, apart from n: a host that announces a plain limit adds no
	// route that the requests of every host would look up (see of).
	plain  sync.Map
	nplain atomic.Int32
}

// plainLimits is the first plain limit a partition's responses announced,
// with its route; mixed once another route announced another. It is never
// changed once stored: a change stores another.
type plainLimits struct {
	route resourceRoute
	limit int
	mixed bool
}

// firstSegment returns the first segment of path: "/search/code" →
// "search". The segments of an API's prefix before it, "api" and a version
// ("v3"), are skipped: GitHub Enterprise Server serves its REST API under
// /api/v3 and its GraphQL API at /api/graphql, whose first segment, "api"
// on every route, would send the searches to the partition of core, and
// a spent core quota would hold them ("/api/v3/search/code" → "search").
func firstSegment(path string) string {
	for {
		seg, rest, more := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if !more || !isPrefixSegment(seg) {
			return seg
		}
		path = rest
	}
}

// isPrefixSegment reports whether a path segment is one of an API's
// prefix, which names no resource: "api", or a version such as "v3".
func isPrefixSegment(s string) bool {
	return s == "api" || len(s) > 1 && s[0] == 'v' && allDigits(s[1:])
}

// bucketMethod returns req's method as a bucket's route names it.
func bucketMethod(method string) string {
	if method == "" {
		return http.MethodGet
	}
	return method
}

// of returns the key of req's partition once its route's resource or
// bucket is known: the host and the resource, whatever the method (a
// resource counts reads and writes together).
func (rs *resources) of(k partKey, req *http.Request) partKey {
	if rs.n.Load() == 0 || k.scheme == "" {
		return k
	}
	method := bucketMethod(req.Method)
	v, ok := rs.m.Load(resourceRoute{scheme: k.scheme, host: k.host, method: method, path: req.URL.Path})
	if !ok {
		v, ok = rs.m.Load(resourceRoute{scheme: k.scheme, host: k.host, path: firstSegment(req.URL.Path)})
	}
	if !ok && rs.limits.Load() != 0 {
		// Only the routes of a host whose plain limits are split are
		// templated: another host's request allocates nothing here.
		if v, ok := rs.plain.Load(k); ok && v.(*plainLimits).mixed {
			r := resourceRoute{scheme: k.scheme, host: k.host, method: method, path: routeTemplate(req.URL.Path), limit: true, write: k.write, cred: k.cred}
			if v, ok := rs.m.Load(r); ok {
				return partKey{scheme: k.scheme, host: k.host, write: k.write, custom: k.custom, resource: v.(string), cred: k.cred}
			}
		}
	}
	if !ok || v.(string) == ambiguousRoute {
		return k
	}
	return partKey{scheme: k.scheme, host: k.host, custom: k.custom, resource: v.(string), cred: k.cred}
}

// routeTemplate returns path with each segment that is an id replaced by
// "*", so that the requests of an endpoint share its route whatever the
// id: /2/tweets/1460323737035677698 → /*/tweets/* (X's version too). An id
// is a segment of digits, or of 16 characters or more that are hex digits
// and dashes (a UUID, a 24-digit object id). A path without one is
// returned as is.
func routeTemplate(path string) string {
	path = redact.Path(path) // a credential in a path never names a partition
	var b []byte
	for i := 0; i < len(path); {
		j := i
		for j < len(path) && path[j] != '/' {
			j++
		}
		if isIDSegment(path[i:j]) {
			if b == nil {
				b = append(make([]byte, 0, len(path)), path[:i]...)
			}
			b = append(b, '*')
		} else if b != nil {
			b = append(b, path[i:j]...)
		}
		if j < len(path) && b != nil {
			b = append(b, '/')
		}
		i = j + 1
	}
	if b == nil {
		return path
	}
	return string(b)
}

// isIDSegment reports whether a path segment is an id (see routeTemplate).
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '-':
			digits = false
		default:
			return false
		}
	}
	return digits || len(s) >= 16
}

// plainLimitName returns the resource of the partition of the plain limit
// n, for a class: "reads, limit 75".
func plainLimitName(write bool, n int) string {
	if write {
		return "writes, limit " + strconv.Itoa(n)
	}
	return "reads, limit " + strconv.Itoa(n)
}

// isPlainLimitName reports whether resource names a plain limit's
// partition.
func isPlainLimitName(resource string) bool {
	return strings.HasPrefix(resource, "reads, limit ") || strings.HasPrefix(resource, "writes, limit ")
}

// learnPlain learns that the response to req, whose attempt had key k,
// announced the plain limit n, and returns the key of the partition that
// learns from it: k, until routes of k's class and credential announced
// different limits; then the partition of n, to which req's route goes from
// then on. The first time routes of k's class and credential announce
// different limits, it returns in split the limit that k's partition
// learned until then, whose partition takes what it learned; else 0. A
// throttled response (a 429) splits nothing, and is learned in k until the
// limits are split: the limit it announces may be the rule that throttled
// it (a burst limit over an hourly quota), not its route's, and its pause
// must then hold every route of the host's one quota.
func (rs *resources) learnPlain(k partKey, req *http.Request, n int, throttled bool) (nk partKey, split int) {
	base := k
	if isPlainLimitName(base.resource) {
		base.resource = ""
	} else if base.resource != "" {
		return k, 0 // a quota the server named
	}
	r := resourceRoute{scheme: k.scheme, host: k.host, method: bucketMethod(req.Method), path: routeTemplate(req.URL.Path), limit: true, write: k.write, cred: k.cred}
	if len(r.path) > redact.MaxPath {
		return k, 0 // not a route: a hostile URL
	}
	v, ok := rs.plain.Load(base)
	switch {
	case throttled && (!ok || !v.(*plainLimits).mixed):
		return k, 0
	case !ok:
		if rs.nplain.Load() >= maxResourceRoutes {
			rs.makePlainRoom()
		}
		if _, loaded := rs.plain.LoadOrStore(base.clone(), &plainLimits{route: r.clone(), limit: n}); !loaded {
			rs.nplain.Add(1)
		}
		return k, 0
	case !v.(*plainLimits).mixed:
		first := v.(*plainLimits)
		switch {
		case first.limit == n:
			return k, 0
		case first.route == r:
			// The route's limit changed (a plan's): not another quota.
			rs.plain.CompareAndSwap(base.clone(), first, &plainLimits{route: r.clone(), limit: n})
			return k, 0
		}
		// Another route, another limit: per-endpoint quotas. The first
		// route goes to its limit's partition too.
		if rs.plain.CompareAndSwap(base.clone(), first, &plainLimits{mixed: true}) {
			split = first.limit
		}
		rs.route(first.route, plainLimitName(k.write, first.limit))
	}
	name := plainLimitName(k.write, n)
	rs.route(r, name)
	return partKey{scheme: k.scheme, host: k.host, write: k.write, custom: k.custom, resource: name, cred: k.cred}, split
}

// route sends the requests of the plain limits' route r to the partition
// of resource name.
func (rs *resources) route(r resourceRoute, name string) {
	if v, ok := rs.m.Load(r); ok && v.(string) == name {
		return
	}
	if rs.n.Load() >= maxResourceRoutes {
		rs.clearRoutes()
	}
	if _, loaded := rs.m.Swap(r.clone(), name); !loaded {
		rs.n.Add(1)
		rs.limits.Add(1)
	}
}

// clearRoutes forgets every route learned, when their table is full: they
// are learned again. The plain limits the partitions' responses announced,
// and whether they are split, are kept (their table is bounded apart):
// forgotten, a host that counts each endpoint apart would be taken for a
// host of one quota again until two of its routes' successes split it
// anew, and meanwhile a spent endpoint's 429, which its route forgotten
// sends again, would pause the host's partition, holding every route of
// the credential (X's searches for up to 15 minutes after a users/me
// spent).
func (rs *resources) clearRoutes() {
	rs.m.Clear()
	rs.n.Store(0)
	rs.limits.Store(0)
}

// makePlainRoom makes room in the full table of plain limits: it forgets
// the limits of the partitions not split, each learned again from one
// answer, and keeps the splits, which only the answers of two routes learn
// again (forgotten, see clearRoutes), so that a caller that mints a token
// per request, each token's partition announcing a limit, does not undo
// them. When splits fill most of the table, it forgets everything (clear).
func (rs *resources) makePlainRoom() {
	rs.plain.Range(func(k, v any) bool {
		if !v.(*plainLimits).mixed && rs.plain.CompareAndDelete(k, v) {
			rs.nplain.Add(-1)
		}
		return true
	})
	if rs.nplain.Load() >= maxResourceRoutes*3/4 {
		rs.clear()
	}
}

// clear forgets every route and every plain limit learned, when the table
// of plain limits is full of splits: they are learned again.
func (rs *resources) clear() {
	rs.clearRoutes()
	rs.plain.Clear()
	rs.nplain.Store(0)
}

// namesQuota reports whether h names the quota its response counted
// against: a resource or a bucket.
func namesQuota(h http.Header) bool {
	return headerValue(h, hdrResource) != "" || len(h[hdrBucket]) > 0
}

// learn records the resource resp named for its request's route (or marks
// the route ambiguous when it named another before), or the plain limit
// it announced (plain, 0 for none; throttled when resp was: see
// learnPlain), and returns the key of the partition that learns from resp;
// split as learnPlain returns it. The route is that of req, the request the
// attempt sent, whose route later attempts are looked up by (see of), or
// of resp.Request without req: a base RoundTripper may leave resp.Request
// unset (as a response built by hand, or httptest.ResponseRecorder.Result,
// does: the RoundTripper contract does not ask for it), or set it to
// another request (a copy it rewrote the path of, the last hop of
// redirects it followed), and a route no lookup names would let a spent
// quota of one resource hold every request of its host, or a spent bucket
// hold none of its route's. A name is looked at for the credentials of
// both requests (a base may have added its own to the copy it sent).
func (rs *resources) learn(k partKey, req *http.Request, resp *http.Response, plain int, throttled bool) (nk partKey, split int) {
	sent := resp.Request
	if sent == nil || sent.URL == nil || sent == req {
		sent = nil
	}
	if req == nil || req.URL == nil {
		req, sent = sent, nil
	}
	if k.scheme == "" || req == nil {
		return k, 0
	}
	var r resourceRoute
	name := headerValue(resp.Header, hdrResource)
	switch {
	case name != "":
		r = resourceRoute{scheme: k.scheme, host: k.host, path: firstSegment(req.URL.Path)}
	case len(resp.Header[hdrBucket]) > 0:
		name = headerValue(resp.Header, hdrBucket)
		r = resourceRoute{scheme: k.scheme, host: k.host, method: bucketMethod(req.Method), path: req.URL.Path}
	case plain > 0:
		return rs.learnPlain(k, req, plain, throttled)
	default:
		return k, 0
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || len(r.path) > redact.MaxPath {
		return k, 0 // not a resource name, or not a route: a hostile header or URL
	}
	raw := name
	switch id := topLevelID(r.path); {
	case r.method == "":
		name = strings.ToLower(name)
	case id != "":
		// The bucket of the route's top-level resource: the same bucket
		// of another channel is another quota (see topLevelID).
		name = "bucket " + name + " of " + id
	default:
		name = "bucket " + name // apart from the resources; a bucket's id keeps its case
	}
	v, ok := rs.m.Load(r)
	if (!ok || v.(string) != name) && len(raw) >= redact.MinSecret &&
		(redact.Echoes(raw, req) != raw || sent != nil && redact.Echoes(raw, sent) != raw) {
		// A name that repeats a credential of the request (a server that
		// names its bucket by the caller's key) would show it in errors,
		// log records and a QuotaStore's names, where a credential shows
		// as a one-way tag only: such a quota is the credential's, which
		// k's partition, of the host and the credential, keeps. (A name a
		// route already learned was looked at then.)
		return k, 0
	}
	switch {
	case !ok:
		if rs.n.Load() >= maxResourceRoutes {
			rs.clearRoutes()
		}
		if prev, loaded := rs.m.LoadOrStore(r.clone(), name); !loaded {
			rs.n.Add(1)
		} else if prev.(string) != name {
			rs.m.Store(r.clone(), ambiguousRoute)
		}
	case v.(string) != name && v.(string) != ambiguousRoute:
		rs.m.Store(r.clone(), ambiguousRoute)
	}
	return partKey{scheme: k.scheme, host: k.host, custom: k.custom, resource: name, cred: k.cred}, 0
}

// splitPlain hands what the partition of base learned over to the
// partition of its plain limit n, which now takes the requests of the
// routes that announced n, and clears base's. What a QuotaStore holds of
// base for the fleet (a pause, the quota it paces) stays: the members
// split each at its own time, and the others still use it; base's
// partition, whose routes from then on are not n's, takes no token of
// that quota (n's) any more (handedOver). The fleet's pause holds n's
// partition too, as base's own pause does: it was the pause of the quota
// base pooled, n's.
func (rl *rateLimiter) splitPlain(base partKey, n int, now time.Time) {
	var clock lazyNow
	clock.t = now
	from := rl.lookup(base, false, &clock)
	if from == nil {
		return
	}
	to := rl.lookup(partKey{scheme: base.scheme, host: base.host, write: base.write, custom: base.custom, resource: plainLimitName(base.write, n), cred: base.cred}, true, &clock)
	from.mu.Lock()
	learned := from.announced
	from.mu.Unlock()
	var fleetPause time.Time
	if from.quota != nil {
		fleetPause = from.quota.PauseUntil()
	}
	rl.takeOver(to, learned, fleetPause, now)
	var woken []chan struct{}
	rl.forget(from, now, false, false, &woken)
	for _, c := range woken {
		close(c)
	}
}

// takeOver gives p, the partition of a plain limit, what the host's
// partition learned (learned) and the pause its store holds for the fleet
// (pause, zero for none), before the host's partition is cleared: the
// attempts it wakes that go to p then find both in force. With a store,
// the quota learned is the store's to pace, as update gives it: a pace of
// p's own would be one no response updates.
func (rl *rateLimiter) takeOver(p *partition, learned announced, pause, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock() // a store that panics leaves p usable
	now = p.at(now)
	p.announced = learned
	if pause.After(p.pauseUntil) && p.quota != nil {
		p.raisePause(pause)
		p.quota.Pause(pause) // n's partition in the store: for the members split already
	}
	info := RateLimitInfo{Limit: learned.limit, Remaining: -1}
	if learned.reset.After(now) {
		info.Remaining, info.Reset = learned.remaining, learned.reset
	}
	if !p.learnShared(&info, time.Time{}, true) {
		rl.pace(p, now, learned.remaining, false)
	}
	p.reopen(now)
}

// splitFor returns the partition of req's plain limit when p, the host's
// partition of its class and credential, had its limits split (see
// splitPlain) and req's route has a limit's partition; else p. A split
// hands p's state to the first limit's partition and clears p, waking the
// attempts waiting for p's spent quota or pause: those of that limit's
// routes must wait in their limit's partition, not go into its spent
// quota.
func (rl *rateLimiter) splitFor(req *http.Request, p *partition) *partition {
	if req == nil || p.key.scheme == "" || p.key.resource != "" || rl.resources.limits.Load() == 0 {
		return p
	}
	k := rl.resources.of(p.key, req)
	if k == p.key || !isPlainLimitName(k.resource) {
		return p
	}
	var clock lazyNow
	return rl.lookup(k, true, &clock)
}

// mayProbe reports whether req, which p's spent quota would refuse (its
// reset is past the longest wait or the call's deadline) while no pause is
// in force, may be sent instead: when the response that spent it announced
// a plain limit and req's route is another, once per window. The
// quota may be that route's alone (X counts each endpoint apart, see
// learnPlain), which only its answer tells: without it, a spent endpoint
// would fail the others' calls until its reset (up to 15 minutes on X),
// where a plain client's go through. On a host with one quota, the probe
// costs one 429 per such window at most, which pauses the partition; a
// wait that fits is waited, as before, without a probe. The probe takes no
// token of the partition's limiter, which paces by the spent limit's quota
// (and WithRateLimit's static one with it): it is one request per window
// beyond them. A partition shared through a QuotaStore is probed by each
// member: as many requests per window at most, and never through the
// fleet's pause. p.mu is held.
func (p *partition) mayProbe(req *http.Request, now time.Time) bool {
	return !p.probed.After(now) && p.otherRoute(req)
}

// otherRoute reports whether the response that spent p's quota announced a
// plain limit, and req's route is another than its request's (see
// mayProbe). p.mu is held.
func (p *partition) otherRoute(req *http.Request) bool {
	return req != nil && p.plainPath != "" &&
		(p.plainPath != routeTemplate(req.URL.Path) || p.plainMethod != bucketMethod(req.Method))
}
