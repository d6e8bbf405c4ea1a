package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// bkHost is a host of a bkNet: it answers with its status (200 when zero)
// and counts the requests that reach it.
type bkHost struct {
	status atomic.Int32
	hits   atomic.Int32
	// wait, when non-nil, holds every request until it is closed or the
	// request's context is done.
	wait chan struct{}
	// header, when non-nil, is added to every response's header.
	header http.Header
}

func bkDead() *bkHost {
	h := new(bkHost)
	h.status.Store(http.StatusInternalServerError)
	return h
}

// bkNet is an in-memory network of hosts, keyed by URL.Host, that works
// inside a synctest bubble. A request to an unknown host fails as a refused
// dial.
type bkNet map[string]*bkHost

func (n bkNet) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	h := n[req.URL.Host]
	if h == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	if err := req.Context().Err(); err != nil {
		return nil, context.Cause(req.Context())
	}
	n1 := h.hits.Add(1)
	if h.wait != nil {
		select {
		case <-h.wait:
		case <-req.Context().Done():
			return nil, context.Cause(req.Context())
		}
	}
	code := int(h.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	body := fmt.Sprintf("%s %d #%d", req.URL.Host, code, n1)
	header := http.Header{"Content-Type": {"text/plain"}}
	maps.Copy(header, h.header)
	return &http.Response{
		StatusCode:    code,
		Status:        strconv.Itoa(code) + " " + http.StatusText(code),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// bkCall sends a GET to url through rt and returns the status and body of
// the response, or the error.
func bkCall(t testing.TB, rt http.RoundTripper, url string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bkDo(t, rt, req)
}

// pacedCalls sends calls GETs to url through rt, one every every, each in
// a goroutine of its own (a host that hangs holds them), waits for them
// all, and returns how many the breaker refused and when the first refusal
// came, after the first call (0 for none). Inside a bubble, the pace is
// fake time.
func pacedCalls(t *testing.T, rt http.RoundTripper, url string, calls int, every time.Duration) (refused int, first time.Duration) {
	t.Helper()
	start := time.Now()
	var n atomic.Int32
	var at atomic.Int64
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			if _, _, err := bkCall(t, rt, url); errors.Is(err, ErrCircuitOpen) {
				n.Add(1)
				at.CompareAndSwap(0, int64(time.Since(start)))
			}
		})
		time.Sleep(every)
	}
	wg.Wait()
	return int(n.Load()), time.Duration(at.Load())
}

func bkDo(t testing.TB, rt http.RoundTripper, req *http.Request) (int, string, error) {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		if resp != nil {
			t.Errorf("RoundTrip returned a response and an error %v", err)
		}
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading the body: %v", err)
	}
	return resp.StatusCode, string(b), nil
}

// bkWantOpen fails unless err is a refusal by an open breaker.
func bkWantOpen(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("err = %v, want ErrCircuitOpen", err)
	}
}

// bkMiddleware returns the breaker middleware of a Transport built with
// opts, wrapped around next, its set limited to limit breakers.
func bkMiddleware(next http.RoundTripper, limit int, opts ...Option) *breakerTransport {
	bt := New(next, opts...).breakerMiddleware()(next).(*breakerTransport)
	bt.set.max = limit
	return bt
}

// bkRecorder records the state changes it observes, with its add method.
type bkRecorder struct{ collector[BreakerChange] }

// transitions returns the changes as "key from->to" strings.
func (r *bkRecorder) transitions() []string {
	var s []string
	for _, c := range r.all() {
		s = append(s, c.Key+" "+c.From.String()+"->"+c.To.String())
	}
	return s
}

func bkEqual(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestBreakerDeadHost trips a breaker on a server that answers 500 to
// every attempt it can see before the trip (a resilienttest pipe server
// scripted with more 500s than that), then checks that the calls that
// follow fail fast: none reaches the server, and none waits (in the fake
// time of a synctest bubble, no time passes). No wall clock is read: speed
// is measured by benchmarks, never asserted by a test.
func TestBreakerDeadHost(t *testing.T) {
	tests := []struct {
		name       string
		settings   BreakerSettings
		goroutines int
		minHits    int // attempts before the trip
	}{
		{"consecutive", BreakerSettings{ConsecutiveFailures: 3}, 1, 3},
		{"defaults", BreakerSettings{}, 32, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				down := slices.Repeat([]resilienttest.Step{resilienttest.Respond(http.StatusInternalServerError)}, 100)
				srv := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithScript(resilienttest.RouteListPosts, down...))
				defer srv.Close()
				hits := func() int { return srv.Stats().Requests }
				tr := New(srv.Transport(), WithMaxRetries(0), WithBreaker(tt.settings))
				url := srv.URL + "/v1/posts"

				// Until the trip, every call returns the server's 500.
				var responses, refused atomic.Int32
				var wg sync.WaitGroup
				for range tt.goroutines {
					wg.Go(func() {
						for range 200 {
							code, body, err := bkCall(t, tr, url)
							if err != nil {
								if !errors.Is(err, ErrCircuitOpen) {
									t.Errorf("err = %v, want ErrCircuitOpen", err)
								}
								refused.Add(1)
								return
							}
							if code != http.StatusInternalServerError || !strings.Contains(body, `"error":"INTERNAL_ERROR"`) {
								t.Errorf("got %d %q, want the server's 500", code, body)
							}
							responses.Add(1)
						}
					})
				}
				wg.Wait()
				tripped := hits()
				if tripped < tt.minHits || tripped > tt.minHits+tt.goroutines-1 {
					t.Errorf("the server saw %d attempts before the trip, want %d to %d", tripped, tt.minHits, tt.minHits+tt.goroutines-1)
				}
				if int(responses.Load()) != tripped || int(refused.Load()) != tt.goroutines {
					t.Errorf("%d responses and %d refusals for %d attempts", responses.Load(), refused.Load(), tripped)
				}

				// After the trip, 1,000 calls fail at once (no fake time
				// passes) and none reaches the server.
				const calls = 1000
				start := time.Now()
				var next, open atomic.Int32
				for range tt.goroutines {
					wg.Go(func() {
						for next.Add(1) <= calls {
							if _, _, err := bkCall(t, tr, url); errors.Is(err, ErrCircuitOpen) {
								open.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if open.Load() != calls {
					t.Errorf("%d of %d calls refused with ErrCircuitOpen, want all", open.Load(), calls)
				}
				if waited := time.Since(start); waited != 0 {
					t.Errorf("%d refused calls waited %v of fake time, want none", calls, waited)
				}
				if got := hits(); got != tripped {
					t.Errorf("the server saw %d attempts after the trip, want 0", got-tripped)
				}
			})
		})
	}
}

// TestBreakerProbe follows a breaker through its states in fake time: open
// for OpenTimeout, one failed probe that reopens it, one successful probe
// that closes it.
func TestBreakerProbe(t *testing.T) {
	tests := []struct {
		name     string
		settings BreakerSettings
		trip     int32 // failures that trip it
		timeout  time.Duration
	}{
		{"consecutive", BreakerSettings{ConsecutiveFailures: 3}, 3, 10 * time.Second},
		{"defaults", BreakerSettings{}, 20, 10 * time.Second},
		{"custom", BreakerSettings{MinRequests: 5, FailureRatio: 1, OpenTimeout: time.Minute}, 5, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := bkDead()
				var rec bkRecorder
				tr := New(bkNet{"dead.test": h}, WithMaxRetries(0), WithBreaker(tt.settings), WithBreakerObserver(rec.add))
				const url = "http://dead.test/x"

				for i := range tt.trip {
					code, body, err := bkCall(t, tr, url)
					if want := fmt.Sprintf("dead.test 500 #%d", i+1); err != nil || code != 500 || body != want {
						t.Fatalf("call %d = %d %q %v, want %q", i+1, code, body, err, want)
					}
				}
				for range 100 {
					_, _, err := bkCall(t, tr, url)
					bkWantOpen(t, err)
				}
				if got := h.hits.Load(); got != tt.trip {
					t.Fatalf("the server saw %d attempts, want %d", got, tt.trip)
				}

				time.Sleep(tt.timeout / 2)
				_, _, err := bkCall(t, tr, url)
				bkWantOpen(t, err)
				if want := fmt.Sprintf("http://dead.test:80: next probe in %v", tt.timeout/2); !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}

				// A failed probe reopens the breaker for OpenTimeout.
				time.Sleep(tt.timeout/2 + time.Millisecond)
				if code, _, err := bkCall(t, tr, url); err != nil || code != 500 {
					t.Fatalf("probe = %d %v, want the server's 500", code, err)
				}
				if got := h.hits.Load(); got != tt.trip+1 {
					t.Fatalf("the server saw %d attempts, want %d", got, tt.trip+1)
				}
				_, _, err = bkCall(t, tr, url)
				bkWantOpen(t, err)
				if want := fmt.Sprintf("next probe in %v", tt.timeout); !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}

				// A successful probe closes it: traffic flows again.
				time.Sleep(tt.timeout + time.Millisecond)
				h.status.Store(http.StatusOK)
				for i := range 50 {
					if code, _, err := bkCall(t, tr, url); err != nil || code != 200 {
						t.Fatalf("call %d after the successful probe = %d %v, want 200", i+1, code, err)
					}
				}
				if got := h.hits.Load(); got != tt.trip+51 {
					t.Errorf("the server saw %d attempts, want %d", got, tt.trip+51)
				}
				bkEqual(t, "state changes", rec.transitions(), []string{
					"http://dead.test:80 closed->open",
					"http://dead.test:80 open->half-open",
					"http://dead.test:80 half-open->open",
					"http://dead.test:80 open->half-open",
					"http://dead.test:80 half-open->closed",
				})
			})
		})
	}
}

