package redact

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// MinSecret is the length, in bytes, below which a credential's value is
// not looked for in a server's text: a shorter one would match words that
// are not it.
const MinSecret = 8

// Echoes returns s, a server's text (an error envelope's message, its code,
// a request id), with what would let a reader of a log act as the caller
// replaced by Placeholder:
//
//   - each credential of req, of MinSecret bytes or more, that s repeats: a
//     server that answers "invalid api key sk_live_…" or "token ghp_…
//     expired" echoes what the caller sent, in the case of its letters or
//     in another ("INVALID KEY SK_LIVE_…"). The credentials are the user
//     information of req's URL (that an opaque URL holds, and a user name
//     url.Parse read as its scheme, too: see SchemeIsUser), the
//     credentials its path holds, an opaque URL's too (see Path:
//     a server's "no route for /bot123:…/sendMessage" echoes a bot
//     token), the values of its query parameters and headers whose names
//     say they carry one (see SecretName), the token of an Authorization
//     or Proxy-Authorization header, the user name and password that a
//     Basic one encodes, and the signature of one that holds a name and a
//     signature ("SharedKey <account>:<signature>") (of the path's
//     credentials, its query's and a Cookie's pairs, the first
//     maxCredentialEchoes of each: a request that follows a redirect has
//     the URL a server wrote). A header's value is looked for as
//     net/http sends it, without the spaces and tabs around it;
//   - the credentials, as above, of the requests that led to req by
//     redirects (see Redirected). The caller's, those of the first
//     request and the headers of req, are looked for first and always;
//     those of the URLs a server wrote, req's (when it follows a
//     redirect) and the hops' between, within maxServerEchoes scans of s.
//     The credentials found are replaced together, each run of the text
//     they cover by one Placeholder: one within another or overlapping it
//     (two cookies, a Basic user name and its password) does not break
//     the other up;
//   - a JSON Web Token (three base64url parts, the first "eyJ…"), and the
//     word that follows "Bearer " when it looks like a token (see
//     tokenLike: "Bearer sk_live_…", not "Bearer authentication"),
//     whoever's they are, where they stand and where the text repeats
//     them, together with the credentials of req found: a token that is
//     a part of the caller's credential ("Bearer sk_live_4eC3", and the
//     whole key elsewhere, a key "AKIA1234:eyJ…" that holds a JWT), or
//     overlaps it, does not break it up, nor the caller's a longer token.
//     Each credential is looked for in s as the server wrote it.
//
// It returns s itself, without an allocation, when there is nothing to
// replace; req may be nil.
func Echoes(s string, req *http.Request) string {
	if len(s) < MinSecret {
		return s
	}
	e := echoer{s: s, left: maxServerEchoes}
	for _, w := range bearerTokens(s, &e.covered) {
		e.replace(w) // not looked for when "", or counted
	}
	if req != nil {
		e.chain(req, true)
	}
	e.flush()
	return e.s
}

// Redirected returns s with the credentials of the requests that led to
// req by redirects, those Echoes finds of a request's own, replaced by
// Placeholder: http.Client follows a redirect with a new request, whose
// Response, the redirect, names the request it answered; a server may
// build the URL it redirects to ("/v1/keys/<key>/usage"), or the text of
// a later answer, from a credential that request carried and the new one
// does not (a query's api_key). It looks at all the credentials of the
// first request, the caller's, however many hops back (see
// maxRedirectWalk), and at those of the maxRedirectEchoes requests before
// req at most (http.Client follows 10 redirects), whose URLs the server
// wrote, within maxServerEchoes scans of s; it returns s itself, without
// an allocation, when there is nothing to replace; req may be nil.
func Redirected(s string, req *http.Request) string {
	if len(s) < MinSecret || req == nil {
		return s
	}
	e := echoer{s: s, left: maxServerEchoes}
	e.chain(req, false)
	e.flush()
	return e.s
}

// RedirectedCut returns s, a part of req's URL made safe to record (its
// path after Path, an opaque URL after Opaque), with the credentials of the
// requests that led to req by redirects REDACTED (see Redirected), cut to
// at most n bytes (see Truncate). For a longer s, they are looked for as
// EchoesCut looks for its own (see cutSearched): a credential across the
// cut, which a server that redirects may place there, would keep its
// first bytes, which no longer match it. It returns s itself when it is
// no longer than n and holds nothing to replace.
func RedirectedCut(s string, req *http.Request, n int) string {
	return cutSearched(s, req, n, Redirected)
}

