package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Two virtual hosts behind one address (an ingress, a gateway, a server
// called by its IP with the name in Host): the one that deduplicates writes
// by key says so in its answers (Idempotent-Replayed), the other ignores
// keys. What the first teaches is of it alone: a write to the second that
// was processed and then answered 503 is not resent, as a plain client does
// not resend it. (Taught by the address, the Transport resent it, and the
// host that ignores keys created it twice.)
func TestVirtualHostsKeyHonoringApart(t *testing.T) {
	tr, addr, post, created := vhostServer(t)
	if got := post("dedupes.test"); got != http.StatusCreated {
		t.Fatalf("POST to the host that dedupes: %d, want 201", got)
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to the host that ignores keys, at the same address: %d after %d writes processed, want its 503 after 1", got, n)
	}
	// The address itself, under its own name, learned nothing either.
	if tr.keys.isLearned("http", addr) {
		t.Error("the address is taken to honor keys from the answers of one of its virtual hosts")
	}
}

// TestVirtualHostNotResentOnItsAddressesWord: an address that taught the
// Transport, under its own name, that it deduplicates writes by key
// (Idempotent-Replayed) vouches for no virtual host behind it: a write to
// another host name at that address (its Host header), processed and then
// answered 503, is not resent, as a plain client does not resend it.
// (Resent on the address's word, the host that ignores keys created it
// twice.)
func TestVirtualHostNotResentOnItsAddressesWord(t *testing.T) {
	tr, addr, post, created := vhostServer(t)
	if got := post(""); got != http.StatusCreated {
		t.Fatalf("POST to the address: %d, want 201", got)
	}
	if !tr.keys.isLearned("http", addr) {
		t.Fatal("the address's Idempotent-Replayed taught nothing")
	}
	got := post("ignores.test")
	if n := created.Load(); n != 1 || got != http.StatusServiceUnavailable {
		t.Errorf("POST to a virtual host behind the address that dedupes: %d after %d writes processed, want its 503 after 1", got, n)
	}
}

// vhostServer starts a server of virtual hosts at one address, closed
// when t ends: ignores.test ignores keys, and answers the first write it
// processes 503; every other Host (the address's own included)
// deduplicates writes by key and says so (Idempotent-Replayed). It returns
// a Transport over it that retries at once, the address, post, which
// sends a write with req.Host set to host and returns its status, and the
// count of the writes ignores.test processed.
func vhostServer(t *testing.T) (*Transport, string, func(host string) int, *atomic.Int32) {
	created := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Host != "ignores.test" {
			w.Header().Set("Idempotent-Replayed", "false")
			w.WriteHeader(http.StatusCreated)
			return
		}
		if created.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // processed, then failed
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	tr := New(srv.Client().Transport, fastRetries)
	post := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/posts", strings.NewReader(`{"a":1}`))
		req.Host = host
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST to %q: %v", host, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	return tr, srv.Listener.Addr().String(), post, created
}

// vhostNet is an in-memory server of virtual hosts at one address: it
// answers each request with the status of its Host header (200 for a host
// it does not list), or the first request of a host with its status in
// first, with the header of the host's entry in limits, and counts the
// requests of each host. It works inside a
// synctest bubble.
type vhostNet struct {
	mu     sync.Mutex
	status map[string]int
	first  map[string]int
	limits map[string]http.Header
	hits   map[string]int
}

func newVhostNet(status map[string]int) *vhostNet {
	return &vhostNet{status: status, hits: map[string]int{}}
}

func (n *vhostNet) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	n.mu.Lock()
	n.hits[req.Host]++
	code, ok := n.status[req.Host]
	if c, once := n.first[req.Host]; once && n.hits[req.Host] == 1 {
		code, ok = c, true
	}
	h := n.limits[req.Host].Clone()
	n.mu.Unlock()
	if !ok {
		code = http.StatusOK
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: h, Body: http.NoBody, Request: req}, nil
}

func (n *vhostNet) hitsOf(host string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[host]
}