// TestBreakerHalfOpenOneProbe checks that a half-open breaker lets one
// probe through and refuses the calls made while it is in flight.
func TestBreakerHalfOpenOneProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bkDead()
		slow := &bkHost{wait: make(chan struct{})}
		hosts := bkNet{"a.test": h}
		tr := New(hosts, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		for range 2 {
			bkCall(t, tr, "http://a.test/")
		}
		time.Sleep(10*time.Second + time.Millisecond)

		// The probe hangs on the server until released.
		hosts["a.test"] = slow // the same breaker: the key is the host
		probe := make(chan int)
		go func() {
			code, _, err := bkCall(t, tr, "http://a.test/")
			if err != nil {
				t.Errorf("probe: %v", err)
			}
			probe <- code
		}()
		synctest.Wait()
		for range 10 {
			_, _, err := bkCall(t, tr, "http://a.test/")
			bkWantOpen(t, err)
			if !strings.Contains(err.Error(), "http://a.test:80: half-open") {
				t.Errorf("err = %q, want it to name the key and the half-open state", err)
			}
		}
		if got := slow.hits.Load(); got != 1 {
			t.Errorf("the server saw %d probes, want 1", got)
		}
		close(slow.wait)
		if code := <-probe; code != 200 {
			t.Fatalf("probe = %d, want 200", code)
		}
		if code, _, err := bkCall(t, tr, "http://a.test/"); err != nil || code != 200 {
			t.Errorf("call after the probe = %d %v, want 200", code, err)
		}
	})
}

// TestBreakerNeverTrips sends storms of outcomes that are not failures:
// 4xx, 501, 505, and statuses past the 5xx (LinkedIn's 999 refusal of a
// client it takes for a bot), which are no server failure either.
func TestBreakerNeverTrips(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 404, 408, 409, 429, 501, 505, 600, 999} {
		for _, s := range []BreakerSettings{{ConsecutiveFailures: 3}, {}} {
			t.Run(fmt.Sprintf("%d/consecutive=%d", status, s.ConsecutiveFailures), func(t *testing.T) {
				t.Parallel()
				h := new(bkHost)
				h.status.Store(int32(status))
				tr := New(bkNet{"api.test": h}, WithMaxRetries(0), WithBreaker(s))
				const calls = 300
				for i := range calls {
					code, _, err := bkCall(t, tr, "http://api.test/")
					if err != nil || code != status {
						t.Fatalf("call %d = %d %v, want %d", i+1, code, err, status)
					}
				}
				if got := h.hits.Load(); got != calls {
					t.Errorf("the server saw %d calls, want %d", got, calls)
				}
			})
		}
	}
}

// TestBreakerFailureRatio checks the ratio rule: MinRequests, the ratio and
// the rolling window.
func TestBreakerFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := new(bkHost)
		tr := New(bkNet{"api.test": h}, WithMaxRetries(0))
		call := func(status int) error {
			h.status.Store(int32(status))
			_, _, err := bkCall(t, tr, "http://api.test/")
			return err
		}
		// One failure in three, for long: below the ratio.
		for i := range 300 {
			status := 200
			if i%3 == 0 {
				status = 503
			}
			if err := call(status); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
		// Let the window forget them, then 19 failures: below
		// MinRequests.
		time.Sleep(31 * time.Second)
		for i := range 19 {
			if err := call(503); err != nil {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		// The window rolls: 10 of those failures leave it ...
		time.Sleep(29 * time.Second)
		for i := range 10 {
			if err := call(503); err != nil {
				t.Fatalf("failure %d after the roll: %v", i+1, err)
			}
		}
		// ... and a 20th failure in the window trips it.
		time.Sleep(5 * time.Second)
		for i := range 10 {
			if err := call(503); err != nil {
				t.Fatalf("failure %d after the second roll: %v", i+1, err)
			}
		}
		bkWantOpen(t, call(200))
	})
}

// TestBreakerFailureRatioExact checks that a breaker trips on the failure
// that brings the window's share of failures to FailureRatio exactly, for
// ratios whose product with the count is not exact in floating point
// (0.07 × 100 is 7.000000000000001), and not on the failure before.
func TestBreakerFailureRatioExact(t *testing.T) {
	for _, tc := range []struct {
		ratio    float64
		requests int // MinRequests, and the outcomes when it trips
		failures int // of them, the failures that trip it
	}{
		{0.07, 100, 7},
		{0.14, 50, 7},
		{0.5, 20, 10},
	} {
		t.Run(fmt.Sprint(tc.ratio), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := new(bkHost)
				tr := New(bkNet{"api.test": h}, WithMaxRetries(0),
					WithBreaker(BreakerSettings{FailureRatio: tc.ratio, MinRequests: tc.requests}))
				call := func(status int) error {
					h.status.Store(int32(status))
					_, _, err := bkCall(t, tr, "http://api.test/")
					return err
				}
				for i := range tc.requests - tc.failures {
					if err := call(200); err != nil {
						t.Fatalf("success %d: %v", i+1, err)
					}
				}
				for i := range tc.failures {
					if err := call(503); err != nil {
						t.Fatalf("ratio %v: failure %d: %v", tc.ratio, i+1, err)
					}
					want := BreakerClosed
					if i+1 == tc.failures {
						want = BreakerOpen
					}
					if s := tr.BreakerState("http://api.test/"); s != want {
						t.Errorf("ratio %v: after %d failures in %d outcomes: %v, want %v", tc.ratio, i+1, tc.requests-tc.failures+i+1, s, want)
					}
				}
			})
		})
	}
}

// TestBreakerTwoHosts checks that tripping one host's breaker leaves the
// other's untouched.
func TestBreakerTwoHosts(t *testing.T) {
	t.Parallel()
	a, b := bkDead(), new(bkHost)
	tr := New(bkNet{"a.test": a, "b.test:8080": b}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
	for range 3 {
		bkCall(t, tr, "https://a.test/")
	}
	_, _, err := bkCall(t, tr, "https://a.test/")
	bkWantOpen(t, err)
	for i := range 100 {
		if code, _, err := bkCall(t, tr, "https://b.test:8080/"); err != nil || code != 200 {
			t.Fatalf("call %d to b = %d %v, want 200", i+1, code, err)
		}
	}
	if a.hits.Load() != 3 || b.hits.Load() != 100 {
		t.Errorf("hits: a %d, b %d; want 3 and 100", a.hits.Load(), b.hits.Load())
	}
}

// TestBreakerConcurrent runs 100 goroutines over healthy and dead hosts,
// with retries, under the race detector.
func TestBreakerConcurrent(t *testing.T) {
	t.Parallel()
	hosts := bkNet{"ok1.test": new(bkHost), "ok2.test": new(bkHost), "dead1.test": bkDead(), "dead2.test": bkDead()}
	var changes atomic.Int32
	tr := New(hosts, WithBackoff(0, 0), WithMaxRetries(2),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 3}),
		WithBreakerObserver(func(BreakerChange) { changes.Add(1) }))
	names := []string{"ok1.test", "ok2.test", "dead1.test", "dead2.test"}
	const goroutines, calls = 100, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				host := names[(g+i)%len(names)]
				code, _, err := bkCall(t, tr, "http://"+host+"/")
				switch {
				case strings.HasPrefix(host, "ok") && (err != nil || code != 200):
					t.Errorf("%s: %d %v, want 200", host, code, err)
				case strings.HasPrefix(host, "dead") && err != nil:
					bkWantOpen(t, err)
				case strings.HasPrefix(host, "dead") && code != 500:
					t.Errorf("%s: %d, want 500", host, code)
				}
			}
		})
	}
	wg.Wait()
	per := int32(goroutines * calls / len(names))
	for _, name := range names {
		got := hosts[name].hits.Load()
		if strings.HasPrefix(name, "ok") && got != per {
			t.Errorf("%s saw %d attempts, want %d", name, got, per)
		}
		if strings.HasPrefix(name, "dead") && got >= per {
			t.Errorf("%s saw %d attempts of %d calls: its breaker did not spare it", name, got, per)
		}
	}
	if changes.Load() < 2 {
		t.Errorf("%d state changes observed, want at least one per dead host", changes.Load())
	}
}