// EchoesCut returns s, a server's text, with what Echoes finds in it
// REDACTED, cut to at most n bytes (see Truncate). For a longer s, the
// credentials are looked for in a bounded part of it (see cutSearched):
// looking for each credential of req, and of the requests that led to it
// by redirects, in the whole of a text of megabytes (a header net/http
// reads up to its 10 MB limit, a status line it quotes in its error)
// would scan it once per credential, hundreds of times. It returns s
// itself when it is no longer than n and holds nothing to replace.
func EchoesCut(s string, req *http.Request, n int) string {
	return cutSearched(s, req, n, Echoes)
}

// cutSearched returns s with what search finds in it (Echoes's or
// Redirected's credentials of req) REDACTED, cut to at most n bytes (see
// Truncate). For an s longer than 2(n+maxEchoed) bytes, search looks at
// those first bytes only; of what the replacements leave of them, the
// last maxEchoed bytes, where a credential across the cut keeps its first
// bytes, are dropped: the n bytes kept (fewer when the replacements shrank
// the text by more than n+maxEchoed) hold none of the credentials of
// maxEchoed bytes or fewer that search finds in the whole text.
func cutSearched(s string, req *http.Request, n int, search func(string, *http.Request) string) string {
	if len(s) <= n {
		return search(s, req)
	}
	w := 2 * (n + maxEchoed)
	if len(s) <= w {
		return Truncate(search(s, req), n)
	}
	r := search(Truncate(s, w), req)
	return Truncate(r, max(0, min(n, len(r)-maxEchoed)))
}

// maxEchoed is the longest credential cutSearched finds where it cuts a
// server's text: servers refuse a request line or a header field longer
// (nginx's and Apache's limits are 8 KiB), and a credential they never
// read is not one they echo.
const maxEchoed = 16 << 10

// maxRedirectEchoes bounds the requests before a redirected one whose
// credentials Redirected looks for: a chain built by hand may be longer
// than http.Client's, or loop.
const maxRedirectEchoes = 16

// maxRedirectWalk bounds the requests before a redirected one that chain
// walks back to find the first, the caller's, whose credentials are all
// looked for whatever the length of the chain (a custom CheckRedirect may
// follow more than maxRedirectEchoes redirects): a chain built by hand
// that loops has no first, and one of thousands of hops (a CheckRedirect
// that allows any number, a server that redirects without end) is not
// walked whole for each of its hops. Past it, the request that far back
// is taken for the first.
const maxRedirectWalk = 1 << 10

// maxServerEchoes bounds the scans of a server's text for the credentials
// that URLs a server wrote hold: those of the request answered when it
// follows a redirect, and of the requests between the caller's and it.
// Each hop's path may hold maxCredentialEchoes bot tokens, two scans
// each ("/bot1:tok…/bot2:tok…", the token alone too): looked for in all
// of http.Client's ten hops, they scanned a message of 64 KiB some 350
// times on each error response, where a plain client scans nothing. The
// caller's own credentials, those of the first request and the headers of
// the one answered, are looked for before them and always.
const maxServerEchoes = 32

// echoer replaces in s, a server's text, the credentials of requests by
// Placeholder, one scan of s for each to find it (see cover.add):
// unmetered for the caller's own and the tokens s names (see
// bearerTokens), counted against left for those of URLs a server wrote
// (see maxServerEchoes). The credentials found are replaced together,
// with the tokens that bearerTokens found where they stand (see flush).
type echoer struct {
	s       string
	metered bool  // whether the scans are counted against left
	left    int   // the scans left for the credentials of URLs a server wrote
	covered cover // what flush replaces of s: the tokens bearerTokens found, and every occurrence of the credentials found
}

// replace covers the occurrences of v, a credential, in e.s (see
// cover.add), when the budget allows its scan. Nothing of e.s is replaced
// before flush: each credential is looked for in the text as the server
// wrote it, so that one within another or overlapping it (two cookies, a
// Basic authorization's user name and its password, "sk_…" and
// "sk_…_2"), replaced first, does not leave the rest of the other in the
// text, no longer found.
func (e *echoer) replace(v string) {
	if len(v) < MinSecret || v == Placeholder || len(e.s) < len(v) {
		return
	}
	if e.metered {
		if e.left <= 0 {
			return
		}
		e.left--
	}
	e.covered.add(e.s, v)
}

// flush replaces what e.covered covers of e.s (the tokens bearerTokens
// found, the occurrences of the credentials found) by Placeholder: each
// run of the text they cover, where they stand whole, one within another
// or overlapping ("tok_AAAA_BBBB" and "BBBB_CCCC…" in
// "tok_AAAA_BBBB_CCCC…", a JWT and a key that holds it), by one (see
// cover). Replaced one after the other, the one replaced second would no
// longer be whole in the text, and its rest would stay there.
func (e *echoer) flush() {
	e.s = e.covered.replace(e.s)
	e.covered = cover{}
}

