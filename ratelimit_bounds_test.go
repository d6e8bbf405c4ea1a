package resilient

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// This file tests the bounds of what the rate limiter believes: absurd
// pauses and resets, server clocks that disagree with ours, and
// Transport.ResetHost.

// absurdCase is a first response whose announced pause or reset lies far
// beyond MaxBelievedReset, in one of the forms a server may use.
type absurdCase struct {
	name   string
	status int
	header func(now time.Time) http.Header
}

func fixedHeader(kv ...string) func(time.Time) http.Header {
	return func(time.Time) http.Header { return hdr(kv...) }
}

var absurdCases = []absurdCase{
	{"Retry-After seconds overflowing", 429, fixedHeader("Retry-After", "99999999999999999999")},
	{"Retry-After a day", 429, fixedHeader("Retry-After", "86400")},
	{"Retry-After HTTP date in 9999", 429, fixedHeader("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT")},
	{"Retry-After on a 503", 503, fixedHeader("Retry-After", "31536000")},
	{"X-RateLimit-Reset Unix milliseconds, 429", 429, fixedHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999999")},
	{"X-RateLimit-Reset Unix seconds, quota spent", 200, fixedHeader("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999")},
	{"X-RateLimit-Reset seconds from now (3 years)", 200, fixedHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "99999999")},
	{"X-RateLimit-Reset a day from now, 429", 429, fixedHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "86400")},
	{"X-Rate-Limit-Reset RFC 3339 in 9999", 429, fixedHeader("X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", "9999-12-31T23:59:59Z")},
	{"X-RateLimit-Reset HTTP date in 9999", 200, fixedHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "Fri, 31 Dec 9999 23:59:59 GMT")},
	{"X-RateLimit-Reset a day ahead as Unix seconds", 429, func(now time.Time) http.Header {
		return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", formatInt(now.Add(24*time.Hour).Unix()))
	}},
	{"IETF RateLimit t", 200, fixedHeader("RateLimit", `"default";r=0;t=99999999`)},
	{"IETF RateLimit t on a 429", 429, fixedHeader("RateLimit", `"default";r=0;t=86400`)},
	{"IETF draft 7 dictionary", 429, fixedHeader("RateLimit", `limit=10, remaining=0, reset=99999999`)},
	{"IETF policy window of 3 years", 200, fixedHeader("RateLimit", `"d";r=1;t=1`, "RateLimit-Policy", `"d";q=1;w=99999999`)},
	{"older drafts' reset and window", 200, fixedHeader("RateLimit-Limit", "1, 1;w=99999999", "RateLimit-Remaining", "0", "RateLimit-Reset", "99999999")},
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestRateLimitAbsurdHeadersNotBelieved: a response announcing a pause or a
// reset far beyond MaxBelievedReset is returned to the caller at once, and
// the calls that follow reach the server at once: nothing was learned from
// it. Before the bound, such a header made every later call to the host
// fail with ErrRateLimited for the life of the process.
func TestRateLimitAbsurdHeadersNotBelieved(t *testing.T) {
	for _, tc := range absurdCases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						for k, v := range tc.header(time.Now()) {
							w.Header()[k] = v
						}
						w.WriteHeader(tc.status)
					}
				}}
				var obs observed
				tr := New(handlerRT{srv}, WithMaxElapsed(0), WithObserver(obs.add))
				client := &http.Client{Transport: tr}
				start := time.Now()
				code, err := do(t, client, "GET", "http://api.test/x")
				if err != nil || code != tc.status && code != 200 {
					t.Fatalf("first call: %d, %v; want its response", code, err)
				}
				for i := range 5 {
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
						t.Fatalf("call %d after the absurd header: %d, %v; want 200 from the server", i+2, code, err)
					}
				}
				if d := time.Since(start); d > 2*time.Minute {
					// A 503 is retried with backoff (its Retry-After too
					// long for the loop): at most a few backoff waits.
					t.Errorf("the calls took %v of fake time, want no pause learned", d)
				}
				if tc.status == 429 {
					if a := obs.path("/x"); len(a) == 0 || a[0].Retry || a[0].StatusCode != 429 {
						t.Errorf("the 429 was not returned at once: %+v", a)
					}
				}
				p := rlOf(t, tr).lookup(partKey{scheme: "http", host: "api.test"}, false, &lazyNow{})
				if p != nil {
					p.mu.Lock()
					pause, reset, window := p.pauseUntil, p.reset, p.window
					p.mu.Unlock()
					if time.Until(pause) > MaxBelievedReset || time.Until(reset) > MaxBelievedReset || window > MaxBelievedReset {
						t.Errorf("partition learned pause %v, reset %v, window %v", pause, reset, window)
					}
				}
			})
		})
	}
}

