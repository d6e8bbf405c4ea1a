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
// goes to the host's partition of its class, as without resources.

// hdrResource names the quota a response counted against.
const hdrResource = "X-Ratelimit-Resource"

// maxResourceRoutes bounds the routes learned; when full, the table is
// emptied and learned again.
const maxResourceRoutes = 4096

// resourceRoute is a host's path segment.
type resourceRoute struct {
	scheme, host, segment string
}

// resources maps routes to the resource their responses named.
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

// of returns the key of req's partition once its route's resource is known:
// the host and the resource, whatever the method (a resource counts reads
// and writes together).
func (rs *resources) of(k partKey, req *http.Request) partKey {
	if rs.n.Load() == 0 || k.scheme == "" {
		return k
	}
	v, ok := rs.m.Load(resourceRoute{k.scheme, k.host, firstSegment(req.URL.Path)})
	if !ok {
		return k
	}
	return partKey{scheme: k.scheme, host: k.host, resource: v.(string)}
}

// learn records the resource resp named for its request's route, and
// returns the key of the partition that learns from resp.
func (rs *resources) learn(k partKey, resp *http.Response) partKey {
	name := headerValue(resp.Header, hdrResource)
	if name == "" || k.scheme == "" || resp.Request == nil || resp.Request.URL == nil {
		return k
	}
	if len(name) > 64 {
		return k // not a resource name: a hostile header
	}
	name = strings.ToLower(strings.TrimSpace(name))
	r := resourceRoute{k.scheme, k.host, firstSegment(resp.Request.URL.Path)}
	if v, ok := rs.m.Load(r); !ok || v.(string) != name {
		if rs.n.Load() >= maxResourceRoutes {
			rs.m.Clear()
			rs.n.Store(0)
		}
		if _, loaded := rs.m.Swap(r, name); !loaded {
			rs.n.Add(1)
		}
	}
	return partKey{scheme: k.scheme, host: k.host, resource: name}
}