// cover is the part of a server's text that credentials found in it cover
// (see add), which replace writes as Placeholder: two bits for each byte,
// whether a credential covers it, and whether the one that does covers
// the byte before it too. Its zero value covers nothing, and costs no
// allocation until a credential is found.
type cover struct {
	covered, joined []uint64
}

// add covers the occurrences of v, a credential, in s, in any case of its
// ASCII letters, when v is MinSecret bytes or more (one search for them
// all, see foldSearch), and the bytes of the characters each begins or
// ends within (see span). An occurrence that begins within the one before
// ("k3y…k3y…k", a key that begins with its last bytes, echoed twice
// sharing them) is covered too: v repeats itself every q bytes, the
// distance between the two, and so may the text, an occurrence each q
// bytes that its last q verify. The search goes on from the byte after
// the last of them: the distance to the next occurrence, when it overlaps
// too, differs, and the two distances add up to more than len(v) (were
// they no more, v would repeat itself at the distance that divides both,
// by Fine and Wilf's theorem, and so would the text between the
// occurrences, which would have one more between them); so the
// occurrences searched for, each a verification of len(v) bytes, are no
// more than two for each len(v) bytes of s, whatever s holds.
func (c *cover) add(s, v string) {
	n := len(v)
	if n < MinSecret || v == Placeholder {
		return
	}
	f := newFoldSearch(s, v)
	end := 0 // the end of the occurrence before
	for i := f.from(0); i >= 0; i = f.from(i + 1) {
		if i < end {
			c.span(s, end-1, i+n) // s[:end] is covered
			for q := i - (end - n); i+n+q <= len(s) && equalFoldASCII(s[i+n:i+n+q], v[n-q:]); i += q {
				c.span(s, i+n-1, i+n+q)
			}
		} else {
			c.span(s, i, i+n)
		}
		end = i + n
	}
}

// span covers s[i:j], not empty, a part of s that holds a credential, and
// the bytes of the characters it begins or ends within (a credential's
// raw bytes, a Basic one's decoded, need not be UTF-8): valid UTF-8 stays
// valid. The next occurrence of a credential may begin within the
// character that one ends within ("\xa9…\xc3" twice in "é…é…é"): it is
// looked for from j, and the two make one run.
func (c *cover) span(s string, i, j int) {
	for k := 1; k < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); k++ {
		i--
	}
	for k := 1; k < utf8.UTFMax && j < len(s) && !utf8.RuneStart(s[j]); k++ {
		j++
	}
	if c.covered == nil {
		n := (len(s) + 63) / 64
		bits := make([]uint64, 2*n)
		c.covered, c.joined = bits[:n], bits[n:]
	}
	c.covered[i/64] |= 1 << (i % 64)
	for k := i + 1; k < j; k++ {
		c.covered[k/64] |= 1 << (k % 64)
		c.joined[k/64] |= 1 << (k % 64)
	}
}