// TestOutageRetryAfterBeyondWaitPausesNothing: a 503 whose Retry-After is
// longer than any call waits (WithMaxRetryAfter) is returned at once and
// pauses nothing: the next call goes to the server, which may be back
// before its word, as a plain client's would; the breaker sees to the
// outage. Before, one 503 with Retry-After: 3600 refused every read of the
// host with ErrRateLimited for an hour. A shorter one still pauses the
// host's calls, which wait it out; a 429's long pause is still believed:
// the quota is spent, and asking again before its end is what the server
// said not to do.
func TestOutageRetryAfterBeyondWaitPausesNothing(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wantHits   int           // after the second call
		wantWait   time.Duration // of the second call
		wantErr    error
	}{
		{"503, an hour", 503, "3600", 2, 0, nil},
		{"503, 30s", 503, "30", 2, 30 * time.Second, nil},
		{"429, an hour", 429, "3600", 1, 0, ErrRateLimited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						w.Header().Set("Retry-After", tc.retryAfter)
						w.WriteHeader(tc.status)
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				if code, err := do(t, client, "GET", "http://api.test/x"); code != tc.status {
					t.Fatalf("first call: %d, %v; want its %d", code, err, tc.status)
				}
				start := time.Now()
				code, err := do(t, client, "GET", "http://api.test/x")
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Errorf("second call: %d, %v; want %v", code, err, tc.wantErr)
					}
				} else if code != 200 {
					t.Errorf("second call: %d, %v; want 200 from the server", code, err)
				}
				if d := time.Since(start); d < tc.wantWait || d > tc.wantWait+tc.wantWait/10+time.Second {
					t.Errorf("the second call waited %v, want %v (+ jitter)", d, tc.wantWait)
				}
				if n := len(srv.arrivals); n != tc.wantHits {
					t.Errorf("the server got %d requests, want %d", n, tc.wantHits)
				}
			})
		})
	}
}

// TestRateLimitUnbelievedWaitWithinMaxRetryAfter: a Retry-After past
// MaxBelievedReset (two hours) is not believed by the rate limiter, which
// pauses nothing: another call to the host is sent at once. The retry loop
// still sees the server's wait, which WithMaxRetryAfter bounds: with the
// default 60s the 429 is returned at once (TestRateLimitAbsurdHeadersNotBelieved);
// with a limit of three hours, the request that got it waits the two hours
// and is sent again.
func TestRateLimitUnbelievedWaitWithinMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := throttledOnce("7200")
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxElapsed(0), WithMaxRetryAfter(3*time.Hour))}
		start := time.Now()
		done := make(chan time.Duration)
		go func() {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
				t.Errorf("the throttled call: %d, %v; want the retry's 200", code, err)
			}
			done <- time.Since(start)
		}()
		time.Sleep(time.Second)
		if code, err := do(t, client, "GET", "http://api.test/y"); code != 200 || time.Since(start) != time.Second {
			t.Errorf("another call during the unbelieved pause: %d, %v after %v; want 200 at once", code, err, time.Since(start)-time.Second)
		}
		if took := <-done; took < 2*time.Hour || took > 2*time.Hour+time.Second {
			t.Errorf("the throttled call returned after %v, want the server's 2h (and its spread)", took)
		}
		if n := len(srv.seen("/x")); n != 2 {
			t.Errorf("server saw %d requests of the throttled call, want 2", n)
		}
	})
}

// TestRateLimitBelievedPauseExpires: an hour's pause is believed (real
// quotas reset hourly): calls are refused at once during it, since it is
// longer than WithMaxRetryAfter, and flow again when it ends.
func TestRateLimitBelievedPauseExpires(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header func(now time.Time) http.Header
	}{
		{"Retry-After an hour", fixedHeader("Retry-After", "3600")},
		{"reset in an hour, Unix seconds", func(now time.Time) http.Header {
			return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", formatInt(now.Add(time.Hour).Unix()))
		}},
		{"reset in an hour, seconds from now", fixedHeader("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "3600")},
		{"IETF t an hour", fixedHeader("RateLimit", `"default";r=0;t=3600`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						for k, v := range tc.header(time.Now()) {
							w.Header()[k] = v
						}
						w.WriteHeader(http.StatusTooManyRequests)
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxElapsed(0))}
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 429 {
					t.Fatalf("first call: %d, %v; want the 429 at once", code, err)
				}
				if _, err := do(t, client, "GET", "http://api.test/x"); !errors.Is(err, ErrRateLimited) {
					t.Fatalf("during the hour: %v, want ErrRateLimited", err)
				}
				time.Sleep(time.Hour + time.Second)
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
					t.Errorf("after the hour: %d, %v; want 200", code, err)
				}
				if n := len(srv.seen("")); n != 2 {
					t.Errorf("the server saw %d requests, want 2", n)
				}
			})
		})
	}
}

