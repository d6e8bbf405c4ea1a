package resilient

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/resilienthttp/resilient/internal/idna"
	"github.com/resilienthttp/resilient/internal/redact"
)

// tableKey is the key of a hostTable: a comparable struct that hashes
// itself, its host first, without building a string.
type tableKey interface {
	comparable
	hash(seed maphash.Seed) uint64
}

// hostTable is a hash table of per-host state (breakers, rate-limit
// partitions, retry budgets) that is read without a lock: a lookup hashes
// the key, loads a bucket and walks its chain, with atomic loads only, and
// allocates nothing. Inserts and deletes are made by one writer at a time:
// the owner serializes them under its own lock.
//
// A chain is changed in place by atomic stores that a reader walking it
// sees whole: an insert publishes its node, its fields set, at the end of
// its chain; a delete points the link before the node past it and leaves
// the deleted node's own link as it was, so that a reader standing on it
// walks on to the rest of the chain. A node is never inserted again. A lookup that runs at the same time as an insert or a
// delete of its key finds the table as it was before or as it is after.
// When the table grows or is filtered, the nodes are copied into a new
// bucket array that replaces the old one, which its readers finish walking
// unchanged.
//
// A node can be embedded in the value it holds, so that a value inserted
// under one key costs no allocation but its own: see insert.
type hostTable[K tableKey, V any] struct {
	seed    maphash.Seed
	buckets atomic.Pointer[[]atomic.Pointer[tableNode[K, V]]]
	n       atomic.Int64 // keys held; written under the owner's lock
}

// tableNode holds one key of a hostTable and its value.
type tableNode[K tableKey, V any] struct {
	hash uint64 // key's: a walk compares the keys of matching hashes only
	key  K
	val  *V
	next atomic.Pointer[tableNode[K, V]]
}

// minTableBuckets is the size of a new table's bucket array; it doubles
// whenever the keys reach half the buckets.
const minTableBuckets = 16

// init prepares t, empty, with a seed of its own.
func (t *hostTable[K, V]) init() {
	t.seed = maphash.MakeSeed()
	t.clear()
}

// load returns the value of k, or nil. It takes no lock.
func (t *hostTable[K, V]) load(k K) *V {
	return t.find(k, t.hashOf(k))
}

// hashOf returns the hash of k in t, for find and insert.
func (t *hostTable[K, V]) hashOf(k K) uint64 {
	return k.hash(t.seed)
}

// find returns the value of k, whose hash is h, or nil. It takes no lock.
func (t *hostTable[K, V]) find(k K, h uint64) *V {
	b := *t.buckets.Load()
	for n := b[h&uint64(len(b)-1)].Load(); n != nil; n = n.next.Load() {
		if n.hash == h && n.key == k {
			return n.val
		}
	}
	return nil
}

// len returns the number of keys held. It takes no lock.
func (t *hostTable[K, V]) len() int { return int(t.n.Load()) }

// insert adds k, whose hash is h (hashOf), with value v; k must not be in
// the table, and the owner's lock is held. The table keeps k: it must hold
// no substring of a request's URL (see keepKey). node, when not nil, is the node
// to hold them, never inserted before (a value embeds one for its first
// key); else insert allocates one. The node goes at the end of its chain,
// so that the oldest keys, which are the first evicted, are found first
// when they are deleted.
func (t *hostTable[K, V]) insert(k K, h uint64, v *V, node *tableNode[K, V]) {
	b := *t.buckets.Load()
	if t.len() >= len(b)/2 {
		b = t.grow(b)
	}
	if node == nil {
		node = new(tableNode[K, V])
	}
	node.hash, node.key, node.val = h, k, v
	link(b, node)
	t.n.Add(1)
}

// link publishes node at the end of its chain in b, whole: its fields are
// set before a reader can reach it.
func link[K tableKey, V any](b []atomic.Pointer[tableNode[K, V]], node *tableNode[K, V]) {
	last := &b[node.hash&uint64(len(b)-1)]
	for n := last.Load(); n != nil; n = n.next.Load() {
		last = &n.next
	}
	last.Store(node)
}

// grow replaces the bucket array b by one twice its size, holding copies
// of b's nodes, and returns it; the owner's lock is held.
func (t *hostTable[K, V]) grow(b []atomic.Pointer[tableNode[K, V]]) []atomic.Pointer[tableNode[K, V]] {
	nb := make([]atomic.Pointer[tableNode[K, V]], 2*len(b))
	for i := range b {
		for n := b[i].Load(); n != nil; n = n.next.Load() {
			link(nb, &tableNode[K, V]{hash: n.hash, key: n.key, val: n.val})
		}
	}
	t.buckets.Store(&nb)
	return nb
}

// each calls f with each key of t and its value; the owner's lock is held.
func (t *hostTable[K, V]) each(f func(k K, v *V)) {
	b := *t.buckets.Load()
	for i := range b {
		for n := b[i].Load(); n != nil; n = n.next.Load() {
			f(n.key, n.val)
		}
	}
}

