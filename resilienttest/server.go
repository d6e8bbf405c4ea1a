package resilienttest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxRequestBody bounds how much of a request body the Server reads.
const maxRequestBody = 1 << 20

// An Option configures a Server.
type Option func(*Server)

// WithScript makes the first attempts of route (e.g. "POST /v1/posts", see
// the Route constants) get steps, in order; later attempts get the normal
// answer (or a random fault, with WithFaults).
func WithScript(route string, steps ...Step) Option {
	return func(s *Server) { s.scripts[route] = append(s.scripts[route], steps...) }
}

// WithFaults adds a seeded random mix of faults to every attempt that no
// script answers. It panics if the probabilities are negative or add up to
// more than 1.
func WithFaults(f Faults) Option {
	sum := 0.0
	for _, p := range []float64{f.ServerError, f.ServerErrorAfter, f.RateLimit, f.DropBefore, f.DropAfter, f.Slow, f.Malformed, f.HTML, f.Huge} {
		if p < 0 {
			panic("resilienttest: WithFaults: negative probability")
		}
		sum += p
	}
	if sum > 1+1e-9 {
		panic(fmt.Sprintf("resilienttest: WithFaults: probabilities add up to %v, more than 1", sum))
	}
	return func(s *Server) { s.faults = newFaultPicker(f) }
}

// WithQuota enforces and announces q. It panics if q.Limit is not positive.
func WithQuota(q Quota) Option {
	if q.Limit <= 0 {
		panic("resilienttest: WithQuota: Limit must be positive")
	}
	return func(s *Server) { s.quotaCfg = &q }
}

// WithRequireIdempotencyKey makes writes without an Idempotency-Key (or
// X-Idempotency-Key) get 400 with the dialect's key-required error. It is on
// by default for Aidelly, off for the others.
func WithRequireIdempotencyKey(on bool) Option {
	return func(s *Server) { s.requireKey = on }
}

// WithLatency delays every answer by d.
func WithLatency(d time.Duration) Option {
	return func(s *Server) { s.latency = d }
}

// Server is a fault-injecting server of one API dialect. Its methods are
// safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, e.g. http://127.0.0.1:41234 (or
	// http://aidelly.test for a pipe server), with no trailing slash.
	URL string

	dialect    Dialect
	scripts    map[string][]Step
	faults     *faultPicker
	quotaCfg   *Quota
	quota      *quota
	requireKey bool
	latency    time.Duration
	store      *store

	srv       *httptest.Server // loopback mode
	pipe      *pipeListener    // in-memory mode
	pipeSrv   *http.Server
	transport *http.Transport

	ids   atomic.Int64 // request ids
	posts atomic.Int64 // post ids

	mu       sync.Mutex
	scripted map[string]int // attempts of each route answered by its script
	stats    Stats
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	Requests     int            // requests received
	Attempts     map[string]int // requests per route ("POST /v1/posts", …; "other" for unknown routes)
	Connections  int            // connections opened by clients
	StoredWrites int            // writes processed and stored
	Duplicates   int            // writes stored whose payload was already stored: would-be duplicate posts
	Replays      int            // repeated keys answered with the first response
	Conflicts    int            // keys reused with another payload
	KeyRequired  int            // writes refused for lack of a key
	RateLimited  int            // 429s sent, by a fault, a script or the quota
	ServerErrors int            // 5xx sent
	Dropped      int            // connections closed without an answer
}

func newServer(d Dialect, opts []Option) *Server {
	s := &Server{
		dialect:    d,
		scripts:    map[string][]Step{},
		requireKey: d == Aidelly,
		store:      newStore(),
		scripted:   map[string]int{},
		stats:      Stats{Attempts: map[string]int{}},
	}
	for _, o := range opts {
		o(s)
	}
	if s.quotaCfg != nil {
		s.quota = newQuota(*s.quotaCfg)
	}
	return s
}

// NewServer starts a Server of dialect d on a loopback address, as
// httptest.NewServer does. The caller must Close it.
func NewServer(d Dialect, opts ...Option) *Server {
	s := newServer(d, opts)
	s.srv = httptest.NewUnstartedServer(s)
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.stats.Connections++
			s.mu.Unlock()
		}
	}
	s.srv.Start()
	s.URL = s.srv.URL
	s.transport = &http.Transport{MaxIdleConnsPerHost: 64}
	return s
}

