package resilient

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file makes the text of errors, and what the records quote of a
// server or a caller, safe to log: user information, queries, session
// ids and other credentials are REDACTED (see redactText).

// redactedError is an error whose message has been made safe to log (see
// redactRequestError); it unwraps to the original.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Timeout reports whether the original error is, or wraps, a timeout.
func (e *redactedError) Timeout() bool { return isTimeout(e.err) }

// redactRequestError returns err, or, when its message quotes a URL with a
// query, a fragment or user info, or holds control characters, an error
// with the same chain whose message has them removed. Every error of the
// base RoundTripper, and of a body read within an attempt, goes through it
// with the request that was sent (nil for none) before any layer records
// it. User information put in the host of the request's URL by hand,
// which net/http quotes ("lookup alice:s3cret@api.test: no such host"), is
// REDACTED too, as urlKey has it in the records and errors, and so are the
// credentials of req that a server's answer quoted in the message echoes,
// as in an APIError (see redact.Echoes): a server that echoes the request
// line answers "malformed HTTP status code "/bot123:…/getMe"", a path
// whose token Attempt.Path has REDACTED. A text of megabytes is cut before
// it is searched (see echoesCut), with a request or without one.
func redactRequestError(err error, req *http.Request) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	msg := err.Error()
	host, safe := "", redactURLError(err, msg)
	if req != nil && req.URL != nil {
		host = typedHost(req.URL)
		if q := req.URL.RawQuery; q != "" {
			// The request's own query, as its URL's String writes it:
			// a text that quotes that URL as it is (go-retryablehttp's
			// "GET %s giving up after …", a GetBody's or a context
			// cause's own words) may hold a space, a quote or a '<'
			// where redactURLs ends a URL, and would keep the rest of
			// the query ("?q=New York&appid=…").
			safe = strings.ReplaceAll(safe, "?"+q, "")
		}
	}
	safe = withoutHostParams(withoutUserinfo(safe, host), host)
	// With or without a request (the panic value of a hedged copy, see
	// hedgeRun.logLostPanic, a caller's value of megabytes), a long text
	// is cut before redactText copies it.
	safe, cut := echoesCut(safe, req, maxErrorText)
	if cut {
		safe = cutQuoted(cutAuthority(safe))
	}
	if safe = redactText(safe); safe != msg {
		return &redactedError{err: err, msg: safe}
	}
	return err
}

// withoutUserinfo returns s with the user information of host, a URL's
// host, replaced by REDACTED, as it is and as a URL escapes it in a host
// ("alice:s3cret%40"); s itself when host has none.
func withoutUserinfo(s, host string) string {
	at := strings.LastIndexByte(host, '@')
	if at < 0 {
		return s
	}
	user := host[:at+1]
	s = strings.ReplaceAll(s, user, redact.Placeholder+"@")
	if esc := (&url.URL{Host: user}).String()[len("//"):]; esc != user {
		s = strings.ReplaceAll(s, esc, redact.Placeholder+esc[len(esc)-len("%40"):])
	}
	return s
}

// withoutHostParams returns s with host, a URL's host, written with the
// values of its parameters that carry a credential REDACTED (see
// redact.HostParams): net/http quotes the host it looked up without a URL
// around it ("lookup api.example.com;jsessionid=…: no such host"). It
// returns s itself when host has none.
func withoutHostParams(s, host string) string {
	h := host[strings.LastIndexByte(host, '@')+1:]
	if r := redact.HostParams(h); r != h {
		s = strings.ReplaceAll(s, h, r)
	}
	return s
}

// redactURLError returns msg, the message of err, with the URL quoted by
// a *url.Error in err's chain redacted as redactRef does, as an http.Client
// below the Transport quotes it: redactURLs finds only the URLs that have
// a scheme://, and cuts them there, which leaves the rest of a request's
// URL without its scheme (a caller who forgot "https://"), a path alone,
// a scheme-relative or an opaque URL, and the start of one whose query
// quotes an absolute URL (OAuth's redirect_uri=https://…).
func redactURLError(err error, msg string) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return msg
	}
	if safe := redactRef(ue.URL); safe != ue.URL {
		return strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(safe))
	}
	return msg
}

