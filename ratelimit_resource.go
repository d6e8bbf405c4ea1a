package resilient

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Some APIs keep several quotas per key and name the one a response counts
// against: GitHub's X-RateLimit-Resource (core, search, graphql, …). The
// rate limiter then keeps a partition per resource, so that a spent search
// quota does not hold core calls, and learns which requests count against
// which resource by the first segment of their path (/search/…, /graphql),
// as the server names it. A request whose segment has not been seen yet
// goes to the host's partition of its class, as without resources; so does
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
// its bucket, and requests with the same method and path go to it from
// then on (the path, not its first segment: a bucket is a route and its
// channel or webhook); a route named for two buckets goes to the host's
// partition.

// hdrResource names the quota a response counted against.
const hdrResource = "X-Ratelimit-Resource"

// hdrBucket names the per-route bucket a response counted against.
const hdrBucket = "X-Ratelimit-Bucket"

// ambiguousRoute marks a route whose responses named several resources: its
// requests go to the host's partition of their class. A resource name is
// never empty.
const ambiguousRoute = ""

// maxResourceRoutes bounds the routes learned; when full, the table is
// emptied and learned again.
const maxResourceRoutes = 4096

// resourceRoute is a host's path segment, for a resource; or, for a
// bucket, a method (never empty) and a path.
type resourceRoute struct {
	scheme, host, method, path string
}

// resources maps routes to the resource their responses named, or to
// ambiguousRoute.
type resources struct {
	m sync.Map // resourceRoute → string
	n atomic.Int32
}

// firstSegment returns the first segment of path: "/search/code" → "search".
func firstSegment(path string) string {
	path = strings.TrimPrefix(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return path
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
	v, ok := rs.m.Load(resourceRoute{k.scheme, k.host, bucketMethod(req.Method), req.URL.Path})
	if !ok {
		v, ok = rs.m.Load(resourceRoute{k.scheme, k.host, "", firstSegment(req.URL.Path)})
	}
	if !ok || v.(string) == ambiguousRoute {
		return k
	}
	return partKey{scheme: k.scheme, host: k.host, resource: v.(string), cred: k.cred}
}

// learn records the resource resp named for its request's route (or marks
// the route ambiguous when it named another before), and returns the key of
// the partition that learns from resp.
func (rs *resources) learn(k partKey, resp *http.Response) partKey {
	if k.scheme == "" || resp.Request == nil || resp.Request.URL == nil {
		return k
	}
	var r resourceRoute
	name := headerValue(resp.Header, hdrResource)
	switch {
	case name != "":
		r = resourceRoute{k.scheme, k.host, "", firstSegment(resp.Request.URL.Path)}
	case len(resp.Header[hdrBucket]) > 0:
		name = headerValue(resp.Header, hdrBucket)
		r = resourceRoute{k.scheme, k.host, bucketMethod(resp.Request.Method), resp.Request.URL.Path}
	default:
		return k
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return k // not a resource name: a hostile header
	}
	if r.method == "" {
		name = strings.ToLower(name)
	} else {
		name = "bucket " + name // apart from the resources; a bucket's id keeps its case
	}
	v, ok := rs.m.Load(r)
	switch {
	case !ok:
		if rs.n.Load() >= maxResourceRoutes {
			rs.m.Clear()
			rs.n.Store(0)
		}
		if prev, loaded := rs.m.LoadOrStore(r, name); !loaded {
			rs.n.Add(1)
		} else if prev.(string) != name {
			rs.m.Store(r, ambiguousRoute)
		}
	case v.(string) != name && v.(string) != ambiguousRoute:
		rs.m.Store(r, ambiguousRoute)
	}
	return partKey{scheme: k.scheme, host: k.host, resource: name, cred: k.cred}
}
