package resilient

import (
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/resilienthttp/resilient/internal/idna"
	"github.com/resilienthttp/resilient/internal/redact"
)

// canonicalHost returns host, a URL's host as urlKey bounds it, in the form
// the per-host state is kept under: one form for the spellings that
// net/http sends to the same place, and never one for two places.
//
//   - User information put in the host by hand ("alice:s3cret@api.test",
//     which net/http dials whole, and fails to resolve) is REDACTED
//     (redact.Userinfo): "REDACTED@api.test", another host than api.test.
//   - ASCII letters are lower-cased; a name in Unicode is in punycode, as
//     net/http dials it ("bücher.example" is "xn--bcher-kva.example", and
//     so is "bücher。example", its full stops U+3002, U+FF0E and U+FF61
//     read as '.'),
//     when internal/idna knows its form exactly (else only its ASCII
//     letters are lower-cased, and it is a host of its own).
//   - The final dot of a fully-qualified name goes (see withoutFinalDot).
//   - An IP address in brackets is in its shortest form ("[0:0::1]" is
//     "[::1]", RFC 5952), and an IPv4 address in IPv6 form
//     ("[::ffff:192.0.2.1]"), or in brackets, is the IPv4 address: net/http
//     dials them alike. An IPv6 zone keeps its case: it names an
//     interface, and eth0 and ETH0 are two.
//   - A port loses its leading zeros ("api.example.com:0443" is dialed on
//     443), and the scheme's default port goes, an empty port too.
//
// It allocates nothing for a host that is already in that form or that
// only the default port or the final dot of its name set apart, as most
// are (see plainHost); hostNames makes the others once.
func canonicalHost(scheme, host string) string {
	if !plainHost(host) {
		host = spellHost(host)
	}
	return cutHost(scheme, host)
}

// plainHost reports whether host needs no more than cutHost to be
// canonical (see canonicalHost): it has no upper-case letter, no byte past
// ASCII, no brackets, no '@', no final dot before a port, and its port, if
// any, no leading zero. It allocates nothing.
func plainHost(host string) bool {
	colon := -1
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'A' <= c && c <= 'Z', c == '[', c == '@', c >= utf8.RuneSelf:
			return false
		case c == ':':
			if i > 0 && host[i-1] == '.' {
				return false
			}
			colon = i
		}
	}
	return colon < 0 || len(host)-colon <= 2 || host[colon+1] != '0'
}

// spellHost returns host in its canonical form as canonicalHost says, but
// for its default port and its name's final dot, which cutHost removes (as
// from a host that needs no spelling: "API.example.com.." is
// "api.example.com..", as "api.example.com.." is).
func spellHost(host string) string {
	user := ""
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		user, host = redact.Placeholder+"@", host[at+1:]
	}
	name, port := host, ""
	if hasPort(host) {
		i := strings.LastIndexByte(host, ':')
		name, port = host[:i], trimPortZeros(host[i:])
	}
	if i := strings.IndexByte(name, '%'); i >= 0 && strings.HasPrefix(name, "[") {
		// An IPv6 address's zone names an interface, whose name is case
		// sensitive (eth0 and ETH0 are two): only the address is lowered.
		name = lowerASCII(name[:i]) + name[i:]
	} else {
		name = lowerASCII(name)
	}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		if a, err := netip.ParseAddr(name[1 : len(name)-1]); err == nil {
			if a = a.Unmap(); a.Is4() {
				name = a.String()
			} else {
				name = "[" + a.String() + "]"
			}
		}
	} else if !isASCII(name) {
		base := withoutFinalDot(name)
		if a, ok := idna.ToASCII(base); ok {
			name = a + name[len(base):] // its final dot is cutHost's
		}
	}
	return user + name + port
}

// trimPortZeros returns port, a URL host's (":0443"), without the leading
// zeros of its number (":443"); ":0" for a number of zeros alone.
func trimPortZeros(port string) string {
	n := strings.TrimLeft(port[1:], "0")
	if n == "" && len(port) > 1 {
		return ":0"
	}
	if len(n) == len(port)-1 {
		return port
	}
	return ":" + n
}

