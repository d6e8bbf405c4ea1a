package resilient

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/resilienthttp/resilient/internal/redact"
)

// This file fuzzes what the Transport reads from a request's URL: the
// canonical form of its host (canonical.go, hostnames.go) and the route
// template of its path (ratelimit_resource.go).

var hostSeeds = []string{
	"api.example.com", "API.Example.COM", "api.example.com.", "api.example.com.:8443",
	"api.example.com:0443", "api.example.com:443", "api.example.com:", "api.example.com:00",
	"[0:0::1]", "[::1]:80", "[::ffff:192.0.2.1]", "[192.0.2.1]", "[fe80::1%eth0]", "[FE80::1%ETH0]:8080",
	"bücher.example", "BÜCHER.example.:443", "straße.de", "alice:s3cret@api.test", "a@b@c:1",
	"REDACTED@api.test", ".", ":", "[", "]", "[]:", "..", "a..:0", "xn--bcher-kva.example",
	"192.0.2.1.", "192.0.2.1.:443", "127.1.", "bücher\u3002example", "api\uFF0Etest.:0443", "ü\uFF61.", "ü.example\u3002", "ü.example\u3002.",
}

// FuzzCanonicalHost checks that canonicalHost is idempotent, ignores the
// case of an ASCII name, agrees with hostNames, and,
// for the ASCII names and ports it can check without a table, never gives
// one form to two hosts net/http dials apart.
func FuzzCanonicalHost(f *testing.F) {
	for i, h := range hostSeeds {
		f.Add([]string{"https", "http", "HTTPS", "ws", ""}[i%5], h, hostSeeds[(i+1)%len(hostSeeds)])
	}
	f.Fuzz(func(t *testing.T, scheme, h1, h2 string) {
		var names hostNames
		names.init()
		scheme = lowerASCII(scheme)
		c1, c2 := canonicalHost(scheme, h1), canonicalHost(scheme, h2)
		// Idempotent for any host: the tables hold canonical keys and
		// spellings in one (see TestCanonicalHostIdempotent).
		if again := canonicalHost(scheme, c1); again != c1 {
			t.Fatalf("canonicalHost(%q) = %q, and of that %q", h1, c1, again)
		}
		if _, c := names.canonical(scheme, h1); c != c1 {
			t.Fatalf("hostNames gives %q for %q, canonicalHost %q", c, h1, c1)
		}
		if _, c := names.canonical(scheme, h1); c != c1 {
			t.Fatalf("hostNames gives %q for %q the second time, canonicalHost %q", c, h1, c1)
		}
		if _, ok := dialKey(scheme, h1); ok { // a port of letters, which no URL parses, keeps its case
			if up := canonicalHost(scheme, strings.ToUpper(h1)); up != c1 {
				t.Fatalf("canonicalHost(%q) = %q, of %q %q", h1, c1, strings.ToUpper(h1), up)
			}
		}
		k1, ok1 := dialKey(scheme, h1)
		k2, ok2 := dialKey(scheme, h2)
		if ok1 && ok2 && (c1 == c2) != (k1 == k2) {
			t.Fatalf("%q and %q: canonical %q and %q, dialed as %q and %q", h1, h2, c1, c2, k1, k2)
		}
	})
}

// dialKey returns the address net/http dials for host, a plain ASCII name
// with an optional port and no brackets or user information, for the
// schemes whose default port it knows: the name lower-cased without its
// final dot (unless it is an IPv4 address's, which makes a name to look
// up), and the port's number. It reports false for another host, and for
// a name with an empty label ("." alone, "..", ".a", "a..b"), which no
// resolver looks up: net/http dials none of them, and "." and ".." are not
// one host for cutting the same final dot off one of them.
func dialKey(scheme, host string) (string, bool) {
	if defaultPort(scheme) == "" || strings.ContainsAny(host, "[]@%") || !isASCII(host) {
		return "", false
	}
	name, port, _ := strings.Cut(host, ":")
	if strings.Contains(port, ":") {
		return "", false
	}
	if port == "" {
		port = defaultPort(scheme)[1:]
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", false
	}
	name = strings.ToLower(name)
	if name == "" || name[0] == '.' || strings.Contains(name, "..") {
		return "", false
	}
	if len(name) > 1 && strings.HasSuffix(name, ".") && !isIPv4(name[:len(name)-1]) { // "192.0.2.1." is looked up
		name = name[:len(name)-1]
	}
	return name + ":" + strconv.FormatUint(n, 10), true
}