// TestRateLimitServerClockSkew: times a server announces on its own clock
// are read against its Date header. A server 3 minutes ahead (or behind)
// that asks for 10 seconds gets 10 seconds: not 3m10s, which would have
// refused every call for 3 minutes, nor nothing.
func TestRateLimitServerClockSkew(t *testing.T) {
	forms := []struct {
		name   string
		status int
		header func(server time.Time) http.Header
	}{
		{"Retry-After HTTP date", 429, func(s time.Time) http.Header {
			return hdr("Retry-After", s.Add(10*time.Second).UTC().Format(http.TimeFormat))
		}},
		{"X-RateLimit-Reset Unix seconds", 429, func(s time.Time) http.Header {
			return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", formatInt(s.Add(10*time.Second).Unix()))
		}},
		{"X-RateLimit-Reset Unix milliseconds, quota spent", 200, func(s time.Time) http.Header {
			return hdr("X-RateLimit-Limit", "5", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", formatInt(s.Add(10*time.Second).UnixMilli()))
		}},
		{"X-RateLimit-Reset RFC 3339", 429, func(s time.Time) http.Header {
			return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", s.Add(10*time.Second).UTC().Format(time.RFC3339))
		}},
		{"X-Rate-Limit-Reset HTTP date", 429, func(s time.Time) http.Header {
			return hdr("X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", s.Add(10*time.Second).UTC().Format(http.TimeFormat))
		}},
		{"delta seconds need no Date", 429, func(time.Time) http.Header {
			return hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "10")
		}},
	}
	for _, skew := range []time.Duration{3 * time.Minute, -3 * time.Minute} {
		for _, f := range forms {
			t.Run(f.name+" "+skew.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
						server := time.Now().Add(skew)
						w.Header().Set("Date", server.UTC().Format(http.TimeFormat))
						if n == 0 {
							for k, v := range f.header(server) {
								w.Header()[k] = v
							}
							w.WriteHeader(f.status)
						}
					}}
					client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0), withRand(func(int64) int64 { return 0 }))}
					start := time.Now()
					if code, err := do(t, client, "GET", "http://api.test/x"); code != f.status {
						t.Fatalf("first call: %d, %v", code, err)
					}
					code, err := do(t, client, "GET", "http://api.test/x")
					if code != 200 {
						t.Fatalf("second call: %d, %v; want 200 after a 10s pause", code, err)
					}
					if d := time.Since(start); d != 10*time.Second {
						t.Errorf("the second call waited %v, want 10s", d)
					}
				})
			})
		}
	}
	// The retry loop reads a Retry-After date the same way: the call
	// waits 10 seconds and succeeds, instead of giving up on a wait of
	// 3m10s.
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			server := time.Now().Add(3 * time.Minute)
			w.Header().Set("Date", server.UTC().Format(http.TimeFormat))
			if n == 0 {
				w.Header().Set("Retry-After", server.Add(10*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusTooManyRequests)
			}
		}}
		var obs observed
		client := &http.Client{Transport: New(handlerRT{srv}, WithObserver(obs.add), withRand(func(int64) int64 { return 0 }))}
		start := time.Now()
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || time.Since(start) != 10*time.Second {
			t.Errorf("call: %d, %v after %v; want 200 after 10s", code, err, time.Since(start))
		}
		if a := obs.path("/x"); len(a) != 2 || a[0].RetryAfter != 10*time.Second {
			t.Errorf("attempts %+v, want the first with RetryAfter 10s", a)
		}
		resp := &http.Response{StatusCode: 429, Header: hdr("Date", time.Now().Add(3*time.Minute).UTC().Format(http.TimeFormat),
			"Retry-After", time.Now().Add(3*time.Minute+20*time.Second).UTC().Format(http.TimeFormat)), Body: http.NoBody}
		if e := ParseError(resp); e.RetryAfter != 20*time.Second {
			t.Errorf("ParseError RetryAfter = %v, want 20s", e.RetryAfter)
		}
	})
}

// TestServerSkew checks when the Date header moves server times: only
// beyond the tolerance of its one-second resolution.
// TestRateLimitCachedResponse: a response a cache below the Transport
// serves (its Age above zero, as HTTP caches and CDNs set it, or
// httpcache's X-From-Cache) tells the quota as it was when the server made
// it: GitHub's "spent, resets 10s after Date", cached 50s ago, reset 40s
// ago. Nothing is learned from it, and the next call goes at once, as a
// plain client's would. The same response fresh from a server whose clock
// is 50s behind is a spent quota for 10s more.
func TestRateLimitCachedResponse(t *testing.T) {
	spent := func(made time.Time) http.Header {
		return hdr("Date", made.UTC().Format(http.TimeFormat), "X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0",
			"X-RateLimit-Reset", formatInt(made.Add(10*time.Second).Unix()))
	}
	for _, tc := range []struct {
		name   string
		header func(made time.Time) http.Header
		wait   time.Duration
	}{
		{"Age", func(made time.Time) http.Header { h := spent(made); h.Set("Age", "50"); return h }, 0},
		{"X-From-Cache", func(made time.Time) http.Header { h := spent(made); h.Set("X-From-Cache", "1"); return h }, 0},
		{"X-From-Cache, delta seconds", func(time.Time) http.Header {
			return hdr("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "10", "X-From-Cache", "1")
		}, 0},
		{"Age 0", func(made time.Time) http.Header { h := spent(made); h.Set("Age", "0"); return h }, 10 * time.Second},
		{"fresh, the server's clock behind", spent, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Hour) // a clock well past the bubble's epoch
				made := time.Now().Add(-50 * time.Second)
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						maps.Copy(w.Header(), tc.header(made))
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, withRand(func(int64) int64 { return 0 }))}
				for range 2 {
					if code, err := do(t, client, "GET", "http://api.test/repos/o/r"); code != 200 {
						t.Fatalf("%d, %v; want 200", code, err)
					}
				}
				if d := time.Since(made.Add(50 * time.Second)); d != tc.wait {
					t.Errorf("the second call waited %v, want %v", d, tc.wait)
				}
			})
		})
	}
}