// isASCII reports whether s has no byte past ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// cutHost returns host, spelled as canonicalHost says (plainHost, or
// made so by spellHost), without scheme's default port, an empty port,
// nor a fully-qualified name's final dot. A port goes only when what it
// follows has none ("api.test:443:443", which url.Parse takes, is dialed
// as the name "api.test:443", which no resolver finds): the result is its
// own canonical form, never another host's spelling.
func cutHost(scheme, host string) string {
	if port := defaultPort(scheme); port != "" {
		if h, ok := strings.CutSuffix(host, port); ok && !hasPort(h) {
			return withoutFinalDot(h)
		}
	}
	// An empty port means the default one.
	if strings.HasSuffix(host, ":") && hasPort(host) && !hasPort(host[:len(host)-1]) {
		host = host[:len(host)-1]
	}
	return withoutFinalDot(host)
}

// withoutFinalDot returns host, a URL host with or without a port, without
// the final dot of its name: "api.example.com." is the fully-qualified
// spelling of "api.example.com", one host, which DNS resolves and TLS
// verifies alike. The dot goes only after a label (see finalDotGoes): not
// from "api.example.com..", a name with an empty label, which no resolver
// finds, and which must not become "api.example.com.", another host's
// spelling; nor is it a name's only character, nor an IPv4 address's
// ("192.0.2.1." is no name of 192.0.2.1: net/http takes it for a name to
// look up, which no resolver finds), nor after an IPv6 address's bracket.
// It allocates only for a dotted name with a port.
func withoutFinalDot(host string) string {
	if n := len(host); n > 1 && host[n-1] == '.' {
		if !finalDotGoes(host[:n-1]) {
			return host
		}
		return host[:n-1]
	}
	if i := strings.LastIndexByte(host, ':'); i > 1 && host[i-1] == '.' && i > strings.LastIndexByte(host, ']') {
		if !finalDotGoes(host[:i-1]) {
			return host
		}
		return host[:i-1] + host[i:]
	}
	return host
}

// finalDotGoes reports whether name, a URL host's name without the final
// dot that followed it, is a name whose fully-qualified spelling that dot
// made: it ends with a label (not with a dot, a full stop that net/http
// reads as one, a bracket or a colon), has no port of its own
// ("api.test:1." is no name with a port), and is no IPv4 address.
func finalDotGoes(name string) bool {
	switch name[len(name)-1] {
	case '.', ']', ':':
		return false
	}
	if name[len(name)-1] >= utf8.RuneSelf {
		// "ü.example。." is dialed as "xn--tda.example..", with an
		// empty label (see idna.ToASCII), not as "ü.example。" is.
		switch r, _ := utf8.DecodeLastRuneInString(name); r {
		case '\u3002', '\uFF0E', '\uFF61':
			return false
		}
	}
	return !hasPort(name) && !isIPv4(name)
}

// isIPv4 reports whether name is an IPv4 address in the form net/http
// dials as an address, not as a name ("192.0.2.1"). It parses only a name
// of digits and dots.
func isIPv4(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Is4()
}

// defaultPort returns the default port of scheme, colon included, or "".
func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return ":443"
	case "http":
		return ":80"
	}
	return ""
}

// hasPort reports whether host, as in URL.Host, ends with a port.
func hasPort(host string) bool {
	i := strings.LastIndexByte(host, ':')
	return i >= 0 && i > strings.LastIndexByte(host, ']')
}