// FuzzRouteTemplate checks that routeTemplate keeps the segments of a
// path, leaves no id in them, never grows it past what redact.Path makes
// of it, and is idempotent.
func FuzzRouteTemplate(f *testing.F) {
	for _, p := range []string{
		"/2/tweets/1460323737035677698", "/v1/users/0f8fad5b-d9cb-469f-a165-70867728950e/posts",
		"/repos/o/r/issues/42", "/webhooks/123/abcdefTOKEN", "/", "", "//", "/a//b/",
		"/bot123456:ABC-DEF/getMe", "/services/T000/B000/XXXX", "user:pass@host/1", "/*/x/*",
		"/deadbeefdeadbeef", "/DEADBEEF-DEAD-BEEF", "/-", "/%30",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := routeTemplate(path)
		red := redact.Path(path)
		if routeTemplate(path) != got {
			t.Fatal("routeTemplate is not deterministic")
		}
		if len(got) > len(red) || strings.Count(got, "/") != strings.Count(red, "/") {
			t.Fatalf("routeTemplate(%q) = %q; redacted %q", path, got, red)
		}
		for seg := range strings.SplitSeq(got, "/") {
			if isIDSegment(seg) {
				t.Fatalf("routeTemplate(%q) = %q keeps the id %q", path, got, seg)
			}
		}
		if again := routeTemplate(got); again != got {
			t.Fatalf("routeTemplate(%q) = %q, and of that %q", path, got, again)
		}
	})
}

// FuzzParseHostURL checks that parseHostURL, BreakerState and ResetHost
// never panic, that a URL parseHostURL reads where url.Parse refuses it
// names the host written in it, character for character (a zone as in
// URL.Host: "[fe80::1%en%30]" is the zone en%30, never en0), and that the
// key a breaker shows for any URL url.Parse takes names that URL's host,
// when url.Parse refuses the key.
func FuzzParseHostURL(f *testing.F) {
	for _, s := range []string{
		"https://[fe80::1%eth0]:443", "https://[fe80::1%25eth0]/x", "https://[fe80::1%en%30]:443",
		"https://[fe80::1%25en%2530]/x", "http://REDACTED@[fe80::1%eth0]:80", "https://[fe80::1%a]b]:443",
		"https://[fe80::1%25a%5B]/", "https://[fe80::1%25a%20b]/", "https://u[%]@evil.example/",
		"https://evil.example[%]/", "https://[fe80::1%eth0]/%zz", "https://[%]", "https://%[", "://[%]",
		"https://[fe80::1%eth0%x]/", "https://[::1]?q=[%]", "https://h/[%]#[%]", "", "[", "[%]", "fe80::1%a[b",
	} {
		f.Add(s)
	}
	tr := New(nil)
	f.Fuzz(func(t *testing.T, s string) {
		tr.BreakerState(s) // no panic, from the host alone's branch either
		tr.ResetHost(s)
		if _, err := url.Parse(s); err != nil {
			if u, err := parseHostURL(s); err == nil && !strings.Contains(s, u.Host) {
				t.Fatalf("parseHostURL(%q) names the host %q, which it does not hold", s, u.Host)
			}
			return
		}
		u, _ := url.Parse(s)
		if !strings.HasPrefix(u.Host, "[") || u.Scheme == "" {
			return
		}
		key := u.Scheme + "://" + u.Host // as breakerName shows it
		if _, err := url.Parse(key); err == nil {
			return // url.Parse's own reading: a zone "25…" is ambiguous
		}
		if v, err := parseHostURL(key); err != nil || v.Host != u.Host {
			t.Fatalf("the key %q of %q: parseHostURL = %v, %v; want the host %q", key, s, v, err, u.Host)
		}
	})
}
