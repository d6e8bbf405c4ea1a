package resilient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/resilienthttp/resilient/internal/redact"
)

// hugeURL returns the URL rawURL followed by a query of 1 MiB, parsed, and
// the string it was parsed from: the URL's scheme, host and path are
// substrings of it, as those of a redirect's Location are (net/http takes
// one of up to 10 MB).
func hugeURL(t *testing.T, rawURL string) (*url.URL, string) {
	t.Helper()
	s := rawURL + "?q=" + strings.Repeat("x", 1<<20)
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u, s
}

// sharesMemory reports whether s is a substring of big in memory: holding s
// keeps big alive.
func sharesMemory(s, big string) bool {
	if s == "" {
		return false
	}
	p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(big)))
	return p >= b && p < b+uintptr(len(big))
}

// keptStrings returns every string the Transport's per-host tables keep:
// their keys, aliases included, and the strings their values hold.
func keptStrings(tr *Transport) map[string][]string {
	kept := map[string][]string{}
	add := func(table string, ss ...string) { kept[table] = append(kept[table], ss...) }
	if s := tr.breakers; s != nil {
		s.mu.Lock()
		s.table.each(func(k breakerKey, e *breakerEntry) {
			add("breakers", k.scheme, k.host, e.node.key.scheme, e.node.key.host)
			if e.aliases != nil {
				for _, a := range *e.aliases {
					add("breakers", a.scheme, a.host)
				}
			}
			if m := e.m.Load(); m != nil {
				add("breakers", m.name)
			}
		})
		s.mu.Unlock()
	}
	if s := tr.budgets; s != nil {
		s.mu.Lock()
		s.m.each(func(k breakerKey, b *hostBudget) {
			add("budgets", k.scheme, k.host, b.node.key.scheme, b.node.key.host)
		})
		s.mu.Unlock()
	}
	if b := tr.bulkhead; b != nil {
		b.mu.Lock()
		b.table.each(func(k breakerKey, s *hostSlots) {
			add("bulkhead", k.scheme, k.host)
			for _, a := range s.aliases {
				add("bulkhead", a.scheme, a.host)
			}
		})
		b.mu.Unlock()
	}
	if rl := tr.rl; rl != nil {
		rl.mu.Lock()
		rl.parts.each(func(k partKey, p *partition) {
			add("partitions", k.scheme, k.host, k.resource, p.key.scheme, p.key.host, p.key.resource)
			p.mu.Lock()
			add("partitions", p.plainMethod, p.plainPath)
			p.mu.Unlock()
		})
		rl.mu.Unlock()
		rl.hostPauses.m.Range(func(k, _ any) bool {
			hk := k.(hostKey)
			add("host pauses", hk.scheme, hk.host)
			return true
		})
	}
	tr.keys.mu.Lock()
	tr.keys.learned.each(func(k breakerKey, _ *struct{}) {
		add("learned key hosts", k.scheme, k.host)
	})
	tr.keys.mu.Unlock()
	for _, names := range []*hostNames{&tr.keys.names, &tr.rl.names} {
		names.mu.Lock()
		names.t.each(func(k breakerKey, c *breakerKey) {
			add("host names", k.scheme, k.host, c.scheme, c.host)
		})
		names.mu.Unlock()
	}
	return kept
}

// hostileAnswers answers each host's first request with a 503, and the
// next with a 200 that announces a quota and replays a key, so that every
// table of the Transport takes the host.
func hostileAnswers() http.RoundTripper {
	seen := map[string]bool{}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		h := http.Header{}
		status := http.StatusOK
		if k := req.URL.Scheme + req.URL.Host; !seen[k] {
			seen[k] = true
			status = http.StatusServiceUnavailable
		} else {
			h.Set("Idempotent-Replayed", "true")
			h.Set("X-RateLimit-Limit", "100")
			h.Set("X-RateLimit-Remaining", "99")
			h.Set("X-RateLimit-Reset", "60")
		}
		return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
	})
}

// A redirect's Location can be megabytes long, and the URL's scheme, host
// and path are substrings of it: a table that kept one of them as a key,
// or in its value, would keep the whole Location alive for as long as it
// holds the host (up to thousands of hosts per table).
func TestTablesDoNotKeepTheURL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(hostileAnswers(), WithRateLimit(1000, 10), WithMaxInFlight(4), WithKeyHonoringHosts("named.example"))
		for _, raw := range []string{
			"https://api.example.com/v1/items/42",
			"HTTPS://API.Example.COM:443/v1/items/43", // an alias of the same host
			"http://other.example:8080/v1/things",
		} {
			u, big := hugeURL(t, raw)
			req := newRequest(t, context.Background(), http.MethodGet, "http://placeholder/", nil)
			req.URL = u
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			resp.Body.Close()
			for table, ss := range keptStrings(tr) {
				for _, s := range ss {
					if sharesMemory(s, big) {
						t.Errorf("%s: the %s keep %q, a substring of the 1 MiB URL", raw, table, s)
					}
				}
			}
		}
		for _, table := range []string{"breakers", "budgets", "bulkhead", "partitions"} {
			if len(keptStrings(tr)[table]) == 0 {
				t.Errorf("the %s keep nothing: the test no longer reaches them", table)
			}
		}
	})
}

