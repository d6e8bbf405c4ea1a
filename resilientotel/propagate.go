package resilientotel

import (
	"net/http"
	"strings"
)

// propagate returns a copy of req with the span context of its context
// injected, or nil when the propagator injects nothing.
func (in *instrumentation) propagate(req *http.Request) *http.Request {
	hc := in.carriers.Get().(*headerCarrier)
	hc.src = req.Header
	in.prop.Inject(req.Context(), hc)
	var out *http.Request
	if hc.dst != nil {
		out = req.WithContext(req.Context())
		out.Header = hc.dst
	}
	*hc = headerCarrier{}
	in.carriers.Put(hc)
	return out
}

// headerCarrier is the propagation carrier of an attempt: it copies the
// request's headers on the first Set, so that the caller's are never
// modified and nothing is copied when nothing is injected.
type headerCarrier struct {
	src, dst http.Header
}

func (h *headerCarrier) header() http.Header {
	if h.dst != nil {
		return h.dst
	}
	return h.src
}

// Get returns the value of key.
func (h *headerCarrier) Get(key string) string { return h.header().Get(key) }

// Set sets key to value, in the copy; a value the request already holds
// (injected by a layer above) makes no copy. The key replaces those of the
// request that differ from it only by case (a "traceparent" set by hand in
// the header map), which net/http would send beside it.
func (h *headerCarrier) Set(key, value string) {
	key = canonicalKey(key)
	if h.dst == nil {
		if vv := h.src[key]; len(vv) == 1 && vv[0] == value {
			return
		}
		h.dst = cloneHeader(h.src, 2)
	}
	for k := range h.dst {
		if len(k) == len(key) && k != key && strings.EqualFold(k, key) {
			delete(h.dst, k)
		}
	}
	h.dst[key] = []string{value}
}

// cloneHeader returns a deep copy of src with room for extra more keys: as
// http.Header.Clone, without the map growing when they are added.
func cloneHeader(src http.Header, extra int) http.Header {
	n := 0
	for _, vv := range src {
		n += len(vv)
	}
	all := make([]string, n)
	dst := make(http.Header, len(src)+extra)
	for k, vv := range src {
		if vv == nil {
			dst[k] = nil
			continue
		}
		n = copy(all, vv)
		dst[k] = all[:n:n]
		all = all[n:]
	}
	return dst
}

// canonicalKey returns the canonical form of a header name, without
// allocating for the W3C propagators' own.
func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

// Keys returns the keys of the headers.
func (h *headerCarrier) Keys() []string {
	hd := h.header()
	keys := make([]string, 0, len(hd))
	for k := range hd {
		keys = append(keys, k)
	}
	return keys
}
