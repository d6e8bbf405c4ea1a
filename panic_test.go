package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestPanicReleasesSlots: a panic in the base RoundTripper or in a
// Classifier, recovered by the caller, releases every slot the layers took:
// the rate limiter's count of attempts in flight (which, leaked, shut the
// quota gate of a partition whose server announced 3 remaining) and the
// breaker's (not counted: 25 panics do not trip it). The calls that follow
// reach the server at once.
//
// (The server announces no limit, so that nothing paces the calls.)
func TestPanicReleasesSlots(t *testing.T) {
	for _, tc := range []struct {
		where   string
		breaker bool
	}{{"base", true}, {"classifier", true}, {"base", false}, {"classifier", false}} {
		where := tc.where
		name := where
		if !tc.breaker {
			name += " without breaker"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var panicking atomic.Bool
				srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
					w.Header().Set("X-RateLimit-Remaining", "3")
					w.Header().Set("X-RateLimit-Reset", "60")
				}}
				var base http.RoundTripper = handlerRT{srv}
				opts := []Option{WithMaxRetries(0)}
				if !tc.breaker {
					opts = append(opts, WithoutBreaker())
				}
				switch where {
				case "base":
					base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
						if panicking.Load() {
							panic("base exploded")
						}
						return handlerRT{srv}.RoundTrip(req)
					})
				case "classifier":
					opts = append(opts, WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
						if panicking.Load() {
							panic("classifier exploded")
						}
						return def
					}))
				}
				client := &http.Client{Transport: New(base, opts...)}
				if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
					t.Fatalf("first call: %d, %v", code, err)
				}
				panicking.Store(true)
				const panics = 25
				for range panics {
					mustPanic(t, "the panic was not propagated", func() {
						req, _ := http.NewRequest("GET", "http://api.test/x", nil)
						client.Do(req)
					})
				}
				panicking.Store(false)
				seen := len(srv.seen(""))
				start := time.Now()
				for i := range 10 {
					if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
						t.Fatalf("call %d after %d panics: %d, %v; want 200", i, panics, code, err)
					}
				}
				if d := time.Since(start); d != 0 {
					t.Errorf("10 calls after the panics waited %v, want none: a slot leaked", d)
				}
				if n := len(srv.seen("")) - seen; n != 10 {
					t.Errorf("the server saw %d of the 10 calls", n)
				}
			})
		})
	}
}

// TestPanicInBreakerObserverReleasesProbe: a breaker observer that panics
// on the change to half-open, delivered on the goroutine of the attempt
// that took the probe's slot, releases that slot with the panic: the next
// attempt probes, and the host is not refused for good ("half-open,
// waiting for its probe" on every call, the stale-probe release finding no
// probe to free).
func TestPanicInBreakerObserverReleasesProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		failing.Store(true)
		srv := &recServer{fn: func(w http.ResponseWriter, r *http.Request, n int) {
			if failing.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
		}}
		observer := func(c BreakerChange) {
			if c.To == BreakerHalfOpen {
				panic("observer exploded")
			}
		}
		tr := New(handlerRT{srv}, WithMaxRetries(0), WithoutRetryBudget(),
			WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second}),
			WithBreakerObserver(observer))
		client := &http.Client{Transport: tr}
		if code, err := do(t, client, "GET", "http://api.test/x"); code != 500 {
			t.Fatalf("first call: %d, %v; want the 500 that trips the breaker", code, err)
		}
		failing.Store(false)
		time.Sleep(2 * time.Second) // the breaker goes half-open with the next attempt
		mustPanic(t, "the observer's panic was not propagated", func() {
			req, _ := http.NewRequest("GET", "http://api.test/x", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		// However long the caller waits (past ProbeTimeout, which is
		// OpenTimeout), the host must answer again.
		time.Sleep(time.Minute)
		for i := range 3 {
			if code, err := do(t, client, "GET", "http://api.test/x"); code != 200 {
				t.Fatalf("call %d after the observer's panic: %d, %v; want 200 (the probe's slot leaked)", i, code, err)
			}
		}
	})
}

// panicTracer is a Tracer whose Attempt, EndCall, attempt's end or
// StartAttempt of a second attempt to /panic (where: "tracer", "EndCall",
// "span end", "StartAttempt") panics.
type panicTracer struct{ where string }