// filter replaces the bucket array by one of the same size holding copies
// of the nodes whose key and value keep accepts, as grow does: readers of
// the old array finish walking it unchanged. The owner's lock is held.
func (t *hostTable[K, V]) filter(keep func(k K, v *V) bool) {
	b := *t.buckets.Load()
	nb := make([]atomic.Pointer[tableNode[K, V]], len(b))
	var n int64
	for i := range b {
		for o := b[i].Load(); o != nil; o = o.next.Load() {
			if keep(o.key, o.val) {
				link(nb, &tableNode[K, V]{hash: o.hash, key: o.key, val: o.val})
				n++
			}
		}
	}
	t.buckets.Store(&nb)
	t.n.Store(n)
}

// delete removes k and reports whether it was held; the owner's lock is
// held.
func (t *hostTable[K, V]) delete(k K) bool {
	return t.unlink(t.hashOf(k), k)
}

// deleteNode removes the key of node, a node inserted in the table (or its
// copy, since the table grew), and reports whether it was held; the owner's
// lock is held. Unlike delete, it does not hash the key again.
func (t *hostTable[K, V]) deleteNode(node *tableNode[K, V]) bool {
	return t.unlink(node.hash, node.key)
}

// unlink removes k, whose hash is h, and reports whether it was held.
func (t *hostTable[K, V]) unlink(h uint64, k K) bool {
	b := *t.buckets.Load()
	prev := &b[h&uint64(len(b)-1)]
	for n := prev.Load(); n != nil; n = n.next.Load() {
		if n.hash == h && n.key == k {
			prev.Store(n.next.Load()) // n keeps its link for its readers
			t.n.Add(-1)
			return true
		}
		prev = &n.next
	}
	return false
}

// clear removes every key; the owner's lock is held. Readers of the
// previous bucket array finish with it.
func (t *hostTable[K, V]) clear() {
	b := make([]atomic.Pointer[tableNode[K, V]], minTableBuckets)
	t.buckets.Store(&b)
	t.n.Store(0)
}

// hash returns the hash of k: its host's, and its scheme's length, which
// tells http from https (a custom key has no scheme).
func (k breakerKey) hash(seed maphash.Seed) uint64 {
	return maphash.String(seed, k.host) + uint64(len(k.scheme))
}

// hash returns the hash of k: its host's, its scheme's length, its class,
// its resource's when it has one, and its credential's when it has one,
// hashed with the seed: the partitions of one host for many credentials
// spread over the buckets, even for credentials chosen so that their
// fingerprints share their low bits.
func (k partKey) hash(seed maphash.Seed) uint64 {
	h := maphash.String(seed, k.host) + uint64(len(k.scheme))
	if k.write {
		h += 2
	}
	if k.resource != "" {
		h ^= maphash.String(seed, k.resource)
	}
	if k.cred != 0 {
		h ^= maphash.Comparable(seed, k.cred)
	}
	return h
}

// A URL's scheme and host are substrings of the whole URL, and a server
// that redirects names it: net/http takes a Location of up to 10 MB. The
// tables key their state by the scheme and host of requests, for as long
// as they hold a host, so that a key taken as it is from a URL would keep
// the whole URL alive, and a host megabytes long would be hashed and
// compared on every lookup, and quoted whole in log records and errors.
// So a key's scheme and host are bounded where a key is made from a
// request (urlKey, breakerKey.bounded), and cloned where a table keeps one
// (keepKey, clone).

// maxKeyPort is the longest port a key's host keeps, colon included.
const maxKeyPort = len(":65535")

// urlKey returns scheme and host, a URL's, as the keys of the tables, the
// records of attempts and the errors hold them: as they are, unless the
// host holds user information put there by hand, which REDACTED replaces
// (redact.Userinfo: "REDACTED@api.test"), or the scheme or the host's name
// is longer than redact.MaxHost bytes (the longest domain name) or its
// port longer than a port, in which case they are cut to those bounds, the
// port kept (see boundedKey). Two hosts whose names differ only past their
// first 255 bytes share their state, as a host does with itself, unless
// their names are past ASCII (see boundedName). It allocates nothing for a
// URL within the bounds and without an '@'.
func urlKey(scheme, host string) (string, string) {
	if len(scheme)|len(host) > redact.MaxHost || strings.IndexByte(host, '@') >= 0 {
		scheme, host = boundedKey(scheme, redact.Userinfo(host))
	}
	return scheme, host
}

// maxCustomKey is the longest custom key (BreakerSettings.Key,
// WithRateLimitKey) kept as it is; see customKey.
const maxCustomKey = 255

// customKeyDigest is the number of bytes of a long custom key's SHA-256
// that its bounded form keeps: 128 bits, so that two long keys share
// their state only when they are the same key, with overwhelming
// probability, even when chosen by a client that controls them.
const customKeyDigest = 16

