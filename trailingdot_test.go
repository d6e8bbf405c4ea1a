package resilient

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The fully-qualified spellings of a host ("api.example.com.", any case,
// with the scheme's default port or not) are the host: its failures add up
// in one breaker, which BreakerState and ResetHost find under any of them.
func TestTrailingDotOneBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}}}
		tr := New(rt, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		call := func(rawURL string) error { return getClosed(t, tr, rawURL) }
		call("https://api.example.com./v1/posts")
		call("https://api.example.com/v1/posts")
		if err := call("https://API.example.com.:443/v1/posts"); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("a third call after two failures, its host spelled three ways: %v, want ErrCircuitOpen", err)
		}
		if n := rt.numCalls(); n != 2 {
			t.Errorf("the host was called %d times, want 2", n)
		}
		for _, name := range []string{"api.example.com", "api.example.com.", "https://api.example.com./", "https://API.EXAMPLE.COM:443/"} {
			if got := tr.BreakerState(name); got != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want open", name, got)
			}
		}
		if n := tr.breakers.len(); n != 3 {
			t.Errorf("the breakers hold %d keys, want 3 (one breaker, two aliases)", n)
		}
		tr.ResetHost("api.example.com")
		if got := tr.BreakerState("https://api.example.com./"); got != BreakerClosed {
			t.Errorf("BreakerState(the dotted name) = %v after ResetHost(the plain name), want closed", got)
		}
	})
}

// A pause the fully-qualified name's answer asked for holds the plain
// name's requests too, and ResetHost of either name clears it; the retry
// budget the dotted name's retries spent is the host's.
func TestTrailingDotOnePartitionAndBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		throttled := rtStep{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"3600"}}}
		rt := &rtScript{steps: []rtStep{{status: http.StatusServiceUnavailable}, {status: http.StatusOK}, throttled}}
		tr := New(rt, fastRetries)
		get(t, tr, "https://api.example.com./v1/posts") // a 503, then a retry
		// The retry cost 1, the 200 deposited 0.2.
		if s := hostState(t, tr, "https://api.example.com/v1/posts"); s.RetryBudget >= DefaultRetryBudgetBurst {
			t.Errorf("the plain name's budget after a retry of the dotted name's: %v, want less than a full %v", s.RetryBudget, float64(DefaultRetryBudgetBurst))
		}
		resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.example.com./v1/posts", nil))
		if err == nil {
			resp.Body.Close()
		}
		n := rt.numCalls()
		for _, name := range []string{"https://api.example.com/v1/posts", "https://API.example.com.:443/v1/posts"} {
			if s := hostState(t, tr, name); !s.Reads.PausedUntil.After(time.Now()) {
				t.Errorf("HostState(%q) after the dotted name's 429: not paused", name)
			}
		}
		_, err = roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.example.com/v1/posts", nil))
		if !errors.Is(err, ErrRateLimited) || rt.numCalls() != n {
			t.Errorf("a call to the plain name during the dotted name's pause: %v after %d more attempts, want ErrRateLimited at once", err, rt.numCalls()-n)
		}
		tr.ResetHost("API.example.com.")
		if s := hostState(t, tr, "https://api.example.com./v1/posts"); s.Reads.PausedUntil.After(time.Now()) {
			t.Error("ResetHost(the dotted name, upper case) left the pause in force")
		}
	})
}

// The dotted and the plain name share the host's slots (WithMaxInFlight).
func TestTrailingDotOneBulkhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		rt := &rtScript{steps: []rtStep{{before: func(*http.Request) { <-release }}}}
		tr := New(rt, WithMaxInFlight(2))
		var wg sync.WaitGroup
		for _, u := range []string{"https://api.example.com./v1", "https://api.example.com/v1"} {
			wg.Go(func() { get(t, tr, u) })
		}
		synctest.Wait()
		if s := hostState(t, tr, "https://api.example.com./v1"); s.InFlight != 2 {
			t.Errorf("attempts in flight to the host under two names: %d, want 2", s.InFlight)
		}
		close(release)
		wg.Wait()
	})
}

// A host named with WithKeyHonoringHosts, with or without its final dot,
// covers both spellings: a keyed write that failed ambiguously is resent
// to it; and what is learned of one spelling holds for the other. No write
// is resent to a host neither named nor learned.
func TestTrailingDotKeyHonoringHosts(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		opts      []Option
		want      int // attempts
	}{
		{"named plain, sent dotted", "https://api.example.com./v1/posts/1", []Option{WithKeyHonoringHosts("api.example.com")}, 2},
		{"named plain with port, sent dotted", "https://API.example.com.:443/v1/posts/1", []Option{WithKeyHonoringHosts("api.example.com:443")}, 2},
		{"named dotted, sent plain", "https://api.example.com/v1/posts/1", []Option{WithKeyHonoringHosts("api.example.com.")}, 2},
		{"named dotted with port, sent plain", "https://api.example.com/v1/posts/1", []Option{WithKeyHonoringHosts("API.example.com.:443")}, 2},
		{"other port named, sent dotted", "https://api.example.com./v1/posts/1", []Option{WithKeyHonoringHosts("api.example.com:8443")}, 1},
		{"parent named, sent dotted", "https://api.example.com./v1/posts/1", []Option{WithKeyHonoringHosts("example.com.")}, 1},
		{"unnamed, sent dotted", "https://api.example.com./v1/posts/1", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 201}}}
			req, _ := http.NewRequest(http.MethodPatch, tc.url, strings.NewReader("x"))
			resp, err := New(rt, append([]Option{fastRetries}, tc.opts...)...).RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if rt.numCalls() != tc.want {
				t.Errorf("%d attempts (err %v), want %d", rt.numCalls(), err, tc.want)
			}
		})
	}

	t.Run("learned", func(t *testing.T) {
		rt := &rtScript{steps: []rtStep{
			{status: 409, body: `{"error":"IDEMPOTENCY_CONFLICT","message":"key reused"}`}, // learned
			{err: io.ErrUnexpectedEOF}, // the plain name: resent
			{status: 201},
		}}
		tr := New(rt, fastRetries)
		post := func(url string) (*http.Response, error) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			return resp, err
		}
		if resp, _ := post("https://api.example.com./v1/posts"); resp == nil || resp.StatusCode != 409 {
			t.Fatalf("conflict: %v, want 409", resp)
		}
		if resp, err := post("https://api.example.com/v1/posts"); err != nil || resp.StatusCode != 201 || rt.numCalls() != 3 {
			t.Errorf("the plain name of a host learned under its dotted one: %v, %v after %d attempts, want 201 after a resend", resp, err, rt.numCalls())
		}
	})
}

