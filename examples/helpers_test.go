package examples

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
)

// pipeServer serves a handler over in-memory connections (net.Pipe), as
// resilienttest.NewPipeServer does for the three vendor APIs: made inside a
// testing/synctest bubble, every wait of the client (an SDK's sleeps,
// resilient's backoff) runs in fake time, so that a call retried for a
// minute returns at once and the counts do not depend on the machine's
// speed. It records every request it reads, for the assertions.
type pipeServer struct {
	// URL is http://<host>, the base URL of the server.
	URL string

	srv  *http.Server
	ln   *pipeListener
	tr   *http.Transport
	done chan struct{}

	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is what the server saw of one request.
type seenRequest struct {
	Method, Path string
	Header       http.Header
}

// newPipeServer starts a pipeServer of h named host and closes it when the
// test ends. It must be called inside the bubble that uses it.
func newPipeServer(t *testing.T, host string, h http.Handler) *pipeServer {
	t.Helper()
	s := &pipeServer{
		URL:  "http://" + host,
		ln:   &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})},
		done: make(chan struct{}),
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, seenRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})}
	s.tr = &http.Transport{DialContext: s.ln.dial, MaxIdleConnsPerHost: 4}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(s.ln)
	}()
	t.Cleanup(s.Close)
	return s
}

// Transport returns the transport that reaches the server: the base
// RoundTripper a recipe wraps.
func (s *pipeServer) Transport() *http.Transport { return s.tr }

// Hits returns how many requests the server read whose path is path, or
// every request when path is "".
func (s *pipeServer) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.seen {
		if path == "" || r.Path == path {
			n++
		}
	}
	return n
}

// Keys returns the distinct idempotency keys of the requests to path, sorted.
func (s *pipeServer) Keys(path string) []string { return s.Distinct(path, "Idempotency-Key") }

// Distinct returns the distinct non-empty values of header in the requests
// to path, sorted.
func (s *pipeServer) Distinct(path, header string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for _, r := range s.seen {
		if v := r.Header.Get(header); r.Path == path && v != "" {
			set[v] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Close shuts the server down, closes the client's idle connections and
// waits until the server's goroutine has returned, so that the bubble ends
// with no goroutine left.
func (s *pipeServer) Close() {
	_ = s.srv.Close()
	s.tr.CloseIdleConnections()
	<-s.done
}

// pipeListener is a net.Listener of in-memory connections: each dial makes
// a net.Pipe and hands its server end to Accept.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var errClosed = errors.New("pipe server closed")

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: errClosed}
	case <-ctx.Done():
		client.Close()
		server.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Err: ctx.Err()}
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dropConnection closes the connection of w without answering, as a server
// or proxy that died mid-request does. It needs an HTTP/1 connection.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic("dropConnection: " + err.Error())
	}
	conn.Close()
}

// proxyHTML writes the 502 page a load balancer in front of an API sends.
func proxyHTML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n"))
}