// redactRef returns s, a URL reference, without its query, fragment and
// user info, a credential its path carries replaced by REDACTED (see
// redact.Opaque), whether or not it has a scheme and its "//". After a
// scheme, one slash or three are read as "//" ("https:/user:pw@host", a
// URL one slash short, which url.Parse reads as a path), and a scheme that
// is rather a user name ("KEY:@api.example.com": see redact.SchemeIsUser)
// is user information.
func redactRef(s string) string {
	scheme := ""
	for i := 0; i < len(s); i++ { // a scheme as url.Parse reads one
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.') {
			continue
		}
		if i > 0 && c == ':' {
			scheme = s[:i+1]
		}
		break
	}
	rest := s[len(scheme):]
	if slashes := len(rest) - len(strings.TrimLeft(rest, "/")); slashes >= 2 || slashes == 1 && scheme != "" {
		return scheme + rest[:slashes] + strings.TrimPrefix(redact.Opaque("//"+rest[slashes:], ""), "//")
	}
	name := strings.TrimSuffix(scheme, ":")
	if name != "" && redact.SchemeIsUser(name, rest) {
		scheme = ""
	}
	return scheme + redact.SchemeOpaque(name, rest, "")
}

// redactErr returns err's message made safe to log: see redactText.
func redactErr(err error) string {
	if err == nil {
		return ""
	}
	return redactText(err.Error())
}

// maxErrorText bounds the text of an error the Transport records or
// returns, in bytes: net/http quotes a server's malformed answer in its
// errors (a status line of up to its 10 MB header limit), which would
// otherwise flood each attempt's log record.
const maxErrorText = 1 << 10

// redactText removes from s the query, fragment and user info of every URL
// it quotes, replaces its control characters with spaces, and cuts it
// ("…") past maxErrorText bytes.
func redactText(s string) string {
	// Quoted strings first: a URL quoted whole ends at its closing
	// quote, not at a space in its query, where redactURLs ends one.
	return safeText(redactURLs(redactQuoted(s)), maxErrorText)
}

// redactQuoted returns s with each string it quotes ("…", as %q writes
// one) that holds a '?', a '#', an '@' or a ';' redacted as a URL
// reference (see redactRef): net/http and most libraries quote a URL so,
// and one without a scheme://, which redactURLs does not see, may still
// carry a query (a relative URL's "/v1?access_token=…"), user info (a
// proxy's address without its scheme, "user:pass@proxy:8080", which
// net/http quotes when it cannot parse it) or a parameter (url.Parse's
// `invalid port ":443;jsessionid=…"`).
func redactQuoted(s string) string {
	if !strings.ContainsAny(s, refSecrets) || !strings.Contains(s, `"`) {
		return s
	}
	s = eachQuoted(s, func(s string, i int) (int, int) {
		end := quotedEnd(s, i)
		if end < 0 { // no closing quote
			return -1, -1
		}
		return end, end + 1 // past the closing quote
	})
	return afterQuotes(s)
}

// afterQuotes returns s with each reference that begins after one of its
// quotes, up to the next quote, space or control character, and holds a
// '?', a '#', an '@' or a ';', redacted as redactQuoted redacts a string
// (see redactRef): its query, fragment and user info removed, its
// session id REDACTED. redactQuoted pairs the quotes of a text in order:
// one that opens no string (encoding/json's `invalid character '"'`, an
// escaped one, a message cut within a string) pairs the others wrongly,
// and leaves a quoted URL without a scheme ("/v1?access_token=…"), a
// proxy's address ("user:pass@proxy:8080") or a port
// (":443;jsessionid=…") between two strings, where redactURLs does not
// see it.
func afterQuotes(s string) string {
	if !strings.ContainsAny(s, refSecrets) {
		return s
	}
	return eachQuoted(s, func(s string, i int) (int, int) {
		end := i + 1
		for end < len(s) && s[end] != '"' && s[end] > ' ' && s[end] != 0x7f {
			end++
		}
		return end, end
	})
}

// refSecrets are the characters that make a quoted text a URL reference
// to redact (see redactRef): a query, a fragment, user info, a parameter.
const refSecrets = "?#@;"

// eachQuoted returns s with the text after each of its quotes redacted by
// redactRef when it holds one of refSecrets: the text s[i+1:end], where
// span, given s and the index i of a quote, returns end and next, where
// the scan goes on (s[end:next] is kept as it is: a closing quote); a
// negative end stops the scan there.
func eachQuoted(s string, span func(s string, i int) (end, next int)) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		end, next := span(s, i)
		if end < 0 {
			break
		}
		q := s[i+1 : end]
		if strings.ContainsAny(q, refSecrets) {
			q = redactRef(q)
		}
		b.WriteString(s[:i+1])
		b.WriteString(q)
		b.WriteString(s[end:next])
		s = s[next:]
	}
	b.WriteString(s)
	return b.String()
}