// vhostGet sends a GET of rawURL with its Host header set to host ("" for
// the URL's own) through tr, and returns its status, or its error.
func vhostGet(t *testing.T, tr http.RoundTripper, rawURL, host string) (int, error) {
	t.Helper()
	req := newRequest(t, context.Background(), http.MethodGet, rawURL, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestVirtualHostsBreakersApart: two virtual hosts behind one address
// (an ingress called by its IP address, a gateway: the same URL.Host, the
// name in the Host header) have breakers of their own, as they are two
// servers to their callers: the 500s of down.internal open its breaker,
// and up.internal, which a plain client reaches, is still called.
// BreakerState and ResetHost name a virtual host's breaker by its name;
// the address's own (requests without another Host) is another.
func TestVirtualHostsBreakersApart(t *testing.T) {
	const addr = "http://10.0.0.1:8080/v1"
	n := newVhostNet(map[string]int{"down.internal": http.StatusInternalServerError})
	tr := New(n, fastRetries, WithoutRetryBudget(), WithBreaker(BreakerSettings{MinRequests: 3}))
	for range 3 {
		vhostGet(t, tr, addr, "down.internal")
	}
	if _, err := vhostGet(t, tr, addr, "down.internal"); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("down.internal after its 500s: %v, want ErrCircuitOpen", err)
	}
	if code, err := vhostGet(t, tr, addr, "up.internal"); code != http.StatusOK {
		t.Errorf("up.internal, at down.internal's address: %d, %v; want its 200", code, err)
	}
	if code, err := vhostGet(t, tr, addr, ""); code != http.StatusOK {
		t.Errorf("the address under its own name: %d, %v; want its 200", code, err)
	}
	for _, h := range []string{"down.internal", "DOWN.internal.", "http://down.internal:80"} {
		if got := tr.BreakerState(h); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open", h, got)
		}
	}
	for _, h := range []string{"up.internal", "10.0.0.1:8080", addr} {
		if got := tr.BreakerState(h); got != BreakerClosed {
			t.Errorf("BreakerState(%q) = %v, want closed", h, got)
		}
	}
	req := newRequest(t, context.Background(), http.MethodGet, addr, nil)
	req.Host = "down.internal"
	if s, err := tr.HostState(req); err != nil || s.Breaker != BreakerOpen {
		t.Errorf("HostState of down.internal at its address: %+v, %v; want its breaker open", s.Breaker, err)
	}
	tr.ResetHost("10.0.0.1:8080") // the address's own state: not its virtual hosts'
	if got := tr.BreakerState("down.internal"); got != BreakerOpen {
		t.Errorf("after ResetHost of the address: BreakerState(down.internal) = %v, want open", got)
	}
	tr.ResetHost("down.internal")
	if got := tr.BreakerState("down.internal"); got != BreakerClosed {
		t.Errorf("after ResetHost(down.internal): %v, want closed", got)
	}
}

// TestVirtualHostsShareTheAddressesBudget: the virtual hosts behind one
// address spend one retry budget, the address's, as the load they bound is
// that of the server the connection goes to: down.internal's outage spends
// it, for itself and up.internal alike (a budget that denies a retry makes
// a call what a plain client's is: one attempt), and up.internal, whose
// breaker is its own, still gets its 200 at its first attempt, refused
// nothing. HostState reads the budget a request spends from, of the
// address whatever its Host. (Each virtual host with a budget of its own,
// up.internal's retries were paid for by a budget down.internal's outage
// never reached.)
func TestVirtualHostsShareTheAddressesBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const addr = "http://10.0.0.1:8080/v1"
		n := newVhostNet(map[string]int{"down.internal": http.StatusServiceUnavailable})
		n.first = map[string]int{"flaky.internal": http.StatusServiceUnavailable}
		tr := New(n, fastRetries, WithRetryBudget(RetryBudget{Burst: 2}))
		for range 5 {
			vhostGet(t, tr, addr, "down.internal")
		}
		if got := n.hitsOf("down.internal"); got != 5+2 {
			t.Fatalf("down.internal: %d attempts for 5 calls, want 7 (the budget spent)", got)
		}
		for _, host := range []string{"flaky.internal", "up.internal", ""} {
			req := newRequest(t, context.Background(), http.MethodGet, addr, nil)
			req.Host = host
			if s, err := tr.HostState(req); err != nil || s.RetryBudget != 0 {
				t.Errorf("HostState of %q at down.internal's address: %v retries, %v; want 0 (the address's budget, spent)", host, s.RetryBudget, err)
			}
		}
		code, err := vhostGet(t, tr, addr, "flaky.internal")
		if code != http.StatusServiceUnavailable || n.hitsOf("flaky.internal") != 1 {
			t.Errorf("flaky.internal, at down.internal's address: %d, %v after %d attempts; want its 503 after 1 (not retried: the address's budget is spent)", code, err, n.hitsOf("flaky.internal"))
		}
		code, err = vhostGet(t, tr, addr, "up.internal")
		if code != http.StatusOK || n.hitsOf("up.internal") != 1 {
			t.Errorf("up.internal, at down.internal's address: %d, %v after %d attempts; want its 200 at the first", code, err, n.hitsOf("up.internal"))
		}
	})
}

// TestVirtualHostsBoundAsOneAddress: a server at one address that answers
// 503 to everything, called with a different Host on each call (a reverse
// proxy passing its clients' Host through, tenant subdomains), costs the
// retries of one host in all: one retry budget, the address's. (With a
// budget per virtual host, each new Host came with a full one: 300 calls
// made 1,800 attempts, 6 each, where a plain client makes 300.)
func TestVirtualHostsBoundAsOneAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const addr = "http://10.0.0.1:8080/v1"
		var attempts atomic.Int32
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			attempts.Add(1)
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}), fastRetries)
		const calls = 300
		for i := range calls {
			if code, err := vhostGet(t, tr, addr, fmt.Sprintf("tenant%d.example.com", i)); code != http.StatusServiceUnavailable {
				t.Fatalf("call %d: %d, %v; want the 503", i, code, err)
			}
		}
		if got, want := attempts.Load(), int32(calls+DefaultRetryBudgetBurst); got != want {
			t.Errorf("%d calls with as many Hosts to one address answering 503: %d attempts, want %d (one budget's %d retries in all)", calls, got, want, DefaultRetryBudgetBurst)
		}
	})
}

