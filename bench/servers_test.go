package bench

import (
	"bytes"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The bodies the servers answer with: a small JSON document, and a small
// error envelope of the kind the vendors send.
var (
	okBody          = []byte(`{"data":{"id":"post_1","status":"ok"}}`)
	unavailableBody = []byte(`{"error":{"code":"service_unavailable","message":"try again later"}}`)
	writeBody       = []byte(`{"text":"hello, world","scheduled_at":"2026-01-01T00:00:00Z"}`)
)

// callHeader carries the caller's own number of a logical call, the same on
// every attempt. Servers use it only to know which attempts belong to one
// call (to fail its first attempt, or to count its writes); they never
// deduplicate by it.
const callHeader = "X-Bench-Call"

// seed seeds the servers' fault injection, so that a run is reproducible.
const seed = 9

// stubTransport answers every request with a canned 200, without any I/O:
// what remains of a call's time is the client library's own cost.
type stubTransport struct{ header http.Header }

func newStubTransport() *stubTransport {
	return &stubTransport{header: http.Header{"Content-Type": {"application/json"}}}
}

func (s *stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        s.header, // read-only: no library writes a response's header
		Body:          &stubBody{data: okBody},
		ContentLength: int64(len(okBody)),
		Request:       req,
	}, nil
}

// stubBody is a response body over a shared read-only slice.
type stubBody struct {
	data []byte
	off  int
}

func (b *stubBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *stubBody) Close() error { return nil }

// server is a loopback test server that counts connections and attempts.
type server struct {
	*httptest.Server
	conns    atomic.Int64 // connections opened by clients
	attempts atomic.Int64 // requests that reached the handler
}

// newServer starts a loopback server running h after counting the attempt.
// The caller must Close it.
func newServer(h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.attempts.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	return s
}

// newTransport returns the transport every library gets over loopback: the
// default transport's settings, with an idle pool large enough for the
// 64 concurrent callers of the outage workload, so that no library is
// measured by the pool's size.
func newTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128
	return tr
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// okHandler answers 200 to everything.
func okHandler(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, okBody) }

// outageHandler answers 503 to everything, without Retry-After.
func outageHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusServiceUnavailable, unavailableBody)
}

// oneRetryHandler returns a handler that answers 503 to the first attempt of
// each call and 200 to the others.
func oneRetryHandler() http.HandlerFunc {
	var mu sync.Mutex
	seen := make(map[string]bool)
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(callHeader)
		mu.Lock()
		first := !seen[id]
		if first {
			seen[id] = true
		} else {
			delete(seen, id)
		}
		mu.Unlock()
		if first {
			outageHandler(w, r)
			return
		}
		okHandler(w, r)
	}
}

// flakyHandler returns a handler that answers 503 to a share of attempts
// at random, from a seeded source, and 200 to the others.
func flakyHandler(share float64) http.HandlerFunc {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, seed))
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := rnd.Float64() < share
		mu.Unlock()
		if fail {
			outageHandler(w, r)
			return
		}
		okHandler(w, r)
	}
}

// writeStore is a server-side store of writes that loses some answers: it
// stores each write it reads (deduplicated by Idempotency-Key when the
// request has one, as the vendors' APIs do), and then, on a share of the
// first attempts of calls, drops the connection without answering. The
// client cannot tell that the write was stored.
type writeStore struct {
	share float64

	mu       sync.Mutex
	rnd      *rand.Rand
	attempts map[string]int      // attempts seen per call
	stored   map[string]int      // times each call's write was stored
	keys     map[string]struct{} // idempotency keys already processed
	dropped  int
}

func newWriteStore(share float64) *writeStore {
	return &writeStore{
		share:    share,
		rnd:      rand.New(rand.NewPCG(seed, seed)),
		attempts: make(map[string]int),
		stored:   make(map[string]int),
		keys:     make(map[string]struct{}),
	}
}

// ServeHTTP stores the write and answers 201, or drops the connection.
func (s *writeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	id := r.Header.Get(callHeader)
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	s.attempts[id]++
	first := s.attempts[id] == 1
	store := true
	if key != "" {
		if _, dup := s.keys[key]; dup {
			store = false // already processed: answer as the first time
		} else {
			s.keys[key] = struct{}{}
		}
	}
	if store {
		s.stored[id]++
	}
	drop := first && s.rnd.Float64() < s.share
	if drop {
		s.dropped++
	}
	s.mu.Unlock()
	if drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeJSON(w, http.StatusCreated, okBody)
}

// duplicates returns how many writes were stored more than once for the
// same logical call.
func (s *writeStore) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.stored {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}

// outcome is what the caller of one logical call got.
type outcome struct {
	status  int // 0 when the call returned an error
	err     error
	latency time.Duration
}

func (o outcome) ok() bool { return o.err == nil && o.status >= 200 && o.status < 300 }

// callCounter numbers logical calls.
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) next() string { return strconv.FormatInt(c.n.Add(1), 10) }

// call makes one logical call with do and reads the answer to its end, the
// way a caller does: with a context of its own that ends with the call.
// Ending it also frees the connections of responses a library retried past
// without closing them.
func call(do doer, method, url string, body []byte, id string) outcome {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return outcome{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(callHeader, id)
	start := time.Now()
	resp, err := do(req)
	o := outcome{err: err}
	if resp != nil {
		// heimdall may return a response along with an error.
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.status = resp.StatusCode
		if o.err == nil {
			o.err = rerr
		}
	}
	o.latency = time.Since(start)
	return o
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds, by the
// nearest-rank method; it sorts ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// mustOK fails b unless o is a success.
func mustOK(tb testing.TB, o outcome) {
	if !o.ok() {
		tb.Fatalf("call: status %d, error %v; want a success", o.status, o.err)
	}
}