// TestBreakerBoundedMemory calls 100,000 distinct hosts: the set of breakers
// stays within its limit, and so does the heap.
func TestBreakerBoundedMemory(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	bt := bkMiddleware(newCannedRT(http.StatusOK, http.Header{}), maxBreakers)
	req, err := http.NewRequest(http.MethodGet, "https://h.test/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "" // sent with its URL's host, which the loop sets
	largest := 0
	for i := range 100_000 {
		req.URL.Host = "h" + strconv.Itoa(i) + ".test"
		if _, err := bt.RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			largest = max(largest, bt.set.len())
		}
	}
	largest = max(largest, bt.set.len())
	if largest > maxBreakers || largest < maxBreakers*15/16 {
		t.Errorf("the set held up to %d breakers, want at most %d and at least %d", largest, maxBreakers, maxBreakers*15/16)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if grew := int64(ms.HeapAlloc) - int64(before); grew > 32<<20 {
		t.Errorf("the heap grew by %d MiB over 100,000 hosts", grew>>20)
	}
	runtime.KeepAlive(bt)
}

// TestBreakerEviction checks what a full set removes: idle breakers first,
// then the least recently used closed ones, open ones only when nothing
// else is left.
func TestBreakerEviction(t *testing.T) {
	bkSynctestRun(t, "idle", func(t *testing.T) {
		bt := bkMiddleware(newCannedRT(http.StatusOK, http.Header{}), 8)
		for i := range 8 {
			bkCall(t, bt, fmt.Sprintf("http://h%d.test/", i))
		}
		time.Sleep(41 * time.Second) // Window + OpenTimeout + 1s
		bkCall(t, bt, "http://new.test/")
		if n := bt.set.len(); n != 1 {
			t.Errorf("%d breakers after the sweep, want 1", n)
		}
	})
	bkSynctestRun(t, "lru", func(t *testing.T) {
		bt := bkMiddleware(newCannedRT(http.StatusOK, http.Header{}), 16)
		for i := range 16 {
			bkCall(t, bt, fmt.Sprintf("http://h%d.test/", i))
			time.Sleep(time.Second)
		}
		bkCall(t, bt, "http://h0.test/") // h0 is now the most recently used
		bkCall(t, bt, "http://new.test/")
		if n := bt.set.len(); n != 16 {
			t.Errorf("%d breakers, want 16", n)
		}
		if bkHas(bt, "http", "h1.test") || !bkHas(bt, "http", "h0.test") || !bkHas(bt, "http", "new.test") {
			t.Error("the least recently used breaker, h1, was not the one removed")
		}
	})
	bkSynctestRun(t, "open kept", func(t *testing.T) {
		hosts := bkNet{}
		for i := range 200 {
			hosts[fmt.Sprintf("h%d.test", i)] = new(bkHost)
		}
		for i := range 3 {
			hosts[fmt.Sprintf("dead%d.test", i)] = bkDead()
		}
		bt := bkMiddleware(hosts, 8, WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		for i := range 3 {
			bkCall(t, bt, fmt.Sprintf("http://dead%d.test/", i))
		}
		for i := range 200 {
			bkCall(t, bt, fmt.Sprintf("http://h%d.test/", i))
			if n := bt.set.len(); n > 8 {
				t.Fatalf("%d breakers, want at most 8", n)
			}
		}
		for i := range 3 {
			if !bkHas(bt, "http", fmt.Sprintf("dead%d.test", i)) {
				t.Errorf("open breaker dead%d was removed", i)
			}
			_, _, err := bkCall(t, bt, fmt.Sprintf("http://dead%d.test/", i))
			bkWantOpen(t, err)
		}
	})
	bkSynctestRun(t, "all open", func(t *testing.T) {
		hosts := bkNet{}
		for i := range 20 {
			hosts[fmt.Sprintf("dead%d.test", i)] = bkDead()
		}
		bt := bkMiddleware(hosts, 8, WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		for i := range 20 {
			bkCall(t, bt, fmt.Sprintf("http://dead%d.test/", i))
			time.Sleep(time.Millisecond)
			if n := bt.set.len(); n > 8 {
				t.Fatalf("%d breakers, want at most 8", n)
			}
		}
		if bkHas(bt, "http", "dead0.test") || !bkHas(bt, "http", "dead19.test") {
			t.Error("the least recently used open breaker was not the one removed")
		}
	})
}

// bkSynctestRun runs f as subtest name, in its own synctest bubble.
func bkSynctestRun(t *testing.T, name string, f func(*testing.T)) {
	t.Run(name, func(t *testing.T) { synctest.Test(t, f) })
}

func bkHas(bt *breakerTransport, scheme, host string) bool {
	return bt.set.lookup(breakerKey{scheme, host}) != nil
}

// TestBreakerRefusedFirstAttempt checks the error of a call refused at its
// first attempt.
func TestBreakerRefusedFirstAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var outcomes []Outcome
		tr := New(bkNet{"api.test": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}),
			WithObserver(func(a Attempt) { outcomes = append(outcomes, a.Outcome) }))
		bkCall(t, tr, "https://api.test/v1/posts?token=secret")
		time.Sleep(12500 * time.Millisecond)
		_, _, err := bkCall(t, tr, "https://api.test/v1/posts?token=secret")
		bkWantOpen(t, err)
		var e *Error
		if !errors.As(err, &e) || e.Attempts != 1 {
			t.Fatalf("err = %#v, want an *Error of 1 attempt", err)
		}
		const want = "resilient: GET https://api.test/v1/posts: 1 attempt: resilient: circuit breaker open: https://api.test:443: next probe in 17.5s"
		if err.Error() != want {
			t.Errorf("err = %q\nwant %q", err, want)
		}
		if len(outcomes) != 2 || outcomes[1] != OutcomeCircuitOpen {
			t.Errorf("outcomes = %v, want [.. %s]", outcomes, OutcomeCircuitOpen)
		}
	})
}

// TestBreakerRefusedRetry checks that a call whose retry is refused returns
// the response of its previous attempt, body included.
func TestBreakerRefusedRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := new(bkHost)
		h.status.Store(http.StatusServiceUnavailable)
		var outcomes []Outcome
		tr := New(bkNet{"api.test": h}, WithBreaker(BreakerSettings{ConsecutiveFailures: 1}),
			WithObserver(func(a Attempt) { outcomes = append(outcomes, a.Outcome) }))
		code, body, err := bkCall(t, tr, "https://api.test/v1/posts")
		if err != nil || code != 503 || body != "api.test 503 #1" {
			t.Fatalf("call = %d %q %v, want the first attempt's 503", code, body, err)
		}
		if got := h.hits.Load(); got != 1 {
			t.Errorf("the server saw %d attempts, want 1", got)
		}
		if len(outcomes) != 2 || outcomes[0] != OutcomeTransient || outcomes[1] != OutcomeCircuitOpen {
			t.Errorf("outcomes = %v, want [transient circuit_open]", outcomes)
		}
	})
}

// TestOpenBreakerSkipsThePause checks that an attempt the host's open
// breaker will refuse does not first wait in the rate limiter: for the
// pause of a 503 with Retry-After: 5 that tripped the breaker (open 10s),
// or for the next token of a pace of one request in 20s (open 30s). The
// call's retry, refused at once by the breaker, returns the 5xx at once, as
// a plain client returns it, and a new call is refused at once. Both waited
// the pause (5s) or the token (20s) first, then were refused all the same.
func TestOpenBreakerSkipsThePause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		opts   []Option
	}{
		{"pause", http.StatusServiceUnavailable, http.Header{"Retry-After": {"5"}},
			[]Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1})}},
		{"pace", http.StatusInternalServerError, nil,
			[]Option{WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 30 * time.Second}), WithRateLimit(rate.Every(20*time.Second), 1)}},
	} {
		bkSynctestRun(t, tc.name, func(t *testing.T) {
			h := new(bkHost)
			h.status.Store(int32(tc.status))
			h.header = tc.header
			var outcomes []Outcome
			tr := New(bkNet{"api.test": h}, append(tc.opts,
				WithObserver(func(a Attempt) { outcomes = append(outcomes, a.Outcome) }))...)
			start := time.Now()
			code, _, err := bkCall(t, tr, "https://api.test/v1/posts")
			if err != nil || code != tc.status {
				t.Fatalf("call = %d %v, want the first attempt's %d", code, err, tc.status)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("the call returned after %v, want at once: its retry was refused by the open breaker", waited)
			}
			if len(outcomes) != 2 || outcomes[1] != OutcomeCircuitOpen {
				t.Errorf("outcomes = %v, want [transient circuit_open]", outcomes)
			}
			start = time.Now()
			_, _, err = bkCall(t, tr, "https://api.test/v1/posts")
			bkWantOpen(t, err)
			if waited := time.Since(start); waited != 0 {
				t.Errorf("a new call was refused after %v, want at once", waited)
			}
			if got := h.hits.Load(); got != 1 {
				t.Errorf("the server saw %d attempts, want 1", got)
			}
		})
	}
}

