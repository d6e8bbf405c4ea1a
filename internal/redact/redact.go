// Package redact removes the secrets that some APIs carry in a URL's path,
// for resilient and its submodules, before a path reaches an error, a log
// record, a span or a rate-limit partition's name.
package redact

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Placeholder replaces a secret path segment.
const Placeholder = "REDACTED"

// Path returns path with each segment that is a credential replaced by
// Placeholder; a path without one is returned as it is, without an
// allocation. The credentials recognised are those that APIs put in a path
// by design, where a leak lets anyone use them:
//
//   - a webhook's or an interaction's token after its numeric id, as
//     Discord's /api/webhooks/{id}/{token} and
//     /api/interactions/{id}/{token}/callback;
//   - a bot token, as Telegram's /bot{123456:ABC…}/sendMessage and
//     /file/bot{token}/…;
//   - the secret of an incoming webhook, as Slack's
//     /services/T…/B…/{secret};
//   - the secret of a Slack response URL (of an interaction or a slash
//     command) or workflow webhook: /actions/T…/{id}/{secret},
//     /commands/T…/{id}/{secret}, /triggers/T…/{id}/{secret},
//     /workflows/T…/A…/{id}/{secret};
//   - the value of a segment's parameter whose name says it carries a
//     credential (see SecretName), as the session id that Java servlet
//     containers write into the URLs they redirect a client without
//     cookies to, /cart;jsessionid={id}: a parameter's name is kept,
//     /cart;jsessionid=REDACTED;
//   - the value of a parameter whose name says it carries a credential
//     in a query written into the path, after a '?' that the path holds
//     as it is (url.URL{Path: "/v1/items?api_key=…"}, which net/http
//     sends escaped, /v1/items%3Fapi_key=…, as a path, and the server
//     reads so): /v1/items?api_key=REDACTED.
//
// A path that does not start with '/' is that of a URL missing its scheme
// ("user:token@api.example.com/v1", as url.Parse reads it): the user
// information of its first segment, the authority the caller meant, is
// dropped; so is the text up to an '@' that the redaction left before the
// first '/' (the value "/" of a credential in an escaped query,
// "a%3Fkey=/&@"), which a second Path would take for user information.
func Path(path string) string {
	if path == "" || path[0] == '/' {
		return redactPath(path)
	}
	r := redactPath(path[userinfoEnd(path):])
	return r[userinfoEnd(r):]
}

// redactPath is Path but for the user information of a path that does not
// start with '/'.
func redactPath(path string) string {
	q := queryStart(path)
	if !maySecret(path[:q]) {
		return queryInPath(path)
	}
	segs := strings.Split(path[:q], "/")
	changed := false
	// From the last segment back: isSecret reads the segments before
	// segs[i] as the path has them, not as REDACTED (a credential that
	// is a marker's word, /webhooks/1/webhooks/2/{token}).
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s != Placeholder && isSecret(segs, i) {
			segs[i] = Placeholder
			changed = true
		} else if r := secretParams(s); r != s {
			segs[i] = r
			changed = true
		}
	}
	if !changed {
		return queryInPath(path)
	}
	return queryInPath(strings.Join(segs, "/") + path[q:])
}

// queryStart returns the index of the query path holds (see queryInPath):
// its first '?', or its first "%3F" before any; len(path) for none. The
// segments' parameters (";jsessionid=…") are looked for before it only: a
// query's ";key=…&…" is the query's, whose values run to the next '&'.
func queryStart(path string) int {
	q := strings.IndexByte(path, '?')
	if q < 0 {
		q = len(path)
	}
	for i := 0; i+3 <= q; i++ {
		if path[i] == '%' && path[i+1] == '3' && (path[i+2] == 'F' || path[i+2] == 'f') {
			return i
		}
	}
	return q
}

