package resilient

import (
	"sync"
)

// hostNames holds the canonical forms (see canonicalName) of the hosts
// spelled otherwise, for the lookups that need a host's canonical name on
// every attempt (a rate-limit partition, the write rule's hosts): making
// the canonical form of API.example.com, api.example.com.:8443,
// api.example.com:0443, [0:0::1] or bücher.example builds a string, which a lookup then makes once per spelling, not once
// per attempt. A lookup takes no lock. The table holds at most
// maxHostNames spellings, each bounded (urlKey), and is emptied when full:
// a server that names ever new spellings costs their attempts a few
// copies and a lock, and no more memory. It is safe for
// concurrent use once init has run.
type hostNames struct {
	mu sync.Mutex // serializes the writes of t
	t  hostTable[breakerKey, breakerKey]
}

// maxHostNames bounds the spellings a hostNames holds.
const maxHostNames = 4096

// hostName is a spelling of a host held by a hostNames, and its canonical
// form, in one allocation.
type hostName struct {
	node  tableNode[breakerKey, breakerKey]
	canon breakerKey
}

func (n *hostNames) init() { n.t.init() }

// canonical returns scheme and host, a URL's as urlKey bounds them, in
// their canonical form (canonicalName). It allocates nothing for a
// canonical spelling, as most are, nor for a spelling met before.
func (n *hostNames) canonical(scheme, host string) (string, string) {
	if !hasUpperASCII(scheme) && plainHost(host) {
		return scheme, cutHost(scheme, host) // a substring: no copy
	}
	k := breakerKey{scheme, host}
	h := n.t.hashOf(k)
	if c := n.t.find(k, h); c != nil {
		return c.scheme, c.host
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.t.find(k, h); c != nil {
		return c.scheme, c.host
	}
	if n.t.len() >= maxHostNames {
		n.t.clear()
	}
	e := new(hostName)
	e.canon.scheme, e.canon.host = canonicalName(scheme, host)
	e.canon = e.canon.clone()
	n.t.insert(k.clone(), h, &e.canon, &e.node)
	return e.canon.scheme, e.canon.host
}

// canonicalName returns scheme and host, a URL's, in the form the
// per-host state is kept under: the scheme lower-cased, the host as
// canonicalHost says.
func canonicalName(scheme, host string) (string, string) {
	scheme = lowerASCII(scheme)
	return scheme, canonicalHost(scheme, host)
}

// hasUpperASCII reports whether s has an ASCII upper-case letter.
func hasUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