func TestServerSkew(t *testing.T) {
	now := time.Date(2026, 2, 17, 14, 0, 0, 700e6, time.UTC)
	for _, tc := range []struct {
		date string
		want time.Duration
	}{
		{"", 0},
		{"garbage", 0},
		{"Tue, 17 Feb 2026 14:00:00 GMT", 0}, // truncated: 0.7s behind
		{"Tue, 17 Feb 2026 14:00:02 GMT", 0}, // 1.3s ahead
		{"Tue, 17 Feb 2026 13:59:59 GMT", 0}, // 1.7s behind
		{"Tue, 17 Feb 2026 14:03:00 GMT", 3*time.Minute - 700*time.Millisecond},
		{"Tue, 17 Feb 2026 13:57:00 GMT", -3*time.Minute - 700*time.Millisecond},
		// A clock stopped at the epoch is still read against its Date; one
		// centuries away is not believed: its skew saturated, and
		// negating it overflowed.
		{"Thu, 01 Jan 1970 00:00:00 GMT", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).Sub(now)},
		{"Mon, 01 Jan 1601 00:00:00 GMT", 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 0},
	} {
		h := http.Header{}
		if tc.date != "" {
			h.Set("Date", tc.date)
		}
		if got := serverSkew(h, now); got != tc.want {
			t.Errorf("serverSkew(Date %q) = %v, want %v", tc.date, got, tc.want)
		}
	}
}

// TestRateLimitPaceBounded: a pace the server announced (a quota of one an
// hour) that would make an attempt wait longer than WithMaxRetryAfter
// refuses it at once, as a long pause does, even without a deadline.
func TestRateLimitPaceBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("RateLimit", `"h";r=1;t=3600`)
			w.Header().Set("RateLimit-Policy", `"h";q=1;w=3600`)
		}}
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxElapsed(0), WithMaxRetries(0))}
		for range 2 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
				t.Fatalf("within the burst: %d, %v", code, err)
			}
		}
		start := time.Now()
		_, err := do(t, client, "GET", "http://api.test/x")
		if !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "longest wait") || time.Since(start) != 0 {
			t.Errorf("err = %v after %v, want ErrRateLimited at once", err, time.Since(start))
		}
	})
}

// TestRateLimitWindowEstimateExpires: a reset an hour ahead, believed,
// from a host whose quota (60 a minute) announces no window, makes the
// partition estimate an hour's window and pace 60 calls an hour; the
// estimate goes with the windows that never confirm it. Two hours later, a
// client calling at half the quota has every call answered at once. (The
// longest reset ever seen was the window for good: 120 of 300 calls were
// refused, and the others waited up to a minute each.)
func TestRateLimitWindowEstimateExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := glitchedWindowServer()
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
			t.Fatalf("first call: %d, %v", code, err)
		}
		time.Sleep(2 * time.Hour)
		calls := time.Now()
		for i := range 300 {
			time.Sleep(2 * time.Second) // 30 a minute
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
				t.Fatalf("call %d at half the quota, 2 hours after the glitch: %d, %v", i, code, err)
			}
		}
		if d := time.Since(calls); d != 600*time.Second {
			t.Errorf("300 calls 2s apart took %v, want 10m0s: they waited for the pace", d)
		}
	})
}

// TestRateLimitWindowEstimateBoundedByMaxBelievedReset: the same glitch
// (one reset 59 minutes ahead from a host whose quota, 60 a minute,
// announces no window), with a client calling at half the quota from the
// start. The estimate it made slows the pace, but no longer than
// MaxBelievedReset: one header cannot hold a host's calls past it. (It
// went only after two of its windows: 112 calls refused and 113 held, the
// last 1h58m after the glitch; now 57 and 58, the last 1h1m6s after it.)
func TestRateLimitWindowEstimateBoundedByMaxBelievedReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		srv := glitchedWindowServer()
		client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
		var refused, held int
		var glitch, last time.Duration
		for range 3600 { // two hours, 30 calls a minute
			time.Sleep(2 * time.Second)
			sent := time.Now()
			if glitch == 0 {
				glitch = sent.Sub(start)
			}
			code, err := do(t, client, "GET", "http://api.test/x")
			switch {
			case code != 200 && !errors.Is(err, ErrRateLimited):
				t.Fatalf("call at %v: %d, %v", time.Since(start), code, err)
			case code != 200:
				refused++
				last = time.Since(start)
			case time.Since(sent) != 0:
				held++
				last = time.Since(start)
			}
		}
		// The estimate goes with the first response past MaxBelievedReset;
		// the calls just after it may still wait for the debt of the calls
		// held before it, paid at the real pace.
		if last-glitch > MaxBelievedReset+10*time.Second {
			t.Errorf("%d calls refused and %d held by the pace, the last %v after the glitch; want none 10s after MaxBelievedReset (%v)", refused, held, last-glitch, MaxBelievedReset)
		}
	})
}