// NewPipeServer starts a Server of dialect d that serves in-memory net.Pipe
// connections, reached only through Transport or Client; its URL is
// http://<dialect>.test. Created inside a testing/synctest bubble, all of
// its waits run in the bubble's fake time. The caller must Close it.
func NewPipeServer(d Dialect, opts ...Option) *Server {
	s := newServer(d, opts)
	s.pipe = newPipeListener(func() {
		s.mu.Lock()
		s.stats.Connections++
		s.mu.Unlock()
	})
	s.pipeSrv = &http.Server{Handler: s}
	go s.pipeSrv.Serve(s.pipe)
	s.URL = "http://" + d.String() + ".test"
	s.transport = &http.Transport{
		DialContext:         s.pipe.dial,
		MaxIdleConnsPerHost: 64,
	}
	return s
}

// Transport returns the server's own *http.Transport (for a pipe server,
// the only way to reach it). Wrap it to test a client: resilient.New(
// srv.Transport()).
func (s *Server) Transport() *http.Transport { return s.transport }

// Client returns a plain *http.Client on Transport.
func (s *Server) Client() *http.Client { return &http.Client{Transport: s.transport} }

// Close shuts the server down, closing its connections and the idle
// connections of its Transport.
func (s *Server) Close() {
	s.transport.CloseIdleConnections()
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
		return
	}
	s.pipeSrv.Close()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Attempts = make(map[string]int, len(s.stats.Attempts))
	for k, v := range s.stats.Attempts {
		st.Attempts[k] = v
	}
	return st
}

// Reset zeroes the counters; stored writes, scripts and the quota stay.
func (s *Server) Reset() {
	s.mu.Lock()
	s.stats = Stats{Attempts: map[string]int{}}
	s.mu.Unlock()
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// routeOf names the route of a request, or "" when the server has none.
func routeOf(r *http.Request) (route, id string) {
	p := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodPost && p == "/v1/posts":
		return RouteCreatePost, ""
	case r.Method == http.MethodGet && p == "/v1/posts":
		return RouteListPosts, ""
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/v1/posts/") && !strings.Contains(p[len("/v1/posts/"):], "/"):
		return RouteFetchPost, p[len("/v1/posts/"):]
	case r.Method == http.MethodPost && p == "/v1/media/upload-url":
		return RouteUploadURL, ""
	case r.Method == http.MethodGet && p == "/v1/usage":
		return RouteUsage, ""
	}
	return "", ""
}

func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func requestKey(r *http.Request) string {
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		return k
	}
	return r.Header.Get("X-Idempotency-Key")
}

// ServeHTTP answers one attempt: its script step or random fault, the
// quota, the key rule, then the route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, id := routeOf(r)
	name := route
	if name == "" {
		name = "other"
	}
	s.count(func(st *Stats) { st.Requests++; st.Attempts[name]++ })
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	rid := fmt.Sprintf("%s-%08d", s.dialect, s.ids.Add(1))
	h := w.Header()
	setRequestID(h, rid)
	key := requestKey(r)
	write := isWrite(r.Method)

	step := s.nextStep(name, write, route, key)
	if s.latency > 0 && !pause(r.Context(), s.latency) {
		return
	}
	if s.quota != nil {
		ok, remaining, reset := s.quota.take(write)
		s.quota.setHeaders(h, remaining, reset)
		if !ok {
			h.Set("Retry-After", retryAfterSeconds(time.Until(reset)))
			s.sendError(w, http.StatusTooManyRequests, errRateLimited, name, rid)
			return
		}
	}
	switch step.kind {
	case stepDropBefore:
		s.drop(w)
		return
	case stepSlow:
		if !pause(r.Context(), step.delay) {
			return
		}
	case stepRateLimited:
		h.Set("Retry-After", retryAfterSeconds(step.delay))
		s.sendError(w, http.StatusTooManyRequests, errRateLimited, name, rid)
		return
	case stepHTML:
		s.countStatus(step.status)
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(step.status)
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body><h1>%s</h1><p>upstream error, request %s</p></body></html>\n",
			step.status, http.StatusText(step.status), http.StatusText(step.status), rid)
		return
	case stepMalformed:
		s.countStatus(step.status)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(step.status)
		full := s.dialect.errorBody(errServer, name, rid)
		w.Write(full[:len(full)/2])
		return
	case stepHuge:
		s.countStatus(step.status)
		h.Set("Content-Type", "application/json")
		w.WriteHeader(step.status)
		writeHuge(w, step.size)
		return
	case stepRespond:
		if step.status >= 300 {
			s.sendError(w, step.status, kindOf(step.status), name, rid)
			return
		}
	}
	if route == "" {
		s.sendError(w, http.StatusNotFound, errNotFound, name, rid)
		return
	}
	if write && key == "" && s.requireKey {
		s.count(func(st *Stats) { st.KeyRequired++ })
		s.sendError(w, http.StatusBadRequest, errKeyRequired, name, rid)
		return
	}
	status, hdr, out := s.process(route, id, key, body, rid)
	switch step.kind {
	case stepDropAfter:
		s.drop(w)
		return
	case stepServerAfter:
		s.sendError(w, http.StatusInternalServerError, errServer, name, rid)
		return
	}
	for k, v := range hdr {
		h[k] = v
	}
	setRequestID(h, rid)
	h.Set("Content-Type", "application/json")
	s.countStatus(status)
	w.WriteHeader(status)
	w.Write(out)
}