// replace returns s, the text c covers the parts of, with each run of the
// bytes c covers replaced by Placeholder; s itself, without an
// allocation, when c covers none.
func (c *cover) replace(s string) string {
	if c.covered == nil {
		return s
	}
	var b strings.Builder
	b.Grow(len(s)) // no longer: a run is no shorter than a credential, nor one than Placeholder
	done := 0      // s[:done] is written
	for i := 0; i < len(s); i++ {
		if c.covered[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		j := i + 1
		for j < len(s) && c.joined[j/64]&(1<<(j%64)) != 0 {
			j++
		}
		b.WriteString(s[done:i])
		b.WriteString(Placeholder)
		done, i = j, j-1
	}
	b.WriteString(s[done:])
	return b.String()
}

// chain replaces the credentials of req, when own (see Echoes), and of
// the requests that led to it by redirects (see Redirected): the first,
// however many hops back (see maxRedirectWalk), and the maxRedirectEchoes
// before req at most. The caller's credentials come first and are always
// looked for: all those of the first request, the caller's, and the
// headers of req, which http.Client copies from it; then, within the
// budget, those of the URLs a server wrote, req's (when it follows a
// redirect) and the hops' between, nearest first, with their headers.
func (e *echoer) chain(req *http.Request, own bool) {
	var hops [maxRedirectEchoes]*http.Request // before req, nearest first
	n, first := 0, req
	for depth := 0; depth < maxRedirectWalk && first.Response != nil && first.Response.Request != nil; depth++ {
		first = first.Response.Request
		if n < len(hops) {
			hops[n] = first
			n++
		}
	}
	if n == 0 {
		if own {
			e.request(req)
		}
		return
	}
	if hops[n-1] == first {
		n-- // looked for as the first
	}
	e.request(first)
	if own {
		e.headers(req.Header)
	}
	e.metered = true
	if own && req.URL != nil {
		// The query of req's URL before its path: a request cloned
		// from one that followed a redirect (Request.Clone keeps its
		// Response: a poll, the next page) carries the query its
		// caller set on the URL the server wrote, whose path would
		// spend the budget first ("/bot1:tok…/bot2:tok…").
		e.query(req.URL.RawQuery)
		e.beforeQuery(req.URL)
	}
	for _, r := range hops[:n] {
		e.request(r)
	}
}

// request replaces the credentials of req, req's own (see Echoes).
func (e *echoer) request(req *http.Request) {
	e.url(req.URL)
	e.headers(req.Header)
}

// url replaces the credentials of u, a request's URL (see Echoes).
func (e *echoer) url(u *url.URL) {
	if u != nil {
		e.beforeQuery(u)
		e.query(u.RawQuery)
	}
}

// beforeQuery replaces the credentials of u, a request's URL, all but those
// of its RawQuery (see url).
func (e *echoer) beforeQuery(u *url.URL) {
	if u.RawPath != "" {
		e.path(u.RawPath) // as escaped, before the parts it shares with Path
	}
	e.path(u.Path)
	if u.User != nil {
		e.replace(u.User.Username())
		p, _ := u.User.Password()
		e.replace(p)
	}
	if u.Opaque != "" {
		// User information url.Parse left in an opaque URL
		// ("https:user:token@host", "api:KEY@host"), and a user
		// name it read as the scheme ("KEY:@host"), which net/http
		// quotes: `unsupported protocol scheme "key"`.
		if at := userinfoEnd(strings.TrimPrefix(u.Opaque, "//")); at > 0 {
			user, pass, _ := strings.Cut(strings.TrimPrefix(u.Opaque, "//")[:at-1], ":")
			e.replace(user)
			e.replace(pass)
		}
		if SchemeIsUser(u.Scheme, u.Opaque) {
			e.replace(u.Scheme)
		}
		// The path an opaque URL holds, which net/http sends on
		// the request line as it is ("/bot123:…/getMe", set so to
		// send a path verbatim): its credentials, as a Path's, as
		// escaped and as the server decodes them, as RawPath's and
		// Path's ("/bot123%3A…/getMe" echoed "bot123:…").
		op := opaquePath(u.Opaque)
		e.path(op)
		if p, err := url.PathUnescape(op); err == nil && p != op {
			e.path(p)
		}
		if _, q, ok := strings.Cut(op, "?"); ok {
			// Its query is the one the server reads, as
			// RawQuery's: an OAuth code, a '+' for a space.
			e.query(q)
		}
	}
}

// headers replaces the credentials of h, a request's header (see Echoes).
func (e *echoer) headers(h http.Header) {
	for name, vs := range h {
		if !SecretName(name) {
			continue
		}
		for _, v := range vs {
			v = strings.TrimSpace(v) // as net/http sends it
			// "Bearer <token>", "Basic <base64>"
			scheme, tok, ok := strings.Cut(v, " ")
			tok = strings.TrimSpace(tok)
			if !ok || len(tok) < MinSecret || !isAuthorization(name) {
				// An authorization's scheme is no secret: a server's
				// "Bearer <token>" keeps its word when the token is
				// looked for.
				e.replace(v)
			}
			if ok {
				e.replace(tok)
				if strings.EqualFold(scheme, "Basic") {
					e.basic(tok)
				} else if _, sig, ok := strings.Cut(tok, ":"); ok && isAuthorization(name) && !strings.ContainsAny(tok, " \t,") {
					// "SharedKey <account>:<signature>", "AWS <key
					// id>:<signature>": a server that checks it
					// echoes the signature alone.
					e.replace(sig)
				}
			}
			for rest, pairs := v, 0; rest != "" && pairs < maxCredentialEchoes; pairs++ { // a Cookie's name=value pairs
				var c string
				c, rest, _ = strings.Cut(rest, ";")
				if _, cv, ok := strings.Cut(c, "="); ok {
					// As sent, as the other headers' values are looked
					// for, then as a quoted cookie-value (RFC 6265) is
					// echoed, without its quotes.
					cv = strings.TrimSpace(cv)
					e.replace(cv)
					e.replace(unquote(cv))
				}
			}
			if strings.IndexByte(v, ',') >= 0 {
				e.authParams(v)
			}
		}
	}
}

// isAuthorization reports whether name, a header's, is Authorization or
// Proxy-Authorization, whose value is a scheme, then the credentials.
func isAuthorization(name string) bool {
	return strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Proxy-Authorization")
}

// query replaces the credentials of query, a URL's raw query (RawQuery,
// or one written in an opaque URL):
// the values of the parameters whose name says they carry one (see
// SecretName), as sent and as the server decodes them, and an OAuth
// authorization code; the first maxCredentialEchoes only.
func (e *echoer) query(query string) {
	q := query
	oauth := 0 // oauth: 1 for OAuth's query, -1 for another, 0 not yet known
	for looked := 0; q != "" && looked < maxCredentialEchoes; {
		// A ';' separates parameters too for some servers (Rack
		// before 3, Python's parse_qs before 3.9.2): the server
		// reads the name after it, and may echo its value.
		kv := q
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		k, v, _ := strings.Cut(kv, "=")
		if len(v) < MinSecret {
			continue
		}
		if strings.IndexByte(k, '%') >= 0 {
			// An escaped name (%6Bey), as the server reads it.
			if dk, err := url.QueryUnescape(k); err == nil {
				k = dk
			}
		}
		if k == "code" && oauth == 0 {
			oauth = -1
			if isOAuthQuery(query) {
				oauth = 1
			}
		}
		if !SecretName(k) && (k != "code" || oauth < 0) {
			continue
		}
		looked++
		e.replace(v)
		if strings.ContainsAny(v, "%+") {
			if dv, err := url.QueryUnescape(v); err == nil {
				e.replace(dv)
			}
		}
	}
}

// opaquePath returns the path of opaque, the Opaque of a URL: what
// follows the authority of "//host/path" or "host/path" (where Opaque
// finds the path), up to a '#' written in it; "" for none. A query written
// in it ("//host/v1?api_key=…", which net/http sends on the request line
// as it is) is kept, as one written into a Path is (see pathEchoes): the
// authority ends at its '?', and its credentials are found too.
func opaquePath(opaque string) string {
	if i := strings.IndexByte(opaque, '#'); i >= 0 {
		opaque = opaque[:i]
	}
	rest := strings.TrimPrefix(opaque, "//")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		return rest[i:]
	}
	return ""
}