func (p panicTracer) StartCall(ctx context.Context, _ *http.Request) context.Context { return ctx }
func (p panicTracer) StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	if p.where == "StartAttempt" && info.Number == 2 && req.URL.Path == "/panic" {
		panic("StartAttempt exploded")
	}
	if p.where == "span end" {
		return req, func(*http.Response, error) { panic("span end exploded") }
	}
	return req, nil
}
func (p panicTracer) Attempt(context.Context, Attempt) {
	if p.where == "tracer" {
		panic("tracer exploded")
	}
}
func (p panicTracer) EndCall(context.Context, *Report) {
	if p.where == "EndCall" {
		panic("EndCall exploded")
	}
}

// panicHandler is a slog.Handler that panics.
type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("logger exploded") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

// TestPanicClosesResponse: a panic in what the caller plugged in (an
// observer, the logger, a Tracer, a Classifier, a breaker observer) after an attempt got its
// response takes that response from the caller, who never sees it: its
// body is closed on the way out, so that its connection (and, over
// http.Transport, the goroutines that serve it) is not leaked by each
// panic a server recovers from.
func TestPanicClosesResponse(t *testing.T) {
	for _, tc := range []struct {
		where  string
		status int // every attempt's
		at     int // the attempt whose observer or classifier panics
	}{
		{"observer", 503, 1},
		{"observer", 503, 2},
		{"observer", 200, 1},
		{"context observer", 200, 1},
		{"logger", 200, 1},
		{"tracer", 503, 1},
		{"EndCall", 200, 1},
		{"span end", 200, 1},
		{"classifier", 200, 1},
		{"classifier", 503, 2},
		{"breaker observer", 503, 1}, // the breaker opens
		{"breaker observer", 503, 2}, // its probe fails: it opens again
		{"rate-limit parser", 200, 1},
		{"quota store", 200, 1},
	} {
		t.Run(fmt.Sprintf("%s %d at %d", tc.where, tc.status, tc.at), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var bodies []*trackedBody
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					b := newTrackedBody(`{}`)
					bodies = append(bodies, b)
					h := http.Header{}
					if tc.where == "quota store" {
						h.Set("X-RateLimit-Limit", "100")
						h.Set("X-RateLimit-Remaining", "99")
						h.Set("X-RateLimit-Reset", "60")
					}
					return &http.Response{StatusCode: tc.status, Header: h, Body: b, Request: req}, nil
				})
				n := 0
				opts := []Option{WithBackoff(time.Second, time.Second)}
				switch tc.where {
				case "observer":
					opts = append(opts, WithObserver(func(a Attempt) {
						if a.Number == tc.at {
							panic("observer exploded")
						}
					}))
				case "context observer":
					opts = append(opts, WithContextObserver(func(context.Context, Attempt) { panic("observer exploded") }))
				case "logger":
					opts = append(opts, WithLogger(slog.New(panicHandler{})))
				case "tracer", "EndCall", "span end":
					opts = append(opts, WithTracer(panicTracer{tc.where}))
				case "breaker observer":
					opens := 0
					opts = append(opts, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Second}),
						WithBreakerObserver(func(c BreakerChange) {
							if c.To == BreakerOpen {
								if opens++; opens == tc.at {
									panic("observer exploded")
								}
							}
						}))
				case "rate-limit parser":
					opts = append(opts, WithRateLimitParser(func(http.Header, time.Time) (RateLimitInfo, bool) { panic("parser exploded") }))
				case "quota store":
					// Its Learn panics: the response announces a quota.
					var panicking atomic.Bool
					panicking.Store(true)
					opts = append(opts, WithQuotaStore(storeFunc(func(name string) QuotaPartition {
						return learnPanicker{new(memQuota).Partition(name).(*memPart), &panicking}
					})))
				case "classifier":
					opts = append(opts, WithClassifier(func(_ *http.Response, _ *APIError, _ error, def Class) Class {
						if n++; n == tc.at {
							panic("classifier exploded")
						}
						return def
					}))
				}
				tr := New(base, opts...)
				if tc.where == "breaker observer" && tc.at == 2 {
					resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
					if err != nil {
						t.Fatalf("the call that opens the breaker: %v", err)
					}
					resp.Body.Close()
					time.Sleep(2 * time.Second) // the next attempt probes
				}
				mustPanic(t, "the panic was not propagated", func() {
					tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
				})
				for i, b := range bodies {
					if !b.isClosed() {
						t.Errorf("the body of response %d (of %d) was not closed", i+1, len(bodies))
					}
				}
			})
		})
	}
}

