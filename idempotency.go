package resilient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unsafe"

	"github.com/resilienthttp/resilient/internal/redact"
	"github.com/resilienthttp/resilient/internal/uuid"
)

// WithIdempotencyKey returns a copy of ctx that makes the Transport send key
// as the idempotency key of the write made with it, on every attempt,
// instead of a generated one. A key already set as a request header wins
// over it (that write is still the one the key names, when it is the
// first).
//
// The key names one write: the first write made with the returned context
// (or a context derived from it), its method, URL and Host header, whoever
// made it: when an SDK makes an auxiliary write first (the request for an
// upload URL, say), the key names that one, and the write it was meant for
// goes with a key of its own; set the key as that request's header
// instead, if the SDK lets you, or derive the context where only that
// write is made with it. A context flows far
// (to every call a handler makes, to an SDK's auxiliary requests, to a
// middleware's), and a host that deduplicates by key answers a second
// write under the same key with the first one's stored response: that
// write would be lost while the caller saw a success. So the key is sent
// with that write, with the same write again (the same method, URL and
// host: the caller's own retry), and with the request http.Client follows
// it with after a 307 or 308 to another path of its host, or from http to
// https on its host (the same write: its method and body kept; at https,
// another scheme, the key is not the caller's statement below, as a key
// header http.Client copies there is not). Any other write made with the context (another
// path or query, another method, another host, by its URL or by the
// virtual host its Host header names: an SDK's auxiliary request,
// a token endpoint) is sent as without the key: with a key of its own
// (WithIdempotencyKey on a context of its own, or a generated one) and the
// write rule of its host, as a plain client would send it, never answered
// with the first write's response. A read, and a PUT or
// DELETE unless WithIdempotencyMethods names its method, carries no key
// and binds nothing. A new WithIdempotencyKey context names a new write,
// even under the same key. Two writes to the same method and URL with
// different bodies are not told apart: give each its own key (a host that
// deduplicates answers the second one with a conflict, or with the first
// one's response).
//
// A key the caller sets, this way or as a header, is the caller's statement
// that the API deduplicates writes by key: such a write is resent after an
// ambiguous failure (see WithKeyHonoringHosts for the write rule).
//
// Use it when a write must stay deduplicated across process restarts or
// across calls: derive the key from your own business identifier, for
// example a hash of the post's id. How a key is derived is the caller's
// business; the Transport sends it unchanged. An empty key, or one of
// spaces and tabs alone (which net/http sends empty), is ignored: ctx is
// returned as it is. A nil ctx panics, as it does with context.WithValue.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	mustContext("WithIdempotencyKey", ctx)
	if !isKeyValue(key) {
		return ctx
	}
	cv := derivedValues(ctx)
	cv.key, cv.bind = key, new(keyBinding)
	return context.WithValue(ctx, callKey{}, &cv)
}

// WithoutIdempotencyKeys turns automatic keys off. A key the caller sets, as
// a header or with WithIdempotencyKey, is still sent and still makes the
// write retryable; a write without one is then retried only when it
// provably was not processed (see WithKeyHonoringHosts).
func WithoutIdempotencyKeys() Option {
	return func(c *config) { c.noIdempotencyKeys = true }
}

