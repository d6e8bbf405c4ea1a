package redact

import "strings"

// strayUserinfo returns s, a URL after its "//" (or after its scheme,
// "user:pa/ss@host"), without the user information that a '/', a '?' or
// a '#' within it hides from the usual reading (what precedes the last
// '@' before the first of them): a
// password written unescaped, as in a proxy's address that net/http could
// not parse, "alice:pa/ss@proxy:3128", which url.Parse reads as the host
// "alice" with the port "pa", and quotes whole in its error. Such an
// authority is no host's, its port being no number: the user information
// runs to the '@' that follows it (the last before the path after that
// one), or, with none (url.Parse quotes "http://alice:pa" alone when a
// '#' made the rest a fragment), the authority is REDACTED. It reports
// false, and returns s, when the authority, after any user information of
// the usual kind, is a host with a port of digits or none, an IPv6
// literal, and when its port is the name of a scheme's service
// ("api.example.com:https") and no '@' ends a password after it: with one, the name is a password's
// start ("alice:https/pw@proxy"). A port (of digits, or a service's name)
// is read before the parameters that may follow it
// ("api.example.com:443;jsessionid=…", whose values Opaque redacts)
// when no '@' ends a password after it: with one, the authority is a
// password's start ("alice:1234;x/y@proxy"), unless a parameter's name
// says it carries a credential, as a servlet's session id does (see
// hostParamNamed). An '@' that begins a segment of the path
// ("/users/@alice") ends no password.
func strayUserinfo(s string) (string, bool) {
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	auth := s[:end]
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		// A user name with an '@' in it, an e-mail address, before the
		// password ("alice@corp.example:pa/ss@host"): the rule is read
		// after the user information of the usual kind too.
		if r, stray := strayUserinfo(s[at+1:]); stray {
			return r, true
		}
		return s, false
	}
	host, _, params := strings.Cut(auth, ";")
	c := strings.LastIndexByte(host, ':')
	if c < 0 || strings.HasPrefix(auth, "[") || host[c+1:] == "" || !params && isDigits(host[c+1:]) {
		return s, false
	}
	port := host[c+1:]
	if params && hostPort(port) && hostParamNamed(auth[len(host)+1:]) {
		return s, false // "api.example.com:443;jsessionid=…/x?to=a@b"
	}
	at := end
	for {
		k := strings.IndexByte(s[at:], '@')
		if k < 0 {
			if hostPort(port) {
				return s, false // a host's port, then its parameters
			}
			return Placeholder + s[end:], true
		}
		if at += k; s[at-1] != '/' {
			break
		}
		at++
	}
	stop := len(s)
	if j := strings.IndexByte(s[at:], '/'); j >= 0 {
		stop = at + j
	}
	return s[strings.LastIndexByte(s[:stop], '@')+1:], true
}

// hostPort reports whether port, what follows the last ':' of an
// authority, may be a host's: digits, or the name of a scheme's service
// ("api.example.com:https", as net.Dial reads one).
func hostPort(port string) bool {
	return isDigits(port) || strings.EqualFold(port, "http") || strings.EqualFold(port, "https")
}

// hostParamNamed reports whether params, the parameters after a host's
// port ("jsessionid=…;v=1"), name one that carries a credential (see
// SecretName): a host's session id, whose value Opaque
// hides, and no password's rest.
func hostParamNamed(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		if name, _, ok := strings.Cut(p, "="); ok && SecretName(name) {
			return true
		}
	}
	return false
}