// lowerASCII returns s with its ASCII letters lower-cased, and no other
// character changed: a name past ASCII that net/http does not convert
// (see canonicalHost) is dialed as it is, and a resolver need not take
// "Ä" for "ä". It allocates only when s has an upper-case ASCII letter.
func lowerASCII(s string) string {
	i := 0
	for i < len(s) && !('A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// stateHost returns the host under which the per-host state of req, whose
// URL is not nil, is kept (its breaker, slots of WithMaxInFlight and
// rate-limit partitions; its retry budget is its address's: see
// addressHost): the host the server sees.
// That is its URL's, but for a request whose Host header names a virtual
// host behind that address (see virtualHost), whose state is kept under
// the Host header's name: the virtual hosts of one ingress or gateway, or
// of a server called by its IP address, are as many servers to their
// callers, and one's failures or quota must not refuse or pace the
// others, as a plain client is not held back (keyed by the address, three
// 500s of one opened the breaker of all). A
// Host header net/http cannot write as it is (see redact.ValidHost) is
// sent empty, and names no virtual host: the state is the address's; nor
// does one that names the URL's host on another port (or without its port,
// as URL.Hostname gives it), which is that host.
// For a URL without a host, it is its Host field, which a custom
// RoundTripper routes it by (net/http's refuses it, and a request without
// either is refused before it is sent: see invalidRequest). It compares
// the two only for a request whose Host is set and differs from its URL's
// host as a string (http.NewRequest sets it to the same), and allocates
// only for a name whose canonical form that takes (see sameHostName).
func stateHost(req *http.Request) string {
	if u := req.URL.Host; req.Host == "" || req.Host == u { // http.NewRequest's Host is its URL's host
		return u
	}
	return namedStateHost(req)
}

// addressHost returns the host of the address req, whose URL is not nil,
// is sent to: its URL's host, whatever virtual host its Host header names
// (see stateHost); for a URL without a host, its Host field, which a
// custom RoundTripper routes it by. The retry budget is kept under it (see
// RetryBudget): it bounds the load on the server the connection goes to,
// which the virtual hosts behind it share. It allocates nothing.
func addressHost(req *http.Request) string {
	if u := req.URL.Host; u != "" || req.Host == "" {
		return u
	}
	return req.Host
}

// namedStateHost is stateHost for a request whose Host is set, and is not
// its URL's host's string: the rare case, apart from the common one.
func namedStateHost(req *http.Request) string {
	h, u := req.Host, req.URL.Host
	switch {
	case u == "":
		return h
	case !redact.ValidHost(h) || sameHostName(req.URL.Scheme, h, u):
		// A Host that names the URL's host on another port (the name
		// alone, as URL.Hostname gives it) is that host: kept under the
		// Host, its state would be that of the host on the scheme's
		// default port.
		return u
	}
	return h
}

// sameHostName reports whether h, a Host header, names u, its URL's host,
// on whatever port: the same name in another case, the same address in
// another form, or the canonical form of either (see canonicalHost). h
// may be an IPv6 address without its brackets, as URL.Hostname gives it
// ("2001:db8::1" of "[2001:db8::1]:8080"), which canonicalHost, reading a
// URL's host, would split at its last colon. It allocates only for a name
// whose canonical form it needs (a final dot, a name past ASCII, user
// information): every attempt of a request to a virtual host asks.
func sameHostName(scheme, h, u string) bool {
	hn, un := nameOfHost(h), nameOfHost(u)
	if strings.EqualFold(hn, un) {
		return true
	}
	if strings.IndexByte(hn, ':') >= 0 || strings.IndexByte(un, ':') >= 0 {
		a, errA := netip.ParseAddr(hn)
		b, errB := netip.ParseAddr(un)
		if errA == nil && errB == nil {
			return a.Unmap() == b.Unmap()
		}
	}
	if plainName(hn) && plainName(un) {
		return false // names whose canonical form is their lower case
	}
	scheme = lowerASCII(scheme)
	hn, _ = splitHostPort(canonicalHost(scheme, h))
	un, _ = splitHostPort(canonicalHost(scheme, u))
	return hn == un
}

// nameOfHost returns the name of host, a URL's host or a Host header,
// without its port and the brackets of an IPv6 address; a host of more
// than one colon and no bracket is an IPv6 address alone.
func nameOfHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') &&
		(strings.HasPrefix(host, "[") || strings.IndexByte(host[:i], ':') < 0) {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// plainName reports whether name, a host's without its port, is its own
// canonical form but for the case of its ASCII letters: ASCII, without
// user information and without a final dot.
func plainName(name string) bool {
	return isASCII(name) && strings.IndexByte(name, '@') < 0 && !strings.HasSuffix(name, ".")
}

// virtualHost reports whether req names in its Host header another host
// than the one its URL dials (net/http dials URL.Host and sends Host): a
// virtual host behind that address, such as a service behind an ingress
// or a gateway, or a server called by its IP address. Its answers are its
// own: they teach nothing of the address, which may serve other virtual
// hosts that behave otherwise. It compares the two by their canonical
// forms only when they differ as strings: http.NewRequest sets Host to
// URL.Host, and costs nothing then.
func virtualHost(req *http.Request) bool {
	h := req.Host
	if h == "" || h == req.URL.Host {
		return false
	}
	scheme := lowerASCII(req.URL.Scheme)
	return canonicalHost(scheme, h) != canonicalHost(scheme, req.URL.Host)
}

// virtualHostName returns the virtual host req's Host header names (see
// virtualHost), bounded as urlKey bounds a host and in canonical form; ""
// when it names its URL's own.
func virtualHostName(req *http.Request) string {
	if !virtualHost(req) {
		return ""
	}
	scheme, host := urlKey(lowerASCII(req.URL.Scheme), req.Host)
	return canonicalHost(scheme, host)
}
