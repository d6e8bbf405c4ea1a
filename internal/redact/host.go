package redact

import "strings"

// ValidHost reports whether h, the Host a request is sent with, is one
// net/http writes as it is: only the bytes of a host, a port, an IPv6
// literal and its zone, as httpguts.ValidHostHeader allows. A byte past
// ASCII is let be: net/http writes such a name in punycode. net/http sends
// any other Host empty (to a proxy, not at all), so that what it held,
// such as user information put there by hand, never reaches a server, and
// is not to be recorded as the server's name either.
func ValidHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// Userinfo returns h, a URL's host (URL.Host, or a Host header), with the
// user information a caller put in it by hand ("alice:s3cret@api.test",
// which url.Parse would have taken out into URL.User) replaced by
// Placeholder: "REDACTED@api.test". Everything before the last '@' is user
// information, as url.Parse reads an authority. A host without an '@' is
// returned as it is, without an allocation. The host that remains is not
// the host without the user information: net/http dials the whole of h,
// and sends it empty as the Host header (see ValidHost).
func Userinfo(h string) string {
	at := strings.LastIndexByte(h, '@')
	if at < 0 || h[:at] == Placeholder {
		return h
	}
	return Placeholder + h[at:]
}