// unquote returns v without the double quotes around it, if it has them.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// authParams replaces the values of the parameters of v, a
// header's value of the form `scheme name="value", name=value, …` (the
// auth-params of RFC 9110 section 11.2: OAuth 1.0a's oauth_token and
// oauth_signature), whose names say they carry a credential (see
// SecretName), as a server that echoes one writes it: without its
// quotes. It looks at the first
// maxCredentialEchoes parameters.
func (e *echoer) authParams(v string) {
	for rest, params := v, 0; rest != "" && params < maxCredentialEchoes; params++ {
		var p string
		p, rest, _ = strings.Cut(rest, ",")
		name, pv, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		if i := strings.LastIndexAny(name, " \t"); i >= 0 { // the first parameter follows the scheme
			name = name[i+1:]
		}
		if SecretName(name) {
			e.replace(unquote(strings.TrimSpace(pv)))
		}
	}
}

// isOAuthQuery reports whether q, a URL's query, is OAuth's, whose code
// parameter is an authorization code (RFC 6749), a credential: that of an
// authorization response sent on to a redirect URI (code and state) or of
// a token request (grant_type, redirect_uri, code_verifier, client_id).
// Elsewhere a code names a coupon's, a country's, an error's.
func isOAuthQuery(q string) bool {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "state", "redirect_uri", "grant_type", "code_verifier", "client_id":
			return true
		}
	}
	return false
}

// maxCredentialEchoes bounds how many credentials Echoes looks for in each
// source of a request that may hold any number of them: the segments of
// its path, its query parameters, the pairs of a Cookie header. A real
// request holds one or two; one that http.Client made to follow a
// redirect has the URL the server wrote (thousands of "/bot1:tok…"), and
// a cookie jar fills Cookie with what the server set: looking for each of
// them would copy a server's text once per credential.
const maxCredentialEchoes = 16