// A host megabytes long is kept, in every table, by a bounded form: its
// first 255 bytes and its port. Its requests find that state again, and go
// as any other host's.
func TestLongHostKeyBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(hostileAnswers(), WithRateLimit(1000, 10), WithMaxInFlight(4))
		name := strings.Repeat("a", 1<<20)
		for i := range 3 {
			req := newRequest(t, context.Background(), http.MethodPost, "http://placeholder/", nil)
			req.URL = &url.URL{Scheme: "https", Host: name + ":8443", Path: "/v1/items"}
			req.Host = "" // sent with its URL's host
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			resp.Body.Close()
		}
		for table, ss := range keptStrings(tr) {
			for _, s := range ss {
				if len(s) > len("https://")+redact.MaxHost+len(":8443") {
					t.Errorf("the %s keep a string of %d bytes", table, len(s))
				}
			}
		}
		if n := tr.breakers.len(); n != 1 {
			t.Errorf("breakers hold %d keys after 3 calls to one long host, want 1", n)
		}
		if n := tr.bulkhead.len(); n != 1 {
			t.Errorf("the bulkhead holds %d keys after 3 calls to one long host, want 1", n)
		}
		if n := tr.rl.parts.len(); n != 1 {
			t.Errorf("the limiter holds %d partitions after 3 writes to one long host, want 1", n)
		}
		// ResetHost names it as its requests do.
		st, err := tr.HostState(&http.Request{URL: &url.URL{Scheme: "https", Host: name + ":8443"}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Writes.Limit != 100 {
			t.Errorf("HostState of the long host: writes' limit %d, want the 100 its answers announced", st.Writes.Limit)
		}
	})
}

// The routes a limiter learns from the quotas its responses name, the
// plain limits per route, and the pauses of hosts' global limits are kept
// in copies: none keeps alive the URL of the request it was learned from.
func TestRoutesAndPausesDoNotKeepTheURL(t *testing.T) {
	rl := newRateLimiter(&config{})
	for _, tc := range []struct {
		url, header, value string
		plain              int
	}{
		{"https://api.example.com/search/code", hdrResource, "search", 0},
		{"https://api.example.com/v1/items/42", hdrBucket, "b1", 0},
		{"https://api.example.com/v1/items/42", "", "", 75},
		{"https://api.example.com/v1/things/43", "", "", 30}, // another limit: the host's limits split
	} {
		u, big := hugeURL(t, tc.url)
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}}
		k, _ := rl.key(req, true)
		h := http.Header{}
		if tc.header != "" {
			h.Set(tc.header, tc.value)
		}
		rl.resources.learn(k, req, &http.Response{Header: h, Request: req}, tc.plain, false)
		rl.hostPauses.set(k, time.Now().Add(time.Hour), time.Now())
		check := func(what string, ss ...string) {
			for _, s := range ss {
				if sharesMemory(s, big) {
					t.Errorf("%s: %s keep %q, a substring of the 1 MiB URL", tc.url, what, s)
				}
			}
		}
		rl.resources.m.Range(func(k, _ any) bool {
			r := k.(resourceRoute)
			check("the routes", r.scheme, r.host, r.method, r.path)
			return true
		})
		rl.resources.plain.Range(func(k, v any) bool {
			pk, r := k.(partKey), v.(*plainLimits).route
			check("the plain limits", pk.scheme, pk.host, r.scheme, r.host, r.method, r.path)
			return true
		})
		rl.hostPauses.m.Range(func(k, _ any) bool {
			hk := k.(hostKey)
			check("the host pauses", hk.scheme, hk.host)
			return true
		})
	}
	if rl.resources.n.Load() < 2 || rl.resources.nplain.Load() != 1 || rl.hostPauses.n.Load() != 1 {
		t.Errorf("%d routes and %d pauses learned: the test no longer reaches them", rl.resources.n.Load(), rl.hostPauses.n.Load())
	}
}

// ResetHost names a host megabytes long as its requests do: it clears the
// state they left under the bounded form of its name.
func TestResetLongHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host := strings.Repeat("a", 1<<20) + ":8443"
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Retry-After", "3600")
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: http.NoBody, Request: req}, nil
		}), WithMaxRetries(0))
		req := newRequest(t, context.Background(), http.MethodGet, "http://placeholder/", nil)
		req.URL = &url.URL{Scheme: "https", Host: host, Path: "/"}
		req.Host = "" // sent with its URL's host
		resp, err := roundTrip(t, tr, req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		paused := func() bool {
			st, err := tr.HostState(&http.Request{URL: &url.URL{Scheme: "https", Host: host}})
			if err != nil {
				t.Fatal(err)
			}
			return st.Reads.PausedUntil.After(time.Now())
		}
		if !paused() {
			t.Fatal("the long host is not paused after its 429: the test no longer reaches the pause")
		}
		tr.ResetHost(host)
		if paused() {
			t.Error("ResetHost(the long host) left its pause in force")
		}
	})
}

// The error of an attempt that found a long host's slots taken names the
// host bounded.
func TestLongHostInFlightError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			<-release
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		}), WithMaxInFlight(1), WithMaxRetries(0))
		long := &url.URL{Scheme: "https", Host: strings.Repeat("a", 1<<20) + ":8443", Path: "/"}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		first := newRequest(t, context.Background(), http.MethodGet, "http://placeholder/", nil)
		first.URL = long
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := tr.RoundTrip(first); err == nil {
				resp.Body.Close()
			}
		}()
		synctest.Wait()
		second := newRequest(t, ctx, http.MethodGet, "http://placeholder/", nil)
		second.URL = long
		_, err := roundTrip(t, tr, second)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrTooManyInFlight) {
			t.Fatalf("RoundTrip error %v, want an *Error wrapping ErrTooManyInFlight", err)
		}
		if n := len(e.Err.Error()); n > 2*redact.MaxHost {
			t.Errorf("the cause's message has %d bytes", n)
		}
		close(release)
		<-done
	})
}