// TestOpenBreakerSkipsThePauseAnySpelling: an attempt the host's open
// breaker will refuse does not first wait for the host's pause under a
// spelling of the host that no attempt used before (upper case, the
// default port, a final dot): the breaker is the host's under any
// spelling. The forecast looked the breaker up under the spelling alone,
// which the set holds as an alias only once an attempt used it, and the
// call waited out the pause (5s) before the breaker refused it.
func TestOpenBreakerSkipsThePauseAnySpelling(t *testing.T) {
	for _, spelling := range []string{"https://API.test/v1/posts", "https://api.test:443/v1/posts", "https://api.test./v1/posts"} {
		bkSynctestRun(t, spelling, func(t *testing.T) {
			h := new(bkHost)
			h.status.Store(http.StatusServiceUnavailable)
			h.header = http.Header{"Retry-After": {"5"}}
			tr := New(bkNet{"api.test": h}, WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
			bkCall(t, tr, "https://api.test/v1/posts") // a 503: open 10s, paused 5s
			start := time.Now()
			_, _, err := bkCall(t, tr, spelling)
			bkWantOpen(t, err)
			if waited := time.Since(start); waited != 0 {
				t.Errorf("a new call to %q was refused after %v, want at once", spelling, waited)
			}
			if got := h.hits.Load(); got != 1 {
				t.Errorf("the server saw %d attempts, want 1", got)
			}
		})
	}
}

// TestBreakerRefusalClosesBody checks that a refused attempt closes the
// request body and never reaches the base transport.
func TestBreakerRefusalClosesBody(t *testing.T) {
	t.Parallel()
	h := bkDead()
	settings := WithBreaker(BreakerSettings{ConsecutiveFailures: 1})
	newReq := func() (*http.Request, *trackedBody) {
		body := newTrackedBody(`{"text":"hello"}`)
		req, err := http.NewRequest(http.MethodPut, "http://api.test/v1/posts/1", body)
		if err != nil {
			t.Fatal(err)
		}
		// With GetBody the Transport hands the body itself to the
		// attempt: the breaker must close it.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(`{"text":"hello"}`)), nil }
		return req, body
	}
	for _, rt := range []http.RoundTripper{
		New(bkNet{"api.test": h}, WithMaxRetries(0), settings),
		bkMiddleware(bkNet{"api.test": h}, maxBreakers, settings),
	} {
		before := h.hits.Load()
		bkCall(t, rt, "http://api.test/") // trips it
		req, body := newReq()
		_, _, err := bkDo(t, rt, req)
		bkWantOpen(t, err)
		if !body.isClosed() {
			t.Errorf("%T: the body of a refused attempt was not closed", rt)
		}
		if got := h.hits.Load() - before; got != 1 {
			t.Errorf("%T: the server saw %d attempts, want 1", rt, got)
		}
	}
}

// TestBreakerObserverAndLogger checks that state changes reach the observer
// and the logger.
func TestBreakerObserverAndLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		var rec bkRecorder
		h := bkDead()
		tr := New(bkNet{"api.test:8443": h}, WithMaxRetries(0), WithLogger(logger),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 2}), WithBreakerObserver(rec.add))
		const url = "https://api.test:8443/v1"
		start := time.Now()
		bkCall(t, tr, url)
		bkCall(t, tr, url)
		time.Sleep(10*time.Second + time.Millisecond)
		h.status.Store(200)
		bkCall(t, tr, url)

		bkEqual(t, "observed", rec.transitions(), []string{
			"https://api.test:8443 closed->open",
			"https://api.test:8443 open->half-open",
			"https://api.test:8443 half-open->closed",
		})
		if changes := rec.all(); len(changes) == 3 {
			if !changes[0].At.Equal(start) || !changes[2].At.Equal(start.Add(10*time.Second+time.Millisecond)) {
				t.Errorf("At = %v, %v; want %v, %v", changes[0].At, changes[2].At, start, start.Add(10*time.Second+time.Millisecond))
			}
		}
		var logged []string
		for _, r := range logRecords(t, &buf) {
			if r["msg"] == "resilient: breaker state change" {
				logged = append(logged, fmt.Sprintf("%v %v %v->%v", r["level"], r["breaker"], r["from"], r["to"]))
			}
		}
		bkEqual(t, "logged", logged, []string{
			"WARN https://api.test:8443 closed->open",
			"INFO https://api.test:8443 open->half-open",
			"INFO https://api.test:8443 half-open->closed",
		})
	})
}

// TestBreakerObserverReentrant checks that an observer may call the
// Transport whose breaker changed state: delivery never deadlocks.
func TestBreakerObserverReentrant(t *testing.T) {
	// A deadlock on a mutex is invisible to synctest: a real-time
	// watchdog turns it into a failure with the goroutines' stacks.
	watchdog := time.AfterFunc(30*time.Second, func() { panic("TestBreakerObserverReentrant deadlocked") })
	defer watchdog.Stop()
	synctest.Test(t, func(t *testing.T) {
		h := bkDead()
		var tr *Transport
		var nested []string
		observer := func(c BreakerChange) {
			for _, host := range []string{"api.test", "other.test"} {
				code, _, err := bkCall(t, tr, "http://"+host+"/")
				nested = append(nested, fmt.Sprintf("%s %s: %d %v", c.To, host, code, errors.Is(err, ErrCircuitOpen)))
			}
		}
		tr = New(bkNet{"api.test": h, "other.test": new(bkHost)}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithBreakerObserver(observer))
		bkCall(t, tr, "http://api.test/")
		time.Sleep(10*time.Second + time.Millisecond)
		h.status.Store(200)
		if code, _, err := bkCall(t, tr, "http://api.test/"); err != nil || code != 200 {
			t.Errorf("probe = %d %v, want 200", code, err)
		}
		bkEqual(t, "nested calls", nested, []string{
			"open api.test: 0 true",
			"open other.test: 200 false",
			"half-open api.test: 0 true", // the probe is in flight
			"half-open other.test: 200 false",
			"closed api.test: 200 false",
			"closed other.test: 200 false",
		})
	})
}

// TestBreakerAttemptTimeoutAndCancel checks that attempt timeouts count as
// failures and that the caller's own cancellations do not count.
func TestBreakerAttemptTimeoutAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &bkHost{wait: make(chan struct{})}
		tr := New(bkNet{"slow.test": slow}, WithMaxRetries(0), WithAttemptTimeout(time.Second),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 2}))
		// The caller gives up first, five times: not counted.
		for range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://slow.test/", nil)
			_, _, err := bkDo(t, tr, req)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the caller's deadline", err)
			}
		}
		// Two attempt timeouts trip it.
		for range 2 {
			_, _, err := bkCall(t, tr, "http://slow.test/")
			if !errors.Is(err, ErrAttemptTimeout) {
				t.Fatalf("err = %v, want ErrAttemptTimeout", err)
			}
		}
		_, _, err := bkCall(t, tr, "http://slow.test/")
		bkWantOpen(t, err)
		if got := slow.hits.Load(); got != 7 {
			t.Errorf("the server saw %d attempts, want 7", got)
		}
	})
}

// TestBreakerCallersOwnLimits checks that an attempt cut by a limit its
// call set tighter than the Transport's (WithCallOptions: an attempt
// timeout or a budget) counts against nothing, as the caller's own
// deadline does: one caller's tight setting must not open a healthy
// host's breaker for every caller. A cut by the Transport's own limits,
// or by a call's limit no tighter than them, still counts.
func TestBreakerCallersOwnLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &bkHost{wait: make(chan struct{})}
		tr := New(bkNet{"slow.test": slow}, WithMaxRetries(0), WithAttemptTimeout(10*time.Second),
			WithMaxElapsed(time.Minute), WithBreaker(BreakerSettings{ConsecutiveFailures: 2, Window: time.Hour}))
		call := func(opts ...Option) error {
			t.Helper()
			ctx := WithCallOptions(context.Background(), opts...)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://slow.test/", nil)
			_, _, err := bkDo(t, tr, req)
			if !errors.Is(err, ErrAttemptTimeout) {
				t.Fatalf("err = %v, want ErrAttemptTimeout", err)
			}
			return err
		}
		// Five calls cut by their own tighter limits: not counted.
		for range 3 {
			call(WithAttemptTimeout(time.Second))
		}
		for range 2 {
			err := call(WithMaxElapsed(2 * time.Second))
			var te interface{ Timeout() bool }
			if !errors.As(err, &te) || !te.Timeout() {
				t.Errorf("err = %v, want a timeout", err)
			}
		}
		if st := tr.BreakerState("http://slow.test/"); st.String() != "closed" {
			t.Fatalf("after 5 cuts by the calls' own limits, the breaker is %v, want closed", st)
		}
		// A call's limit no tighter than the Transport's counts: two trip it.
		call(WithAttemptTimeout(20 * time.Second))
		call()
		_, _, err := bkCall(t, tr, "http://slow.test/")
		bkWantOpen(t, err)
		if got := slow.hits.Load(); got != 7 {
			t.Errorf("the server saw %d attempts, want 7", got)
		}
	})
}

