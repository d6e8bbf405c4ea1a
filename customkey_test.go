package resilient

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// byURL is the careless custom key: the request's whole URL, as long as
// the caller's (or a redirect's) URL is.
func byURL(r *http.Request) string { return r.URL.String() }

// longURL returns a URL of more than 64 KiB whose last path segment is
// tail: URLs that differ only by their tail share their first 64 KiB.
func longURL(tail string) string {
	return "https://api.example.com/v1/items/" + strings.Repeat("x", 64<<10) + "/" + tail
}

// A custom key (BreakerSettings.Key, WithRateLimitKey) of any length is
// kept, in every table, in a bounded form; keys that differ only past that
// bound keep state of their own, and the requests of each find theirs
// again, as HostState and BreakerState do.
func TestLongCustomKeysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := new(memQuota)
		tr := New(hostileAnswers(), WithRateLimit(1000, 10), WithMaxInFlight(4), WithQuotaStore(store),
			WithBreaker(BreakerSettings{Key: byURL}), WithRateLimitKey(byURL))
		const keys = 3
		for i := range 2 * keys {
			req := newRequest(t, context.Background(), http.MethodGet, longURL(strconv.Itoa(i%keys)), nil)
			resp, err := roundTrip(t, tr, req)
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			resp.Body.Close()
		}
		for table, ss := range keptStrings(tr) {
			for _, s := range ss {
				if len(s) > maxCustomKey {
					t.Errorf("the %s keep a string of %d bytes, want at most %d", table, len(s), maxCustomKey)
				}
			}
		}
		store.mu.Lock()
		for _, name := range store.names {
			if len(name) > maxCustomKey {
				t.Errorf("the QuotaStore is asked for a partition named by %d bytes, want at most %d", len(name), maxCustomKey)
			}
		}
		if n := len(store.parts); n != keys {
			t.Errorf("the QuotaStore holds %d partitions after calls under %d long keys, want %d", n, keys, keys)
		}
		store.mu.Unlock()
		if n := tr.breakers.len(); n != keys {
			t.Errorf("breakers hold %d keys after calls under %d long keys, want %d", n, keys, keys)
		}
		if n := tr.bulkhead.len(); n != keys {
			t.Errorf("the bulkhead holds %d keys after calls under %d long keys, want %d", n, keys, keys)
		}
		if n := tr.rl.parts.len(); n != keys {
			t.Errorf("the limiter holds %d partitions after calls under %d long keys, want %d", n, keys, keys)
		}
		for i := range keys {
			st, err := tr.HostState(newRequest(t, context.Background(), http.MethodGet, longURL(strconv.Itoa(i)), nil))
			if err != nil {
				t.Fatal(err)
			}
			if st.Reads.Limit != 100 {
				t.Errorf("HostState of long key %d: reads' limit %d, want the 100 its answers announced", i, st.Reads.Limit)
			}
		}
	})
}

// The errors of attempts refused under a long custom key, and the breaker
// changes observed, name it bounded; BreakerState and ResetHost find the
// state of the long key as its requests do.
func TestLongCustomKeyErrorsAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failing, throttled := longURL("failing"), longURL("throttled")
		tr := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
			h := http.Header{}
			status := http.StatusServiceUnavailable
			if req.URL.String() == throttled {
				status = http.StatusTooManyRequests
				h.Set("Retry-After", "3600")
			}
			return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
		}), WithMaxRetries(0), WithBreaker(BreakerSettings{Key: byURL, ConsecutiveFailures: 1}), WithRateLimitKey(byURL),
			WithBreakerObserver(func(c BreakerChange) {
				if len(c.Key) > maxCustomKey {
					t.Errorf("BreakerChange.Key has %d bytes", len(c.Key))
				}
			}))
		call := func(rawURL string) error { return getClosed(t, tr, rawURL) }
		call(failing)
		if got := tr.BreakerState(failing); got != BreakerOpen {
			t.Fatalf("BreakerState(the long key) = %v after its failure, want open", got)
		}
		err := call(failing)
		if !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("a call under the open long key: %v, want ErrCircuitOpen", err)
		}
		var e *Error
		if errors.As(err, &e) && len(e.Err.Error()) > 2*maxCustomKey {
			t.Errorf("the open breaker's error has %d bytes", len(e.Err.Error()))
		}
		call(throttled)
		err = call(throttled)
		if !errors.Is(err, ErrRateLimited) {
			t.Fatalf("a call under the paused long key: %v, want ErrRateLimited", err)
		}
		if errors.As(err, &e) && len(e.Err.Error()) > 2*maxCustomKey {
			t.Errorf("the paused partition's error has %d bytes", len(e.Err.Error()))
		}
		st, _ := tr.HostState(newRequest(t, context.Background(), http.MethodGet, throttled, nil))
		if !st.Reads.PausedUntil.After(time.Now()) {
			t.Fatal("HostState does not find the pause of the long key")
		}

		tr.ResetHost(failing)
		tr.ResetHost(throttled)
		if got := tr.BreakerState(failing); got != BreakerClosed {
			t.Errorf("BreakerState(the long key) = %v after ResetHost(it), want closed", got)
		}
		st, _ = tr.HostState(newRequest(t, context.Background(), http.MethodGet, throttled, nil))
		if st.Reads.PausedUntil.After(time.Now()) {
			t.Error("ResetHost(the long key) left its pause in force")
		}
	})
}

// A custom key within the bound is kept as it is; a longer one as its first
// bytes, cut at a character's boundary, and a digest of the whole: distinct
// for keys that differ anywhere, the same for the same key.
func TestCustomKey(t *testing.T) {
	short := strings.Repeat("é", maxCustomKey/2) // 254 bytes
	if got := customKey(short); got != short {
		t.Errorf("customKey(%d bytes) = %q, want it unchanged", len(short), got)
	}
	long := short + "tail"
	a, b := customKey(long+"a"), customKey(long+"b")
	if len(a) > maxCustomKey || len(b) > maxCustomKey {
		t.Errorf("customKey(long) has %d and %d bytes, want at most %d", len(a), len(b), maxCustomKey)
	}
	if a == b {
		t.Errorf("customKey of two keys that differ in their last byte = %q for both", a)
	}
	if again := customKey(strings.Clone(long + "a")); again != a {
		t.Errorf("customKey(the same key) = %q, then %q", a, again)
	}
	if !strings.HasPrefix(a, short[:len(short)-40]) || !strings.ContainsRune(a, '…') {
		t.Errorf("customKey(long) = %q, want the key's first bytes, an ellipsis and a digest", a)
	}
	if !utf8.ValidString(a) {
		t.Errorf("customKey(long) = %q, not valid UTF-8", a)
	}
	if n := testing.AllocsPerRun(100, func() { _ = customKey(short) }); n != 0 {
		t.Errorf("customKey(a short key) allocates %v times", n)
	}
}

// TestCustomKeyCutAtCharacter checks that a long custom key's bounded form
// keeps its first bytes cut at the boundary of a character, wherever the
// characters fall: the key is shown in errors, BreakerChange and log
// records.
func TestCustomKeyCutAtCharacter(t *testing.T) {
	for _, lead := range []string{"", "x", "xy"} {
		k := lead + strings.Repeat("€", 100) // 3 bytes each
		got := customKey(k)
		if !utf8.ValidString(got) || len(got) > maxCustomKey {
			t.Errorf("customKey(%q + 100 €) = %q (%d bytes): want valid UTF-8 of at most %d bytes", lead, got, len(got), maxCustomKey)
		}
	}
}
