package resilienttest

import (
	"crypto/sha256"
	"net/http"
)

// store is a Server's idempotency store (see the package documentation).
// The Server's mutex guards it.
type store struct {
	byKey    map[storeKey]*storedWrite
	hashes   map[bodyHash]int      // stored writes per route and body hash
	inFlight map[storeKey]struct{} // keys of the writes being processed
}

// msgInFlight is the message of the 409 answered to a write whose key is
// still in flight.
const msgInFlight = "A request with this Idempotency-Key is still being processed; retry later"

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

// claim marks the key of a write on route as in flight and reports
// whether the caller now holds it: false if another write holds it.
func (s *store) claim(route, key string) bool {
	k := storeKey{route, key}
	if _, held := s.inFlight[k]; held {
		return false
	}
	if s.inFlight == nil {
		s.inFlight = make(map[storeKey]struct{})
	}
	s.inFlight[k] = struct{}{}
	return true
}

// busy reports whether a write with key on route is in flight.
func (s *store) busy(route, key string) bool {
	_, held := s.inFlight[storeKey{route, key}]
	return held
}

// release ends the flight of the key of a write on route.
func (s *store) release(route, key string) { delete(s.inFlight, storeKey{route, key}) }

// releaseKey releases, under the Server's lock, the key an attempt holds
// in flight (if owner).
func (s *Server) releaseKey(owner bool, route, key string) {
	if !owner {
		return
	}
	s.mu.Lock()
	s.store.release(route, key)
	s.mu.Unlock()
}

// idempotencyKey returns the request's key: Idempotency-Key, else
// X-Idempotency-Key; "" for none. It is the key a server WithHandler and
// Faults.FirstAttemptsOnly read, whatever the dialect.
func idempotencyKey(h http.Header) string {
	if v := h.Get("Idempotency-Key"); v != "" {
		return v
	}
	return h.Get("X-Idempotency-Key")
}

// requestKey returns the key of a request as the dialect's API reads it:
// Aidelly and Postato document the Idempotency-Key header alone, and
// ignore X-Idempotency-Key; Altyaa, which documents no key, reads either
// (see idempotencyKey). "" for none.
func (d Dialect) requestKey(h http.Header) string {
	if d == Altyaa {
		return idempotencyKey(h)
	}
	return h.Get("Idempotency-Key")
}

// dedupes reports whether the dialect's API dedupes writes on route by
// their key: Postato honors Idempotency-Key on POST /posts only, and
// processes its other writes anew under a repeated key; Aidelly and
// Altyaa dedupe both write routes.
func (d Dialect) dedupes(route string) bool {
	if d == Postato {
		return route == RouteCreatePost
	}
	return isWriteRoute(route)
}
