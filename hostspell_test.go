package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// A URL built by hand with user information in its host
// ("alice:s3cret@api.test") is dialed by net/http as that whole name, which
// fails; nothing the Transport records of it (Attempt.Host, the error, its
// URL, the log, the breaker's name, the partition a QuotaStore is given,
// the keys its tables hold) repeats the user information: REDACTED stands
// for it, as for a URL's user information elsewhere.
func TestUserinfoInHostNotInOutputs(t *testing.T) {
	const secret, user = "s3cret-pw", "alice-user"
	for _, tc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"URL.Host", func() *http.Request {
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: user + ":" + secret + "@api.test", Path: "/v1"}, Header: http.Header{}}
		}},
		{"URL.Host with port", func() *http.Request {
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: user + ":" + secret + "@api.test:8443", Path: "/v1"}, Header: http.Header{}}
		}},
		{"URL.Host, user alone", func() *http.Request {
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: user + secret + "@api.test", Path: "/v1"}, Header: http.Header{}}
		}},
		{"URL.Host, long user information", func() *http.Request {
			// Longer than a key's bound: cut, it would lose its '@'.
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: user + ":" + strings.Repeat(secret, 40) + "@api.test", Path: "/v1"}, Header: http.Header{}}
		}},
		{"req.Host", func() *http.Request {
			return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: "api.test", Path: "/v1"}, Host: user + ":" + secret + "@api.test", Header: http.Header{}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host := tc.req().URL.Host
				rt := &rtScript{steps: []rtStep{
					{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}}},
					{status: http.StatusServiceUnavailable},
					{status: http.StatusServiceUnavailable}, // the breaker opens
					{err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: strings.TrimSuffix(host, ":8443"), IsNotFound: true}}},
				}}
				var (
					mu      sync.Mutex
					outputs []string
					logs    bytes.Buffer
				)
				record := func(s string) {
					mu.Lock()
					outputs = append(outputs, s)
					mu.Unlock()
				}
				store := new(memQuota)
				tr := New(rt, WithMaxRetries(2), fastRetries,
					WithBreaker(BreakerSettings{ConsecutiveFailures: 2}),
					WithQuotaStore(store),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
					WithObserver(func(a Attempt) { record(fmt.Sprintf("attempt: %+v", a)) }),
					WithBreakerObserver(func(c BreakerChange) { record("breaker: " + c.Key) }))
				call := func() {
					t.Helper()
					resp, err := tr.RoundTrip(tc.req())
					if resp != nil {
						resp.Body.Close()
					}
					if err != nil {
						record("error: " + err.Error())
						record(fmt.Sprintf("error %%+v: %+v", err))
						var e *Error
						if errors.As(err, &e) {
							record("Error.URL: " + e.URL)
							record("Error.Err: " + e.Err.Error())
						}
					}
				}
				call() // a 429, two 503s
				call() // refused: the breaker is open
				if tc.name != "req.Host" {
					// The careless URL's host is one host, which
					// ResetHost names as the outputs do.
					if s, err := tr.HostState(tc.req()); err != nil || s.Breaker != BreakerOpen {
						t.Errorf("HostState(the careless URL): breaker %v (%v), want open", s.Breaker, err)
					}
					named := "REDACTED@api.test" + host[strings.LastIndexByte(host, '@')+1+len("api.test"):]
					tr.ResetHost(named)
					if s, _ := tr.HostState(tc.req()); s.Breaker != BreakerClosed {
						t.Errorf("HostState(the careless URL) after ResetHost(%q): breaker %v, want closed", named, s.Breaker)
					}
					// It is not api.test.
					if got := tr.BreakerState("https://api.test/"); got != BreakerClosed {
						t.Errorf("BreakerState(api.test) = %v, want closed: the host with user information is another", got)
					}
				}
				call() // net/http's error quotes the host
				record("log: " + logs.String())
				store.mu.Lock()
				for _, n := range store.names {
					record("partition: " + n)
				}
				store.mu.Unlock()
				tr.breakers.mu.Lock()
				tr.breakers.table.each(func(k breakerKey, _ *breakerEntry) { record("breaker key: " + k.host) })
				tr.breakers.mu.Unlock()
				tr.rl.mu.Lock()
				tr.rl.each(func(p *partition) { record("partition key: " + p.key.host) })
				tr.rl.mu.Unlock()
				if len(store.names) == 0 {
					t.Error("no partition was named to the QuotaStore")
				}
				for _, s := range outputs {
					if strings.Contains(s, secret[:5]) || strings.Contains(s, user) {
						t.Errorf("the user information of the host is in an output: %s", s)
					}
				}
				if tc.name == "req.Host" {
					return
				}
				var changes, lookups int
				for _, s := range outputs {
					if strings.HasPrefix(s, "breaker: ") {
						changes++
						if !strings.Contains(s, "://REDACTED@api.test:") {
							t.Errorf("%s, want REDACTED@api.test in the breaker's name", s)
						}
					}
					if strings.HasPrefix(s, "Error.Err: ") && strings.Contains(s, "lookup REDACTED@api.test") {
						lookups++
					}
				}
				if changes == 0 || lookups == 0 {
					t.Errorf("%d breaker changes, %d errors of net/http quoting the host redacted; want some of each", changes, lookups)
				}
				if !strings.Contains(logs.String(), `"host":"REDACTED@api.test`) {
					t.Errorf("log %s, want the host REDACTED@api.test", logs.String())
				}
			})
		})
	}
}

