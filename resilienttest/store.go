package resilienttest

import (
	"crypto/sha256"
	"net/http"
	"sync"
)

// stored is the first response to a write, replayed for a repeated key.
type stored struct {
	hash   [32]byte
	status int
	header http.Header
	body   []byte
}

// store is the idempotency store of a Server's writes.
//
// A write with a key is stored once per (route, key): a repeat with the
// same payload gets the first response again (a replay), a repeat with
// another payload gets the dialect's conflict error. A write without a key
// is stored every time. A duplicate is a write stored whose payload (route
// and body) was already stored before, under another key or none: what a
// social network would publish twice.
type store struct {
	mu       sync.Mutex
	byKey    map[string]*stored  // route + "\x00" + key
	payloads map[[32]byte]int    // payload hash → times stored
	posts    map[string]struct{} // ids of created posts
	tried    map[string]struct{} // route + key of writes seen, for FirstAttemptsOnly
}

func newStore() *store {
	return &store{
		byKey:    map[string]*stored{},
		payloads: map[[32]byte]int{},
		posts:    map[string]struct{}{},
		tried:    map[string]struct{}{},
	}
}

func payloadHash(route string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(body)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// firstTry records that a write with key was seen, and reports whether it
// is the first time.
func (s *store) firstTry(route, key string) bool {
	if key == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := route + "\x00" + key
	if _, ok := s.tried[k]; ok {
		return false
	}
	s.tried[k] = struct{}{}
	return true
}

// write stores a write atomically: for a key already stored it returns the
// stored response (replay) or reports a conflict; otherwise it builds the
// response with answer, stores it, and reports whether its payload had
// already been stored (a duplicate).
func (s *store) write(route, key string, hash [32]byte, answer func() (int, http.Header, []byte)) (st *stored, replay, conflict, duplicate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := route + "\x00" + key
	if key != "" {
		if old := s.byKey[k]; old != nil {
			if old.hash != hash {
				return nil, false, true, false
			}
			return old, true, false, false
		}
	}
	status, header, body := answer()
	st = &stored{hash: hash, status: status, header: header, body: body}
	if key != "" {
		s.byKey[k] = st
	}
	s.payloads[hash]++
	return st, false, false, s.payloads[hash] > 1
}

// addPostLocked records a created post; s.mu is held (by write).
func (s *store) addPostLocked(id string) { s.posts[id] = struct{}{} }

func (s *store) hasPost(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.posts[id]
	return ok
}