// TestVirtualHostsRateLimitsApart: a quota one virtual host announces
// (a 429 with Retry-After) paces that host alone: another virtual host
// behind the same address is called at once, as a plain client calls it.
func TestVirtualHostsRateLimitsApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const addr = "http://10.0.0.1:8080/v1"
		n := newVhostNet(map[string]int{"busy.internal": http.StatusTooManyRequests})
		n.limits = map[string]http.Header{"busy.internal": {"Retry-After": {"30"}}}
		tr := New(n, WithMaxRetries(0), WithoutBreaker())
		if code, _ := vhostGet(t, tr, addr, "busy.internal"); code != http.StatusTooManyRequests {
			t.Fatalf("busy.internal: %d, want its 429", code)
		}
		start := time.Now()
		if code, err := vhostGet(t, tr, addr, "idle.internal"); code != http.StatusOK {
			t.Fatalf("idle.internal: %d, %v; want its 200", code, err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("idle.internal, at busy.internal's address, waited %v for busy.internal's Retry-After; want no wait", d)
		}
		req := newRequest(t, context.Background(), http.MethodGet, addr, nil)
		req.Host = "busy.internal"
		if s, err := tr.HostState(req); err != nil || !s.Reads.PausedUntil.After(time.Now()) {
			t.Errorf("HostState of busy.internal: %+v, %v; want its reads paused", s.Reads, err)
		}
	})
}

// TestVirtualHostInvalidHostIsTheAddress: a Host header net/http cannot
// write (a space in it) is sent empty, so that the address's own server
// answers: the state of such requests is the address's.
func TestVirtualHostInvalidHostIsTheAddress(t *testing.T) {
	const addr = "http://10.0.0.1:8080/v1"
	n := newVhostNet(map[string]int{"down internal": http.StatusInternalServerError})
	tr := New(n, WithMaxRetries(0), WithoutRetryBudget(), WithBreaker(BreakerSettings{MinRequests: 3}))
	for range 3 {
		vhostGet(t, tr, addr, "down internal")
	}
	if got := tr.BreakerState("10.0.0.1:8080"); got != BreakerOpen {
		t.Errorf("after 3 500s with a Host sent empty: the address's breaker is %v, want open", got)
	}
}

// TestVirtualHostOnAnotherPortIsTheHost: a Host header that names the
// URL's host without its port (req.Host = req.URL.Hostname(), as some
// callers set it) is that host, not a virtual host: its state is the
// URL's, not that of the host on the scheme's default port.
func TestVirtualHostOnAnotherPortIsTheHost(t *testing.T) {
	const url = "http://api.test:8080/v1"
	n := newVhostNet(map[string]int{"api.test": http.StatusInternalServerError})
	tr := New(n, WithMaxRetries(0), WithoutRetryBudget(), WithBreaker(BreakerSettings{MinRequests: 3}))
	for range 3 {
		vhostGet(t, tr, url, "api.test")
	}
	if got := tr.BreakerState("http://api.test:8080"); got != BreakerOpen {
		t.Errorf("api.test:8080's breaker after its 500s: %v, want open", got)
	}
	if got := tr.BreakerState("http://api.test"); got != BreakerClosed {
		t.Errorf("api.test:80's breaker after api.test:8080's 500s: %v, want closed", got)
	}
}

// TestVirtualHostIPv6HostnameIsTheHost: a Host header that names an IPv6
// server's own address as URL.Hostname gives it, without its brackets
// ("2001:db8::1" for "http://[2001:db8::1]:8080"), is that server, not a
// virtual host: its breaker is the URL's, which BreakerState reads and
// ResetHost clears. (Taken for a virtual host whose name it split at its
// last colon, its breaker was one that no name reached: open, refusing
// every call, while BreakerState read closed, and ResetHost cleared
// nothing.)
func TestVirtualHostIPv6HostnameIsTheHost(t *testing.T) {
	const url = "http://[2001:db8::1]:8080/v1"
	n := newVhostNet(map[string]int{"2001:db8::1": http.StatusInternalServerError})
	tr := New(n, WithMaxRetries(0), WithoutRetryBudget(), WithBreaker(BreakerSettings{MinRequests: 3}))
	for range 3 {
		vhostGet(t, tr, url, "2001:db8::1")
	}
	if _, err := vhostGet(t, tr, url, "2001:db8::1"); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after 3 500s: %v, want ErrCircuitOpen", err)
	}
	for _, h := range []string{"[2001:db8::1]:8080", url, "http://[2001:DB8:0::1]:8080"} {
		if got := tr.BreakerState(h); got != BreakerOpen {
			t.Errorf("BreakerState(%q) = %v, want open (the breaker refusing its calls)", h, got)
		}
	}
	tr.ResetHost("[2001:db8::1]:8080")
	if _, err := vhostGet(t, tr, url, "2001:db8::1"); errors.Is(err, ErrCircuitOpen) {
		t.Errorf("after ResetHost of its address: %v, want the call sent", err)
	}
}