// path replaces each credential of path, a URL's path (see Path: a
// webhook's token, a bot token, a session id in a segment's parameter),
// and the token of a bot token ("bot123:token") alone too; the first
// maxCredentialEchoes credentials only. It allocates nothing when there is
// nothing to replace.
func (e *echoer) path(path string) {
	if q := strings.IndexByte(path, '?'); q >= 0 {
		// A query written into the path (see Path).
		n := 0
		for i, j := querySecret(path, q); i >= 0 && n < maxCredentialEchoes; i, j = querySecret(path, j) {
			e.replace(path[i:j])
			n++
		}
	}
	if !maySecret(path) {
		return
	}
	// The segments before the current one that isSecret looks at: four.
	var win [5]string
	n, looked := 0, 0
	for rest := path; looked < maxCredentialEchoes; {
		seg, tail, more := strings.Cut(rest, "/")
		if n == len(win) {
			copy(win[:], win[1:])
			n--
		}
		win[n] = seg
		n++
		if seg != Placeholder && isSecret(win[:n], n-1) {
			looked++
			e.replace(seg)
			if strings.HasPrefix(seg, "bot") {
				if _, tok, ok := strings.Cut(seg, ":"); ok {
					e.replace(tok)
				}
			}
		} else {
			for i, j := secretParam(seg, 0); i >= 0 && looked < maxCredentialEchoes; i, j = secretParam(seg, j) {
				looked++
				e.replace(seg[i:j])
			}
		}
		if !more {
			return
		}
		rest = tail
	}
}

// maxBasic bounds the decoded Basic credentials basic looks for:
// past it, a header value is no credential a server would echo whole.
const maxBasic = 16 << 10

// basic replaces the credentials of tok, the base64 of a Basic
// authorization: "user:password" as a whole, then each of
// its parts, the user name included (APIs such as Stripe's take a key as
// the user name). A tok without its padding, or in base64url, which
// lenient servers decode all the same (Java's Base64 decoder, Node's
// Buffer), is read so too. A tok that is not base64 replaces nothing.
func (e *echoer) basic(tok string) {
	var stack [256]byte
	buf := stack[:]
	if n := base64.RawStdEncoding.DecodedLen(len(tok)); n > len(buf) { // no less than StdEncoding's
		// A long credential (a token of 192 characters after an e-mail
		// address, a JWT taken as a password): decoded on the heap, up
		// to maxBasic.
		if n > maxBasic {
			return
		}
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf, []byte(tok))
	if err != nil {
		if n, err = decodeLenient(buf, tok); err != nil {
			return
		}
	}
	cred := buf[:n]
	user, pass, _ := bytes.Cut(cred, []byte{':'}) // without a colon, user is cred
	for _, v := range [...][]byte{cred, user, pass} {
		// Looked for before a string is made of it: the common text
		// echoes none, and costs no allocation.
		if len(v) < MinSecret || len(e.s) < len(v) {
			continue
		}
		if e.metered {
			if e.left <= 0 {
				return
			}
			e.left--
		}
		if indexFold(e.s, string(v)) >= 0 {
			e.covered.add(e.s, string(v))
		}
	}
}

// decodeLenient decodes tok, the base64 of a Basic authorization that
// base64.StdEncoding refuses, into buf, as lenient servers do: without its
// padding, in either alphabet (base64url's '-' and '_').
func decodeLenient(buf []byte, tok string) (int, error) {
	raw := []byte(strings.TrimRight(tok, "="))
	n, err := base64.RawStdEncoding.Decode(buf, raw)
	if err != nil {
		n, err = base64.RawURLEncoding.Decode(buf, raw)
	}
	return n, err
}

// SecretName reports whether a header or a query parameter named name
// carries a credential, as its name says: it speaks of authorization, a
// key, a token, a JSON Web Token, a secret, a signature, a password, a
// cookie, a session or a credential (Authorization, X-Api-Key, api_key,
// access_token, X-JWT-Assertion, sig, API-Sign, X-Amz-Signature,
// JSESSIONID, PHPSESSID, passcode, pwd, …), unless the word
// that does is a common one that does not mean it (author, keyword,
// assignee, design, passenger, credit: see plainWords). The words of a
// name are split at punctuation and where a lower-case letter meets an
// upper-case one. An idempotency key is not one: the Transport records
// it.
func SecretName(name string) bool {
	if containsFold(name, "idempotency") {
		return false
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) {
			c := name[i]
			if isAlnum(c) && !(i > start && isLower(name[i-1]) && 'A' <= c && c <= 'Z') {
				continue
			}
		}
		if i > start && secretWord(name[start:i]) {
			return true
		}
		start = i
		if i < len(name) && !isAlnum(name[i]) {
			start = i + 1
		}
	}
	return false
}