// queryInPath returns path with the value of each parameter of a query
// written into it (after its first '?', or its first "%3F" before any,
// the '?' as a URL's String escapes it in a path and errors quote it: see
// Path) whose name says it carries a credential (see SecretName) replaced
// by Placeholder; path itself, without an allocation, when it has none.
// A '?' after a "%3F" still starts a query: the parameter the "%3F"
// begins ("report%3Fv=2.pdf?api_key=…") would otherwise run over it.
func queryInPath(path string) string {
	q := strings.IndexByte(path, '?')
	end := len(path)
	if q >= 0 {
		end = q
		path = replaceSecrets(path, q, querySecret) // path[:end] unchanged
	}
	for i := 0; ; i++ {
		k := strings.IndexByte(path[i:end], '%')
		if k < 0 {
			return path
		}
		if i += k; i+3 <= end && path[i+1] == '3' && (path[i+2] == 'F' || path[i+2] == 'f') {
			// querySecret starts past the byte at its index. Its values
			// end at the '?', whose query was redacted above: a value
			// run over it ("%3Fkey=?&…") would hide that '?', and a
			// second pass would read the query as the value's.
			head := replaceSecrets(path[:end], i+2, querySecret)
			if head == path[:end] {
				return path
			}
			return head + path[end:]
		}
	}
}

// replaceSecrets returns s with each value that find locates in it, from
// its index from on, replaced by Placeholder; s itself, without an
// allocation, when find locates none. find returns the bounds of the
// first value at or after its index, -1, -1 for none.
func replaceSecrets(s string, from int, find func(string, int) (int, int)) string {
	i, j := find(s, from)
	if i < 0 {
		return s
	}
	var b strings.Builder
	done := 0
	for ; i >= 0; i, j = find(s, j) {
		b.WriteString(s[done:i])
		b.WriteString(Placeholder)
		done = j
	}
	b.WriteString(s[done:])
	return b.String()
}

// querySecret returns the bounds of the value of the first parameter of
// the query that path holds from its index from on (a '?', '&' or ';'
// before each parameter), whose name says it carries a credential (see
// SecretName), and whose value is neither empty nor Placeholder; -1, -1
// for none. A value runs to the next '&' or ';'.
func querySecret(path string, from int) (int, int) {
	for from < len(path) {
		start := from + 1
		end := len(path)
		if k := strings.IndexAny(path[start:], "&;"); k >= 0 {
			end = start + k
		}
		from = end
		name, value, ok := strings.Cut(path[start:end], "=")
		if ok && value != "" && value != Placeholder && SecretName(name) {
			return end - len(value), end
		}
	}
	return -1, -1
}

// maySecret reports whether path has a segment that announces a secret, so
// that the common path is scanned once.
func maySecret(path string) bool {
	return strings.Contains(path, "/webhooks/") || strings.Contains(path, "/interactions/") ||
		strings.Contains(path, "/bot") || strings.Contains(path, "/services/") ||
		strings.Contains(path, "/actions/T") || strings.Contains(path, "/commands/T") ||
		strings.Contains(path, "/triggers/T") || strings.Contains(path, "/workflows/T") ||
		strings.IndexByte(path, ';') >= 0 && hasSecretParam(path)
}

// hasSecretParam reports whether a segment of path has a parameter whose
// value secretParam finds, without an allocation: a path with other
// parameters (";v=2") is not split, as routeTemplate, which redacts the
// path of each response that announces a plain limit, would on a call's
// success path.
func hasSecretParam(path string) bool {
	for rest := path; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if i, _ := secretParam(seg, 0); i >= 0 {
			return true
		}
		if !more {
			return false
		}
		rest = tail
	}
}

// HostParams returns h, a URL's host, with the value of each of its
// parameters whose name says it carries a credential (see SecretName)
// replaced by Placeholder: a servlet container writes the session id of a
// client without cookies after the host of a URL without a path
// ("api.example.com;jsessionid=…"), which url.Parse reads as the host. A
// port of up to five digits at its end is the host's, as url.Parse and
// net/http read it ("api.example.com;jsessionid=…:8443"), and stays. It
// returns h itself, without an allocation, when it has none.
func HostParams(h string) string {
	r := secretParams(h)
	if r == h {
		return h
	}
	if c := strings.LastIndexByte(h, ':'); c > strings.IndexByte(h, ';') && len(h)-c <= len(":65535") && isDigits(h[c+1:]) {
		// The port, which the last value ran into.
		return secretParams(h[:c]) + h[c:]
	}
	return r
}

