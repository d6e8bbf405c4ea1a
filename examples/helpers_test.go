package examples

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// server is a fault server of package resilienttest, served over in-memory
// connections (resilienttest.NewPipeServer): made inside a testing/synctest
// bubble, every wait of the client (an SDK's sleeps, resilient's backoff)
// runs in fake time, so that a call retried for a minute returns at once
// and the counts do not depend on the machine's speed. The server counts
// the attempts it reads (Hits); the wire in front of its Transport records
// what each attempt carried, for the assertions on headers.
type server struct {
	*resilienttest.Server
	wire *wire
}

// newServer starts a server whose API is h (resilienttest.WithHandler),
// with the faults or scripts of opts in front of it, and closes it when
// the test ends. It must be called inside the bubble that uses it.
func newServer(t *testing.T, h http.Handler, opts ...resilienttest.Option) *server {
	t.Helper()
	opts = append([]resilienttest.Option{resilienttest.WithHandler(h)}, opts...)
	return startServer(t, resilienttest.NewPipeServer(resilienttest.Altyaa, opts...))
}

// newAltyaa starts a server of resilienttest's Altyaa API whose route
// answers every attempt with step. It must be called inside the bubble
// that uses it.
func newAltyaa(t *testing.T, route string, step resilienttest.Step, opts ...resilienttest.Option) *server {
	t.Helper()
	opts = append([]resilienttest.Option{everyAttempt(route, step)}, opts...)
	return startServer(t, resilienttest.NewPipeServer(resilienttest.Altyaa, opts...))
}

// everyAttempt scripts route (a method and a path) to answer every attempt
// with step, on a server WithHandler.
func everyAttempt(route string, step resilienttest.Step) resilienttest.Option {
	steps := make([]resilienttest.Step, 1024) // more than any series of calls here makes
	for i := range steps {
		steps[i] = step
	}
	return resilienttest.WithScript(route, steps...)
}

func startServer(t *testing.T, srv *resilienttest.Server) *server {
	t.Cleanup(srv.Close)
	return &server{Server: srv, wire: &wire{base: srv.Transport()}}
}

// Base returns the RoundTripper that reaches the server, through the wire
// that records what each attempt carried: the base a recipe wraps.
func (s *server) Base() http.RoundTripper { return s.wire }

// Hits returns how many requests the server read whose path is path, or
// every request when path is "".
func (s *server) Hits(path string) int {
	st := s.Stats()
	if path == "" {
		return st.Requests
	}
	n := 0
	for route, c := range st.Attempts {
		if _, p, _ := strings.Cut(route, " "); p == path {
			n += c
		}
	}
	return n
}

// Keys returns the distinct idempotency keys sent to path, sorted.
func (s *server) Keys(path string) []string { return s.wire.Distinct(path, "Idempotency-Key") }

// wire is a RoundTripper that records the headers of every request it
// passes to its base: what the client put on the wire. It reads a header
// as a server does, in any capitalisation, so that it also finds the key
// resilient sets under a lower-case map entry (see the write rule).
type wire struct {
	base http.RoundTripper

	mu   sync.Mutex
	seen []seenRequest
}

// seenRequest is what the wire saw of one request.
type seenRequest struct {
	Path   string
	Header http.Header
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.seen = append(w.seen, seenRequest{Path: req.URL.Path, Header: req.Header.Clone()})
	w.mu.Unlock()
	return w.base.RoundTrip(req)
}

// Distinct returns the distinct non-empty values of header in the requests
// to path, sorted.
func (w *wire) Distinct(path, header string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := map[string]bool{}
	for _, r := range w.seen {
		if r.Path != path {
			continue
		}
		for k, v := range r.Header {
			if strings.EqualFold(k, header) && len(v) > 0 && v[0] != "" {
				set[v[0]] = true
			}
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// seriesCalls is how many failing calls a series makes: enough for the
// retry budget to reach its steady state (it starts with 10 retries).
const seriesCalls = 100

// seriesGap is the time between the calls of a series: at one call a
// minute, a breaker's window (30 s by default) never holds the attempts of
// more than one call, at most 15 here, fewer than the 20 it needs to trip,
// so the breaker stays closed and the series measures the retry layers
// alone.
const seriesGap = time.Minute

// measurement is what one arrangement costs against a failing server: the
// server attempts of the first call on a fresh client and Transport, and
// the server attempts per call over a series of seriesCalls calls through
// that same client, one every seriesGap. A measurement of one call only
// has Calls 1.
type measurement struct {
	First int
	Total int
	Calls int
}

// PerCall returns the attempts per call over the series.
func (m measurement) PerCall() float64 { return float64(m.Total) / float64(m.Calls) }

// String renders m as docs/sdks.md's table does: "13 | 3.10", or "13 | –"
// for a single call.
func (m measurement) String() string {
	if m.Calls <= 1 {
		return fmt.Sprintf("%d | –", m.First)
	}
	return fmt.Sprintf("%d | %.2f", m.First, m.PerCall())
}

// series makes calls calls with call (given the call's index), one every
// seriesGap of the bubble's fake time, and measures them by hits, the
// server's count of attempts. It must run inside the bubble of the server.
func series(calls int, hits func() int, call func(i int)) measurement {
	call(0)
	m := measurement{First: hits(), Calls: calls}
	for i := 1; i < calls; i++ {
		time.Sleep(seriesGap)
		call(i)
	}
	m.Total = hits()
	return m
}

// checkDocRow checks that docs/sdks.md's table of measured attempts has the
// row of sdk and failure with the measurements a test just made, before
// and after the recipe, so that the document cannot drift from the code.
func checkDocRow(t *testing.T, sdk, failure string, before, after measurement) {
	t.Helper()
	doc, err := os.ReadFile("../docs/sdks.md")
	if err != nil {
		t.Fatalf("reading the document: %v", err)
	}
	prefix := fmt.Sprintf("| %s | %s |", sdk, failure)
	want := fmt.Sprintf("%s %s | %s |", prefix, before, after)
	for line := range strings.Lines(string(doc)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if !strings.HasPrefix(line, want) {
			t.Errorf("docs/sdks.md has\n\t%s\nmeasured\n\t%s\nupdate the table (and the text around it)", line, want)
		}
		return
	}
	t.Errorf("docs/sdks.md has no row %q; measured %s", prefix, want)
}

// countDefaultTransport replaces http.DefaultTransport, until the test
// ends, by a RoundTripper that counts the requests it passes on to the
// original, and returns the count: a recipe whose nil base must be its
// SDK's own transport sends nothing through http.DefaultTransport. The
// tests of this package do not run in parallel.
func countDefaultTransport(t *testing.T) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	saved := http.DefaultTransport
	http.DefaultTransport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n.Add(1)
		return saved.RoundTrip(req)
	})
	t.Cleanup(func() { http.DefaultTransport = saved })
	return &n
}
