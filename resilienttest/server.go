package resilienttest

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// A Server is an HTTP server of one dialect's API, with faults injected on
// demand, in the style of net/http/httptest.Server. It serves the routes
// listed by Routes; see the package documentation for what it answers.
//
// A Server is safe for concurrent use: requests, Stats, Reset and
// SetScript may run at once from any number of goroutines.
type Server struct {
	// URL is the base URL of the server, without a trailing slash:
	// http://127.0.0.1:port for NewServer, http://<dialect>.test for
	// NewPipeServer; https:// instead WithTLS.
	URL string

	dialect    Dialect
	requireKey bool
	ignoreKeys bool // WithIgnoreIdempotencyKeys
	latency    time.Duration
	handler    http.Handler      // WithHandler: the API; nil for the dialect's own
	useTLS     bool              // WithTLS
	cert       *x509.Certificate // WithTLS
	exchanges  func(Exchange)    // WithExchanges; nil for none

	hs        *http.Server
	ln        net.Listener
	transport *http.Transport
	client    *http.Client
	serveDone chan struct{}
	closing   chan struct{} // closed by Close: ends the waits
	closeOnce sync.Once
	handlers  sync.WaitGroup // requests in progress; Add under mu while !closed
	conns     sync.WaitGroup // connections until closed or taken over (ConnState)

	mu      sync.Mutex
	closed  bool
	stats   Stats
	scripts map[string]*script
	faults  *faultState // nil without WithFaults
	quota   *quotaState // nil without WithQuota
	store   store
	api     api
}

// script is a route's script and the index of its next step.
type script struct {
	steps []Step
	next  int
}

// NewServer starts and returns a Server of dialect d on a loopback port.
// The caller should call Close when finished, to shut it down. It panics
// if d is not a Dialect, on an invalid option, or if it cannot listen.
//
// Use NewPipeServer instead in tests that run in a testing/synctest bubble:
// network I/O on a real port is not durably blocking, so fake time would
// not advance.
func NewServer(d Dialect, opts ...Option) *Server {
	s := newServer(d, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic(fmt.Sprintf("resilienttest: failed to listen on a port: %v", err))
		}
	}
	s.ln = ln
	s.start(ln.Addr().(*net.TCPAddr).IP.String(), ln.Addr().String(),
		(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	return s
}

// NewPipeServer starts and returns a Server of dialect d that serves
// in-memory connections (net.Pipe) instead of a port. Its URL is
// http://<dialect>.test (e.g. http://aidelly.test; https:// WithTLS);
// only its Transport (or Client) reaches it. The caller should call Close
// when finished.
//
// Created inside a testing/synctest bubble, everything it waits for runs
// in the bubble's fake time: slow answers, latency, quota windows, and a
// client's backoff and Retry-After waits, so that a test of minutes of
// retries finishes at once. The Server must then be used and closed inside
// that bubble. It panics if d is not a Dialect or on an invalid option.
func NewPipeServer(d Dialect, opts ...Option) *Server {
	s := newServer(d, opts)
	host := d.String() + ".test"
	pl := newPipeListener(host)
	s.ln = pl
	s.start(host, host, pl.dial)
	return s
}

func newServer(d Dialect, opts []Option) *Server {
	if !d.valid() {
		panic("resilienttest: invalid " + d.String())
	}
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	s := &Server{
		dialect:    d,
		requireKey: d == Aidelly && !cfg.ignoreKeys, // an API that ignores keys requires none
		ignoreKeys: cfg.ignoreKeys,
		latency:    cfg.latency,
		serveDone:  make(chan struct{}),
		closing:    make(chan struct{}),
	}
	if cfg.requireKey != nil {
		s.requireKey = *cfg.requireKey
	}
	s.handler, s.useTLS, s.exchanges = cfg.handler, cfg.tls, cfg.exchanges
	for route, steps := range cfg.scripts {
		if s.handler == nil {
			checkRoute("WithScript", route)
		}
		s.setScriptLocked(route, steps)
	}
	if cfg.faults != nil {
		s.faults = newFaultState(*cfg.faults)
	}
	if cfg.quota != nil {
		s.quota = newQuotaState(*cfg.quota, d, time.Now())
	}
	return s
}

// start sets the URL to addr (host, or host and port), makes the
// Transport and Client on dial, and starts serving; WithTLS, with a
// certificate for host.
func (s *Server) start(host, addr string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	s.transport = &http.Transport{
		DialContext:         dial,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
	}
	s.client = &http.Client{Transport: s.transport}
	s.hs = &http.Server{
		Handler:   http.HandlerFunc(s.serveHTTP),
		ConnState: s.connState,
	}
	s.URL = "http://" + addr
	if s.useTLS {
		s.URL = "https://" + addr
		s.setupTLS(host)
	}
	go func() {
		defer close(s.serveDone)
		if s.useTLS {
			s.hs.ServeTLS(s.ln, "", "")
			return
		}
		s.hs.Serve(s.ln)
	}()
}

// connState counts the connections the server accepts, and tracks them
// until they end, as httptest.Server does: net/http may linger on one
// after its last answer (half a second after a request whose body went
// unread), and Close waits for it.
func (s *Server) connState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
		s.mu.Lock()
		s.stats.Connections++
		s.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		s.conns.Done()
	}
}