// TestPanicClosesCallersBody: a panic in what the caller plugged in before
// the base RoundTripper got the attempt's body (an observer's after the
// retry loop readied the retry's body: a captured body's reader, a file
// rewound, a GetBody's copy; a function that keys the rate limiter or the
// breaker; a QuotaStore; a Tracer's StartAttempt, which closes it itself)
// still closes the caller's request body, once, as net/http's contract
// asks on every path, and every copy GetBody made: a file left open leaks
// its descriptor with each panic a server recovers from.
func TestPanicClosesCallersBody(t *testing.T) {
	for _, where := range []string{"observer", "rate-limit key", "breaker key", "quota store", "StartAttempt"} {
		for _, kind := range []string{"captured", "seekable", "GetBody"} {
			t.Run(where+"/"+kind, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					status := 200
					opts := []Option{WithBackoff(time.Second, time.Second)}
					switch where {
					case "observer":
						status = 503
						opts = append(opts, WithObserver(func(Attempt) { panic("observer exploded") }))
					case "rate-limit key":
						opts = append(opts, WithRateLimitKey(func(*http.Request) string { panic("key exploded") }))
					case "breaker key":
						opts = append(opts, WithBreaker(BreakerSettings{Key: func(*http.Request) string { panic("key exploded") }}))
					case "quota store":
						opts = append(opts, WithQuotaStore(storeFunc(func(string) QuotaPartition { panic("store exploded") })))
					case "StartAttempt":
						opts = append(opts, WithTracer(&startPanicTracer{attempt: true}))
					}
					base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
						req.Body.Close() // an early answer: the body was not read to its end
						return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
					})
					tr := New(base, opts...)
					var body io.ReadCloser
					var closes func() int
					var copies []*trackedBody
					switch kind {
					case "captured", "GetBody":
						b := newTrackedBody("payload")
						body, closes = b, func() int { b.mu.Lock(); defer b.mu.Unlock(); return b.closes }
					case "seekable":
						f, err := os.CreateTemp(t.TempDir(), "body")
						if err != nil {
							t.Fatal(err)
						}
						f.WriteString("payload")
						f.Seek(0, io.SeekStart)
						sf := &seekCloseCounter{File: f}
						body, closes = sf, func() int { return int(sf.closes.Load()) }
					}
					req := newRequest(t, context.Background(), "PUT", "http://api.test/", body)
					if kind == "GetBody" {
						req.GetBody = func() (io.ReadCloser, error) {
							b := newTrackedBody("payload")
							copies = append(copies, b)
							return b, nil
						}
					}
					mustPanic(t, "the panic was not propagated", func() { tr.RoundTrip(req) })
					if n := closes(); n != 1 {
						t.Errorf("the caller's body was closed %d times, want 1", n)
					}
					for i, b := range copies {
						if b.mu.Lock(); b.closes != 1 {
							t.Errorf("GetBody's copy %d was closed %d times, want 1", i+1, b.closes)
						}
						b.mu.Unlock()
					}
				})
			})
		}
	}
}

// seekCloseCounter is an *os.File that counts its Close calls.
type seekCloseCounter struct {
	*os.File
	closes atomic.Int32
}

func (f *seekCloseCounter) Close() error {
	f.closes.Add(1)
	return f.File.Close()
}