// TestBreakerAttemptsLongerThanWindow: an attempt that lasts longer than
// the breaker's window (cut by an attempt timeout or a budget longer than
// Window, or answered slowly) is counted as of its end: a host that never
// answers trips its breaker under the defaults (no attempt timeout, a
// 5-minute budget, a 30s window), and the successes of a host slower than
// the window count against its quick failures.
func TestBreakerAttemptsLongerThanWindow(t *testing.T) {
	t.Run("attempt timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			slow := &bkHost{wait: make(chan struct{})}
			tr := New(bkNet{"slow.test": slow}, WithMaxRetries(0), WithAttemptTimeout(45*time.Second),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 2})) // Window: 30s
			var wg sync.WaitGroup
			for range 2 { // at once: two failures in a row within one window
				wg.Go(func() {
					if _, _, err := bkCall(t, tr, "http://slow.test/"); !errors.Is(err, ErrAttemptTimeout) {
						t.Errorf("err = %v, want ErrAttemptTimeout", err)
					}
				})
			}
			wg.Wait()
			_, _, err := bkCall(t, tr, "http://slow.test/")
			bkWantOpen(t, err)
			if got := slow.hits.Load(); got != 2 {
				t.Errorf("the server saw %d attempts, want 2", got)
			}
		})
	})
	t.Run("defaults, a host that never answers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			slow := &bkHost{wait: make(chan struct{})}
			tr := New(bkNet{"slow.test": slow})
			var wg sync.WaitGroup
			for range 20 { // MinRequests
				wg.Go(func() {
					if _, _, err := bkCall(t, tr, "http://slow.test/"); !errors.Is(err, ErrAttemptTimeout) {
						t.Errorf("err = %v, want ErrAttemptTimeout (the call's budget)", err)
					}
				})
			}
			wg.Wait()
			_, _, err := bkCall(t, tr, "http://slow.test/")
			bkWantOpen(t, err)
			if got := slow.hits.Load(); got != 20 {
				t.Errorf("the server saw %d attempts, want 20", got)
			}
		})
	})
	// The 20 attempts to a host that never answers hang for the call's
	// budget, while the first calls to other hosts sweep the idle
	// breakers: the hung host's, which no attempt started through for
	// longer than Window + OpenTimeout, is removed, and the failures its
	// attempts end with count in the host's breaker all the same; unless
	// ResetHost removed it, which starts the host's breaker anew.
	for _, tc := range []struct {
		name      string
		meanwhile func(t *testing.T, tr *Transport)
		want      BreakerState
	}{
		{"other hosts called meanwhile", func(t *testing.T, tr *Transport) {
			for i := range 12 { // one new host every 25s, for the 5 minutes
				time.Sleep(25 * time.Second)
				bkCall(t, tr, fmt.Sprintf("http://o%d.test/", i))
			}
		}, BreakerOpen},
		{"ResetHost meanwhile", func(_ *testing.T, tr *Transport) {
			time.Sleep(time.Minute)
			tr.ResetHost("slow.test")
		}, BreakerClosed},
	} {
		t.Run("defaults, a host that never answers, "+tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				slow := &bkHost{wait: make(chan struct{})}
				hosts := bkNet{"slow.test": slow}
				for i := range 12 {
					hosts[fmt.Sprintf("o%d.test", i)] = new(bkHost)
				}
				tr := New(hosts)
				var wg sync.WaitGroup
				for range 20 { // MinRequests
					wg.Go(func() {
						if _, _, err := bkCall(t, tr, "http://slow.test/"); !errors.Is(err, ErrAttemptTimeout) {
							t.Errorf("err = %v, want ErrAttemptTimeout (the call's budget)", err)
						}
					})
				}
				synctest.Wait()
				tc.meanwhile(t, tr)
				wg.Wait()
				if st := tr.BreakerState("http://slow.test/"); st != tc.want {
					t.Errorf("BreakerState = %v, want %v", st, tc.want)
				}
			})
		})
	}
	// 45 calls at once, each answered after latency (and i ms, in turn),
	// longer than the window: 25 successes and 20 failures among them (4
	// in 9: never half of those counted) count alike, and the breaker
	// stays closed. (Successes were dropped, and 20 failures tripped it.)
	// Answered after 100s, while calls to other hosts sweep the idle
	// breakers, they count alike in the breaker that replaced theirs.
	for _, tc := range []struct {
		name    string
		latency time.Duration
		others  int // calls to new hosts meanwhile, one every 25s
	}{
		{"slow successes", 40 * time.Second, 0},
		{"slow successes, other hosts called meanwhile", 100 * time.Second, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					code := http.StatusOK
					if req.URL.Host == "slow.test" {
						i, _ := strconv.Atoi(req.URL.Query().Get("i"))
						time.Sleep(tc.latency + time.Duration(i)*time.Millisecond)
						if i%9 < 8 && i%2 == 0 {
							code = http.StatusBadGateway
						}
					}
					return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(rt, WithMaxRetries(0))
				var wg sync.WaitGroup
				for i := range 45 {
					url := "http://slow.test/export?i=" + strconv.Itoa(i)
					wg.Go(func() { bkCall(t, tr, url) })
				}
				for i := range tc.others {
					time.Sleep(25 * time.Second)
					bkCall(t, tr, fmt.Sprintf("http://o%d.test/", i))
				}
				wg.Wait()
				if st := tr.BreakerState("http://slow.test/"); st != BreakerClosed {
					t.Errorf("after 25 successes and 20 failures (44%%), all slower than the window, BreakerState = %v, want %v", st, BreakerClosed)
				}
			})
		})
	}
}

// TestBreakerOutcome checks what a breaker counts for each kind of result.
func TestBreakerOutcome(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	const (
		success  = "success"
		failure  = "failure"
		excluded = "excluded"
	)
	tests := []struct {
		name   string
		ctx    context.Context
		status int   // 0: no response
		err    error // with status 0
		class  *Class
		want   string
	}{
		{"200", nil, 200, nil, nil, success},
		{"404", nil, 404, nil, nil, success},
		{"408", nil, 408, nil, nil, success},
		{"429", nil, 429, nil, nil, excluded},
		{"500", nil, 500, nil, nil, failure},
		{"501", nil, 501, nil, nil, success},
		{"502", nil, 502, nil, nil, failure},
		{"503", nil, 503, nil, nil, failure},
		{"504", nil, 504, nil, nil, failure},
		{"505", nil, 505, nil, nil, success},
		{"507", nil, 507, nil, nil, failure},
		{"599", nil, 599, nil, nil, failure},
		{"600", nil, 600, nil, nil, success},
		{"999", nil, 999, nil, nil, success},
		{"999 classified transient", nil, 999, nil, ptr(Transient), failure},
		{"507 classified success", nil, 507, nil, ptr(Success), success},
		{"503 classified throttled", nil, 503, nil, ptr(Throttled), excluded},
		{"500 classified permanent", nil, 500, nil, ptr(Permanent), success},
		{"507 classified transient", nil, 507, nil, ptr(Transient), failure},
		{"409 classified transient", nil, 409, nil, ptr(Transient), success},
		{"501 classified transient", nil, 501, nil, ptr(Transient), success},
		{"connection refused", nil, 0, refused, nil, failure},
		{"reset", nil, 0, syscall.ECONNRESET, nil, failure},
		{"unexpected EOF", nil, 0, io.ErrUnexpectedEOF, nil, failure},
		{"attempt timeout", nil, 0, fmt.Errorf("%w after 1s: %w", ErrAttemptTimeout, context.Canceled), nil, failure},
		{"attempt timeout classified", nil, 0, fmt.Errorf("%w after 1s: %w", ErrAttemptTimeout, context.Canceled), ptr(Transient), failure},
		{"caller canceled", canceled, 0, context.Canceled, nil, excluded},
		{"caller canceled classified", canceled, 0, context.Canceled, ptr(Transient), excluded},
		{"unsupported scheme", nil, 0, errors.New(`unsupported protocol scheme "ftp"`), nil, excluded},
		{"error classified throttled", nil, 0, refused, ptr(Throttled), excluded},
		{"error classified success", nil, 0, refused, ptr(Success), success},
		{"nil response and nil error", nil, 0, nil, nil, excluded}, // a broken RoundTripper, not the host
		{"errNilResponse", nil, 0, errNilResponse, ptr(Permanent), excluded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var st *attemptState
			if tt.class != nil {
				st = &attemptState{classified: true, class: *tt.class}
				_, st.neverSent = classifyErr(tt.err)
			}
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/", nil)
			var resp *http.Response
			if tt.status != 0 {
				resp = &http.Response{StatusCode: tt.status, Body: http.NoBody}
			}
			got := success
			switch err := attemptOutcome(st, req, resp, tt.err); err {
			case errBreakerExcluded, errBreakerThrottled:
				got = excluded
			case nil:
			default:
				got = failure
			}
			if got != tt.want {
				t.Errorf("attemptOutcome(%d, %v) = %s, want %s", tt.status, tt.err, got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestBreakerKeys checks the default key, its canonical forms and a custom
// Key.
func TestBreakerKeys(t *testing.T) {
	t.Parallel()
	names := []struct{ scheme, host, want string }{
		{"https", "api.example.com", "https://api.example.com:443"},
		{"https", "api.example.com:443", "https://api.example.com:443"},
		{"HTTPS", "API.Example.COM:443", "https://api.example.com:443"},
		{"http", "api.example.com", "http://api.example.com:80"},
		{"http", "api.example.com:", "http://api.example.com:80"},
		{"http", "api.example.com:8080", "http://api.example.com:8080"},
		{"https", "api.example.com:80", "https://api.example.com:80"},
		{"http", "[::1]", "http://[::1]:80"},
		{"http", "[::1]:80", "http://[::1]:80"},
		{"http", "[::1]:8080", "http://[::1]:8080"},
		{"ws", "a.test", "ws://a.test"},
	}
	for _, n := range names {
		scheme := lowerASCII(n.scheme)
		if got := breakerName(breakerKey{scheme, canonicalHost(scheme, n.host)}, false); got != n.want {
			t.Errorf("breakerName(%q, %q) = %q, want %q", n.scheme, n.host, got, n.want)
		}
	}

	t.Run("aliases", func(t *testing.T) {
		h := bkDead()
		bt := bkMiddleware(bkNet{"api.test": h, "API.test": h, "api.test:443": h}, 8, WithBreaker(BreakerSettings{ConsecutiveFailures: 3}))
		bkCall(t, bt, "https://api.test/")
		bkCall(t, bt, "https://API.test/")
		bkCall(t, bt, "https://api.test:443/")
		for _, url := range []string{"https://api.test/", "https://API.test/", "https://api.test:443/"} {
			_, _, err := bkCall(t, bt, url)
			bkWantOpen(t, err)
			if !strings.Contains(err.Error(), "https://api.test:443: next probe") {
				t.Errorf("err = %q, want it to name https://api.test:443", err)
			}
		}
		if n := bt.set.len(); n != 3 {
			t.Errorf("%d keys, want 3 (one breaker, two aliases)", n)
		}
		// Removing the breaker removes its aliases.
		bt.set.mu.Lock()
		bt.set.remove(bt.set.lookup(breakerKey{"https", "api.test"}))
		n := bt.set.table.len()
		bt.set.mu.Unlock()
		if n != 0 {
			t.Errorf("%d keys after removing the breaker, want 0", n)
		}
	})

	t.Run("ports", func(t *testing.T) {
		a, b := bkDead(), new(bkHost)
		tr := New(bkNet{"a.test:8080": a, "a.test:8081": b}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		bkCall(t, tr, "http://a.test:8080/")
		if code, _, err := bkCall(t, tr, "http://a.test:8081/"); err != nil || code != 200 {
			t.Errorf("other port = %d %v, want 200", code, err)
		}
	})

	t.Run("custom", func(t *testing.T) {
		hosts := bkNet{"a.test": bkDead(), "b.test": bkDead()}
		tr := New(hosts, WithMaxRetries(0), WithBreaker(BreakerSettings{
			ConsecutiveFailures: 2,
			Key:                 func(r *http.Request) string { return r.Header.Get("X-Tenant") },
		}))
		call := func(url, tenant string) error {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if tenant != "" {
				req.Header.Set("X-Tenant", tenant)
			}
			_, _, err := bkDo(t, tr, req)
			return err
		}
		// Two hosts, one key: their failures add up.
		call("http://a.test/", "acme")
		call("http://b.test/", "acme")
		err := call("http://a.test/", "acme")
		bkWantOpen(t, err)
		if !strings.Contains(err.Error(), "open: acme: next probe") {
			t.Errorf("err = %q, want it to name the key acme", err)
		}
		if err := call("http://a.test/", "globex"); err != nil {
			t.Errorf("another key: %v", err)
		}
		// An empty key goes without a breaker.
		for range 10 {
			if err := call("http://b.test/", ""); err != nil {
				t.Fatalf("without a key: %v", err)
			}
		}
	})
}

// TestBreakerPanicFreesProbe checks that a probe on which the caller's
// code panics frees its slot without being counted: the half-open breaker
// stays half-open and lets the next attempt probe, instead of refusing
// every attempt until ProbeTimeout. The panic comes from the base
// RoundTripper, or from BreakerSettings.IsFailure (whose panic came after
// the probe was marked reported: its slot was held).
func TestBreakerPanicFreesProbe(t *testing.T) {
	for _, in := range []string{"base", "IsFailure"} {
		t.Run(in, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := bkDead()
				hosts := bkNet{"api.test": h}
				var panicking atomic.Bool
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					if in == "base" && panicking.Load() {
						panic("base exploded")
					}
					return hosts.RoundTrip(req)
				})
				bt := bkMiddleware(base, 8, WithBreaker(BreakerSettings{ConsecutiveFailures: 1,
					IsFailure: func(_ *http.Response, _ *APIError, _ error, def bool) bool {
						if in == "IsFailure" && panicking.Load() {
							panic("judge")
						}
						return def
					}}))
				bkCall(t, bt, "http://api.test/")
				time.Sleep(10*time.Second + time.Millisecond)
				panicking.Store(true)
				mustPanic(t, in+"'s panic did not reach the caller", func() {
					bt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://api.test/", nil))
				})
				panicking.Store(false)
				if st := bt.set.get(httptest.NewRequest(http.MethodGet, "http://api.test/", nil), nil).m.Load().cb.State(); st.String() != "half-open" {
					t.Errorf("after the panic the breaker is %v, want still half-open (the panic is not counted)", st)
				}
				hits := h.hits.Load()
				h.status.Store(200)
				if code, _, err := bkCall(t, bt, "http://api.test/"); err != nil || code != 200 {
					t.Errorf("probe after the panic = %d %v, want 200: the slot was not freed", code, err)
				}
				if h.hits.Load() != hits+1 {
					t.Errorf("the probe after the panic did not reach the server")
				}
				if s := bt.set.stateOf(httptest.NewRequest(http.MethodGet, "http://api.test/", nil)); s != BreakerClosed {
					t.Errorf("after the probe: %v, want closed", s)
				}
			})
		})
	}
}

// TestWithBreakerPanics checks that invalid settings panic with a message
// naming the field.
func TestWithBreakerPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s     BreakerSettings
		field string
	}{
		{BreakerSettings{ConsecutiveFailures: -1}, "ConsecutiveFailures"},
		{BreakerSettings{FailureRatio: -0.5}, "FailureRatio"},
		{BreakerSettings{FailureRatio: 1.5}, "FailureRatio"},
		{BreakerSettings{FailureRatio: math.NaN()}, "FailureRatio"},
		{BreakerSettings{MinRequests: -20}, "MinRequests"},
		{BreakerSettings{Window: -time.Second}, "Window"},
		{BreakerSettings{OpenTimeout: -time.Second}, "OpenTimeout"},
		{BreakerSettings{HalfOpenRequests: -1}, "HalfOpenRequests"},
		{BreakerSettings{ProbeTimeout: -time.Second}, "ProbeTimeout"},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				msg := fmt.Sprint(recover())
				if !strings.HasPrefix(msg, "resilient: WithBreaker "+tt.field+": ") {
					t.Errorf("WithBreaker(%+v) panicked with %q, want a message about %s", tt.s, msg, tt.field)
				}
			}()
			WithBreaker(tt.s)
		}()
	}
	// Valid edge values do not panic.
	WithBreaker(BreakerSettings{FailureRatio: 1})
	WithBreaker(BreakerSettings{})
}

