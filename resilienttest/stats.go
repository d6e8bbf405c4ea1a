package resilienttest

import "maps"

// Stats is a snapshot of a Server's counters, returned by Server.Stats.
type Stats struct {
	// Requests counts every request the server read, unknown routes
	// included.
	Requests int
	// Attempts counts the requests of each route, by route name (see
	// Routes; on a server WithHandler, the request's method and path);
	// a route without requests has no entry. On a server WithHandler,
	// whose routes are as many as the paths its clients send, it is
	// bounded: once it has 1000 routes, the requests of a route it has
	// not counted yet are counted under OtherRoutes, and so are those of
	// a route longer than 1 KiB; a route scripted (WithScript,
	// SetScript) is counted apart from then on (its attempts before a
	// SetScript may be under OtherRoutes).
	Attempts map[string]int
	// Connections counts the connections the server accepted.
	Connections int

	// StoredWrites counts the writes processed and stored (see the package
	// documentation on idempotency), including those a DropAfter step then
	// dropped.
	StoredWrites int
	// Duplicates counts the stored writes whose route and body equal those
	// of a write stored before under another key or without one.
	Duplicates int
	// DuplicatesByRoute counts the Duplicates of each route, by route
	// name (RouteCreatePost: the posts created twice); a route without
	// one has no entry.
	DuplicatesByRoute map[string]int
	// Replays counts the writes answered with the stored response of their
	// key.
	Replays int
	// Conflicts counts the writes refused because their key was stored
	// with another body.
	Conflicts int
	// KeyRequired counts the writes refused for lack of a key.
	KeyRequired int
	// InFlightConflicts counts the writes refused with a 409 because
	// another attempt with the same key was still being processed.
	InFlightConflicts int

	// RateLimited counts the 429 responses sent: past the quota, scripted
	// or random.
	RateLimited int
	// ServerErrors counts the 5xx responses sent.
	ServerErrors int
	// Dropped counts the connections a DropBefore or DropAfter step (or
	// fault) closed without an answer, before or after processing. A
	// request whose wait (WithLatency, Slow) ends because its client went
	// away or the Server closed, and one that arrives as the Server
	// closes, is dropped too, uncounted: WithExchanges tells of every drop.
	Dropped int
	// Injected counts the attempts a script step or a random fault acted
	// on (a Normal step is not counted).
	Injected int
}

// OtherRoutes is the route Stats.Attempts counts the requests of a server
// WithHandler under when it has no room for their own: the routes seen
// after the first 1000, and those longer than 1 KiB (see Stats). It is
// not a route, and no script applies to it.
const OtherRoutes = "*"

// The bounds of Stats.Attempts (see Stats).
const (
	maxRoutes   = 1000
	maxRouteLen = 1 << 10
)

// snapshot returns a copy of st that shares nothing with it.
func (st *Stats) snapshot() Stats {
	c := *st
	c.Attempts = maps.Clone(st.Attempts)
	if c.Attempts == nil {
		c.Attempts = map[string]int{}
	}
	c.DuplicatesByRoute = maps.Clone(st.DuplicatesByRoute)
	if c.DuplicatesByRoute == nil {
		c.DuplicatesByRoute = map[string]int{}
	}
	return c
}

// countAttempt counts a request read, and an attempt of route unless
// route is "" (a request for no route): under its own name if Attempts
// has it or has room for it, or if apart (a route always counted apart),
// else under OtherRoutes.
func (st *Stats) countAttempt(route string, apart bool) {
	st.Requests++
	if route == "" {
		return
	}
	if st.Attempts == nil {
		st.Attempts = make(map[string]int)
	}
	if !apart {
		if _, ok := st.Attempts[route]; !ok && (len(route) > maxRouteLen || len(st.Attempts) >= maxRoutes) {
			route = OtherRoutes
		}
	}
	st.Attempts[route]++
}

// countDuplicate counts a stored write of route that duplicates an earlier
// one.
func (st *Stats) countDuplicate(route string) {
	st.Duplicates++
	if st.DuplicatesByRoute == nil {
		st.DuplicatesByRoute = make(map[string]int)
	}
	st.DuplicatesByRoute[route]++
}

// countStatus counts a response sent with status.
func (st *Stats) countStatus(status int) {
	switch {
	case status == 429:
		st.RateLimited++
	case status >= 500:
		st.ServerErrors++
	}
}

// Stats returns a snapshot of the server's counters. It is safe to call
// concurrently with requests; a request in progress may or may not be
// counted yet.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.snapshot()
}

// Reset sets every counter of Stats to zero. It keeps everything else: the
// stored writes and posts, the counts RouteUsage reports (its "requests"
// included), the positions of the scripts, the quota's windows and the
// random source of the faults.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}