// TestPanicClosesHedgedCopysBody: a panic in what the caller plugged in
// that a hedged copy runs before the base RoundTripper got its body (a
// function that keys the rate limiter or the breaker), which reaches the
// caller as the attempt's panic, still closes the body GetBody made for
// the copy, as the retry loop closes an attempt's: a GetBody that opens a
// file leaks its descriptor with each such panic otherwise.
func TestPanicClosesHedgedCopysBody(t *testing.T) {
	for _, where := range []string{"rate-limit key", "breaker key"} {
		t.Run(where, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var armed atomic.Bool // set once GetBody made the copy's body
				key := func(*http.Request) string {
					if armed.Load() {
						panic("key exploded")
					}
					return "k"
				}
				opts := []Option{WithHedging(Hedging{Delay: 10 * time.Millisecond})}
				switch where {
				case "rate-limit key":
					opts = append(opts, WithRateLimitKey(key))
				case "breaker key":
					opts = append(opts, WithBreaker(BreakerSettings{Key: key}))
				}
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					req.Body.Close()
					<-req.Context().Done() // the attempt hangs: its copy is sent
					return nil, context.Cause(req.Context())
				})
				tr := New(base, opts...)
				var copies []*trackedBody
				req := newRequest(t, context.Background(), "GET", "http://api.test/", newTrackedBody("query"))
				req.GetBody = func() (io.ReadCloser, error) {
					b := newTrackedBody("query")
					copies = append(copies, b)
					armed.Store(true)
					return b, nil
				}
				mustPanic(t, "the copy's panic did not reach the caller", func() { tr.RoundTrip(req) })
				time.Sleep(time.Second)
				synctest.Wait()
				if len(copies) == 0 {
					t.Fatal("no copy was made")
				}
				for i, b := range copies {
					if b.mu.Lock(); b.closes != 1 {
						t.Errorf("GetBody's copy %d was closed %d times, want 1", i+1, b.closes)
					}
					b.mu.Unlock()
				}
			})
		})
	}
}

// TestPanicReleasesDeadline: a panic below the deadline layer (the base
// RoundTripper, a Classifier), recovered by the caller, releases the
// attempt's deadline with it, as an attempt that fails does: its slot of
// the chain's deadlineWatch is given back and its context canceled. They
// were held until the deadline fired (the call's budget, five minutes by
// default): each panic of a server's handler, recovered by net/http, kept
// a slot, then a timer of its own once all 512 were taken, with the
// attempt's request and its context's registration with the caller's.
// In real time: the watch serves no synctest bubble.
func TestPanicReleasesDeadline(t *testing.T) {
	t.Parallel()
	for _, method := range readyMethods { // the deadline made by the layer, and the one the retry loop readies
		for _, cancelable := range []bool{false, true} {
			var seen context.Context
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				seen = req.Context()
				panic("base exploded")
			})
			tr := New(base, WithoutRateLimit(), WithoutBreaker(), WithAttemptTimeout(time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			if !cancelable {
				ctx = context.WithoutCancel(ctx)
			}
			mustPanic(t, "the panic was not propagated", func() {
				tr.RoundTrip(newRequest(t, ctx, method, "http://api.test/", strings.NewReader("{}")))
			})
			if seen == nil {
				t.Fatalf("%s (cancelable %v): the base was not called", method, cancelable)
			}
			if seen.Err() == nil {
				t.Errorf("%s (cancelable %v): the attempt's context is live after the panic, until its deadline", method, cancelable)
			}
			cancel()
			ad, ok := tr.inner.rt.(*attemptDeadline)
			if !ok {
				t.Fatalf("inner %T, want the deadline layer", tr.inner.rt)
			}
			taken := 0
			for i := range ad.watch.slots {
				if ad.watch.slots[i].Load() != nil {
					taken++
				}
			}
			if taken != 0 {
				t.Errorf("%s (cancelable %v): %d slots of the deadline watch taken after the panic, want 0", method, cancelable, taken)
			}
		}
	}
}

// TestPanicAboveReleasesReadiedDeadline: a panic above the deadline layer
// releases the attempt's deadline too when the retry loop readied it (a
// POST, whose request it copies anyway): one in a function that keys a
// layer above (BreakerSettings.Key), before the deadline layer armed it,
// and one in BreakerSettings.IsFailure, judging an attempt that failed,
// which the deadline layer leaves to the retry loop to release. The panic
// skips the retry loop's release: the deadline's context stayed live,
// registered with the caller's context, for as long as the caller's.
func TestPanicAboveReleasesReadiedDeadline(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"Key", "IsFailure"} {
		for _, method := range readyMethods {
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				return nil, errors.New("connection reset")
			})
			settings := BreakerSettings{}
			switch where {
			case "Key":
				settings.Key = func(*http.Request) string { panic("Key exploded") }
			case "IsFailure":
				settings.IsFailure = func(*http.Response, *APIError, error, bool) bool { panic("IsFailure exploded") }
			}
			tr := New(base, WithoutRateLimit(), WithMaxRetries(0), WithAttemptTimeout(time.Hour), WithBreaker(settings))
			ctx := newCountingCtx()
			mustPanic(t, "the panic was not propagated", func() {
				tr.RoundTrip(newRequest(t, ctx, method, "http://api.test/", strings.NewReader("{}")))
			})
			if n := ctx.live.Load(); n != 0 {
				t.Errorf("%s panicked, %s: %d contexts registered with the caller's after the panic, want 0", where, method, n)
			}
		}
	}
}