// sixHoursOfCalls calls http://api.test/x through client every 10 seconds
// for six hours (in a synctest bubble), and returns how many calls were
// refused (ErrRateLimited) or held by the rate limiter, and when the last
// of them was sent, from the start. Any other failure fails the test.
func sixHoursOfCalls(t *testing.T, client *http.Client) (held int, last time.Duration) {
	t.Helper()
	start := time.Now()
	for range 6 * 360 {
		sent := time.Now()
		code, err := do(t, client, "GET", "http://api.test/x")
		switch {
		case code != 200 && !errors.Is(err, ErrRateLimited):
			t.Fatalf("call at %v: %d, %v", sent.Sub(start), code, err)
		case code != 200 || time.Since(sent) != 0:
			held++
			last = sent.Sub(start)
		}
		time.Sleep(10 * time.Second)
	}
	return held, last
}

// TestRateLimitQuotaNoLongerAnnounced: one response announces a quota of
// 10 an hour (in each family's words), and the responses after it announce
// none. A client calling every 10 seconds is paced by that quota, but no
// longer than MaxBelievedReset after the last response that announced it:
// what one response said cannot hold a host's calls for longer. (The pace
// it set held for good: 2,150 of 2,160 calls in six hours refused or held,
// the last at the end of the run; a plain client's were all answered.)
func TestRateLimitQuotaNoLongerAnnounced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"policy", []string{"RateLimit-Policy", `"h";q=10;w=3600`, "RateLimit", `"h";r=9;t=3600`}},
		{"policy alone", []string{"RateLimit-Policy", `"h";q=10;w=3600`}},
		{"X-RateLimit", []string{"X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "9", "X-RateLimit-Reset", "3600"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 0 {
						for i := 0; i < len(tc.header); i += 2 {
							w.Header().Set(tc.header[i], tc.header[i+1])
						}
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				refused, last := sixHoursOfCalls(t, client)
				if last > MaxBelievedReset {
					t.Errorf("%d of %d calls refused or held, the last %v after the only response that announced a quota; want none after MaxBelievedReset (%v)", refused, 6*360, last, MaxBelievedReset)
				}
			})
		})
	}
}

