package resilient

import (
	"net/http"
	"testing"
)

// A host spelled in upper case, or as a fully-qualified name ("api.example.com."),
// costs an attempt what its canonical spelling costs, wherever the
// Transport looks it up by its canonical name on every attempt: the rate
// limiter once it holds a partition (a static limit, a quota a server
// announced, a QuotaStore), and the write rule's hosts, named or learned.
func TestHostSpellingsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items at random")
	}
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	quota := &stubOK{header: http.Header{"Content-Type": {"application/json"},
		"X-Ratelimit-Limit": {"1000000"}, "X-Ratelimit-Remaining": {"999999"}, "X-Ratelimit-Reset": {"60"}}}
	learned := New(base)
	learned.keys.learn("https", "api.example.com")
	learned.keys.learn("https", "api.example.com:8443")
	named := New(base, WithKeyHonoringHosts("api.example.com"))
	for _, tc := range []struct {
		name   string
		tr     http.RoundTripper
		base   http.RoundTripper
		method string
	}{
		{"get", New(base), base, http.MethodGet},
		{"get-ratelimit", New(base, WithRateLimit(1e9, 1e6)), base, http.MethodGet},
		{"get-quota-announced", New(quota), quota, http.MethodGet},
		{"get-quotastore", New(base, WithQuotaStore(new(memQuota))), base, http.MethodGet},
		{"post", New(base), base, http.MethodPost},
		{"post-named-host", named, base, http.MethodPost},
		{"post-named-host-port", New(base, WithKeyHonoringHosts("api.example.com:443", "api.example.com:8443")), base, http.MethodPost},
		{"post-learned-host", learned, base, http.MethodPost},
	} {
		for _, sp := range []struct{ canonical, other string }{
			{"api.example.com", "API.example.com"},
			{"api.example.com", "api.example.com."},
			{"api.example.com", "HTTPS://API.Example.COM.:443"},
			{"api.example.com:8443", "api.example.com.:8443"},
			{"api.example.com:8443", "API.example.com:8443"},
		} {
			allocs := func(host string) float64 {
				url := "https://" + host + "/v1/posts"
				if len(host) > 8 && host[:8] == "HTTPS://" {
					url = host + "/v1/posts"
				}
				req, err := http.NewRequest(tc.method, url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for range 3 { // the state of the host made
					roundTripOK(t, tc.tr, req)
				}
				return testing.AllocsPerRun(100, func() { roundTripOK(t, tc.tr, req) }) -
					testing.AllocsPerRun(100, func() { roundTripOK(t, tc.base, req) })
			}
			if want, got := allocs(sp.canonical), allocs(sp.other); got != want {
				t.Errorf("%s: %s allocates %v per call, %s %v", tc.name, sp.other, got, sp.canonical, want)
			}
		}
	}

	// A host learned to honor keys, or named with its port, costs a write
	// what a host named alone does.
	post, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
	if err != nil {
		t.Fatal(err)
	}
	cost := func(tr http.RoundTripper) float64 {
		roundTripOK(t, tr, post)
		return testing.AllocsPerRun(100, func() { roundTripOK(t, tr, post) })
	}
	want := cost(named)
	for name, tr := range map[string]http.RoundTripper{
		"learned":       learned,
		"named, port":   New(base, WithKeyHonoringHosts("api.example.com:443")),
		"another named": New(base, WithKeyHonoringHosts("other.example", "api.example.com")),
		"another learned": func() http.RoundTripper {
			tr := New(base, WithKeyHonoringHosts("api.example.com"))
			tr.keys.learn("https", "other.example")
			return tr
		}(),
	} {
		if got := cost(tr); got != want {
			t.Errorf("a write to a host %s: %v allocations, want %v as for a host named alone", name, got, want)
		}
	}
}

// TestHostNamesCanonical: hostNames gives every spelling of a host the
// canonical form canonicalName gives it, on its path that copies nothing
// (a lower-case scheme and a plain host) as on the one that makes the
// form, met for the first time or again.
func TestHostNamesCanonical(t *testing.T) {
	var n hostNames
	n.init()
	for _, tc := range []struct{ scheme, host, wantScheme, wantHost string }{
		{"https", "api.example.com", "https", "api.example.com"},
		{"https", "api.example.com:443", "https", "api.example.com"},
		{"https", "api.example.com.", "https", "api.example.com"},
		{"http", "api.example.com:", "http", "api.example.com"},
		{"https", "api.example.com:80", "https", "api.example.com:80"},
		{"HTTPS", "api.example.com:443", "https", "api.example.com"},
		{"Http", "api.example.com", "http", "api.example.com"},
		{"https", "API.example.com.:0443", "https", "api.example.com"},
		{"https", "[0:0::1]:8443", "https", "[::1]:8443"},
	} {
		for range 2 { // made, then found
			scheme, host := n.canonical(tc.scheme, tc.host)
			if scheme != tc.wantScheme || host != tc.wantHost {
				t.Errorf("canonical(%q, %q) = %q, %q; want %q, %q", tc.scheme, tc.host, scheme, host, tc.wantScheme, tc.wantHost)
			}
			if ws, wh := canonicalName(tc.scheme, tc.host); scheme != ws || host != wh {
				t.Errorf("canonical(%q, %q) = %q, %q; canonicalName says %q, %q", tc.scheme, tc.host, scheme, host, ws, wh)
			}
		}
	}
}