// Dialect returns the server's dialect.
func (s *Server) Dialect() Dialect { return s.dialect }

// Transport returns the transport that reaches the server: for NewServer a
// plain *http.Transport (HTTP/1.1, up to 100 idle connections per host),
// for NewPipeServer one whose connections are in-memory pipes to the
// server. WithTLS, it trusts the server's certificate and speaks HTTP/2
// (one connection, many streams). Every call returns the same Transport;
// Close closes its idle connections. Wrap it to test a client:
// resilient.New(s.Transport()).
func (s *Server) Transport() *http.Transport { return s.transport }

// Client returns an HTTP client on the server's Transport, without
// retries: what a plain client sees. Every call returns the same Client.
func (s *Server) Client() *http.Client { return s.client }

// SetScript replaces the script of route and starts it over (see
// WithScript); no steps removes it. It panics on an unknown route (on a
// server WithHandler, on a route that is not a method and a path).
func (s *Server) SetScript(route string, steps ...Step) {
	if s.handler != nil {
		checkRouteForm("SetScript", route)
	} else {
		checkRoute("SetScript", route)
	}
	steps = append([]Step(nil), steps...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setScriptLocked(route, steps)
}

func (s *Server) setScriptLocked(route string, steps []Step) {
	if len(steps) == 0 {
		delete(s.scripts, route)
		return
	}
	if s.scripts == nil {
		s.scripts = make(map[string]*script)
	}
	s.scripts[route] = &script{steps: steps}
}

// Close shuts the server down: it closes the listener and every
// connection, ends the waits of slow answers (their requests get no
// answer), waits for the requests in progress to return and for the
// connections to end (net/http lingers up to half a second on one whose
// last request body went unread), and closes the idle connections of
// Transport. Requests that arrive after Close fail. It may be called more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		s.hs.Close()
		s.ln.Close()
		<-s.serveDone
		s.handlers.Wait()
		s.conns.Wait()
		s.transport.CloseIdleConnections()
	})
}

// nextStepLocked returns what to do with an attempt on route with key: the
// route's next scripted step, else a random fault, else a normal answer.
func (s *Server) nextStepLocked(route, key string) Step {
	var st Step
	if sc := s.scripts[route]; sc != nil && sc.next < len(sc.steps) {
		st = sc.steps[sc.next]
		sc.next++
		if s.faults != nil {
			s.faults.firstAttempt(route, key) // a scripted attempt is its key's first
		}
	} else if s.faults != nil {
		st = s.faults.draw(s.dialect, route, key)
	}
	if st.kind != stepNormal {
		s.stats.Injected++
	}
	return st
}

// wait waits d, and reports false if the request's context ended or the
// server closed first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// drop closes the connection of w without an answer.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 or a writer without Hijack: abort the stream
	}
	conn.Close()
}