// TestRateLimitPolicyWindowNoLongerAnnounced: one response announces a
// policy of an hour's window, and every response after it a quota of 100
// with 99 left and a reset a second ahead, without a window (in another
// family's words, or in the IETF RateLimit field without its policy). A
// client calling every 10 seconds, far below what the server says is left,
// is paced by that window no longer than MaxBelievedReset after the only
// response that announced it, as by a window estimated from one reset.
// (The policy's window held for good: about 2,100 of 2,160 calls in six
// hours held up to 38 s each, the last at the end of the run; a plain
// client's were all answered at once.)
func TestRateLimitPolicyWindowNoLongerAnnounced(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, later []string
	}{
		{"policy, then X-RateLimit", []string{"RateLimit-Policy", `"h";q=10;w=3600`},
			[]string{"X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "99", "X-RateLimit-Reset", "1"}},
		{"policy, then RateLimit alone", []string{"RateLimit-Policy", `"h";q=100;w=3600`, "RateLimit", `"h";r=99;t=1`},
			[]string{"RateLimit", `"h";r=99;t=1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					h := tc.later
					if n == 0 {
						h = tc.first
					}
					for i := 0; i < len(h); i += 2 {
						w.Header().Set(h[i], h[i+1])
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				held, last := sixHoursOfCalls(t, client)
				if last > MaxBelievedReset {
					t.Errorf("%d of %d calls refused or held, the last %v after the only response that announced the policy; want none after MaxBelievedReset (%v)", held, 6*360, last, MaxBelievedReset)
				}
			})
		})
	}
}

// TestRateLimitRemainingAboveLimit: a server whose every response says
// that 100 requests remain of a quota it gives as 1 a minute (in each
// family's words): the remaining count says the quota is at least that,
// and a client calling once a second, which the server says is far below
// it, is neither refused nor held, as a plain client's calls are not. (The
// pace followed the limit, one call in 63 s: 373 of 600 calls refused, the
// others held up to a minute.)
func TestRateLimitRemainingAboveLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"X-RateLimit", []string{"X-RateLimit-Limit", "1", "X-RateLimit-Remaining", "100", "X-RateLimit-Reset", "60"}},
		{"RateLimit", []string{"RateLimit-Policy", `"m";q=1;w=60`, "RateLimit", `"m";r=100;t=60`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					for i := 0; i < len(tc.header); i += 2 {
						w.Header().Set(tc.header[i], tc.header[i+1])
					}
				}}
				client := &http.Client{Transport: New(handlerRT{srv}, WithMaxRetries(0))}
				refused, held := refusedAndHeld(t, client, 600, time.Second)
				if refused+held > 0 {
					t.Errorf("%d of 600 calls refused and %d held, while the server said 100 remained; want none", refused, held)
				}
			})
		})
	}
}

// TestResetHost: ResetHost clears a host's learned pause and quota and its
// breaker, whatever the form of the host it is given, wakes the attempts
// waiting for the host, and leaves other hosts alone.
func TestResetHost(t *testing.T) {
	t.Run("pause", func(t *testing.T) {
		for _, host := range []string{"api.test", "API.Test", "api.test:443", "https://api.test/v1?x=1"} {
			synctest.Test(t, func(t *testing.T) {
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					if r.URL.Path == "/throttle" {
						throttle(w, "3600")
					}
				}}
				tr := New(handlerRT{srv}, WithMaxRetries(0))
				client := &http.Client{Transport: tr}
				for _, u := range []string{"https://api.test/throttle", "https://other.test/throttle"} {
					do(t, client, "GET", u)
					do(t, client, "POST", u)
				}
				for _, u := range []string{"https://api.test/x", "https://other.test/x"} {
					if _, err := do(t, client, "GET", u); !errors.Is(err, ErrRateLimited) {
						t.Fatalf("%s before ResetHost: %v, want ErrRateLimited", u, err)
					}
				}
				tr.ResetHost(host)
				for _, m := range []string{"GET", "POST"} {
					if code, err := do(t, client, m, "https://api.test/x"); code != 200 {
						t.Errorf("ResetHost(%q): %s: %d, %v; want 200", host, m, code, err)
					}
				}
				if _, err := do(t, client, "GET", "https://other.test/x"); !errors.Is(err, ErrRateLimited) {
					t.Errorf("ResetHost(%q) cleared another host: %v", host, err)
				}
			})
		}
	})
	t.Run("other port", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr := New(handlerRT{throttledOnce("3600")}, WithMaxRetries(0))
			client := &http.Client{Transport: tr}
			do(t, client, "GET", "https://api.test:8443/x")
			tr.ResetHost("api.test:443")
			if _, err := do(t, client, "GET", "https://api.test:8443/x"); !errors.Is(err, ErrRateLimited) {
				t.Errorf("ResetHost of port 443 cleared port 8443: %v", err)
			}
			tr.ResetHost("api.test:8443")
			if code, err := do(t, client, "GET", "https://api.test:8443/x"); code != 200 {
				t.Errorf("after ResetHost of its port: %d, %v", code, err)
			}
		})
	})
	t.Run("a URL's default port", func(t *testing.T) {
		// ResetHost("https://api.test/") names port 443, as a URL with an
		// empty port does (url.URL's Port() is "" for both): it did not
		// clear the pauses and breakers of the host on every port and
		// scheme.
		for _, named := range []string{"https://api.test/v1", "https://api.test:/v1"} {
			synctest.Test(t, func(t *testing.T) {
				tr := New(bkNet{"api.test": bkDead(), "api.test:8443": bkDead()}, WithMaxRetries(0),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
				for _, u := range []string{"https://api.test/", "https://api.test:8443/", "http://api.test/"} {
					bkCall(t, tr, u)
				}
				tr.ResetHost(named)
				if got := tr.BreakerState("https://api.test/"); got != BreakerClosed {
					t.Errorf("https://api.test after ResetHost(%q): %v, want closed", named, got)
				}
				for _, u := range []string{"https://api.test:8443/", "http://api.test/"} {
					if got := tr.BreakerState(u); got != BreakerOpen {
						t.Errorf("%s after ResetHost(%q), another port: %v, want open", u, named, got)
					}
				}
			})
		}
	})
	t.Run("quota and waiters", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 0 {
					w.Header().Set("X-RateLimit-Limit", "10")
					w.Header().Set("X-RateLimit-Remaining", "0")
					w.Header().Set("X-RateLimit-Reset", "50")
				}
			}}
			tr := New(handlerRT{srv}, WithMaxRetries(0))
			client := &http.Client{Transport: tr}
			do(t, client, "GET", "http://api.test/x")
			start := time.Now()
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 || time.Since(start) != 5*time.Second {
						t.Errorf("waiter: %d, %v after %v; want 200 after 5s, when ResetHost is called", code, err, time.Since(start))
					}
				})
			}
			time.Sleep(5 * time.Second)
			tr.ResetHost("api.test")
			wg.Wait()
		})
	})
	t.Run("breaker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := bkDead()
			var rec bkRecorder
			tr := New(bkNet{"api.test": h, "other.test": bkDead()}, WithMaxRetries(0),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithBreakerObserver(rec.add))
			bkCall(t, tr, "http://api.test/")
			bkCall(t, tr, "http://other.test/")
			h.status.Store(200)
			_, _, err := bkCall(t, tr, "http://api.test/")
			bkWantOpen(t, err)
			tr.ResetHost("api.test:80")
			if code, _, err := bkCall(t, tr, "http://api.test/"); err != nil || code != 200 {
				t.Errorf("after ResetHost: %d, %v; want 200", code, err)
			}
			_, _, err = bkCall(t, tr, "http://other.test/")
			bkWantOpen(t, err)
			bkEqual(t, "changes", rec.transitions(), []string{
				"http://api.test:80 closed->open",
				"http://other.test:80 closed->open",
				"http://api.test:80 open->closed",
			})
		})
	})
	t.Run("custom keys", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			key := func(r *http.Request) string { return r.Header.Get("X-Account") }
			tr := New(handlerRT{throttledOnce("3600")}, WithMaxRetries(0), WithRateLimitKey(key))
			client := &http.Client{Transport: tr}
			call := func() error {
				req, _ := http.NewRequest("GET", "http://api.test/x", nil)
				req.Header.Set("X-Account", "Acme")
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return err
			}
			call()
			if err := call(); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("before: %v", err)
			}
			tr.ResetHost("api.test") // not the key
			if err := call(); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("ResetHost of the URL's host cleared a custom key: %v", err)
			}
			tr.ResetHost("acme")
			if err := call(); err != nil {
				t.Errorf("after ResetHost of the key: %v", err)
			}
		})
	})
	t.Run("zero Transport and nothing learned", func(t *testing.T) {
		var tr Transport
		tr.ResetHost("api.test")
		tr.ResetHost("")
		New(nil, WithoutRateLimit(), WithoutBreaker()).ResetHost("api.test")
	})
}

func TestHostMatcher(t *testing.T) {
	for _, tc := range []struct {
		arg          string
		scheme, host string
		want         bool
	}{
		{"api.test", "https", "api.test", true},
		{"api.test", "https", "API.TEST:8443", true},
		{"API.test", "http", "api.test:80", true},
		{"api.test:443", "https", "api.test", true},
		{"api.test:443", "http", "api.test", false},
		{"api.test:80", "http", "api.test", true},
		{"api.test:8443", "https", "api.test:8443", true},
		{"api.test:8443", "https", "api.test", false},
		{"api.test", "https", "api.test.evil", false},
		{"api", "https", "api.test", false},
		{"[::1]:8080", "http", "[::1]:8080", true},
		{"::1", "http", "[::1]:8080", true},
		{"[::1]", "http", "[::1]", true},
		{"https://user@api.test:8443/x?y", "http", "api.test:8443", true},
		// A URL without a port names its scheme's default one.
		{"https://api.test/v1", "https", "api.test", true},
		{"https://api.test/v1", "https", "API.test:443", true},
		{"https://api.test/v1", "http", "api.test:443", true},
		{"https://api.test/v1", "https", "api.test:8443", false},
		{"https://api.test/v1", "http", "api.test", false},
		{"http://api.test", "http", "api.test:80", true},
		{"http://api.test", "https", "api.test", false},
		{"acme", "", "ACME", true},
		{"acme", "", "acme-2", false},
	} {
		m, ok := newHostMatcher(tc.arg)
		if got := ok && m.match(tc.scheme, tc.host, tc.scheme == ""); got != tc.want {
			t.Errorf("ResetHost(%q) matches %s %q = %v, want %v", tc.arg, tc.scheme, tc.host, got, tc.want)
		}
	}
	for _, bad := range []string{"", "  ", "http://%zz"} {
		if _, ok := newHostMatcher(bad); ok {
			t.Errorf("newHostMatcher(%q) accepted", bad)
		}
	}
}

// TestResetHostWakesRetryAfterWait: a call that waits, between its attempts,
// for the Retry-After of a 429 is waiting for the host's pause, as the
// attempts the rate limiter holds are: ResetHost ends that wait too, and the
// call retries at once. A call to another host keeps waiting.
func TestResetHostWakesRetryAfterWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"50"}}}, {status: 200}}}
		other := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"50"}}}, {status: 200}}}
		tr := New(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "other.test" {
				return other.RoundTrip(r)
			}
			return s.RoundTrip(r)
		}), withRand(func(int64) int64 { return 0 }))
		start := time.Now()
		var wg sync.WaitGroup
		for _, u := range []string{"https://api.test/x", "https://other.test/x"} {
			wg.Go(func() {
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, u, nil))
				if err != nil {
					t.Errorf("%s: %v", u, err)
					return
				}
				resp.Body.Close()
				want := 50 * time.Second
				if u == "https://api.test/x" {
					want = 5 * time.Second
				}
				if resp.StatusCode != 200 || time.Since(start) != want {
					t.Errorf("%s: %d after %v; want 200 after %v", u, resp.StatusCode, time.Since(start), want)
				}
			})
		}
		time.Sleep(5 * time.Second)
		tr.ResetHost("api.test")
		wg.Wait()
		if s.numCalls() != 2 || other.numCalls() != 2 {
			t.Errorf("attempts: %d and %d, want 2 and 2", s.numCalls(), other.numCalls())
		}
	})
}

// TestRateLimitThrottleOfAnotherLimit: a 429 without a Retry-After whose
// announced quota is not spent (Remaining above 0) was throttled by another
// limit (GitHub's secondary limits), whose end the quota's reset, up to an
// hour away, does not tell: the partition pauses a minute, and the retry
// waits the same, instead of an hour. A 429 whose quota is spent pauses
// until the reset, as announced.
func TestRateLimitThrottleOfAnotherLimit(t *testing.T) {
	for _, tc := range []struct {
		remaining string
		calls     int // server hits for one call
		status    int
	}{
		{"4000", 2, http.StatusOK},           // the retry, a minute later
		{"0", 1, http.StatusTooManyRequests}, // the reset, an hour away: past WithMaxRetryAfter
	} {
		synctest.Test(t, func(t *testing.T) {
			reset := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
			rt := &rtScript{steps: []rtStep{
				{status: 429, header: http.Header{"X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {tc.remaining}, "X-Ratelimit-Reset": {reset}}},
				{status: 200},
			}}
			tr := New(rt)
			start := time.Now()
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://api.github.test/repos/o/r", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || rt.numCalls() != tc.calls {
				t.Fatalf("remaining %s: %d after %d calls, want %d after %d", tc.remaining, resp.StatusCode, rt.numCalls(), tc.status, tc.calls)
			}
			if waited := time.Since(start); tc.calls == 2 && (waited < time.Minute || waited > time.Minute+time.Second) {
				t.Errorf("remaining %s: the retry waited %v, want a minute (and its spread)", tc.remaining, waited)
			}
		})
	}
}

// TestRateLimitRollingWindowEstimateHolds: a rolling window's resets are
// those of its oldest request, close at hand under a steady load, so that
// no response confirms the window estimated from the first one; while the
// quota is in use, the estimate holds (it is dropped only while at least
// half of the quota is left, see TestRateLimitWindowEstimateExpires), and
// 32 callers of a host that answers in 5ms get no 429 (6, and 10.2s in
// place of 8.4s, when it was dropped: the pace a reset close at hand
// implies overran the quota). The demo's ratelimit profile, in fake time.
func TestRateLimitRollingWindowEstimateHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Aidelly,
			resilienttest.WithQuota(resilienttest.Quota{Limit: 120, Window: time.Minute, Kind: resilienttest.RollingWindow, ResetFormat: resilienttest.UnixMillis, TimeScale: 60}),
			resilienttest.WithLatency(5*time.Millisecond))
		defer srv.Close()
		var throttled atomic.Int64
		tr := New(srv.Transport(), WithObserver(func(a Attempt) {
			if a.StatusCode == http.StatusTooManyRequests {
				throttled.Add(1)
			}
		}))
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for range 30 {
					if got := get(t, tr, srv.URL+"/v1/usage"); got != 200 {
						t.Errorf("status %d", got)
						return
					}
				}
			})
		}
		start := time.Now()
		wg.Wait()
		t.Logf("took %v, %d 429s", time.Since(start), throttled.Load())
		if n := throttled.Load(); n != 0 {
			t.Errorf("%d attempts got a 429, want none: the window estimate was dropped while the quota was in use", n)
		}
	})
}

// TestResetHostWakesRetryAfterWaitCustomKey: under a partition key of the
// caller's (WithRateLimitKey), ResetHost of that key clears the pause the
// 429 set, and wakes the call waiting for its Retry-After too: it retries
// at once, as it does under the default key. (It waited the whole 50 s.)
func TestResetHostWakesRetryAfterWaitCustomKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &rtScript{steps: []rtStep{{status: 429, header: http.Header{"Retry-After": {"50"}}}, {status: 200}}}
		tr := New(s, withRand(func(int64) int64 { return 0 }),
			WithRateLimitKey(func(*http.Request) string { return "acme" }))
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "https://api.test/x", nil))
			if err != nil {
				t.Errorf("call: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || time.Since(start) != 5*time.Second {
				t.Errorf("call: %d after %v; want 200 after 5s", resp.StatusCode, time.Since(start))
			}
		}()
		time.Sleep(5 * time.Second)
		tr.ResetHost("acme")
		<-done
		if s.numCalls() != 2 {
			t.Errorf("attempts: %d, want 2", s.numCalls())
		}
	})
}

// glitchedWindowServer answers as a host whose quota, 60 a minute in
// windows that start on the minute, announces no window of its own: 59
// remain, resetting at the next minute, except in its first answer, whose
// reset is 59 minutes ahead (one glitch). Made in a synctest bubble, its
// minutes are the bubble's.
func glitchedWindowServer() *recServer {
	start := time.Now()
	return &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
		reset := time.Minute - time.Since(start)%time.Minute
		if n == 0 {
			reset = 59 * time.Minute
		}
		w.Header().Set("X-RateLimit-Limit", "60")
		w.Header().Set("X-RateLimit-Remaining", "59")
		w.Header().Set("X-RateLimit-Reset", formatInt(int64((reset+time.Second-1)/time.Second)))
	}}
}

// TestRateLimitStaticPaceNotBoundedByMaxRetryAfter: WithMaxRetryAfter
// bounds the waits a server sets (a pause, a spent quota, its pace), not
// the caller's own WithRateLimit: a turn of a static pace further ahead
// than the limit, within the call's budget, is waited for, not refused.
func TestRateLimitStaticPaceNotBoundedByMaxRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &recServer{}
		client := &http.Client{Transport: New(handlerRT{srv}, WithRateLimit(1.0/30, 1), WithMaxRetryAfter(10*time.Second))}
		start := time.Now()
		for range 2 {
			if _, err := do(t, client, "GET", "http://api.test/"); err != nil {
				t.Fatalf("a turn of the static pace 30s ahead: %v", err)
			}
		}
		if d := time.Since(start); d < 30*time.Second-time.Millisecond || d > 30*time.Second+time.Millisecond {
			t.Errorf("two calls at one every 30s took %v, want 30s", d)
		}
	})
}

// refusedAndHeld sends n GETs through client, every apart, and returns how
// many the Transport refused with ErrRateLimited and how many it held
// before sending (a wait of the fake clock). Run it in a synctest bubble.
func refusedAndHeld(t *testing.T, client *http.Client, n int, every time.Duration) (refused, held int) {
	t.Helper()
	for range n {
		sent := time.Now()
		code, err := do(t, client, "GET", "http://api.test/x")
		switch {
		case code != 200 && !errors.Is(err, ErrRateLimited):
			t.Fatalf("%d, %v", code, err)
		case code != 200:
			refused++
		case time.Since(sent) != 0:
			held++
		}
		time.Sleep(every)
	}
	return refused, held
}