// hostSpellings are spellings of hosts in URL.Host: the spellings of a
// group are sent by net/http to one place (TestCanonicalHostDialsAsNetHTTP),
// those of different groups to different places.
var hostSpellings = [][]string{
	{"api.test", "API.test", "api.test.", "api.test:443", "api.test:0443", "api.test:000443", "API.TEST.:0443", "api.test:"},
	{"api.test:8443", "api.test:08443", "api.test.:8443"},
	{"api.test:0", "api.test:00"},
	{"[::1]", "[0:0::1]", "[::0:1]", "[0000:0000:0000:0000:0000:0000:0000:0001]", "[::1]:443", "[::1]:0443"},
	{"[::1]:8443", "[0::1]:08443"},
	{"[::2]"},
	{"127.0.0.1", "[::ffff:127.0.0.1]", "[::FFFF:7F00:1]", "[127.0.0.1]", "127.0.0.1:443"},
	{"[::127.0.0.1]"}, // IPv4-compatible, not IPv4-mapped: another address
	{"127.0.0.2"},
	{"[2001:db8::1]", "[2001:DB8:0::1]", "[2001:0db8::0001]"},
	{"xn--bcher-kva.example", "bücher.example", "BÜCHER.example", "Bücher.Example.", "XN--BCHER-KVA.example.", "xn--bcher-kva.example:0443"},
	{"bucher.example"},
	{"xn--d1acpjx3f.xn--p1ai", "яндекс.рф", "ЯНДЕКС.РФ"},
	{"xn--wgv71a119e.jp", "日本語.jp"},
	{"REDACTED@api.test", "alice:s3cret@api.test", "bob@api.test", "alice:s3cret@API.test.:0443"},
	// Two names of 271 bytes past ASCII that differ past their 255th
	// byte, and whose punycode (160 bytes) is a domain name: two hosts.
	{longIDNPuny + "xn--a-dh" + strings.Repeat("a", 20) + ".example", longIDN + "a.example", strings.ToUpper(longIDN) + "A.EXAMPLE.:443"},
	{longIDN + "b.example"},
	// The same, in a script internal/idna does not convert (Thai).
	{longThai + "a.example", longThai + "A.EXAMPLE.:443"},
	{longThai + "b.example"},
}

// longIDN and longThai are the starts of long names of hostSpellings,
// and longIDNPuny is longIDN's punycode.
var (
	longIDN     = strings.Repeat(strings.Repeat("ü", 55)+".", 2) + strings.Repeat("ü", 20)
	longIDNPuny = strings.Repeat("xn--td"+strings.Repeat("a", 55)+".", 2)
	longThai    = strings.Repeat(strings.Repeat("ก", 55)+".", 2)
)

// Each spelling of a host is one host to the breakers, the rate-limit
// partitions and HostState; hosts net/http sends to different places are
// never one. ResetHost and WithKeyHonoringHosts take any spelling.
func TestHostSpellingsOneHost(t *testing.T) {
	for gi, group := range hostSpellings {
		t.Run(group[0], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &rtScript{steps: []rtStep{
					{status: http.StatusServiceUnavailable},
					{status: http.StatusServiceUnavailable},
					{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"3600"}}},
				}}
				tr := New(rt, WithMaxRetries(1), fastRetries, WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
				req := func(host string) *http.Request {
					return &http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "https", Host: host, Path: "/v1"}, Header: http.Header{}}
				}
				state := func(host string) HostState {
					t.Helper()
					s, err := tr.HostState(req(host))
					if err != nil {
						t.Fatalf("HostState(%q): %v", host, err)
					}
					return s
				}
				send := func(host string) {
					resp, err := tr.RoundTrip(req(host))
					if err == nil {
						resp.Body.Close()
					}
				}
				send(group[len(group)-1]) // two 503s: the breaker opens
				for _, h := range group {
					if s := state(h); s.Breaker != BreakerOpen {
						t.Errorf("HostState(%q).Breaker = %v after the failures of %q, want open", h, s.Breaker, group[len(group)-1])
					}
				}
				for gj, other := range hostSpellings {
					if gj == gi {
						continue
					}
					for _, h := range other {
						if s := state(h); s.Breaker != BreakerClosed {
							t.Errorf("HostState(%q).Breaker = %v after the failures of %q, another host: want closed", h, s.Breaker, group[len(group)-1])
						}
					}
				}
				tr.ResetHost(group[0])
				if s := state(group[len(group)-1]); s.Breaker != BreakerClosed {
					t.Errorf("HostState(%q).Breaker = %v after ResetHost(%q), want closed", group[len(group)-1], s.Breaker, group[0])
				}
				send(group[0]) // a 429: the host's pause
				for _, h := range group {
					if s := state(h); !s.Reads.PausedUntil.After(time.Now()) {
						t.Errorf("HostState(%q): not paused after the 429 of %q", h, group[0])
					}
				}
				tr.ResetHost(group[len(group)-1])
				if s := state(group[0]); s.Reads.PausedUntil.After(time.Now()) {
					t.Errorf("HostState(%q): paused after ResetHost(%q)", group[0], group[len(group)-1])
				}
			})
		})
	}
}