// WithIdempotencyHeader sets the name of the header that carries keys
// (default Idempotency-Key); some APIs use X-Idempotency-Key. A key the
// caller set under the configured name, under Idempotency-Key or under
// X-Idempotency-Key, in any capitalisation, is honored, never beside a
// second, generated key, and sent under the configured name; but with the
// default name, a key set under X-Idempotency-Key is sent as set, under
// that header alone (the caller chose it for the API), and once: another
// spelling of it set beside it is dropped. One set under
// another header than the configured one is also sent there, as set, for
// the API it was set for (an SDK that sets its own API's Idempotency-Key,
// as stripe-go does, through a Transport configured for another API). It
// panics on an empty name, one that is not a valid header name, or one
// that carries credentials (Authorization, Cookie, X-Api-Key, …: the
// caller's credential would be taken for its key, and reported as one) or
// describes the message (Content-Type, Host, …).
func WithIdempotencyHeader(name string) Option {
	if name == "" {
		panic("resilient: WithIdempotencyHeader: empty header name")
	}
	if !isToken(name) {
		panic(fmt.Sprintf("resilient: WithIdempotencyHeader: invalid header name %q", name))
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if why := reservedHeader(name); why != "" {
		panic(fmt.Sprintf("resilient: WithIdempotencyHeader: %s %s", name, why))
	}
	return func(c *config) {
		perTransport(c, "WithIdempotencyHeader")
		c.idempotencyHeader = name
	}
}

// WithIdempotencyMethods sets the methods that get an automatic key
// (default POST and PATCH). Methods are matched case-sensitively, as
// net/http does. Given after WithoutIdempotencyKeys (to New, or per call),
// it turns automatic keys back on for its methods, as a later option of the
// same kind overrides an earlier one; WithoutIdempotencyKeys given after it
// turns them off. It panics on a method that is not a valid one (empty,
// or with a space or a separator, as " PATCH" split from "POST, PATCH"),
// which no request carries: net/http refuses to send it.
func WithIdempotencyMethods(methods ...string) Option {
	for _, m := range methods {
		if !isToken(m) {
			panic(fmt.Sprintf("resilient: WithIdempotencyMethods: invalid method %q", m))
		}
	}
	m := append([]string(nil), methods...)
	return func(c *config) { c.idempotencyMethods, c.noIdempotencyKeys = m, false }
}

// isIdempotentMethod reports whether repeating method is safe by its
// definition (RFC 9110, section 9.2.2). An empty method means GET.
func isIdempotentMethod(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// idempotencyKey returns the key of a call, whether it must be stamped on
// each attempt, whether the caller set it (its word that the host
// deduplicates), whether it is the caller's own, that word or not (own:
// see call.ownKey), and whether one must be drawn
// (with the call's first attempt, see attemptRequest): a key in the
// request's headers is used as it is (and stamped anew only when it is not
// under the configured name, or is beside another spelling of it), as the
// caller's, unless a Transport above
// this one drew it and stamped it on the write (stampedKey: the key is
// sent, but is not the caller's); else ctxKey, the
// one set with WithIdempotencyKey, for the write bind names (see
// keyBinding.applies: a request the key was not set for is keyed as without
// it); else redirected, the key this Transport drew for the write req
// follows on through a 307 or 308 on its host (see redirectKeys.take);
// else, for the configured methods, one is drawn. A
// write that gets no key is stamped without one when the caller left an
// empty key header that net/http's Transport would read as a key (see
// keyedHeader).
func (t *Transport) idempotencyKey(req *http.Request, cfg *config, ctxKey string, bind *keyBinding, redirected string) (key string, stamp, caller, own, draw bool) {
	name := cfg.idempotencyHeader
	if k, entry := headerKey(req.Header, name); k != "" {
		if v, _ := req.Context().Value(stampedKey{}).(string); v == k {
			// The attempt of a Transport above this one, which drew
			// the key and stamped it on the write (or carried the
			// caller's on through a redirect): the key is sent, but
			// says nothing of the host.
			own, _ := req.Context().Value(ownStampKey{}).(bool)
			return k, true, false, own, false
		}
		if redirectedElsewhere(req) {
			// http.Client copied the caller's headers, the key among
			// them, into the request it follows a redirect with, to
			// another host: the caller's word was for the first one.
			return k, true, false, true, false
		}
		// Under the configured name, or under X-Idempotency-Key which the
		// caller chose for this API when no other name is configured, the
		// key is sent as it is; under another spelling of the configured
		// name, or under one of the usual names when another is
		// configured, it is sent under the configured name too (and
		// stays under the usual name: see keyedHeader), which the API the
		// Transport is configured for reads. So is a key under the
		// configured name that another spelling of it sits beside (see
		// spelledOtherwise): it is then sent once. (A key under
		// X-Idempotency-Key beside another spelling of it is sent once
		// too, under that header still: see keyedHeader.)
		keep := (entry == name || name == DefaultIdempotencyHeader && strings.EqualFold(entry, "X-Idempotency-Key")) &&
			!spelledOtherwise(req.Header, entry)
		if ctxKey != "" {
			// The header wins over the context's key, but this write
			// is still the one the context's key names, when it is
			// the first made with it: a later, other write must not
			// take that key (see WithIdempotencyKey).
			bind.applies(req, cfg)
		}
		return k, !keep, true, true, false
	}
	if ctxKey != "" {
		if ok, upgraded := bind.applies(req, cfg); ok {
			// Through a redirect from http to https, the key goes
			// with its write, but is not the caller's word for that
			// scheme, as a key header http.Client copies there.
			return ctxKey, true, !upgraded, true, false
		}
	}
	if redirected != "" {
		// The same write, followed on through a 307 or 308 on its host:
		// the key this Transport drew for it, not the caller's.
		return redirected, true, false, false, false
	}
	if cfg.noIdempotencyKeys || !generatesKeyFor(cfg, req.Method) {
		return "", !isIdempotentMethod(req.Method) && hasNetHTTPKey(req.Header), false, false, false
	}
	return "", true, false, false, true
}

// redirectedElsewhere reports whether req is a request http.Client made to
// follow a redirect (its Response, the redirect, is set) to a host other
// than its first request's: by its URL, or by the virtual host its Host
// header names (http.Client keeps the Host header only through a relative
// Location: an absolute one on the same address reaches the address's own
// virtual host).
func redirectedElsewhere(req *http.Request) bool {
	first := firstOfRedirects(req)
	if first == nil {
		return true // its first host unknown
	}
	return first != req && otherHost(req, first)
}

// otherHost reports whether requests a and b go to different hosts: by
// their URLs, or by the virtual hosts their Host headers name.
func otherHost(a, b *http.Request) bool {
	s1, h1 := canonicalName(a.URL.Scheme, a.URL.Host)
	s2, h2 := canonicalName(b.URL.Scheme, b.URL.Host)
	return s1 != s2 || h1 != h2 || virtualHostName(a) != virtualHostName(b)
}

// firstOfRedirects returns the first request of the redirects http.Client
// followed to make req (their Responses chain them), or req itself when it
// follows none; nil when they are more than 64 (http.Client stops after 10,
// unless a CheckRedirect sets no bound; a chain made by hand may loop),
// when one of them follows a response that names no request, or one
// without a URL (a base RoundTripper or a middleware may build its
// responses without their Request), or when one of them is not the
// request that follows its Response (see followsRedirect): its first
// request is then unknown.
func firstOfRedirects(req *http.Request) *http.Request {
	if first, cut := startOfRedirects(req); !cut {
		return first
	}
	return nil
}

// startOfRedirects walks the redirects http.Client followed to make req
// as firstOfRedirects does, and returns the earliest request it reached
// and cut, which says that this request is not the one that follows its
// Response (see followsRedirect): a request of its own, made from one
// that followed a redirect (Request.Clone keeps its Response), or a hop
// sent to another URL than its redirect's; nil when the chain is unknown
// past it (more than 64 redirects, a Response that names no request or
// one without a URL).
func startOfRedirects(req *http.Request) (first *http.Request, cut bool) {
	if req.Response == nil || req.URL == nil {
		return req, false
	}
	first = req
	for hops := 0; first.Response != nil; hops++ {
		prev := first.Response.Request
		if hops == 64 || prev == nil || prev.URL == nil {
			return nil, false
		}
		if !followsRedirect(first, prev) {
			return first, true
		}
		first = prev
	}
	return first, false
}

// followsRedirect reports whether req is the request http.Client made to
// follow req.Response, the answer to prev: its URL is that response's
// Location, resolved against prev's URL as http.Client resolves it. A
// request cloned from one that followed a redirect (Request.Clone keeps
// its Response) and sent to another URL is not: it is a request of its
// own (the caller's next write, made from the last one's resp.Request),
// whatever its Response says. A caller's middleware outside the Transport
// that sets parameters of each request's query (an API key), on prev as
// on req, leaves req a hop all the same: its URL is then the Location with
// those of prev's parameters set, a parameter the Location has not taking
// a value of its own on each request (a signature of its path, a
// timestamp: see setQuery).
func followsRedirect(req, prev *http.Request) bool {
	u, err := prev.URL.Parse(req.Response.Header.Get("Location"))
	if err != nil || u.User.String() != req.URL.User.String() {
		return false
	}
	a, b := *u, *req.URL
	a.User, b.User = nil, nil
	if a == b {
		return true
	}
	a.RawQuery, b.RawQuery, a.ForceQuery, b.ForceQuery = "", "", false, false
	return a == b && setQuery(u.RawQuery, req.URL.RawQuery, prev.URL.RawQuery)
}

// setQuery reports whether query q is loc, the query of a redirect's
// Location, with some of its parameters set as they are in prev, the
// query of the request the redirect answered, and some of prev's added:
// every parameter of q has the values it has in loc or in prev, or, one
// that loc has not, is one of prev's (a middleware that sets it on each
// request gives each its own value: a signature of its path, a
// timestamp), and every parameter of loc is in q.
func setQuery(loc, q, prev string) bool {
	lv, err1 := url.ParseQuery(loc)
	qv, err2 := url.ParseQuery(q)
	pv, err3 := url.ParseQuery(prev)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	for k, vs := range qv {
		_, inLoc := lv[k]
		_, inPrev := pv[k]
		if !slices.Equal(vs, lv[k]) && !slices.Equal(vs, pv[k]) && (inLoc || !inPrev) {
			return false
		}
	}
	for k := range lv {
		if _, ok := qv[k]; !ok {
			return false
		}
	}
	return true
}

// spelledOtherwise reports whether h, whose entry name holds the caller's
// key, has an entry for name in another capitalisation too
// ("idempotency-key" set by hand beside Idempotency-Key, "x-idempotency-key"
// beside X-Idempotency-Key). net/http sends
// each entry as a field of its own, over HTTP/2 in the map's order, which
// changes from one attempt to the next: a server that reads the first of
// the fields would read another key on a retry, and store the write twice.
// It is asked only of a request that carries a key under name, and
// allocates nothing.
func spelledOtherwise(h http.Header, name string) bool {
	if len(h) < 2 {
		return false // name's own entry alone
	}
	for k := range h {
		if k != name && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// hasNetHTTPKey reports whether h has an entry that net/http's Transport
// reads as an idempotency key, whatever its value: for it, the mere
// presence of Idempotency-Key or X-Idempotency-Key makes a write safe to
// resend on its own (its isReplayable rule), even when empty.
func hasNetHTTPKey(h http.Header) bool {
	if len(h) == 0 {
		return false
	}
	_, a := h[DefaultIdempotencyHeader]
	_, b := h["X-Idempotency-Key"]
	return a || b
}

func generatesKeyFor(cfg *config, method string) bool {
	if method == "" {
		method = http.MethodGet
	}
	for _, m := range cfg.idempotencyMethods {
		if m == method {
			return true
		}
	}
	return false
}

// headerKey returns the caller's key and the name of the header map entry
// that holds it: the configured header, else Idempotency-Key, else
// X-Idempotency-Key, each in any capitalisation. A name outranks the
// next ones in whatever capitalisation it is set: the configured header
// is the one the API reads, and a key set there by hand in lower case
// ("x-request-key") is the caller's key for that API, which an
// Idempotency-Key set beside it (an SDK's own) must not replace on the
// wire. Within a name, its canonical entry comes first, else the first
// of its entries in byte order, whatever the map's order: the one
// net/http writes first over HTTP/1, which a server reads as the
// header's value. (Taken in the map's order, the same request sent
// twice could carry two different keys.)
func headerKey(h http.Header, name string) (key, entry string) {
	if len(h) == 0 {
		return "", ""
	}
	if v := h[name]; len(v) > 0 && isKeyValue(v[0]) {
		return v[0], name // the common case: no look at the other entries
	}
	names := [...]string{name, DefaultIdempotencyHeader, "X-Idempotency-Key"}
	rank := len(names) // that of entry; len(names) for none
	for k, v := range h {
		if len(v) == 0 || !isKeyValue(v[0]) {
			continue
		}
		r := 0
		for r < len(names) && !strings.EqualFold(k, names[r]) {
			r++
		}
		if r > rank || r == len(names) {
			continue
		}
		if r < rank || k == names[r] || entry != names[r] && k < entry {
			key, entry, rank = v[0], k, r
		}
	}
	return key, entry
}

// isKeyValue reports whether v, the value of a key header or a key set
// with WithIdempotencyKey, is a key: not empty, nor white space alone,
// which net/http sends as an empty value (it trims a value's spaces and
// tabs on HTTP/1), a key no host deduplicates by. Taken for the caller's
// key, it would have a write resent to a host that ignores keys.
func isKeyValue(v string) bool {
	return v != "" && (v[0] != ' ' && v[0] != '\t' || strings.TrimLeft(v, " \t") != "")
}

// keyedHeader returns a copy of the caller's header with the call's key
// set under the configured name (under X-Idempotency-Key, for the caller's
// key set there with the default name: see idempotencyKey), the key under
// another spelling of that name removed. The key the caller set under
// Idempotency-Key when another name is configured stays there too, as the
// caller set it:
// the API it was set for (an SDK's own, as stripe-go's) may read that
// header alone, and the write is resent on the caller's word that the API
// deduplicates by it. So does the key a Transport above stamped there
// (see idempotencyKey), which resends the write on its own word that the
// API deduplicates by that header, and the caller's that http.Client
// copied into a redirect to another host, as a plain client sends it: both
// under the lower-case entry when the write is unproven. Anything else
// there is removed: another value, an empty one. One map sized for the
// key, and one array for all the values, the key's included: spare as far
// as they fit in it, then one new array for the rest, with no count of the
// values first (a second walk of the header, about 60 instructions a keyed
// write). With unproven, the key is set under a
// lower-case map entry: the server reads it all the same (header names
// are case-insensitive), but net/http's Transport does not see a key and
// so does not resend the request on its own after writing it to a reused
// connection that then died (its isReplayable rule), which would send a
// write twice to a host that ignores keys. For the same reason, an
// unproven write carries no empty X-Idempotency-Key the caller left (an
// entry net/http reads as a key, whatever its value), and one that is not
// empty, which is not the caller's word for the host (http.Client copied
// it into a redirect to another host: see idempotencyKey), goes under a
// lower-case entry too; a call without a key (c.key empty) gets none: its
// header is the caller's, without its empty key entries.
func (c *call) keyedHeader(unproven bool, spare []string) http.Header {
	name := c.cfg.idempotencyHeader
	src := c.req.Header
	if c.callerKey && name == DefaultIdempotencyHeader {
		if _, entry := headerKey(src, name); strings.EqualFold(entry, "X-Idempotency-Key") {
			// The caller's key under X-Idempotency-Key, beside
			// another spelling of it (see idempotencyKey): sent
			// once, under that header alone still.
			name = "X-Idempotency-Key"
		}
	}
	sv := spare
	if len(sv) == 0 {
		sv = make([]string, 1+headerValues(src))
	}
	h := make(http.Header, len(src)+1)
	if c.key != "" {
		sv[0] = c.key
		h[hiddenKeyName(name, unproven)] = sv[:1:1]
		sv = sv[1:]
	}
	for k, vv := range src {
		if strings.EqualFold(k, name) || strings.EqualFold(k, DefaultIdempotencyHeader) && !(c.key != "" && len(vv) > 0 && vv[0] == c.key) {
			continue // the key under another spelling of the name it is set under now
		}
		var more []string
		switch {
		case !unproven:
		case k == DefaultIdempotencyHeader:
			// The key a Transport above stamped, or http.Client
			// copied into a redirect: a key to net/http, sent under
			// the lower-case entry.
			k = "idempotency-key"
		case k == "X-Idempotency-Key":
			// A key to net/http, whatever its value: dropped when
			// empty, else sent under the lower-case entry, before the
			// values of one the caller set too (net/http writes the
			// canonical entry first).
			if !hidesXKey(src, name) {
				continue
			}
			//lint:ignore SA1008 the entry a caller set by hand in lower case.
			k, more = "x-idempotency-key", src["x-idempotency-key"]
		case k == "x-idempotency-key" && hidesXKey(src, name):
			continue // with the canonical entry's values, above
		}
		if vv == nil && more == nil {
			h[k] = nil // as Header.Clone keeps it
			continue
		}
		if len(sv) < len(vv)+len(more) {
			// Past what spare holds: one array for the values left,
			// which are no more than the header's.
			sv = make([]string, headerValues(src))
		}
		n := copy(sv, vv)
		n += copy(sv[n:], more)
		h[k] = sv[:n:n]
		sv = sv[n:]
	}
	return h
}

// headerValues returns the number of values in h.
func headerValues(h http.Header) int {
	n := 0
	for _, vv := range h {
		n += len(vv)
	}
	return n
}

// hidesXKey reports whether keyedHeader sends the caller's X-Idempotency-Key
// of src, an unproven write's header, under the lower-case entry: when it
// is not empty (an empty one is dropped) and not the key's own name. It is
// asked only of a header that has such an entry, so that the common one
// costs no lookup.
func hidesXKey(src http.Header, name string) bool {
	xk := src["X-Idempotency-Key"]
	return len(xk) > 0 && xk[0] != "" && !strings.EqualFold(name, "X-Idempotency-Key")
}

// hiddenKeyName returns the map entry the key goes under: name itself,
// or, for an unproven write under a name net/http's Transport knows, the
// same in lower case (see keyedHeader).
func hiddenKeyName(name string, unproven bool) string {
	if !unproven {
		return name
	}
	switch name {
	case DefaultIdempotencyHeader:
		return "idempotency-key"
	case "X-Idempotency-Key":
		return "x-idempotency-key"
	}
	return name
}

// needsKey reports whether the server answered that a key was required for
// a call that had none, and one may be generated (once): not when it also
// said not to retry its answer (see saidNoRetry), nor when the answer
// carries a Postato platform error, whose code and message are the social
// network's verdict on a post the host took, never the host's refusal of
// the request (see decide): a retry under a new key would be a second post.
func (c *call) needsKey(st *attemptState) bool {
	if c.key != "" || c.keyRetry || c.cfg.noIdempotencyKeys || st.apiErr == nil || st.noRetry || st.platform {
		return false
	}
	return isKeyRequired(st.apiErr)
}

// isKeyRequired recognizes the answer to a request sent without a key
// saying that an idempotency key was required: Aidelly's 400
// PUBLIC_API_IDEMPOTENCY_REQUIRED, or a 400 or 428 whose code (an RFC 9457
// problem's type included) speaks of idempotency, unless it refuses keys,
// or one of whose message's sentences says an idempotency key is missing
// or required. The
// IETF Idempotency-Key draft names all its problems with one type,
// ".../idempotency", and says "Idempotency-Key is missing" in the title
// of this one: as the request carried no key, such a code cannot speak of
// a key in flight or reused.
func isKeyRequired(e *APIError) bool {
	if e.StatusCode != http.StatusBadRequest && e.StatusCode != http.StatusPreconditionRequired {
		return false
	}
	if e.Code == "PUBLIC_API_IDEMPOTENCY_REQUIRED" {
		return true
	}
	if c := strings.ToLower(e.Code); strings.Contains(c, "idempoten") {
		return !refusesKeys(c)
	}
	m := strings.ToLower(e.Message)
	return !refusesKeys(m) && saysKeyRequired(m)
}

// saysKeyRequired reports whether message, in lower case, says in one of
// its sentences that an idempotency key (or its header, or token) is
// missing or required: "Idempotency-Key is missing", "this operation
// requires an idempotency key". A message that names idempotency beside
// another missing field ("currency is required. Idempotency is not
// guaranteed …") is not one: taken for one, it would have the host taken
// for one that deduplicates by key, and its writes resent.
// It allocates nothing, whatever the message a server writes.
func saysKeyRequired(message string) bool {
	if !strings.Contains(message, "idempotency") {
		return false
	}
	for sentence := range strings.FieldsFuncSeq(message, func(r rune) bool {
		return r == '.' || r == ';' || r == '!' || r == '?' || r == '\n'
	}) {
		if namesKey(sentence) &&
			(strings.Contains(sentence, "missing") || strings.Contains(sentence, "required") || strings.Contains(sentence, "requires")) {
			return true
		}
	}
	return false
}

// namesKey reports whether s names an idempotency key, header or token,
// its words apart or joined by a hyphen or an underscore
// ("idempotency-key", "idempotency_token").
func namesKey(s string) bool {
	const word = "idempotency"
	for {
		i := strings.Index(s, word)
		if i < 0 {
			return false
		}
		s = s[i+len(word):]
		if len(s) > 1 && (s[0] == ' ' || s[0] == '-' || s[0] == '_') {
			if w := s[1:]; strings.HasPrefix(w, "key") || strings.HasPrefix(w, "header") || strings.HasPrefix(w, "token") {
				return true
			}
		}
	}
}

// keyHeld reports whether a 409 with status status and envelope e (nil for
// none), the answer to an attempt of a keyed write an earlier attempt of
// which got no answer after it may have been sent (attemptState.lost; a
// gateway's 502 or 504 is none: see noAnswerBehind), says that the key is
// still held by that attempt, which the server may still be processing.
// Each vendor answers a key in flight with its
// conflict code (the IETF Idempotency-Key draft's 409): a code that speaks
// of idempotency, a bare "conflict", or none; as every attempt of the call
// (and of the request http.Client follows its 307 or 308 with on its host,
// which knows the attempt lost: see call.inheritMarks) carries the same key
// and the same body, the conflict cannot be a key
// reused for another payload, and the same key, later, gets the first
// attempt's answer. Returning the 409 instead would tell the caller to
// write again under a new key. A code that names a state
// (PUBLIC_API_POST_CANCEL_INVALID_STATE) is the server's final word, and
// so is a 409 whose envelope's retryable flag or vendor hint says false,
// or that carries a Postato platform error (which the classifier checks).
// The classifier makes such a 409 Transient by default: a Classifier may
// decide otherwise.
func keyHeld(status int, e *APIError) bool {
	if status != http.StatusConflict {
		return false
	}
	code := ""
	if e != nil {
		code = strings.ToLower(e.Code)
	}
	return code == "" || code == "conflict" || strings.Contains(code, "idempoten") && !refusesKeys(code)
}

// noAnswerBehind reports whether status, with envelope e (nil for none),
// is a gateway's word that the server behind it got no answer to the
// request it passed on, or none it could pass back: 502 (its connection
// broke, or the answer was none), 504 (no answer in time), and a CDN's 520
// and 524, the same by other numbers (a CDN's 521, 522 and 523 say that it
// never reached the server). The server may still be processing the write,
// which holds its key, as after a connection lost (see keyHeld). One whose
// envelope carries a code that names neither a gateway, an upstream nor a
// timeout (Aidelly's PUBLIC_API_POST_CREATE_FAILED, Altyaa's
// service_unavailable) is the server's own answer, as its 500 or 503 is:
// it ended its work on the request, and holds no key for it.
func noAnswerBehind(status int, e *APIError) bool {
	if status != http.StatusBadGateway && status != http.StatusGatewayTimeout && status != 520 && status != 524 {
		return false
	}
	return e == nil || e.Code == "" || codeSays(strings.ToLower(e.Code), "gateway", "upstream", "timeout", "timedout")
}

// newIdempotencyKey returns a random (version 4) UUID from crypto/rand.
func newIdempotencyKey() string { return uuid.New() }

// drawKey draws a new idempotency key (as newIdempotencyKey) into x and
// returns it: the string shares x's allocation. x.key is written once,
// here, and an attemptExtras is never reused, so the string never changes.
// The string keeps x alive, and with it the attempt's copy of the request:
// only the call and that copy's header hold it, so the retry loop draws a
// key this way only when no observer or tracer receives its Attempts.
func (x *attemptExtras) drawKey() string {
	uuid.Write(&x.key)
	return unsafe.String(&x.key[0], len(x.key))
}

// WithKeyHonoringHosts names hosts that deduplicate writes by idempotency
// key; several calls add up. A host is a name or an address, with or
// without a port, matched under any of the spellings that are one host
// (see canonicalHost): any case, with or without the final dot of a
// fully-qualified name ("api.example.com." is "api.example.com"), a port
// with or without leading zeros, an IPv6 address in any of its forms, an
// IPv4 address in IPv6 form as the IPv4 address, a name in Unicode as its
// punycode ("XN--BCHER-KVA.example." names bücher.example).
// "api.example.com" matches that host on any port, "api.example.com:8443"
// only on that port; an IPv6 address is named as it is ("::1") or as in a
// URL ("[::1]", "[::1]:8443"). It panics on an empty host or one that
// holds a scheme, a path or user information, and on one that no request
// can name: a port that is not a number up to 65535 (":443" alone, too),
// a wildcard ("*.example.com" names no host), a list
// ("a.example,b.example": give each host as an argument of its own),
// brackets around no IP address or with one missing ("[2001:db8::1"), a
// name with a colon of its own ("api.example.com::8443"), a space (any
// Unicode one) or a control character.
//
// The write rule: a write (any method but GET, HEAD, OPTIONS, TRACE, PUT
// and DELETE) is resent after an ambiguous failure (a 5xx, a connection
// lost after the request was written, an attempt timeout) only when it
// carries a key and its host deduplicates by key, which the Transport knows
// when the host is named here, when the caller set the key itself (as a
// header or with WithIdempotencyKey), or when the host said so in an
// earlier answer, to a read or a write: an Aidelly error envelope (Aidelly
// requires a key on every write; Postato's envelopes teach nothing, for
// Postato honors keys on POST /posts only), an idempotency-conflict or
// key-reuse code of any known dialect answered (a 5xx only when it says
// that the key is held, a conflict: another, a key store down, is the host
// failing) to a write under a key the Transport drew (one answered to the
// caller's own key speaks of the route the caller vouched for, not of the
// host's other writes: Postato's conflict on a post re-submitted under its
// stable key), or an Idempotent-Replayed header, answered to a read's
// failure (a success is not looked at: it pays no header lookup) or to
// a write under a key the Transport drew (not to the caller's own key,
// for the same reason, nor to a write that carried no key), or its answer
// to the retry, under a key the Transport drew, of a write it refused for
// want of a key (a retry the host did not answer, refused by a layer, a
// dial refused, a connection lost, teaches nothing). What a host said is
// remembered per scheme, host and port, in a table of at most 4096 hosts,
// and forgotten when the host answers as only a host that ignores keys does
// (rolled back to a version without them, say): a success that is no replay
// (no Idempotent-Replayed header, or one saying "false") to a write under a
// key an earlier attempt or hedged copy of which got a success too (two
// creates for one key), a code that speaks of idempotency and says that
// keys are not taken (idempotency_key_not_supported), or one that says that
// the key a request carried is missing or required (the host reads
// another header, or a proxy on the way dropped it). A host named here
// stays named.
// The host is the one a request dials, its URL's: a request whose Host
// header names another (a virtual host behind the address) neither
// teaches it nor is resent on what it was taught.
// A write is hedged (WithHedging) only on the caller's word: to a host
// named here, or under a key the caller set.
// Anywhere else, a write is resent only when it provably was not
// processed: a 429, a 403 refusing it over a rate limit (Throttled, as
// GitHub's), neither carrying a Postato platform error, a refused dial, a
// request net/http never got a connection for. Every other failure of such a write is returned at once, with what
// the server answered, and Attempt.StopReason says StopUnsafeWrite. Nor is
// such a write retried when the time its call has left after the wait is
// less than the host took to answer the last attempt (the retry's
// answer would be lost to the deadline after it was processed): the call
// returns that attempt's answer, and Attempt.StopReason says StopDeadline.
// The rate limiter and WithMaxInFlight hold its retry no later than that
// before the deadline either: refused then, the call returns that answer.
func WithKeyHonoringHosts(hosts ...string) Option {
	hs := make([]namedHost, 0, len(hosts))
	for _, given := range hosts {
		h := given
		if h == "" || strings.ContainsAny(h, "/?#@ ") {
			invalidKeyHost(given)
		}
		if strings.Count(h, ":") > 1 && h[0] != '[' {
			h = "[" + h + "]" // an IPv6 address, bracketed as in URL.Host
		}
		_, b := urlKey("", h) // as a request's host is looked up (keyHosts.hostKey)
		n := splitNamed(canonicalHost("", b))
		if n.name == "" || !validPort(n.port) || !bracketsAddress(h) || strings.ContainsFunc(h, func(r rune) bool {
			return r < ' ' || r == 0x7f || r == '*' || r == ',' || r == ';' || unicode.IsSpace(r)
		}) {
			invalidKeyHost(given)
		}
		hs = append(hs, n)
	}
	return func(c *config) {
		perTransport(c, "WithKeyHonoringHosts")
		if c.keyHosts == nil {
			c.keyHosts = make(map[namedHost]bool, len(hs))
		}
		for _, h := range hs {
			c.keyHosts[h] = true
		}
	}
}

// bracketsAddress reports whether h, a host given to WithKeyHonoringHosts
// (a bare IPv6 address bracketed), has brackets only as a URL's host has
// them: around an IP address, its zone included, and followed by nothing
// but a port. A name with a colon of its own ("api.test::8443"), which
// was bracketed as an address, an address with a bracket missing, or
// brackets around a name, are no host a request names.
func bracketsAddress(h string) bool {
	if !strings.HasPrefix(h, "[") {
		return !strings.ContainsAny(h, "[]")
	}
	end := strings.IndexByte(h, ']')
	if end < 0 {
		return false
	}
	if _, err := netip.ParseAddr(h[1:end]); err != nil {
		return false
	}
	rest := h[end+1:]
	return rest == "" || rest[0] == ':' && !strings.ContainsAny(rest, "[]")
}

// invalidKeyHost panics on h, a host WithKeyHonoringHosts cannot take. A
// URL given in its place (a service's configured base URL) may carry
// credentials: the panic shows it as errors show a URL, without its user
// information, query and fragment (see redactRef). A value with no
// scheme and no "//" before its host is read as a host, whose user
// information runs to its '@': a key given as a user name
// ("KEY:@api.example.com", Basic authentication with an empty password)
// is not taken for a scheme. A header pasted in its place has its token
// REDACTED, as a server's text has (see redact.Echoes: "Bearer …", a
// JSON Web Token).
func invalidKeyHost(h string) {
	shown := redactRef(h)
	if !strings.Contains(h, ":/") && !strings.HasPrefix(h, "//") {
		shown = strings.TrimPrefix(redactRef("//"+h), "//")
	}
	panic(fmt.Sprintf("resilient: WithKeyHonoringHosts: invalid host %q", redact.Echoes(shown, nil)))
}

// honorsKeys tells from an answer whether its host deduplicates writes by
// key: an Idempotent-Replayed header, when it answers a read or a write
// under a key the Transport drew (replay), not a write that carried no key
// (the header then answers no key of the request) nor one under the
// caller's own key (see below), an Aidelly envelope
// (Aidelly requires a key on every write), or a code that speaks of
// idempotency (a conflict, a reused key; not a missing one: see
// ignoresKeys) answered to a request
// under a key the Transport drew (drawn), unless it says that keys are not
// taken, or comes with a 5xx and says nothing of a key the host holds (see
// holdsKey): the host failing (its key store down, which may have let the
// write be processed without recording its key) says nothing of how it
// deduplicates. A Postato envelope is no such answer: Postato honors keys
// on POST /posts only, and its other writes (webhooks, media) are processed
// anew under a repeated key. Nor is a code answered to a request that sent
// no key (a read: a proxy's answer, an error of another route's stored and
// echoed) nor one answered to the caller's key: a conflict is then the
// server's word on the caller's own use of its key (reused for an edited
// post, as Postato's stable key per post is), on the one route the caller
// vouched for, and says nothing of the host's other writes. Nor is a
// Postato platform error, whose code is the social network's, never the
// host's (see decide).
func honorsKeys(st *attemptState, resp *http.Response, drawn, replay bool) bool {
	if resp != nil && replay {
		if _, ok := resp.Header["Idempotent-Replayed"]; ok {
			return true // "false" too: the host speaks of its keys
		}
	}
	e := st.apiErr
	if e == nil || st.platform {
		return false
	}
	if e.Dialect == "aidelly" {
		return true
	}
	c := strings.ToLower(e.Code)
	if !drawn || !strings.Contains(c, "idempoten") || refusesKeys(c) {
		return false
	}
	// A 5xx that speaks of idempotency is the host failing, not its
	// word on keys, unless it says that it holds the key (a conflict):
	// a key store down (idempotency_store_unavailable) may have let the
	// write be processed without recording its key.
	return e.StatusCode < 500 || holdsKey(c)
}

// holdsKey reports whether code, in lower case, says that the host holds
// the request's key: a conflict, a key in use or in progress, reused, or
// sent with another payload.
func holdsKey(code string) bool {
	return codeSays(code, "conflict", "inuse", "inprogress", "reuse", "mismatch", "replay")
}

// ignoresKeys tells from ok, the success an attempt of a keyed write got
// (its body read whole or not; nil for none), and st, the attempt's state,
// that the host does not deduplicate writes by key: a success that is no
// replay (no Idempotent-Replayed header) when an earlier attempt of the
// same write, under the same key, got a success too (processed), which a
// host that deduplicates would have replayed: two creates for one key; a
// code that speaks of idempotency and says that keys are not taken (see
// refusesKeys); or, answered to a request that carried a key (keyed), one
// that says that the key is missing or required (see missesKey): the host
// did not read the key sent (it reads another header, or a proxy on the
// way dropped it), and so dedupes nothing by it.
func ignoresKeys(st *attemptState, ok *http.Response, processed, keyed bool) bool {
	if processed && created(ok) {
		return true
	}
	if st.apiErr == nil {
		return false
	}
	c := strings.ToLower(st.apiErr.Code)
	if keyed && missesKey(st.apiErr, c) {
		return true
	}
	return strings.Contains(c, "idempoten") && refusesKeys(c)
}

// missesKey reports whether e, whose code in lower case is code, says that
// the request carried no idempotency key: its code speaks of idempotency
// and says that the key is missing or required, or, a 400 or 428 whose
// code says nothing of a key the host holds (the IETF Idempotency-Key
// draft names all its problems with one type, ".../idempotency"), one of
// its message's sentences does (see saysKeyRequired).
func missesKey(e *APIError, code string) bool {
	if strings.Contains(code, "idempoten") && codeSays(code, "missing", "required") {
		return true
	}
	return (e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusPreconditionRequired) &&
		!holdsKey(code) && saysKeyRequired(strings.ToLower(e.Message))
}

// created reports whether resp (nil for none) is a success that is no
// replay (no Idempotent-Replayed header, or one that says "false", as a
// host that sends it on every answer does): the server processed the
// write it answers.
func created(resp *http.Response) bool {
	if resp == nil || resp.StatusCode/100 != 2 {
		return false
	}
	v, replayed := resp.Header["Idempotent-Replayed"]
	return !replayed || len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "false")
}

// refusesKeys reports whether code, in lower case, says that the host does
// not take idempotency keys (idempotency_not_supported,
// IdempotencyKeyUnsupported, idempotency-key-not-allowed,
// idempotency_not_implemented, …) or that a
// request is not idempotent (request_not_idempotent,
// NON_IDEMPOTENT_OPERATION): such an
// answer speaks of idempotency too, yet its host does not deduplicate by
// key, and taking it for one that does would have its writes resent.
func refusesKeys(code string) bool {
	return codeSays(code, "notsupported", "unsupported", "notimplemented", "notallowed", "notaccepted", "notpermitted", "forbidden", "disabled", "notenabled", "ignored", "notidempoten", "nonidempoten")
}

// codeSays reports whether code, in lower case, holds one of words once
// its separators ('_', '-', '.', ' ') are removed.
func codeSays(code string, words ...string) bool {
	c := strings.NewReplacer("_", "", "-", "", ".", "", " ", "").Replace(code)
	for _, w := range words {
		if strings.Contains(c, w) {
			return true
		}
	}
	return false
}

// writeTrace tells, for a write whose resend needs proof, whether an
// attempt was written: it follows net/http's client trace, and so proves
// "never written" only for a base built on net/http's Transport. A base
// that reports nothing proves nothing. Its counts are cleared for each
// attempt, which may reuse the trace of an earlier one (see
// attemptState.writeTrace): net/http calls GetConn and GotConn only within
// RoundTrip, on its caller's goroutine (its write loop, which may outlive
// the attempt, reports other events), so no event of one attempt counts
// for another.
//
// The proof is that net/http looked for a connection and never got one,
// under a base that is net/http's Transport itself (see neverWritten):
// once it got one, the request may be written even after RoundTrip
// returned. HTTP/2 writes a request's headers on a goroutine of its own,
// which RoundTrip does not wait for when the attempt's context ends: a
// write stalled on a full connection goes out later, and WroteHeaders,
// which HTTP/2 reports only once the write returned, proves nothing. Nor
// does it over HTTP/1, whose WroteHeaders and WroteRequest come once the
// request is in the connection's buffer, before it is flushed: a flush
// that fails with nothing written follows them.
//
// One proof holds after a connection (see redialed): that net/http's
// HTTP/1 Transport found a reused connection dead with nothing written on
// it (the server closed it idle) and looked for another on its own.
type writeTrace struct {
	getConns atomic.Int32 // the base asked net/http for a connection
	gotConns atomic.Int32 // it got one: the request may reach the server
	// unlikeH1 says that a connection got was new, or TLS under a
	// protocol other than HTTP/1 (ALPN h2): net/http's HTTP/1 Transport
	// looks for another after neither (see redialed).
	unlikeH1 atomic.Bool
	// plain says that a connection got was not TLS: HTTP/1, unless the
	// base speaks HTTP/2 without it (see redialed).
	plain atomic.Bool
	// keyed says that the attempt carried a key where net/http's
	// Transport sees it (a write resent on the host's word): net/http
	// then resends on its own a request it wrote on a reused connection
	// that died (see redialed). Set by the call before each attempt.
	keyed bool
	trace httptrace.ClientTrace
}

// arm sets w's hooks: two closures, which net/http passes nothing that
// would tell which attempt an event is of; w is armed once and then reused
// (see attemptState.writeTrace), so that they are made once.
func (w *writeTrace) arm() {
	w.trace.GetConn = func(string) { w.getConns.Add(1) }
	w.trace.GotConn = w.gotConn
}

// clear readies w for another attempt.
func (w *writeTrace) clear() {
	w.getConns.Store(0)
	w.gotConns.Store(0)
	w.unlikeH1.Store(false)
	w.plain.Store(false)
}

// gotConn counts a connection net/http got for the attempt, and notes
// what it tells of its protocol (see redialed).
func (w *writeTrace) gotConn(info httptrace.GotConnInfo) {
	w.gotConns.Add(1)
	tc, isTLS := info.Conn.(*tls.Conn)
	switch {
	case !info.Reused:
		w.unlikeH1.Store(true)
	case isTLS: // its handshake done: net/http reports it once ready
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			w.unlikeH1.Store(true)
		}
	default:
		w.plain.Store(true)
	}
}

// gotConnection reports whether net/http got a connection for the attempt
// w traces (nil for none: false): its request may have been written on it.
func (w *writeTrace) gotConnection() bool {
	return w != nil && w.gotConns.Load() > 0
}

// oneConnection reports whether net/http's Transport, base itself, got one
// connection for the attempt: HTTP/2 reports each connection it sends a
// stream on, its own resends' too, so the request went out on one stream
// at most.
func (w *writeTrace) oneConnection(base http.RoundTripper) bool {
	if _, ok := base.(*http.Transport); !ok {
		return false
	}
	return w != nil && w.gotConns.Load() == 1
}

// neverWritten reports whether the attempt, sent through base, provably
// wrote no byte of its request: net/http looked for a connection and never
// got one, and base is net/http's Transport itself, whose RoundTrip, once
// it returned, writes the request on no connection it gets later. Any
// other base (a middleware that gives up on an attempt it leaves running,
// its request's context still live) may return while net/http still looks
// for one, and the request be written after: that proves nothing.
func (w *writeTrace) neverWritten(base http.RoundTripper) bool {
	if _, ok := base.(*http.Transport); !ok {
		return false
	}
	return w != nil && w.getConns.Load() > 0 && w.gotConns.Load() == 0
}

// redialed reports whether the trace has the shape of net/http's HTTP/1
// Transport, base itself, resending on its own a request that wrote
// nothing: each connection net/http got for the attempt was a reused one,
// and HTTP/1 (TLS under ALPN http/1.1 or none; not TLS, while base speaks
// no HTTP/2 without it), and its last look for one, which got none,
// followed them. For a request it does not take for replayable (a write
// to a host not known to honor keys carries no key it sees: see
// keyedHeader), net/http looks for another connection after a reused one
// only when nothing was written on it (transport.go, shouldRetryRequest:
// nothingWrittenError); the attempt's error, when it proves that its
// request never left, is then that last look's. A write that carried a
// key net/http sees (keyed) proves nothing so: net/http takes it for
// replayable, and resends it after writing it too. HTTP/2, which looks anew
// too after it resent on its own a request it wrote (one reset with
// PROTOCOL_ERROR), got a connection this rules out. Any other base (a
// middleware over an http.Transport, which may resend what it wrote)
// proves nothing. Nor can it be told from a RoundTripper registered on base with
// RegisterProtocol that resends what it wrote over an HTTP/1 Transport
// of its own: net/http shows no one what was registered (the README says
// so).
func (w *writeTrace) redialed(base http.RoundTripper) bool {
	tr, ok := base.(*http.Transport)
	if !ok || w == nil || w.keyed || w.unlikeH1.Load() {
		return false
	}
	if w.plain.Load() && tr.Protocols != nil && tr.Protocols.UnencryptedHTTP2() {
		return false
	}
	got := w.gotConns.Load()
	return got > 0 && w.getConns.Load() == got+1
}
