package resilient

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestBreakerState follows one host's breaker through closed, open,
// half-open (by its timeout alone: no attempt needed) and closed again,
// reading it under every spelling of its URL, while other hosts, other
// ports and other schemes stay closed.
func TestBreakerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bkDead()
		tr := New(bkNet{"api.test": h, "API.test:8080": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 10 * time.Second}))
		same := []string{"http://api.test/", "http://API.TEST:80/v1/x?q=1", "HTTP://api.test:/", "http://user:pw@api.test/"}
		others := []string{"https://api.test/", "http://api.test:8080/", "http://other.test/"}
		want := func(when string, s BreakerState) {
			t.Helper()
			for _, u := range same {
				if got := tr.BreakerState(u); got != s {
					t.Errorf("%s: BreakerState(%q) = %v, want %v", when, u, got, s)
				}
			}
			for _, u := range others {
				if got := tr.BreakerState(u); got != BreakerClosed {
					t.Errorf("%s: BreakerState(%q) = %v, want closed (another breaker)", when, u, got)
				}
			}
		}
		want("before any call", BreakerClosed)
		bkCall(t, tr, "http://api.test/")
		want("after one failure", BreakerClosed)
		bkCall(t, tr, "http://API.test:80/") // an alias of the same breaker
		want("after two failures", BreakerOpen)
		time.Sleep(10*time.Second - time.Nanosecond)
		want("just before OpenTimeout", BreakerOpen)
		_, _, err := bkCall(t, tr, "http://api.test/") // as the breaker itself says
		bkWantOpen(t, err)
		time.Sleep(time.Nanosecond)
		want("at OpenTimeout", BreakerHalfOpen)
		hits := h.hits.Load()
		want("read again", BreakerHalfOpen) // reading changed nothing
		if h.hits.Load() != hits {
			t.Error("BreakerState sent a request")
		}
		h.status.Store(http.StatusOK)
		if code, _, err := bkCall(t, tr, "http://api.test/"); code != 200 || err != nil {
			t.Fatalf("probe: %d, %v", code, err)
		}
		want("after a successful probe", BreakerClosed)
		bkCall(t, tr, "http://API.test:8080/")
		bkCall(t, tr, "http://API.test:8080/")
		if got := tr.BreakerState("http://api.test:8080/"); got != BreakerOpen {
			t.Errorf("port 8080 after two failures: %v, want open", got)
		}
		tr.ResetHost("api.test:8080")
		if got := tr.BreakerState("http://api.test:8080/"); got != BreakerClosed {
			t.Errorf("after ResetHost: %v, want closed", got)
		}
	})
}

// TestBreakerStateCustomKey: with BreakerSettings.Key, the state is the one
// of the breaker the key names; a request the key exempts has none.
func TestBreakerStateCustomKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		key := func(r *http.Request) string {
			if r.URL.Path == "/free" {
				return ""
			}
			return "acct-" + r.URL.Hostname()
		}
		tr := New(bkNet{"a.test": bkDead(), "b.test": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, Key: key}))
		bkCall(t, tr, "http://a.test/x")
		bkCall(t, tr, "http://a.test/free")
		for u, want := range map[string]BreakerState{
			"http://a.test/y":     BreakerOpen,
			"https://a.test:9/z":  BreakerOpen, // the key ignores scheme and port
			"http://b.test/x":     BreakerClosed,
			"http://a.test/free":  BreakerClosed,
			"http://A.TEST/upper": BreakerClosed, // the key is case-sensitive here
		} {
			if got := tr.BreakerState(u); got != want {
				t.Errorf("BreakerState(%q) = %v, want %v", u, got, want)
			}
		}
	})
}

// TestBreakerStateNoBreaker: without a breaker to read, for bad URLs too,
// the answer is closed.
func TestBreakerStateNoBreaker(t *testing.T) {
	tr := New(bkNet{"api.test": bkDead()}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
	bkCall(t, tr, "http://api.test/")
	if got := tr.BreakerState("http://api.test/"); got != BreakerOpen {
		t.Fatalf("open breaker read as %v", got)
	}
	// (A host alone, "api.test", names its breakers: TestBreakerStateOfAHost.)
	for _, bad := range []string{"", "/relative", "http://%zz/", "http:///path", "://api.test", "api.test/v1", "u@api.test", "api.test?q=1"} {
		if got := tr.BreakerState(bad); got != BreakerClosed {
			t.Errorf("BreakerState(%q) = %v, want closed", bad, got)
		}
	}
	off := New(bkNet{"api.test": bkDead()}, WithMaxRetries(0), WithoutBreaker())
	bkCall(t, off, "http://api.test/")
	if got := off.BreakerState("http://api.test/"); got != BreakerClosed {
		t.Errorf("WithoutBreaker: %v, want closed", got)
	}
	var zero Transport
	if got := zero.BreakerState("http://api.test/"); got != BreakerClosed {
		t.Errorf("zero Transport: %v, want closed", got)
	}
}

// TestBreakerStateIPv6Zone: a link-local IPv6 address with its zone, given
// alone as ResetHost takes it (as in URL.Host: "[fe80::1%eth0]:80", or
// bare), names its host's breaker. BreakerState said closed while the
// breaker was open: the zone's "%" made the host fail to parse as a URL's.
func TestBreakerStateIPv6Zone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(bkNet{"[fe80::1%eth0]": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		bkCall(t, tr, "http://[fe80::1%25eth0]/x")
		for _, host := range []string{"http://[fe80::1%25eth0]/", "[fe80::1%eth0]:80", "[FE80::1%eth0]", "fe80::1%eth0"} {
			if got := tr.BreakerState(host); got != BreakerOpen {
				t.Errorf("BreakerState(%q) = %v, want open", host, got)
			}
		}
		for _, host := range []string{"[fe80::1%eth1]", "fe80::1%eth0]", "[fe80::1%eth0]/x", "[fe80::1%eth0]:8080"} {
			if got := tr.BreakerState(host); got != BreakerClosed {
				t.Errorf("BreakerState(%q) = %v, want closed (another host, or not a host)", host, got)
			}
		}
		tr.ResetHost("fe80::1%eth0")
		if got := tr.BreakerState("fe80::1%eth0"); got != BreakerClosed {
			t.Errorf("after ResetHost: %v, want closed", got)
		}
	})
}