// A host named with WithKeyHonoringHosts under any spelling is the host
// requested under any other: a keyed write that failed ambiguously is
// resent to it, and to no other host.
func TestHostSpellingsKeyHonoringHosts(t *testing.T) {
	for gi, group := range hostSpellings {
		for _, named := range group {
			if strings.Contains(named, "@") {
				continue // WithKeyHonoringHosts refuses user information
			}
			opt := WithKeyHonoringHosts(named)
			everyPort := !hasPort(canonicalHost("", named))
			for gj, other := range hostSpellings {
				want := 1
				if gj == gi || everyPort && sameName(group[0], other[0]) {
					want = 2
				}
				for _, h := range other {
					rt := &rtScript{steps: []rtStep{{err: io.ErrUnexpectedEOF}, {status: 201}}}
					req := &http.Request{Method: http.MethodPatch, URL: &url.URL{Scheme: "https", Host: h, Path: "/v1"}, Header: http.Header{},
						Body: io.NopCloser(strings.NewReader("x")), ContentLength: 1, GetBody: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }}
					resp, err := New(rt, fastRetries, opt).RoundTrip(req)
					if err == nil {
						resp.Body.Close()
					}
					if rt.numCalls() != want {
						t.Errorf("WithKeyHonoringHosts(%q), a write to %q: %d attempts, want %d", named, h, rt.numCalls(), want)
					}
				}
			}
		}
	}
}

// canonicalHost makes one key of two spellings exactly when net/http
// dials them at the same address: the same port, and the same IP address
// or the same name, as DNS compares names (ASCII case aside).
func TestCanonicalHostDialsAsNetHTTP(t *testing.T) {
	dialed := func(host string) string {
		t.Helper()
		addr := make(chan string, 1)
		errDial := errors.New("not dialed")
		base := &http.Transport{DialContext: func(_ context.Context, _, a string) (net.Conn, error) {
			addr <- a
			return nil, errDial
		}}
		defer base.CloseIdleConnections()
		_, err := base.RoundTrip(&http.Request{Method: http.MethodGet, URL: &url.URL{Scheme: "http", Host: host, Path: "/"}, Header: http.Header{}})
		if !errors.Is(err, errDial) {
			t.Fatalf("a request to %q: %v, want it dialed", host, err)
		}
		h, p, err := net.SplitHostPort(<-addr)
		h = strings.TrimSuffix(h, ".") // a fully-qualified name is the name
		if err != nil {
			t.Fatalf("net/http dialed %q for %q: %v", h, host, err)
		}
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("net/http dialed port %q for %q", p, host)
		}
		if a, err := netip.ParseAddr(h); err == nil {
			h = a.Unmap().String()
		}
		return fmt.Sprintf("%s port %d", strings.ToLower(h), port)
	}
	type spelling struct{ host, key, dial string }
	var all []spelling
	for _, group := range hostSpellings {
		for _, h := range group {
			if strings.Contains(h, "@") {
				continue // net/http dials the whole, which no resolver knows
			}
			all = append(all, spelling{h, canonicalHost("http", strings.Replace(h, ":443", ":80", 1)), dialed(strings.Replace(h, ":443", ":80", 1))})
		}
	}
	for _, a := range all {
		for _, b := range all {
			if (a.key == b.key) != (a.dial == b.dial) {
				t.Errorf("%q and %q: keys %q and %q, but net/http dials %q and %q", a.host, b.host, a.key, b.key, a.dial, b.dial)
			}
		}
	}
}

// sameName reports whether a and b, the first (canonical) spellings of
// two groups of hostSpellings, name one host, on two ports.
func sameName(a, b string) bool {
	name := func(h string) string {
		if hasPort(h) {
			h = h[:strings.LastIndexByte(h, ':')]
		}
		return h
	}
	return name(a) == name(b)
}

// An IPv6 address's zone names a network interface, whose name is case
// sensitive (Linux's eth0 and ETH0 are two interfaces): canonicalHost
// lower-cases the address, never the zone, so that two hosts net/http
// dials apart never share their state.
func TestCanonicalHostKeepsZoneCase(t *testing.T) {
	for _, tc := range []struct{ scheme, host, want string }{
		{"http", "[FE80::1%eth0]:8080", "[fe80::1%eth0]:8080"},
		{"http", "[fe80::1%ETH0]:8080", "[fe80::1%ETH0]:8080"},
		{"https", "[FE80:0::1%Wlan0]:443", "[fe80::1%Wlan0]"},
		{"http", "[FE80::1]", "[fe80::1]"},
	} {
		if got := canonicalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("canonicalHost(%q, %q) = %q, want %q", tc.scheme, tc.host, got, tc.want)
		}
	}
}