// canonicalHost drops a fully-qualified name's final dot, with the scheme's
// default port and the upper case, and leaves the rest alone: one dot,
// whatever else the spelling needs (a name in upper case, in Unicode, with
// user information): the fuzzer found "GGGGGG.." losing two where
// "gggggg.." lost one. A name with an empty final label keeps its dots:
// "api.example.com.." is no spelling of "api.example.com.", which is
// another host's (see TestCanonicalHostIdempotent).
func TestCanonicalHostTrailingDot(t *testing.T) {
	for _, tc := range []struct{ scheme, host, want string }{
		{"https", "api.example.com.", "api.example.com"},
		{"https", "API.example.com.:443", "api.example.com"},
		{"https", "api.example.com.:8443", "api.example.com:8443"},
		{"http", "api.example.com.:", "api.example.com"},
		{"https", "localhost.", "localhost"},
		{"https", "api.example.com..", "api.example.com.."}, // not a name: its dots stay
		{"https", "API.example.com..", "api.example.com.."}, // the same in upper case
		{"https", "API.example.com..:8443", "api.example.com..:8443"},
		{"https", "alice@API.test..", "REDACTED@api.test.."},
		{"https", "Bücher.example.", "xn--bcher-kva.example"},
		{"https", "bücher.example.:8443", "xn--bcher-kva.example:8443"},
		{"https", ".", "."},
		{"https", "[::1]", "[::1]"},
		{"https", "[::1]:443", "[::1]"},
		{"https", "api.example.com", "api.example.com"},
	} {
		if got := canonicalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("canonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.host, got, tc.want)
		}
	}
}

// TestFinalDotNotTheOnlyCharacter: a name that is a dot alone keeps it,
// with a port or without: ".:8080" is not ":8080", which net/http dials on
// the local system, so the two are two hosts, not one.
func TestFinalDotNotTheOnlyCharacter(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{".", "."},
		{".:8080", ".:8080"},
		{"a.:8080", "a:8080"},
	} {
		if got := canonicalHost("http", tc.host); got != tc.want {
			t.Errorf("canonicalHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
	if canonicalHost("http", ".:8080") == canonicalHost("http", ":8080") {
		t.Errorf("%q and %q are one host", ".:8080", ":8080")
	}
}

// literalDialer is a base RoundTripper that dials as net/http does without
// a resolver: an IP address literal answers 200, any other name (which a
// resolver would look up) fails as "no such host". It counts the attempts
// that reached a server.
type literalDialer struct {
	mu   sync.Mutex
	sent int
}

func (d *literalDialer) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, err := netip.ParseAddr(req.URL.Hostname()); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: req.URL.Hostname(), IsTimeout: true, IsTemporary: true}}
	}
	d.mu.Lock()
	d.sent++
	d.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

// TestTrailingDotIPv4IsNotTheAddress: an IPv4 address with a final dot
// ("192.0.2.1.") is no fully-qualified name: net/http does not take it for
// the address, and a resolver finds no such host, or none when it does not
// answer. It is another host than the address: its failures, a careless
// caller's or a redirect a hostile server chose, must not open the
// address's breaker.
func TestTrailingDotIPv4IsNotTheAddress(t *testing.T) {
	for _, tc := range []struct{ scheme, host, want string }{
		{"https", "192.0.2.1.", "192.0.2.1."},
		{"https", "192.0.2.1.:443", "192.0.2.1."},
		{"https", "192.0.2.1.:0443", "192.0.2.1."},
		{"http", "192.0.2.1.:8080", "192.0.2.1.:8080"},
		{"https", "192.0.2.1", "192.0.2.1"},
		{"https", "1.2.3.4.5.", "1.2.3.4.5"}, // a name, not an address
		{"https", "127.1.", "127.1"},         // a name too: net/http looks it up
	} {
		if got := canonicalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("canonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.host, got, tc.want)
		}
	}

	synctest.Test(t, func(t *testing.T) {
		base := &literalDialer{}
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		for range 3 {
			getClosed(t, tr, "http://192.0.2.1.:8080/v1/posts")
		}
		if err := getClosed(t, tr, "http://192.0.2.1:8080/v1/posts"); err != nil {
			t.Errorf("the address after its dotted spelling failed to resolve: %v, want it sent", err)
		}
		if base.sent != 1 {
			t.Errorf("the address was called %d times, want 1", base.sent)
		}
	})
}
