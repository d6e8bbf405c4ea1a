package resilienttest

import (
	"crypto/sha256"
	"net/http"
)

// store is a Server's idempotency store (see the package documentation).
// The Server's mutex guards it.
type store struct {
	byKey  map[storeKey]*storedWrite
	hashes map[bodyHash]int // stored writes per route and body hash
}

type storeKey struct{ route, key string }

type bodyHash struct {
	route string
	sum   [sha256.Size]byte
}

// storedWrite is a write's first response, replayed for its key.
type storedWrite struct {
	sum         [sha256.Size]byte
	status      int
	contentType string
	location    string
	body        []byte
}

// lookup returns the write stored under route and key, if any.
func (s *store) lookup(route, key string) *storedWrite {
	if key == "" {
		return nil
	}
	return s.byKey[storeKey{route, key}]
}

// save stores w under route and key ("" for none) and reports whether its
// body duplicates a write stored before.
func (s *store) save(route, key string, w *storedWrite) (duplicate bool) {
	if s.hashes == nil {
		s.hashes = make(map[bodyHash]int)
		s.byKey = make(map[storeKey]*storedWrite)
	}
	h := bodyHash{route, w.sum}
	duplicate = s.hashes[h] > 0
	s.hashes[h]++
	if key != "" {
		s.byKey[storeKey{route, key}] = w
	}
	return duplicate
}

// idempotencyKey returns the request's key: Idempotency-Key, else
// X-Idempotency-Key; "" for none.
func idempotencyKey(h http.Header) string {
	if v := h.Get("Idempotency-Key"); v != "" {
		return v
	}
	return h.Get("X-Idempotency-Key")
}