// customKey returns k, a custom key (BreakerSettings.Key,
// WithRateLimitKey), as the tables, the errors, the log records and a
// QuotaStore see it: as it is when it has at most maxCustomKey bytes, as
// most do; else its first bytes, cut at the boundary of a character, then
// "…" and the hex of a digest of the whole key, maxCustomKey bytes at most.
// A caller that keys by a whole URL, or by a header a client controls,
// thus keeps at most that much per key, and two long keys that differ
// anywhere keep state of their own. It costs a key within the bound a
// comparison only.
func customKey(k string) string {
	if len(k) <= maxCustomKey {
		return k
	}
	return longCustomKey(k)
}

// longCustomKey returns the bounded form of k, a custom key longer than
// maxCustomKey (see customKey), in a string that does not keep k alive.
func longCustomKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	const suffix = len("…") + 2*customKeyDigest
	n := maxCustomKey - suffix
	for n > 0 && !utf8.RuneStart(k[n]) {
		n--
	}
	b := make([]byte, 0, n+suffix)
	b = append(b, k[:n]...)
	b = append(b, "…"...)
	b = hex.AppendEncode(b, sum[:customKeyDigest])
	return string(b)
}

// bounded returns k as the tables hold it: a default key's scheme and host
// bounded as urlKey says; a key without a scheme, as customKey bounds it.
// That is a custom key (BreakerSettings.Key), bounded already where it was
// made (requestKey, customKey), which it leaves as it is; or the host of a
// URL without a scheme ("//host/path", which a custom base may serve),
// which nothing bounded before: one longer than maxCustomKey (no custom
// key is, by then) is bounded in its canonical spelling (canonicalHost),
// so that its spellings share one key, as those of a URL host within the
// bounds share its canonical key, and ResetHost names it by any of them
// (see schemelessKey). The lookups of an attempt use the key as
// the request has it (requestKey), which finds any host within the bounds
// without this check; a lookup that misses inserts, under its table's
// lock, and bounds the key then, finding a host past the bounds under its
// bounded key.
func (k breakerKey) bounded() breakerKey {
	if k.scheme != "" {
		k.scheme, k.host = urlKey(k.scheme, k.host)
	} else if len(k.host) > maxCustomKey {
		k.host = schemelessKey(k.host)
	}
	return k
}

// schemelessKey returns the key under which the tables hold host, the host
// of a URL without a scheme longer than maxCustomKey: its canonical
// spelling, bounded as customKey bounds a key.
func schemelessKey(host string) string {
	return customKey(canonicalHost("", host))
}

// boundedKey returns scheme and host cut to the bounds of urlKey.
func boundedKey(scheme, host string) (string, string) {
	return redact.Truncate(scheme, redact.MaxHost), boundedHost(host)
}

// boundedHost returns host with its name bounded at redact.MaxHost bytes
// (see boundedName) and its port at maxKeyPort, its leading zeros dropped
// first (a port is read as a number: ":0000000443" is 443, not 0), in a
// string that does not keep host alive when it cut either.
func boundedHost(host string) string {
	name, port := host, ""
	if hasPort(host) {
		i := strings.LastIndexByte(host, ':')
		name, port = host[:i], host[i:]
		if len(port) > maxKeyPort {
			port = trimPortZeros(port)
		}
	}
	if len(name) <= redact.MaxHost && len(port) <= maxKeyPort {
		return host
	}
	if len(name) > redact.MaxHost {
		name = boundedName(name)
	}
	return name + port[:min(len(port), maxKeyPort)]
}

// boundedName returns name, a URL host's name longer than redact.MaxHost
// bytes, cut to that bound. A name past ASCII may still be a domain name,
// whose punycode is within the bound: two such names that differ only
// past their first bytes are two hosts. Such a name is in punycode
// (canonicalHost) when internal/idna converts it within the bound; else,
// up to 4×255 bytes (the longest name in punycode, a character of four
// bytes to a letter), it is its first bytes and a digest of the whole (see
// longCustomKey). A longer name, or one with user information put in the
// host by hand, which no resolver finds, is cut.
func boundedName(name string) string {
	if isASCII(name) || len(name) > 4*redact.MaxHost || strings.IndexByte(name, '@') >= 0 {
		return redact.Truncate(name, redact.MaxHost)
	}
	base := withoutFinalDot(name)
	if a, ok := idna.ToASCII(base); ok && len(a)+len(name)-len(base) <= redact.MaxHost {
		return a + name[len(base):]
	}
	return longCustomKey(lowerASCII(base))
}

// keepKey returns s, a scheme, a host, a path or a custom key, in a string
// a table may keep: a copy, which does not keep alive the URL s may be part
// of, but for the common schemes, which need none. A sync.Map keeps the key
// of its last Store, Swap or CompareAndSwap: each is given a copy.
func keepKey(s string) string {
	switch s {
	case "https":
		return "https"
	case "http":
		return "http"
	}
	return strings.Clone(s)
}

// clone returns k in strings a table may keep (see keepKey).
func (k breakerKey) clone() breakerKey {
	return breakerKey{keepKey(k.scheme), keepKey(k.host)}
}

// clone returns k in strings a table may keep (see keepKey).
func (k partKey) clone() partKey {
	k.scheme, k.host, k.resource = keepKey(k.scheme), keepKey(k.host), keepKey(k.resource)
	return k
}