// secretParams returns seg, a path's segment, with the value of each of
// its parameters (";name=value") whose name says it carries a credential
// (see SecretName) replaced by Placeholder; seg itself when it has none.
func secretParams(seg string) string {
	return replaceSecrets(seg, 0, secretParam)
}

// secretParam returns the bounds of the value of the first parameter of
// seg, a path's segment, at from or after it, whose name says it carries a
// credential (see SecretName), and whose value is neither empty nor
// Placeholder; -1, -1 for none.
func secretParam(seg string, from int) (int, int) {
	for {
		k := strings.IndexByte(seg[from:], ';')
		if k < 0 {
			return -1, -1
		}
		start := from + k + 1
		end := len(seg)
		if k := strings.IndexByte(seg[start:], ';'); k >= 0 {
			end = start + k
		}
		from = end
		name, value, ok := strings.Cut(seg[start:end], "=")
		if ok && value != "" && value != Placeholder && SecretName(name) {
			return end - len(value), end
		}
	}
}

// isSecret reports whether segs[i] is a credential (see Path).
func isSecret(segs []string, i int) bool {
	s := segs[i]
	if s == "" {
		return false
	}
	if i >= 2 && (segs[i-2] == "webhooks" || segs[i-2] == "interactions") && isDigits(segs[i-1]) {
		return true
	}
	if strings.HasPrefix(s, "bot") {
		// Telegram's bot<id>:<token>, its colon escaped (%3A) in a path
		// as written (a RawPath, an error's quoted URL) when the caller
		// escaped it: whichever comes first, as a colon in a later
		// parameter's value (";v=a:b") does not end the bot's id.
		c, w := strings.IndexByte(s, ':'), 1
		for _, esc := range [...]string{"%3A", "%3a"} {
			if e := strings.Index(s, esc); e >= 0 && (c < 0 || e < c) {
				c, w = e, 3
			}
		}
		if c > 3 && isDigits(s[3:c]) && c < len(s)-w {
			return true
		}
	}
	if i >= 3 && segs[i-3] == "services" && strings.HasPrefix(segs[i-2], "T") && strings.HasPrefix(segs[i-1], "B") {
		return true
	}
	if i >= 3 && isDigits(segs[i-1]) && isSlackID(segs[i-2], 'T') {
		switch segs[i-3] {
		case "actions", "commands", "triggers":
			return true
		}
	}
	return i >= 4 && segs[i-4] == "workflows" && isSlackID(segs[i-3], 'T') && isSlackID(segs[i-2], 'A') && isDigits(segs[i-1])
}

// isSlackID reports whether s is a Slack id of the kind prefix names (T a
// team, A an app): the letter, then upper-case letters and digits.
func isSlackID(s string, prefix byte) bool {
	if len(s) < 2 || s[0] != prefix {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Bounds of the values taken from a request's URL, which a server names
// when it redirects (net/http takes a Location header of up to 10 MB):
// logs, errors, spans and metrics carry them, and tables keep them.
const (
	// MaxHost is the longest host name kept, port excepted: the longest
	// domain name (RFC 1035).
	MaxHost = 255
	// MaxPath is the longest path, or URL, kept: RFC 9110 asks for
	// request lines of 8000 octets at least.
	MaxPath = 8 << 10
)

// Truncate returns s cut to at most n bytes, at the boundary of a character
// and not within a %-escape, in a copy that does not keep the rest of s
// alive; s itself when it is no longer than n. A value taken from a URL
// (a redirect's Location may be megabytes long) passes through it before
// it reaches a log record, an error, a span or anything kept.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	if i := strings.LastIndexByte(s[max(n-2, 0):n], '%'); i >= 0 {
		n = max(n-2, 0) + i
	}
	return strings.Clone(s[:n])
}