// TestWithoutBreaker checks that WithoutBreaker means no breaker at all.
func TestWithoutBreaker(t *testing.T) {
	t.Parallel()
	h := bkDead()
	tr := New(bkNet{"api.test": h}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithoutBreaker())
	if tr.breakerMiddleware() != nil {
		t.Error("WithoutBreaker: the chain still has a breaker")
	}
	for i := range 200 {
		if code, _, err := bkCall(t, tr, "http://api.test/"); err != nil || code != 500 {
			t.Fatalf("call %d = %d %v, want 500", i+1, code, err)
		}
	}
	if got := h.hits.Load(); got != 200 {
		t.Errorf("the server saw %d calls, want 200", got)
	}
	// A later WithBreaker turns it back on.
	if New(nil, WithoutBreaker(), WithBreaker(BreakerSettings{})).breakerMiddleware() == nil {
		t.Error("WithBreaker after WithoutBreaker: no breaker")
	}
}

// TestBreakerStateString checks the names of the states.
func TestBreakerStateString(t *testing.T) {
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerHalfOpen: "half-open", BreakerOpen: "open", 7: "breakerstate(7)"} {
		if got := s.String(); got != want {
			t.Errorf("BreakerState(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestBreakerEvictOrder checks the order in which a full set removes its
// breakers, against a model: closed before open and half-open, the least
// recently used first, where "used" is as the second-chance lists see it (a
// breaker used since the list last passed it counts as used at that pass).
// It runs random uses, inserts and state changes.
func TestBreakerEvictOrder(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1, 2, 3, 10, 100} {
		s := newBreakerSet(BreakerSettings{}, nil, nil)
		s.max = size
		s.idleAfter = math.MaxInt64 / 4 // no idle pass
		var next int
		insert := func() {
			next++
			k := breakerKey{"http", strconv.Itoa(next)}
			s.insert(k, s.table.hashOf(k), s.now())
		}
		for range size {
			insert()
		}
		for op := range 20 * size {
			var es []*breakerEntry
			s.each(func(e *breakerEntry) { es = append(es, e) })
			if len(es) != size || s.table.len() != size {
				t.Fatalf("size %d, op %d: %d breakers (n %d), want %d", size, op, len(es), s.table.len(), size)
			}
			switch e := es[rnd.IntN(len(es))]; rnd.IntN(4) {
			case 0: // a use
				e.used.Store(true)
			case 1: // a state change
				to := gobreaker.State(rnd.IntN(3))
				e.state.Store(int32(to))
				s.place(e, s.now())
			default: // an insert, which removes one breaker
				closedLeft := s.closed.n > 0 && func() bool {
					for c := s.closed.head; c != nil; c = c.next {
						if c.state.Load() == int32(gobreaker.StateClosed) {
							return true
						}
					}
					return false
				}()
				before := map[*breakerEntry]bool{}
				for _, e := range es {
					before[e] = true
				}
				insert()
				var gone *breakerEntry
				for e := range before {
					if e.list == nil {
						if gone != nil {
							t.Fatalf("size %d, op %d: two breakers removed for one insert", size, op)
						}
						gone = e
					}
				}
				if gone == nil {
					t.Fatalf("size %d, op %d: no breaker removed", size, op)
				}
				if closedLeft && gone.state.Load() != int32(gobreaker.StateClosed) {
					t.Errorf("size %d, op %d: a %v breaker was removed while closed ones were left", size, op, gobreaker.State(gone.state.Load()))
				}
				// No breaker of the same class, unused, was seen before it.
				for e := range before {
					if e != gone && e.list != nil && !e.used.Load() && (e.state.Load() == int32(gobreaker.StateClosed)) == (gone.state.Load() == int32(gobreaker.StateClosed)) && e.lastSeen < gone.lastSeen {
						t.Errorf("size %d, op %d: removed a breaker seen at %d, kept an unused one seen at %d", size, op, gone.lastSeen, e.lastSeen)
					}
				}
			}
		}
	}
}

// TestBreakerHungProbe: with no attempt timeout, a half-open breaker's
// probe that never answers holds its slot for ProbeTimeout at most; then
// the next attempt probes in its place, and the stale probe's late outcome
// (a 500, which would have reopened the breaker) is not counted. The base
// blocks each probe until the test releases it or its context ends.
func TestBreakerHungProbe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings BreakerSettings
		probeTTL time.Duration
	}{
		{"default: OpenTimeout", BreakerSettings{ConsecutiveFailures: 1}, 10 * time.Second},
		{"ProbeTimeout set", BreakerSettings{ConsecutiveFailures: 1, ProbeTimeout: 3 * time.Second}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var status atomic.Int32
				status.Store(http.StatusInternalServerError)
				var hits atomic.Int32
				release := map[string]chan int{"/a": make(chan int, 1), "/b": make(chan int, 1)}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					hits.Add(1)
					code := int(status.Load())
					if ch := release[req.URL.Path]; ch != nil {
						select {
						case code = <-ch:
						case <-req.Context().Done():
							return nil, context.Cause(req.Context())
						}
					}
					return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				tr := New(base, WithMaxRetries(0), WithBreaker(tc.settings))
				bkCall(t, tr, "http://api.test/")
				time.Sleep(10*time.Second + time.Millisecond) // half-open
				status.Store(http.StatusOK)

				// Probe A hangs.
				var wg sync.WaitGroup
				wg.Go(func() {
					if code, _, err := bkCall(t, tr, "http://api.test/a"); err != nil || code != 500 {
						t.Errorf("probe A = %d, %v; want its late 500", code, err)
					}
				})
				synctest.Wait()
				_, _, err := bkCall(t, tr, "http://api.test/")
				if !errors.Is(err, ErrCircuitOpen) || !strings.Contains(err.Error(), "half-open") {
					t.Fatalf("while A is young: %v, want ErrCircuitOpen (half-open)", err)
				}
				time.Sleep(tc.probeTTL - time.Millisecond)
				_, _, err = bkCall(t, tr, "http://api.test/")
				bkWantOpen(t, err)

				// A is stale: B takes its slot, and hangs too.
				time.Sleep(time.Millisecond)
				before := hits.Load()
				wg.Go(func() {
					if code, _, err := bkCall(t, tr, "http://api.test/b"); err != nil || code != 200 {
						t.Errorf("probe B = %d, %v; want 200", code, err)
					}
				})
				synctest.Wait()
				if hits.Load() != before+1 {
					t.Fatalf("after ProbeTimeout the next attempt did not probe (server hits %d → %d)", before, hits.Load())
				}
				// A's late 500 is not counted: still half-open, waiting
				// for B, not reopened.
				release["/a"] <- 500
				synctest.Wait()
				_, _, err = bkCall(t, tr, "http://api.test/")
				if !errors.Is(err, ErrCircuitOpen) || !strings.Contains(err.Error(), "half-open") {
					t.Fatalf("after A's late 500: %v, want half-open waiting for B", err)
				}
				release["/b"] <- 200
				wg.Wait()
				if code, _, err := bkCall(t, tr, "http://api.test/"); err != nil || code != 200 {
					t.Errorf("after B's success: %d, %v; want 200 (closed)", code, err)
				}
			})
		})
	}
	// A probe whose context never ends, and a base that blocks it until
	// it does: the host is refused for ProbeTimeout, no longer.
	synctest.Test(t, func(t *testing.T) {
		h := bkDead()
		hosts := bkNet{"api.test": h}
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Header.Get("X-Hang") != "" {
				<-req.Context().Done()
				return nil, context.Cause(req.Context())
			}
			return hosts.RoundTrip(req)
		})
		tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1}))
		bkCall(t, tr, "http://api.test/")
		time.Sleep(10*time.Second + time.Millisecond)
		h.status.Store(200)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/", nil)
			req.Header.Set("X-Hang", "1")
			tr.RoundTrip(req)
		}()
		synctest.Wait()
		_, _, err := bkCall(t, tr, "http://api.test/")
		bkWantOpen(t, err)
		time.Sleep(10 * time.Second)
		if code, _, err := bkCall(t, tr, "http://api.test/"); err != nil || code != 200 {
			t.Errorf("after ProbeTimeout: %d, %v; want 200", code, err)
		}
		cancel()
		<-done
	})
}