// secretWord reports whether w, a word of a name, speaks of a credential
// (see SecretName).
func secretWord(w string) bool {
	for _, s := range [...]string{"auth", "key", "token", "secret", "sig", "pass", "pwd", "jwt", "cookie", "session", "sessid", "cred"} {
		if containsFold(w, s) {
			for _, p := range plainWords {
				if strings.EqualFold(w, p) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// plainWords are common words that contain one of a credential's (auth,
// key, sig, pass, cred) and name parameters that carry none: a server's
// message that repeats their value ("no author named …") keeps it.
var plainWords = [...]string{
	"author", "authors", "authored", "authority", "authenticate",
	"keyword", "keywords", "keyboard", "monkey", "turkey", "hockey", "donkey", "whiskey",
	"assign", "assigned", "assignee", "assignees", "assignment", "assignments", "design", "designer", "designs",
	"signal", "signals", "insight", "insights", "consignee", "consignment",
	"passenger", "passengers", "passage", "compass",
	"credit", "credits", "accredited", "incredible",
}

func isAlnum(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// containsFold reports whether s contains sub, in ASCII lower case, under
// Unicode case folding, without an allocation.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// replaceSecret returns s with every occurrence of v, in any case of its
// ASCII letters, replaced by Placeholder, when v is MinSecret bytes or
// more (see cover). An occurrence that begins or ends within a character
// of s takes that character with it: valid UTF-8 stays valid. It
// allocates nothing when s holds none.
func replaceSecret(s, v string) string {
	var c cover
	c.add(s, v)
	return c.replace(s)
}

// indexFold returns the index of the first occurrence of v, not empty, in
// s under ASCII case folding, or -1, without an allocation (see
// foldSearch).
func indexFold(s, v string) int {
	f := newFoldSearch(s, v)
	return f.from(0)
}

// foldSearch finds the occurrences of v, not empty, in s under ASCII case
// folding, from indexes that only move on, without an allocation. It looks
// for v where s has v's first byte in either case, and verifies it there;
// when the bytes verified outgrow those passed (a hostile text of near
// matches), it goes on with a rolling hash of the lower-cased bytes
// (foldRabinKarp). The positions its scans found, and the work done, are
// kept from one search to the next: the work of all of them together is
// linear in s and v whatever s holds.
type foldSearch struct {
	s, v   string
	lo, up byte // v's first byte in lower and in upper case
	// The index of the first lo, and of the first up, at or after the
	// index the scan that found it started from, as far as v may start
	// (len(s)-len(v)+1 for none); -1 before any scan.
	nextLo, nextUp int
	work           int  // the bytes verified
	rolling        bool // whether the searches go on with foldRabinKarp
}

// newFoldSearch returns the search of v, not empty, in s.
func newFoldSearch(s, v string) foldSearch {
	up := v[0]
	if 'a' <= up && up <= 'z' {
		up -= 'a' - 'A'
	}
	return foldSearch{s: s, v: v, lo: lowerASCII(v[0]), up: up, nextLo: -1, nextUp: -1}
}

// from returns the index of the first occurrence of v in s at i or after
// it, or -1. i is no less than that of the search before.
func (f *foldSearch) from(i int) int {
	s, v, n := f.s, f.v, len(f.v)
	last := len(s) - n // the last index v may start at
	if i > last {
		return -1
	}
	if f.rolling {
		if j := foldRabinKarp(s[i:], v); j >= 0 {
			return i + j
		}
		return -1
	}
	for i <= last {
		if f.nextLo < i {
			f.nextLo = indexByteFrom(s[:last+1], f.lo, i)
		}
		if f.nextUp < i {
			f.nextUp = f.nextLo
			if f.up != f.lo {
				f.nextUp = indexByteFrom(s[:last+1], f.up, i)
			}
		}
		if i = min(f.nextLo, f.nextUp); i > last {
			return -1
		}
		k := 1
		for k < n && lowerASCII(s[i+k]) == lowerASCII(v[k]) {
			k++
		}
		if k == n {
			return i
		}
		if f.work += k; f.work > 2*i+64 {
			f.rolling = true
			if j := foldRabinKarp(s[i+1:], v); j >= 0 {
				return i + 1 + j
			}
			return -1
		}
		i++
	}
	return -1
}

// indexByteFrom returns the index of the first c in s at i or after it,
// or len(s).
func indexByteFrom(s string, c byte, i int) int {
	if j := strings.IndexByte(s[i:], c); j >= 0 {
		return i + j
	}
	return len(s)
}

// foldRabinKarp is indexFold by a rolling hash of the lower-cased bytes of
// s and v: linear in their lengths.
func foldRabinKarp(s, v string) int {
	n := len(v)
	if n > len(s) {
		return -1
	}
	const prime = 16777619
	var hv, hs, pow uint32 = 0, 0, 1
	for i := 0; i < n; i++ {
		hv = hv*prime + uint32(lowerASCII(v[i]))
		hs = hs*prime + uint32(lowerASCII(s[i]))
		pow *= prime
	}
	for i := n; ; i++ {
		if hs == hv && equalFoldASCII(s[i-n:i], v) {
			return i - n
		}
		if i == len(s) {
			return -1
		}
		hs = hs*prime + uint32(lowerASCII(s[i])) - pow*uint32(lowerASCII(s[i-n]))
	}
}

// equalFoldASCII reports whether a and b, of one length, are equal under
// ASCII case folding.
func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// lowerASCII returns c in lower case when it is an ASCII letter.
func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// bearerTokens covers in c (see cover.span) the JSON Web Tokens of s (see
// jwtIn), and the word after each "Bearer " (in any case, see
// afterBearer), where they stand, and returns the first maxTokenEchoes
// distinct ones, whose other occurrences Echoes replaces together with
// the caller's credentials (see echoer.flush); "" for none. It leaves s
// as it is: a credential of the caller's that holds a token
// ("AKIA1234:eyJ…") is looked for in it whole. Its work is linear in s:
// a hostile server's message of thousands of distinct tokens is not
// copied once per token.
func bearerTokens(s string, c *cover) [maxTokenEchoes]string {
	var seen [maxTokenEchoes]string
	if !strings.Contains(s, "eyJ") && indexFold(s, "bearer") < 0 {
		return seen
	}
	nseen, prev := 0, ""
	mark := func(start, end int) {
		c.span(s, start, end)
		if tok := s[start:end]; nseen < len(seen) && !slices.Contains(seen[:nseen], tok) {
			seen[nseen] = tok
			nseen++
		}
	}
	for i := 0; i < len(s); {
		for i < len(s) && isTokenEnd(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isTokenEnd(s[j]) {
			j++
		}
		w := s[i:j]
		jwts := false
		for at := i; at < j; {
			k, l := jwtIn(s[at:j])
			if l == 0 {
				break
			}
			mark(at+k, at+l)
			at, jwts = at+l, true
		}
		if !jwts && len(w) >= MinSecret && w != Placeholder && afterBearer(prev) && tokenLike(w) {
			mark(i, j)
		}
		prev, i = w, j
	}
	return seen
}

// maxTokenEchoes is how many distinct tokens bearerTokens looks for
// beyond the words that are tokens: a server's text names one or two.
const maxTokenEchoes = 4

// tokenLike reports whether w, a word that follows "Bearer " in a server's
// text, looks like a token rather than a word of the sentence ("Missing
// Bearer credentials"): it holds a digit, a punctuation mark tokens are
// made of (- _ . ~ + / =), or an upper-case letter past its first.
func tokenLike(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if '0' <= c && c <= '9' || strings.IndexByte("-_.~+/=", c) >= 0 || i > 0 && 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// isTokenEnd reports whether c, a byte of a server's text, ends a token
// in it (a byte of a character past ASCII never does).
func isTokenEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == ',' ||
		c == '(' || c == ')' || c == '<' || c == '>' || c == '`'
}

// afterBearer reports whether prev, the word before another in a server's
// text, is "Bearer" in any case, or ends with it after a character that is
// not a letter or a digit, as in "Authorization:Bearer" or "[Bearer".
func afterBearer(prev string) bool {
	n := len(prev) - len("bearer")
	return n >= 0 && strings.EqualFold(prev[n:], "bearer") && (n == 0 || !isAlnum(prev[n-1]))
}

// jwtIn returns the bounds of the first JSON Web Token (see isJWT) of w, a
// word of a server's text, of MinSecret bytes or more, where a character
// that no token holds sets it apart: the word itself, or a part of it
// after a parameter's name or a bracket ("id_token=eyJ…", "[eyJ…]"), the
// periods that end a sentence after it excluded. It returns 0, 0 when w
// holds none.
func jwtIn(w string) (int, int) {
	for k := 0; k < len(w); {
		i := strings.Index(w[k:], "eyJ")
		if i < 0 {
			break
		}
		k += i
		l := k
		for l < len(w) && isJWTByte(w[l]) {
			l++
		}
		if k == 0 || !isJWTByte(w[k-1]) {
			e := l
			for e > k && w[e-1] == '.' {
				e--
			}
			if e-k >= MinSecret && isJWT(w[k:e]) {
				return k, e
			}
		}
		k = l
	}
	return 0, 0
}

// isJWTByte reports whether c may be part of a JSON Web Token: a
// character of base64url, or the period between its parts.
func isJWTByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.'
}

// isJWT reports whether w has the shape of a JSON Web Token: three
// base64url parts, the first a JSON object's ("eyJ").
func isJWT(w string) bool {
	if !strings.HasPrefix(w, "eyJ") || strings.Count(w, ".") != 2 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return !strings.Contains(w, "..")
}