// Opaque returns s, the Opaque of a URL (which net/http sends as it is),
// without a query or fragment written in it, with a credential in its path
// redacted as Path says, and with the user information of its authority,
// in "//user:token@host/path" (the opaque form that sets the request
// line's path verbatim) and in "user:token@host/path" (a URL missing its
// slashes, "https:user:token@host"), replaced by userinfo: "" to drop it,
// or "REDACTED:REDACTED@" as OpenTelemetry's url.full shows it, a password
// written unescaped with a '/', a '?' or a '#' in it included
// ("//alice:pa/ss@host", see strayUserinfo). It returns s itself when
// there is nothing to redact.
func Opaque(s, userinfo string) string {
	if s == "" {
		return s // a URL that is not opaque, as most are
	}
	rest := strings.TrimPrefix(s, "//")
	if r, stray := strayUserinfo(rest); stray {
		// A password written unescaped with a '/', a '?' or a '#' in
		// it ("alice:pa/ss@host"): r is the URL after it.
		return s[:len(s)-len(rest)] + userinfo + opaque(r, "")
	}
	return opaque(s, userinfo)
}

// opaque is Opaque but for the user information that strayUserinfo finds.
func opaque(s, userinfo string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	rest := strings.TrimPrefix(s, "//")
	auth := len(rest)
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		auth = i
	}
	authority, path := rest[:auth], rest[auth:]
	redacted := Path(path)
	at := userinfoEnd(authority)
	// A session id in a parameter after a host without a path
	// ("api.test;jsessionid=…"), as after a path's segment, the port
	// url.Parse reads after it kept (see HostParams).
	params := HostParams(authority[at:])
	if at == 0 && redacted == path && params == authority {
		return s
	}
	if at > 0 {
		params = userinfo + params
	}
	return s[:len(s)-len(rest)] + params + redacted
}

// URLPath returns the path of u redacted: as HostlessPath redacts it for a
// URL with a scheme but no host, as Path does otherwise (a URL without a
// scheme, a request a server received, has its path as it is).
func URLPath(u *url.URL) string {
	if u.Host == "" && u.Scheme != "" {
		return HostlessPath(u.Path)
	}
	return Path(u.Path)
}

// URLOpaque returns the Opaque of u as SchemeIsUser and SchemeOpaque are
// to read it: with u's query and fragment after it when its scheme is
// rather a user name whose password runs into them, a '?' or a '#' in it
// written unescaped ("alice:pa?pw@api.example.com/v1", which url.Parse
// reads as the scheme "alice", the Opaque "pa" and the query
// "pw@api.example.com/v1"), as a text that quotes u reads it
// (SchemeOpaque then drops the query); u.Opaque otherwise.
func URLOpaque(u *url.URL) string {
	if u.Opaque == "" || u.RawQuery == "" && u.Fragment == "" || SchemeIsUser(u.Scheme, u.Opaque) {
		return u.Opaque
	}
	s := u.Opaque + "?" + u.RawQuery
	if u.Fragment != "" {
		s += "#" + u.EscapedFragment()
	}
	if SchemeIsUser(u.Scheme, s) {
		return s
	}
	return u.Opaque
}

// HostlessPath returns path, that of a URL with a scheme but no host, as
// Path does, the user information of its first segment after its leading
// slashes dropped: url.Parse reads a URL one slash short or long
// ("https:/user:token@api.example.com/v1", "https:///user:token@…") as a
// path, whose first segment is the authority the caller meant. It returns
// path itself when there is nothing to redact. A password written
// unescaped with a '/', a '?' or a '#' in it ("https:/alice:pa/ss@host/v1")
// is dropped too (see strayUserinfo), and so is the start of one whose
// '?' or '#' ended the path ("https:/alice:pa?ss@host/v1", whose path is
// "/alice:pa": its authority is REDACTED). The rule is read again on what
// follows such a password, until it finds none: HostlessPath of its own
// result is that result.
func HostlessPath(path string) string {
	rest := strings.TrimLeft(path, "/")
	r, stray := strayUserinfo(rest)
	for stray {
		// What follows a password may read as one too
		// ("alice:pa/ss@proxy:abc/v1", then "proxy:abc/v1"), which a
		// second HostlessPath would drop: it goes now. Each pass drops
		// an '@', or ends.
		r, stray = strayUserinfo(r)
	}
	if r = Path(r); r != rest {
		return path[:len(path)-len(rest)] + r
	}
	return path
}