// TestBreakerOpenForOpenTimeout checks that a breaker stays open for
// OpenTimeout exactly, in fake time: refused a nanosecond before it ends,
// it lets its probe through the instant it ends, after the trip and after a
// failed probe alike, and BreakerState agrees with what the attempt finds.
func TestBreakerOpenForOpenTimeout(t *testing.T) {
	for _, open := range []time.Duration{10 * time.Second, time.Millisecond} {
		t.Run(open.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := bkDead()
				tr := New(bkNet{"dead.test": h}, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: open}))
				const url = "http://dead.test/x"
				for probe := range 2 { // the trip, then a failed probe
					if code, _, err := bkCall(t, tr, url); err != nil || code != 500 {
						t.Fatalf("attempt %d = %d %v, want the server's 500", probe+1, code, err)
					}
					time.Sleep(open - time.Nanosecond)
					if got := tr.BreakerState(url); got != BreakerOpen {
						t.Errorf("BreakerState a nanosecond before OpenTimeout = %v, want open", got)
					}
					_, _, err := bkCall(t, tr, url)
					bkWantOpen(t, err)
					time.Sleep(time.Nanosecond)
					if got := tr.BreakerState(url); got != BreakerHalfOpen {
						t.Errorf("BreakerState at OpenTimeout = %v, want half-open", got)
					}
				}
				h.status.Store(http.StatusOK)
				if code, _, err := bkCall(t, tr, url); err != nil || code != 200 {
					t.Fatalf("probe at OpenTimeout = %d %v, want the server's 200", code, err)
				}
				if got := h.hits.Load(); got != 3 {
					t.Errorf("the server saw %d attempts, want 3", got)
				}
			})
		})
	}
}

// TestBreakerNoWaitForRefusedRetry checks that a call does not wait before a
// retry that its host's open breaker will refuse: when an attempt trips the
// breaker (or finds it tripped by another call), the backoff would end while
// the breaker is still open, and the retry would be refused at once after it,
// the call returning the response it already held. A plain client returns
// that response at once; so does the call, without spending the host's retry
// budget on a retry that is never sent. A retry whose wait ends after the
// breaker's OpenTimeout still waits: it is the breaker's probe.
func TestBreakerNoWaitForRefusedRetry(t *testing.T) {
	tests := []struct {
		name     string
		open     time.Duration // OpenTimeout
		wantWait time.Duration
		wantHits int32
	}{
		// The first retry waits 500ms–1s, within the 10s the breaker
		// stays open: no wait, the retry is refused, the 503 returned.
		{"open past the backoff", 10 * time.Second, 0, 1},
		// The breaker half-opens before the backoff ends: the retry
		// waits, and is the probe.
		{"open shorter than the backoff", 100 * time.Millisecond, 500 * time.Millisecond, 2},
	}
	t.Run("refusals retried by a Classifier", func(t *testing.T) {
		// A Classifier that retries every error retries the refusals
		// too: they wait and spend the budget as any retry, instead of
		// spinning until the breaker half-opens.
		synctest.Test(t, func(t *testing.T) {
			h := bkDead()
			tr := New(bkNet{"api.test": h}, withRand(func(int64) int64 { return 0 }),
				WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithMaxRetries(math.MaxInt),
				WithClassifier(func(resp *http.Response, _ *APIError, err error, def Class) Class {
					if err != nil {
						return Transient
					}
					return def
				}))
			var r Report
			req := newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "https://api.test/", nil)
			if code, _, err := bkDo(t, tr, req); err != nil || code != 500 {
				t.Fatalf("call = %d %v, want the 500", code, err)
			}
			// Refused at once, then 10 refusals retried with backoff
			// until the budget's 10 tokens are spent.
			if r.Attempts != 12 || r.Waited == 0 || r.StopReason != StopRetryBudget {
				t.Errorf("%d attempts, waited %v, stop %q; want 12, a wait, %q", r.Attempts, r.Waited, r.StopReason, StopRetryBudget)
			}
		})
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := new(bkHost)
				h.status.Store(http.StatusServiceUnavailable)
				var outcomes []Outcome
				tr := New(bkNet{"api.test": h}, withRand(func(int64) int64 { return 0 }),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: tt.open}),
					WithMaxRetries(1),
					WithObserver(func(a Attempt) { outcomes = append(outcomes, a.Outcome) }))
				var r Report
				req := newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "https://api.test/v1/posts", nil)
				start := time.Now()
				code, body, err := bkDo(t, tr, req)
				if err != nil || code != 503 {
					t.Fatalf("call = %d %q %v, want a 503", code, body, err)
				}
				if waited := time.Since(start); waited != tt.wantWait || r.Waited != tt.wantWait {
					t.Errorf("the call took %v, Report.Waited %v; want %v", waited, r.Waited, tt.wantWait)
				}
				if got := h.hits.Load(); got != tt.wantHits {
					t.Errorf("the server saw %d attempts, want %d", got, tt.wantHits)
				}
				if tt.wantHits == 1 {
					if len(outcomes) != 2 || outcomes[1] != OutcomeCircuitOpen {
						t.Errorf("outcomes = %v, want [transient circuit_open]", outcomes)
					}
					if got := tr.budgets.get(req).tokens.Load(); got != tr.budgets.burst {
						t.Errorf("retry budget = %d, want it full (%d): no retry was sent", got, tr.budgets.burst)
					}
				}
			})
		})
	}
}

func TestBreakerIsFailure(t *testing.T) {
	degraded := http.Header{"X-Degraded": {"true"}}
	maintenance := `{"error":{"code":"maintenance","message":"down for maintenance"}}`
	isDegraded := func(resp *http.Response, _ *APIError, _ error, def bool) bool {
		return def || resp != nil && resp.Header.Get("X-Degraded") == "true"
	}
	notMaintenance := func(_ *http.Response, apiErr *APIError, _ error, def bool) bool {
		return def && (apiErr == nil || apiErr.Code != "maintenance")
	}
	throttleFails := func(resp *http.Response, _ *APIError, _ error, def bool) bool {
		return def || resp != nil && resp.StatusCode == http.StatusTooManyRequests
	}
	same := func(_ *http.Response, _ *APIError, _ error, def bool) bool { return def }
	tests := []struct {
		name      string
		isFailure func(*http.Response, *APIError, error, bool) bool
		steps     []rtStep
		wantHits  int // of 6 calls, 3 failures in a row trip the breaker
	}{
		{"default: 2xx never fails", nil, []rtStep{{header: degraded}}, 6},
		{"a degraded 2xx fails", isDegraded, []rtStep{{header: degraded}}, 3},
		{"default: 503 fails", nil, []rtStep{{status: 503, body: maintenance}}, 3},
		{"a maintenance 503 is a success", notMaintenance, []rtStep{{status: 503, body: maintenance}}, 6},
		{"default: 429 is not counted", nil, []rtStep{{status: 503}, {status: 429}, {status: 503}, {status: 429}, {status: 503}, {}}, 5},
		{"def kept: 429 still not counted", same, []rtStep{{status: 503}, {status: 429}, {status: 503}, {status: 429}, {status: 503}, {}}, 5},
		{"a 429 fails", throttleFails, []rtStep{{status: 429}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &rtScript{steps: tt.steps}
			tr := New(base, WithMaxRetries(0), WithoutRateLimit(), WithBreaker(BreakerSettings{ConsecutiveFailures: 3, IsFailure: tt.isFailure}))
			for range 6 {
				resp, err := tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/v1/posts", nil))
				if err == nil {
					readBody(t, resp)
				} else if !errors.Is(err, ErrCircuitOpen) {
					t.Fatal(err)
				}
			}
			if n := base.numCalls(); n != tt.wantHits {
				t.Errorf("the server saw %d of 6 calls, want %d", n, tt.wantHits)
			}
		})
	}
}