// nextStep returns the scripted step of the attempt, else a random fault,
// else the normal answer.
func (s *Server) nextStep(name string, write bool, route, key string) Step {
	s.mu.Lock()
	if steps := s.scripts[name]; s.scripted[name] < len(steps) {
		st := steps[s.scripted[name]]
		s.scripted[name]++
		s.mu.Unlock()
		return st
	}
	s.mu.Unlock()
	if s.faults == nil {
		return Step{kind: stepNormal}
	}
	if s.faults.f.FirstAttemptsOnly && write && key != "" && !s.store.firstTry(route, key) {
		return Step{kind: stepNormal}
	}
	return s.faults.pick()
}

// process answers a route normally; writes go through the idempotency
// store.
func (s *Server) process(route, id, key string, body []byte, rid string) (int, http.Header, []byte) {
	switch route {
	case RouteListPosts:
		return http.StatusOK, nil, s.dialect.successBody(map[string]any{"posts": []any{}, "next_cursor": nil}, rid)
	case RouteUsage:
		return http.StatusOK, nil, s.dialect.successBody(map[string]any{"posts_this_month": s.posts.Load(), "plan": "starter"}, rid)
	case RouteFetchPost:
		if !s.store.hasPost(id) {
			return http.StatusNotFound, nil, s.dialect.errorBody(errNotFound, route, rid)
		}
		return http.StatusOK, nil, s.dialect.successBody(map[string]any{"id": id, "status": "scheduled"}, rid)
	}
	hash := payloadHash(route, body)
	st, replay, conflict, dup := s.store.write(route, key, hash, func() (int, http.Header, []byte) {
		if route == RouteUploadURL {
			n := s.ids.Add(1)
			return http.StatusCreated, nil, s.dialect.successBody(map[string]any{
				"media_id": fmt.Sprintf("med_%08d", n), "upload_url": fmt.Sprintf("https://uploads.example/med_%08d", n)}, rid)
		}
		pid := fmt.Sprintf("pst_%08d", s.posts.Add(1))
		s.store.addPostLocked(pid)
		return http.StatusCreated, nil, s.dialect.successBody(map[string]any{"id": pid, "status": "scheduled"}, rid)
	})
	switch {
	case conflict:
		s.count(func(st *Stats) { st.Conflicts++ })
		status := http.StatusConflict
		return status, nil, s.dialect.errorBody(errConflict, route, rid)
	case replay:
		s.count(func(st *Stats) { st.Replays++ })
		return st.status, http.Header{"Idempotent-Replayed": {"true"}}, st.body
	}
	s.count(func(stats *Stats) {
		stats.StoredWrites++
		if dup {
			stats.Duplicates++
		}
	})
	return st.status, nil, st.body
}

// kindOf is the error kind a scripted status stands for.
func kindOf(status int) errorKind {
	switch {
	case status >= 500:
		return errServer
	case status == http.StatusTooManyRequests:
		return errRateLimited
	case status == http.StatusConflict:
		return errConflict
	case status == http.StatusNotFound:
		return errNotFound
	}
	return errBadRequest
}

func (s *Server) countStatus(status int) {
	switch {
	case status == http.StatusTooManyRequests:
		s.count(func(st *Stats) { st.RateLimited++ })
	case status >= 500:
		s.count(func(st *Stats) { st.ServerErrors++ })
	}
}

// sendError writes the dialect's error envelope.
func (s *Server) sendError(w http.ResponseWriter, status int, kind errorKind, route, rid string) {
	s.countStatus(status)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(s.dialect.errorBody(kind, route, rid))
}

// drop closes the connection without answering.
func (s *Server) drop(w http.ResponseWriter) {
	s.count(func(st *Stats) { st.Dropped++ })
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// pause waits d, or until ctx is done; it reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeHuge writes a JSON error body of size bytes.
func writeHuge(w io.Writer, size int) {
	const head = `{"error":{"code":"INTERNAL_ERROR","message":"`
	const tail = `"}}`
	if size < len(head)+len(tail) {
		size = len(head) + len(tail)
	}
	io.WriteString(w, head)
	chunk := []byte(strings.Repeat("x", 32<<10))
	for n := size - len(head) - len(tail); n > 0; {
		c := chunk
		if n < len(c) {
			c = c[:n]
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		n -= len(c)
	}
	io.WriteString(w, tail)
}