// quotedEnd returns the index of the quote that closes the string s
// quotes from s[i] (a '"'), as fmt's %q writes one (\" and \\ escaped), or
// -1 when none does.
func quotedEnd(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// redactURLs removes the user info ("user:pass@"), the query ("?…") and the
// fragment ("#…") of every scheme://… URL in s, and of every URL one slash
// short ("https:/user:pass@host", which url.Parse reads as a path): see
// nextURL. A credential its authority's parameters or its
// path carry is REDACTED (see redact.Opaque). A URL ends at a quote, a
// space, a control character or one of <>`'), the last two unless a query
// or a fragment runs past them (see hardURLEnd). Its work is linear in s:
// a hostile server's text of thousands of URLs (a malformed status line of
// "x://)" repeated, which net/http quotes whole) is not scanned once per
// URL.
func redactURLs(s string) string {
	if !strings.Contains(s, ":/") {
		return s
	}
	var b strings.Builder
	// In the text given, whose part left is s from off on: the next hard
	// end (see hardURLEnd) and the next '?' or '#', as found by the last
	// scans, which the URLs after them reuse (the URLs only move on);
	// len(text) for none.
	text, off, hard, mark := s, 0, -1, -1
	for {
		i := nextURL(s)
		if i < 0 {
			break
		}
		end := i + 2
		for end < len(s) && !isURLEnd(s, end) {
			end++
		}
		if hard < off+end {
			hard = hardURLEnd(text, off+end)
		}
		if mark < off+i+1 {
			mark = len(text)
			if k := strings.IndexAny(text[off+i+1:], "?#"); k >= 0 {
				mark = off + i + 1 + k
			}
		}
		if hard > off+end+1 && mark < hard {
			// A ' or a ) within a query (Google's fields=items(id),
			// OData's $filter=Name eq 'x') or before it (Azure Table
			// Storage's /Customers()?…&sig=…): the URL runs on to a
			// space or a quote, so that the query after it is cut too.
			// (One that the text closes at once, "(see https://…?q=v)",
			// keeps its parenthesis.)
			end = hard - off
		}
		b.WriteString(s[:i+1])
		u := s[i+1 : end]
		// The slashes after the scheme: "//", one short, or more
		// ("https:///user:pw@host", a URL with no host for url.Parse):
		// the authority the caller meant follows them.
		lead := len(u) - len(strings.TrimLeft(u, "/"))
		b.WriteString(u[:lead])
		u = u[lead:]
		// The user information (what precedes the authority's last
		// '@', or a password with a '/', a '?' or a '#' written
		// unescaped), the query and the fragment go; the authority's
		// parameters ("host;jsessionid=…") and the path lose their
		// credentials.
		b.WriteString(strings.TrimPrefix(redact.Opaque("//"+u, ""), "//"))
		s, off = s[end:], off+end
	}
	b.WriteString(s)
	return b.String()
}

// nextURL returns the index of the colon that ends the scheme of the first
// URL in s that redactURLs redacts: one followed by "//", or one followed
// by a single '/' after a scheme that net/http speaks (http, https, a
// proxy's socks5 and socks5h: a URL one slash short); -1 for none. Other
// words before ":/" (a JSON pointer's "field:/data/0", a Windows path's
// "C:/") are no URL's.
func nextURL(s string) int {
	for from := 0; ; {
		k := strings.Index(s[from:], ":/")
		if k < 0 {
			return -1
		}
		i := from + k
		if strings.HasPrefix(s[i:], "://") || httpSchemeBefore(s, i) {
			return i
		}
		from = i + 2
	}
}

// httpSchemeBefore reports whether s[:i] ends with a scheme that net/http
// speaks, in any case, as a word of its own (not the end of a longer
// scheme).
func httpSchemeBefore(s string, i int) bool {
	j := i
	for j > 0 && isSchemeByte(s[j-1]) {
		j--
	}
	for _, known := range [...]string{"http", "https", "socks5", "socks5h"} {
		if strings.EqualFold(s[j:i], known) {
			return true
		}
	}
	return false
}

// isSchemeByte reports whether c may be part of a scheme: a letter, a
// digit, '+', '-' or '.'.
func isSchemeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// hardURLEnd returns the index, from i, of the first character of s that
// no URL holds (a quote not escaped by %q, a space, a control character or
// one of <>`), or len(s).
func hardURLEnd(s string, i int) int {
	for ; i < len(s); i++ {
		if c := s[i]; c != '\'' && c != ')' && isURLEnd(s, i) {
			return i
		}
	}
	return len(s)
}

// isURLEnd reports whether s[i] ends a URL quoted in an error message. A
// quote escaped by %q (\") does not.
func isURLEnd(s string, i int) bool {
	switch c := s[i]; c {
	case '"':
		return i == 0 || s[i-1] != '\\'
	case ' ', '\'', '<', '>', '`', ')':
		return true
	default:
		return c < ' ' || c == 0x7f
	}
}

// safeText returns s with its control characters (C0, DEL, C1, the
// Unicode line and paragraph separators, and the bidirectional controls)
// replaced by spaces and invalid UTF-8 by U+FFFD, cut after at most max
// bytes, "…" marking a cut. Text from a server passes through it before it
// reaches an error message or a log record: it can neither forge a log
// line, nor reorder one as shown, nor flood one. It allocates only when it
// changes s.
func safeText(s string, max int) string {
	if len(s) <= max && isPlainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(min(len(s), max) + len("…"))
	for _, r := range s {
		switch {
		case r < ' ', r == 0x7f, r >= 0x80 && r < 0xa0, r == '\u2028', r == '\u2029', isBidiControl(r):
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// serverText returns s, a server's text (a code, a message, a request id)
// that a record or an error message quotes, with the credentials of req it
// echoes and the tokens it holds redacted (see redact.Echoes), its control
// characters replaced and cut past max bytes (see safeText). req, the
// request answered, may be nil.
func serverText(s string, req *http.Request, max int) string {
	s, _ = echoesCut(s, req, max)
	return safeText(s, max)
}

// echoesCut returns s, a text to be cut at max bytes (see safeText), with
// the credentials of req it echoes and the tokens it holds REDACTED (see
// redact.Echoes). A text longer than 4*max is cut there first, "…"
// marking the cut, its credentials looked for in its first bytes only
// (see redact.EchoesCut): a hostile server's status line of megabytes,
// which net/http quotes in its error, or its request id header, looked
// for whole, was scanned once for each credential of req and of the
// requests that led to it by redirects, whose URLs the server wrote (some
// 350 scans of 10 MB for ten redirects to "/bot1:tok…/bot2:tok…/…": 17
// s of CPU for one attempt). The 4*max bytes kept leave room for the URLs
// the text quotes, whose queries redactText then drops. It reports
// whether it cut s. req may be nil.
func echoesCut(s string, req *http.Request, max int) (string, bool) {
	if len(s) <= 4*max {
		return redact.Echoes(s, req), false
	}
	return redact.EchoesCut(s, req, 4*max) + "…", true
}

// cutAuthority returns s, a text that echoesCut cut ("…" marking the
// cut), without what follows the scheme of the last URL in its last word
// when the cut falls within that URL's authority (no '/', '?' or '#'
// after its slashes): the cut may have dropped the '@' that ends its user
// information (a proxy's, an API key for a user name:
// "https://sk_live_…@proxy"), which redactURLs would then take for a host
// and keep, up to the cut. It returns s itself when the cut is within no
// authority.
func cutAuthority(s string) string {
	t, ok := strings.CutSuffix(s, "…")
	if !ok {
		return s
	}
	w := len(t) // t[w:] is the last word, which no URL's end ends
	for w > 0 && !isURLEnd(t, w-1) {
		w--
	}
	at := -1 // the colon after the scheme of the last URL in t[w:]
	for from := w; ; {
		k := nextURL(t[from:])
		if k < 0 {
			break
		}
		at, from = from+k, from+k+2
	}
	if at < 0 {
		return s
	}
	a := at + 1
	for a < len(t) && t[a] == '/' {
		a++
	}
	if strings.ContainsAny(t[a:], "/?#") {
		return s
	}
	return t[:a] + "…"
}

// cutQuoted returns s, a text that echoesCut cut ("…" marking the cut),
// with the string it quotes across the cut, as redactQuoted pairs its
// quotes, redacted up to the cut as redactQuoted redacts one (see
// redactRef): the cut dropped its closing quote, and redactQuoted, which
// then no longer sees it, would leave what follows a space in its query
// (a status line of megabytes, which net/http quotes whole, that begins
// "/login?next=a b&sid=…"). It returns s itself when the cut is within
// no string or the string holds none of refSecrets.
func cutQuoted(s string) string {
	open := -1
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '"')
		if j < 0 {
			break
		}
		if end := quotedEnd(s, i+j); end >= 0 {
			i = end + 1
			continue
		}
		open = i + j
		break
	}
	if open < 0 {
		return s
	}
	q, cut := strings.CutSuffix(s[open+1:], "…")
	if !strings.ContainsAny(q, refSecrets) {
		return s
	}
	q = redactRef(q)
	if cut {
		q += "…"
	}
	return s[:open+1] + q
}

// isBidiControl reports whether r is one of Unicode's bidirectional
// formatting characters (the marks, embeddings, overrides and isolates),
// which would make a terminal or a log viewer show text in another order
// than it holds.
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// isPlainASCII reports whether s holds only printable ASCII.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}