func TestBreakerIsFailureProbe(t *testing.T) {
	// A half-open breaker's probe is judged too: a degraded 200 opens it
	// again, a plain one closes it.
	synctest.Test(t, func(t *testing.T) {
		base := &rtScript{steps: []rtStep{{status: 503}, {header: http.Header{"X-Degraded": {"true"}}}, {}}}
		calls := 0
		tr := New(base, WithMaxRetries(0), WithoutRateLimit(), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second,
			IsFailure: func(resp *http.Response, _ *APIError, _ error, def bool) bool {
				calls++
				return def || resp.Header.Get("X-Degraded") != ""
			}}))
		get(t, tr, "http://api.test/")
		if s := tr.BreakerState("http://api.test/"); s != BreakerOpen {
			t.Fatalf("after a 503: %v, want open", s)
		}
		time.Sleep(time.Second)
		get(t, tr, "http://api.test/")
		if s := tr.BreakerState("http://api.test/"); s != BreakerOpen {
			t.Errorf("after a degraded probe: %v, want open again", s)
		}
		time.Sleep(time.Second)
		get(t, tr, "http://api.test/")
		if s := tr.BreakerState("http://api.test/"); s != BreakerClosed {
			t.Errorf("after a healthy probe: %v, want closed", s)
		}
		if calls != 3 {
			t.Errorf("IsFailure called %d times, want once per attempt (3)", calls)
		}
	})
}

func TestBreakerIsFailureNotCalled(t *testing.T) {
	// What tells nothing of the host is never judged: a canceled call, a
	// request the caller's body kept from being sent.
	called := false
	base := &rtScript{steps: []rtStep{{hang: true}}}
	tr := New(base, WithMaxRetries(0), WithBreaker(BreakerSettings{IsFailure: func(*http.Response, *APIError, error, bool) bool {
		called = true
		return true
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	base.steps[0].before = func(*http.Request) { cancel() }
	if _, err := tr.RoundTrip(newRequest(t, ctx, http.MethodGet, "http://api.test/", nil)); err == nil {
		t.Fatal("a canceled call succeeded")
	}
	// A body whose Read fails: the base returns the read's error, as
	// http.Transport does.
	sends := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		_, err := io.ReadAll(req.Body)
		return nil, err
	})
	req := newRequest(t, context.Background(), http.MethodPut, "http://api.test/", iotest.ErrReader(errors.New("disk failed")))
	_, err := New(sends, WithMaxRetries(0), WithBreaker(BreakerSettings{IsFailure: func(*http.Response, *APIError, error, bool) bool {
		called = true
		return true
	}})).RoundTrip(req)
	var reqErr *RequestError
	if !errors.As(err, &reqErr) {
		t.Fatalf("err = %v, want a *RequestError", err)
	}
	if called {
		t.Error("IsFailure was called for an attempt that tells nothing of the host")
	}
}

func TestBreakerIsFailurePanics(t *testing.T) {
	// A panic in IsFailure goes on to the caller, and the response it
	// judged is closed rather than lost open.
	base := &rtScript{steps: []rtStep{{body: "ok"}}}
	tr := New(base, WithBreaker(BreakerSettings{IsFailure: func(*http.Response, *APIError, error, bool) bool { panic("judge") }}))
	p := mustPanic(t, "IsFailure's panic did not reach the caller", func() {
		tr.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
	})
	if p != "judge" {
		t.Errorf("panic value %v, want the judge's", p)
	}
	if !base.body(0).isClosed() {
		t.Error("the response IsFailure panicked on was left open")
	}
	// The breaker holds nothing: the next call goes through.
	tr = New(base, WithBreaker(BreakerSettings{IsFailure: func(_ *http.Response, _ *APIError, _ error, def bool) bool { return def }}))
	if code := get(t, tr, "http://api.test/"); code != 200 {
		t.Errorf("next call: %d", code)
	}
}

// TestBreakerRemovedStaysQuiet checks that a breaker removed while its
// half-open probe is in flight (by ResetHost, or evicted) tells the
// observers and the logger nothing more when the probe answers: the host's
// breaker is then a new, closed one, and the last change they were told of
// must say so.
func TestBreakerRemovedStaysQuiet(t *testing.T) {
	for _, how := range []string{"ResetHost", "evicted"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := bkDead()
				var rec bkRecorder
				hosts := bkNet{"api.test": h}
				for i := range 4 {
					hosts[fmt.Sprintf("h%d.test", i)] = bkDead()
				}
				tr := New(hosts, WithMaxRetries(0), WithoutHedging(),
					WithBreaker(BreakerSettings{ConsecutiveFailures: 1}), WithBreakerObserver(rec.add))
				tr.breakers.max = 2
				bkCall(t, tr, "http://api.test/")
				time.Sleep(10*time.Second + time.Millisecond)
				h.wait = make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() { bkCall(t, tr, "http://api.test/") }) // the probe, which fails
				synctest.Wait()
				if how == "ResetHost" {
					tr.ResetHost("api.test")
				} else {
					// Other hosts trip until one evicts the half-open
					// breaker: no closed one is left to go first.
					for i := 0; tr.breakers.lookup(breakerKey{"http", "api.test"}) != nil; i++ {
						if i == 4 {
							t.Fatal("the half-open breaker was not evicted")
						}
						bkCall(t, tr, fmt.Sprintf("http://h%d.test/", i))
					}
				}
				close(h.wait)
				wg.Wait()
				if s := tr.BreakerState("http://api.test/"); s != BreakerClosed {
					t.Errorf("BreakerState = %v, want closed", s)
				}
				var last string
				for _, c := range rec.transitions() {
					if strings.HasPrefix(c, "http://api.test:80 ") {
						last = c
					}
				}
				if last != "http://api.test:80 half-open->closed" {
					t.Errorf("the last change observed of api.test is %q, want half-open->closed; all: %q", last, rec.transitions())
				}
			})
		})
	}
}

// TestBreakerHugeDurations: settings of absurd length (math.MaxInt64, as
// "for ever" is sometimes written) hold as the longest the breaker keeps:
// an open breaker refuses with the time left before its probe, and the
// breakers of idle hosts still expire. OpenTimeout + Window overflowed:
// the refusal read "next probe in 0s", and the idle sweep, whose period
// went negative, ran on every new host.
func TestBreakerHugeDurations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(bkNet{"dead.test": bkDead()}, WithMaxRetries(0),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: math.MaxInt64, Window: math.MaxInt64, ProbeTimeout: math.MaxInt64}))
		const url = "http://dead.test/x"
		if code, _, err := bkCall(t, tr, url); err != nil || code != 500 {
			t.Fatalf("the trip = %d %v, want the server's 500", code, err)
		}
		_, _, err := bkCall(t, tr, url)
		bkWantOpen(t, err)
		if err == nil || strings.Contains(err.Error(), "next probe in 0s") {
			t.Errorf("refusal %v: want the time left before the probe", err)
		}
		if s := tr.breakers; s.idleAfter <= 0 {
			t.Errorf("idle breakers expire after %v, want a positive time", s.idleAfter)
		}
	})
}

// TestBreakerConsecutiveFailuresWithinWindow: ConsecutiveFailures counts
// the failures of the run that are still in the window, as gobreaker's
// rule does: failures in a row further apart than Window never trip the
// breaker, and the same run closer together does.
func TestBreakerConsecutiveFailuresWithinWindow(t *testing.T) {
	for _, tc := range []struct {
		gap  time.Duration
		want BreakerState
	}{
		{11 * time.Second, BreakerClosed},
		{time.Second, BreakerOpen},
	} {
		t.Run(tc.gap.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				down := slices.Repeat([]resilienttest.Step{resilienttest.Respond(http.StatusInternalServerError)}, 10)
				srv := resilienttest.NewPipeServer(resilienttest.Postato, resilienttest.WithScript(resilienttest.RouteListPosts, down...))
				defer srv.Close()
				tr := New(srv.Transport(), WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 3, Window: 10 * time.Second}))
				for i := range 5 {
					if i > 0 {
						time.Sleep(tc.gap)
					}
					if tr.BreakerState(srv.URL) == BreakerOpen {
						break
					}
					if code, _, err := bkCall(t, tr, srv.URL+"/v1/posts"); err != nil || code != http.StatusInternalServerError {
						t.Fatalf("call %d: %d, %v; want the server's 500", i, code, err)
					}
				}
				if got := tr.BreakerState(srv.URL); got != tc.want {
					t.Errorf("after failures %v apart: BreakerState = %v, want %v (server hit %d times)", tc.gap, got, tc.want, srv.Stats().Requests)
				}
			})
		})
	}
}