// SchemeIsUser reports whether scheme, which url.Parse read before
// opaque, the rest of a URL without "//", is rather a user name: opaque's
// authority (up to its first '/', '?' or '#') holds user information and
// scheme is none that net/http speaks (http, https, or a proxy's socks5
// and socks5h). A key given as the user name of Basic authentication with
// an empty or a dummy password, "KEY:@api.example.com" (many billing and
// mail APIs take one so), is read as the scheme "key" when it is made of
// letters, digits, '+', '-' and '.'; "https:user:token@host", a URL
// missing its slashes, keeps its scheme.
//
// A password written unescaped with a '/', a '?' or a '#' in it after
// such a user name ("alice:pa/ss@api.example.com/v1", see strayUserinfo)
// makes scheme a user name too. A scheme registered for opaque URLs whose
// part after it holds an '@' (mailto, sip, xmpp, …) is a scheme too: no
// key is named so.
func SchemeIsUser(scheme, opaque string) bool {
	auth := opaque
	if i := strings.IndexAny(opaque, "/?#"); i >= 0 {
		auth = opaque[:i]
	}
	if strings.IndexByte(opaque, '@') < 0 {
		return false
	}
	// net/http's, then those registered (RFC 7595) for URLs without "//"
	// whose part after the scheme holds an '@' (an address, a user's, a
	// message id), the host after it.
	for _, known := range [...]string{"http", "https", "socks5", "socks5h",
		"mailto", "sip", "sips", "xmpp", "im", "pres", "acct", "news", "nntp", "tel", "sms"} {
		if strings.EqualFold(scheme, known) {
			return false
		}
	}
	if strings.IndexByte(auth, '@') >= 0 {
		return true
	}
	// A password written unescaped with a '/', a '?' or a '#' in it
	// ("alice:pa/ss@api.example.com/v1").
	_, stray := strayUserinfo(scheme + ":" + opaque)
	return stray
}

// SchemeOpaque returns opaque, the part after scheme of a URL without
// "//", redacted as Opaque does; a mailto URL's is an address (RFC 6068:
// "mailto:support@vendor.example"), which has no user information: it
// loses its query (its headers, a body) only. It returns opaque itself
// when there is nothing to redact. When scheme is rather a user name (see
// SchemeIsUser), which the caller drops, it returns the URL after the user
// information that scheme begins, redacted so.
func SchemeOpaque(scheme, opaque, userinfo string) string {
	if strings.EqualFold(scheme, "mailto") {
		if i := strings.IndexAny(opaque, "?#"); i >= 0 {
			return opaque[:i]
		}
		return opaque
	}
	if scheme != "" && SchemeIsUser(scheme, opaque) {
		return Opaque(scheme+":"+opaque, userinfo)
	}
	return Opaque(opaque, userinfo)
}

// userinfoEnd returns the length of the user information ("user:token@")
// that begins s, an authority followed by a path: up to the last '@'
// before the first '/', '?' or '#', which end an authority (RFC 3986,
// 3.2; a '?' in a password is escaped); 0 for none. An '@' in a query is
// none: the query's values Path redacts may hold the '/' that came before
// it ("?key=/&@"), and a second Path took the whole query for user
// information.
func userinfoEnd(s string) int {
	auth := len(s)
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		auth = i
	}
	return strings.LastIndexByte(s[:auth], '@') + 1
}