// countingCtx is a cancelable context that counts the contexts derived from
// it that are still registered with it (through its AfterFunc).
type countingCtx struct {
	context.Context
	done chan struct{}
	live atomic.Int32
}

func newCountingCtx() *countingCtx {
	return &countingCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *countingCtx) Done() <-chan struct{} { return c.done }

func (c *countingCtx) AfterFunc(f func()) func() bool {
	c.live.Add(1)
	stop := context.AfterFunc(c.Context, f)
	var once sync.Once
	return func() bool {
		once.Do(func() { c.live.Add(-1) })
		return stop()
	}
}

// TestPanicInBodyReplayClosesResponse: a retry's body that panics as it is
// made (the caller's GetBody, or the Seek of a body rewound for the retry),
// which reaches the caller, still closes the response of the attempt
// retried past, as a panicking observer's or Classifier's does: the caller
// never sees it, and its connection would leak with each such panic a
// server recovers from.
func TestPanicInBodyReplayClosesResponse(t *testing.T) {
	for _, kind := range []string{"GetBody", "Seek"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var bodies []*trackedBody
				base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
					io.Copy(io.Discard, req.Body)
					req.Body.Close()
					b := newTrackedBody(`{}`)
					bodies = append(bodies, b)
					return &http.Response{StatusCode: 503, Header: http.Header{}, Body: b, Request: req}, nil
				})
				tr := New(base, WithBackoff(time.Second, time.Second))
				var req *http.Request
				switch kind {
				case "GetBody":
					req = newRequest(t, context.Background(), "PUT", "http://api.test/", strings.NewReader("payload"))
					req.Body = streamBody("payload") // not in memory: the retry's body is GetBody's
					req.GetBody = func() (io.ReadCloser, error) { panic("GetBody exploded") }
				case "Seek":
					req = newRequest(t, context.Background(), "PUT", "http://api.test/", &panicSeeker{Reader: strings.NewReader("payload")})
				}
				mustPanic(t, "the panic was not propagated", func() { tr.RoundTrip(req) })
				if len(bodies) != 1 {
					t.Fatalf("%d attempts, want 1", len(bodies))
				}
				if !bodies[0].isClosed() {
					t.Errorf("the body of the response retried past was not closed")
				}
			})
		})
	}
}

// panicSeeker is a request body that can seek, but panics when it is
// rewound for a retry.
type panicSeeker struct{ *strings.Reader }

func (s *panicSeeker) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		panic("Seek exploded")
	}
	return s.Reader.Seek(off, whence)
}

func (s *panicSeeker) Close() error { return nil }

// TestPanicInFirstSeekClosesCallersBody: a body whose Seek panics when the
// call asks where it stands, before its first attempt, still has its Close
// called as the panic goes on to the caller, as on every path: net/http,
// which never seeks it, would have closed it, and a file left open leaks
// its descriptor with each such panic a server recovers from.
func TestPanicInFirstSeekClosesCallersBody(t *testing.T) {
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		t.Error("the base RoundTripper was called")
		req.Body.Close()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	body := &startPanicSeeker{trackedBody: newTrackedBody("payload")}
	req := newRequest(t, context.Background(), "PUT", "http://api.test/", body)
	mustPanic(t, "the panic was not propagated", func() { New(base).RoundTrip(req) })
	if n := body.numCloses(); n != 1 {
		t.Errorf("the caller's body was closed %d times, want 1", n)
	}
}

// startPanicSeeker is a request body that can seek, but panics when asked
// where it stands.
type startPanicSeeker struct{ *trackedBody }

func (*startPanicSeeker) Seek(int64, int) (int64, error) { panic("Seek exploded") }
