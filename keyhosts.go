package resilient

import (
	"strings"
	"sync"
)

// namedHost is a host named with WithKeyHonoringHosts: its name,
// lower-cased, as in URL.Host but without a port, and its port, "" for
// every port.
type namedHost struct{ name, port string }

// splitNamed splits host, a URL host, into its name and its port.
func splitNamed(host string) namedHost {
	if !hasPort(host) {
		return namedHost{name: host}
	}
	i := strings.LastIndexByte(host, ':')
	return namedHost{host[:i], host[i+1:]}
}

// validPort reports whether port, a URL host's port, is empty or a number
// from 0 to 65535 (leading zeros allowed).
func validPort(port string) bool {
	if port == "" {
		return true
	}
	n := 0
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < '0' || c > '9' {
			return false
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return false
		}
	}
	return true
}

// maxKeyHosts bounds the table of hosts learned to honor keys.
const maxKeyHosts = 4096

// keyHosts is what a Transport knows of the hosts that deduplicate writes
// by key: those named with WithKeyHonoringHosts (read only) and those
// learned from their answers. It is safe for concurrent use, and a lookup
// takes no lock.
type keyHosts struct {
	named map[namedHost]bool
	names hostNames // the canonical names of the hosts spelled otherwise

	// The hosts learned, by canonical key (see hostKey); written under mu.
	learned hostTable[breakerKey, struct{}]
	mu      sync.Mutex
}

// learnedHost is an entry of keyHosts.learned, in one allocation.
type learnedHost struct {
	node tableNode[breakerKey, struct{}]
	v    struct{}
}

func newKeyHosts(named map[namedHost]bool) *keyHosts {
	k := &keyHosts{named: named}
	k.names.init()
	k.learned.init()
	return k
}

// isLearned reports whether the host was learned to honor keys from its
// answers. It allocates nothing for a host spelled as before.
func (k *keyHosts) isLearned(scheme, host string) bool {
	return k.learned.len() != 0 && k.learned.load(k.hostKey(scheme, host)) != nil
}

// isNamed reports whether the host was named with WithKeyHonoringHosts.
func (k *keyHosts) isNamed(scheme, host string) bool {
	if len(k.named) == 0 {
		return false
	}
	c := k.hostKey(scheme, host)
	h := splitNamed(c.host)
	if k.named[namedHost{name: h.name}] {
		return true // named on every port
	}
	if h.port == "" {
		h.port = strings.TrimPrefix(defaultPort(c.scheme), ":")
	}
	return h.port != "" && k.named[h]
}

// learn records that the host deduplicates writes by key.
func (k *keyHosts) learn(scheme, host string) {
	key := k.hostKey(scheme, host)
	h := k.learned.hashOf(key)
	if k.learned.find(key, h) != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.learned.find(key, h) != nil {
		return
	}
	if k.learned.len() >= maxKeyHosts {
		// Full: forget half of what was learned, in table order.
		i := 0
		k.learned.filter(func(breakerKey, *struct{}) bool {
			i++
			return i%2 == 0
		})
	}
	e := new(learnedHost)
	k.learned.insert(key.clone(), h, &e.v, &e.node)
}

// forget drops what was learned of the host: it answered as only a host
// that ignores keys does (see ignoresKeys). A host named with
// WithKeyHonoringHosts stays named.
func (k *keyHosts) forget(scheme, host string) {
	if k.learned.len() == 0 {
		return
	}
	key := k.hostKey(scheme, host)
	if k.learned.load(key) == nil {
		return
	}
	k.mu.Lock()
	k.learned.delete(key)
	k.mu.Unlock()
}

// hostKey returns the key of a URL's scheme and host in the tables of k:
// bounded (urlKey) and canonical (hostNames), so that every spelling of a
// host (any case, with or without the scheme's default port or a final
// dot) is one host.
func (k *keyHosts) hostKey(scheme, host string) breakerKey {
	scheme, host = urlKey(scheme, host)
	scheme, host = k.names.canonical(scheme, host)
	return breakerKey{scheme, host}
}
