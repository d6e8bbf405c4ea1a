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
