package resilient

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// stubOK is the base of the happy-path benchmarks: it answers 200 with a
// fresh *http.Response per call, as a real transport does, so that bare and
// chained runs pay the same for it.
type stubOK struct{ header http.Header }

func (s *stubOK) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: s.header, Body: http.NoBody, Request: req}, nil
}

func roundTripOK(b testing.TB, rt http.RoundTripper, req *http.Request) {
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("RoundTrip = %v, %v", resp, err)
	}
	resp.Body.Close()
}

// addedBlock is how many calls of the chain alternate with as many calls of
// the bare stub in measureAdded.
const addedBlock = 256

// measureAdded runs b.N calls of next(i) through rt, in blocks of
// addedBlock that alternate with as many calls straight to base (the
// timer stopped), so that the drift of a shared machine hits both alike.
// It reports added-ns/op, the difference per call; added-cpu-ns/op, the
// same in CPU time of the process (garbage collection included), which the
// other processes of a busy machine disturb less; and added-allocs/op.
func measureAdded(b *testing.B, rt, base http.RoundTripper, next func(i int) *http.Request) {
	b.Helper()
	var own, bare, ownCPU, bareCPU time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(addedBlock, b.N-done)
		start, cpu := time.Now(), processCPU()
		for i := range k {
			roundTripOK(b, rt, next(done+i))
		}
		own += time.Since(start)
		ownCPU += processCPU() - cpu
		b.StopTimer()
		start, cpu = time.Now(), processCPU()
		for i := range k {
			roundTripOK(b, base, next(done+i))
		}
		bare += time.Since(start)
		bareCPU += processCPU() - cpu
		b.StartTimer()
		done += k
	}
	b.StopTimer()
	b.ReportMetric(float64(own-bare)/float64(b.N), "added-ns/op")
	b.ReportMetric(float64(ownCPU-bareCPU)/float64(b.N), "added-cpu-ns/op")
	i := 0
	allocs := testing.AllocsPerRun(1000, func() { roundTripOK(b, rt, next(i)); i++ })
	i = 0
	allocs -= testing.AllocsPerRun(1000, func() { roundTripOK(b, base, next(i)); i++ })
	b.ReportMetric(allocs, "added-allocs/op")
}

// BenchmarkHappyPath measures what the Transport adds to a call that
// succeeds at once, over a stub that answers 200 (no I/O), against the stub
// alone, in alternating blocks (see measureAdded):
//
//   - get: a GET through the default chain;
//   - get-nobreaker: the same WithoutBreaker;
//   - get-nodeadline: the same with WithMaxElapsed(0): no timer per attempt;
//   - get-ctxdeadline: the default chain, with a caller's context whose
//     deadline ends before the call's budget;
//   - get-cancelable: the default chain, with a caller's context that can be
//     canceled and has no deadline (an inbound server request's);
//   - get-deepctx: get-ctxdeadline with 12 values added to the context
//     above its deadline, as a server's middlewares add them (a span, a
//     logger, the caller's identity): every look at the context walks
//     them;
//   - post-empty: a POST without a body (an idempotency key per call);
//   - post: a POST with a 19-byte body and GetBody;
//   - hosts-10000: GETs to 10,000 hosts in turn, so that breakers come and
//     go (the set holds 4,096);
//   - get-uppercase-host: get, to https://API.example.com (as configs
//     often spell it), which must cost what get costs;
//   - get-quota, get-quota-uppercase-host: get, to a host that announces
//     its quota (X-RateLimit-*) on every answer, so that every attempt
//     looks its partition up under the host's canonical name;
//   - parallel: 32 goroutines on one host; run it with -cpu 1,2 (or see
//     BenchmarkParallelScaling).
func BenchmarkHappyPath(b *testing.B) {
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	get, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts?limit=10", nil)
	same := func(req *http.Request) func(int) *http.Request {
		return func(int) *http.Request { return req }
	}

	b.Run("get", func(b *testing.B) { measureAdded(b, New(base), base, same(get)) })
	b.Run("get-nobreaker", func(b *testing.B) { measureAdded(b, New(base, WithoutBreaker()), base, same(get)) })
	b.Run("get-nodeadline", func(b *testing.B) { measureAdded(b, New(base, WithMaxElapsed(0)), base, same(get)) })
	b.Run("get-maxinflight", func(b *testing.B) {
		// A slot of the host taken and given back (WithMaxInFlight).
		measureAdded(b, New(base, WithMaxInFlight(64)), base, same(get))
	})
	b.Run("get-ctxdeadline", func(b *testing.B) {
		// The caller's deadline ends before the call's budget (as with
		// http.Client.Timeout): the base enforces it, and no attempt needs
		// a context of its own.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		measureAdded(b, New(base), base, same(get.WithContext(ctx)))
	})
	b.Run("get-deepctx", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range 12 {
			ctx = context.WithValue(ctx, benchCtxKey(i), i)
		}
		measureAdded(b, New(base), base, same(get.WithContext(ctx)))
	})
	b.Run("get-cancelable", func(b *testing.B) {
		// The attempt's context derives from the caller's, so that
		// canceling the caller's cancels the attempt: context's own
		// cancelCtx and its cancel func, beside the copy.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		measureAdded(b, New(base), base, same(get.WithContext(ctx)))
	})
	b.Run("get-body", func(b *testing.B) {
		// A 13-byte body, handed over as it arrives (the default)…
		withBody := &stubBody{body: `{"data":"ok"}`}
		measureAdded(b, New(withBody), withBody, same(get))
	})
	b.Run("get-bufferedresponse", func(b *testing.B) {
		// … and read within the attempt (WithBufferedResponse).
		withBody := &stubBody{body: `{"data":"ok"}`}
		measureAdded(b, New(withBody, WithBufferedResponse(1<<20)), withBody, same(get))
	})
	b.Run("post-empty", func(b *testing.B) {
		post, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
		measureAdded(b, New(base), base, same(post))
	})
	b.Run("post-keyed-host", func(b *testing.B) {
		// To a host known to deduplicate by key: no write trace.
		post, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
		measureAdded(b, New(base, WithKeyHonoringHosts("api.example.com")), base, same(post))
	})
	b.Run("post", func(b *testing.B) {
		body := []byte(`{"content":"hello"}`)
		post, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", bytes.NewReader(body))
		measureAdded(b, New(base), base, func(int) *http.Request {
			post.Body, _ = post.GetBody()
			return post
		})
	})
	b.Run("hosts-10000", func(b *testing.B) {
		reqs := make([]*http.Request, 10000)
		for i := range reqs {
			reqs[i], _ = http.NewRequest(http.MethodGet, "https://h"+strconv.Itoa(i)+".example.com/v1/posts", nil)
		}
		measureAdded(b, New(base), base, func(i int) *http.Request { return reqs[i%len(reqs)] })
	})
	upper, _ := http.NewRequest(http.MethodGet, "https://API.example.com/v1/posts?limit=10", nil)
	b.Run("get-uppercase-host", func(b *testing.B) { measureAdded(b, New(base), base, same(upper)) })
	quota := &stubOK{header: http.Header{"Content-Type": {"application/json"},
		"X-Ratelimit-Limit": {"1000000"}, "X-Ratelimit-Remaining": {"999999"}, "X-Ratelimit-Reset": {"60"}}}
	b.Run("get-quota", func(b *testing.B) { measureAdded(b, New(quota), quota, same(get)) })
	b.Run("get-quota-uppercase-host", func(b *testing.B) { measureAdded(b, New(quota), quota, same(upper)) })
	b.Run("parallel", func(b *testing.B) {
		tr := New(base)
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				roundTripOK(b, tr, get)
			}
		})
	})
}

// BenchmarkHappyPathLoop makes the calls of BenchmarkHappyPath's get,
// get-ctxdeadline and post-empty in a plain loop, without the bare calls
// that measureAdded alternates with them, and the stub's alone (stub):
// what bench/icount.sh counts the instructions of, one call per op.
func BenchmarkHappyPathLoop(b *testing.B) {
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	get, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts?limit=10", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // ends before the call's budget
	defer cancel()
	post, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/posts", nil)
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
		req  *http.Request
	}{
		{"stub", base, get},
		{"get", New(base), get},
		{"get-ctxdeadline", New(base), get.WithContext(ctx)},
		{"post-empty", New(base), post},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				roundTripOK(b, c.rt, c.req)
			}
		})
	}
}

// benchCtxKey is the key of the values get-deepctx adds to its context.
type benchCtxKey int

// BenchmarkParallelScaling runs 32 goroutines calling one host through the
// default chain (over the stub of BenchmarkHappyPath), alternately on one
// core and on two (runtime.GOMAXPROCS), in blocks of the same number of
// calls. It reports ns/op on each and cpu2/cpu1, their ratio: 0.5 is
// perfect scaling, 1 none (a lock every call takes). On a machine whose
// cores other processes use too, the second core is not free and the
// ratio says little: cpu-ns/op on each (CPU time of the process per call)
// and cpu-cpu2/cpu1 tell the cost of sharing instead (1 when calls on two
// cores cost what they cost on one; more when they contend), and
// idle-cpu2/cpu1, half of it, is the ratio two free cores would give.
// It runs the default chain, the same WithMaxElapsed(0), and the bare stub.
func BenchmarkParallelScaling(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs 2 cores")
	}
	base := &stubOK{header: http.Header{"Content-Type": {"application/json"}}}
	b.Run("default", func(b *testing.B) { parallelScaling(b, New(base)) })
	b.Run("nodeadline", func(b *testing.B) { parallelScaling(b, New(base, WithMaxElapsed(0))) })
	b.Run("bare", func(b *testing.B) { parallelScaling(b, base) })
}

func parallelScaling(b *testing.B, tr http.RoundTripper) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	get, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/posts?limit=10", nil)
	const goroutines, block = 32, 64 // calls per goroutine per block
	run := func(procs int) (wall, cpu time.Duration) {
		runtime.GOMAXPROCS(procs)
		var wg sync.WaitGroup
		start, cpu0 := time.Now(), processCPU()
		for range goroutines {
			wg.Go(func() {
				for range block {
					roundTripOK(b, tr, get)
				}
			})
		}
		wg.Wait()
		return time.Since(start), processCPU() - cpu0
	}
	run(2) // warm up
	var one, two, oneCPU, twoCPU time.Duration
	calls := 0
	b.ResetTimer()
	for calls < b.N {
		w, c := run(1)
		one, oneCPU = one+w, oneCPU+c
		w, c = run(2)
		two, twoCPU = two+w, twoCPU+c
		calls += goroutines * block
	}
	b.StopTimer()
	n := float64(calls)
	b.ReportMetric(float64(one)/n, "cpu1-ns/op")
	b.ReportMetric(float64(two)/n, "cpu2-ns/op")
	b.ReportMetric(float64(two)/float64(one), "cpu2/cpu1")
	b.ReportMetric(float64(oneCPU)/n, "cpu1-cpu-ns/op")
	b.ReportMetric(float64(twoCPU)/n, "cpu2-cpu-ns/op")
	b.ReportMetric(float64(twoCPU)/float64(oneCPU), "cpu-cpu2/cpu1")
	b.ReportMetric(float64(twoCPU)/float64(oneCPU)/2, "idle-cpu2/cpu1")
}

// rewindBody is a response body that can be served again without
// allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// aidelly429 is a typical Aidelly error envelope of about 300 bytes.
var aidelly429 = `{"success":false,"error":{"code":"PUBLIC_API_RATE_LIMITED","message":"Rate limit exceeded: 60 read requests per rolling minute on this plan. Retry after the number of seconds in the Retry-After header."},"request_id":"7f3a9c1e-0b2d-4c5e-9f1a-2b3c4d5e6f70"}`

// BenchmarkClassify measures the classification of an error response in
// memory: peek of the body, envelope parsing, the decision and the
// APIError.
func BenchmarkClassify(b *testing.B) {
	data := []byte(aidelly429 + strings.Repeat(" ", max(0, 300-len(aidelly429))))
	header := http.Header{
		"Content-Type":          {"application/json; charset=utf-8"},
		"Retry-After":           {"30"},
		"X-Ratelimit-Limit":     {"60"},
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {"2026-02-17T14:00:00Z"},
	}
	body := &rewindBody{}
	resp := &http.Response{StatusCode: http.StatusTooManyRequests, Header: header}
	reset := func() {
		body.Reset(data)
		resp.Body, resp.ContentLength = body, int64(len(data))
	}
	check := func(b *testing.B, e *APIError) {
		if e.Code != "PUBLIC_API_RATE_LIMITED" || e.RequestID != "7f3a9c1e-0b2d-4c5e-9f1a-2b3c4d5e6f70" || !e.Retryable {
			b.Fatalf("APIError = %+v", e)
		}
	}
	b.Run("classifier", func(b *testing.B) {
		c := &classifier{codes: newCodeTable(nil), maxPeek: DefaultMaxPeek}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			reset()
			var st attemptState
			c.classify(&st, resp.Request, resp, nil, time.Now)
			check(b, st.apiErr)
		}
	})
	b.Run("ParseError", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			reset()
			check(b, ParseError(resp))
		}
	})
	b.Run("parseEnvelope", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			env, ok := parseEnvelope(data, false)
			if !ok || env.code == "" {
				b.Fatal("not parsed")
			}
		}
	})
}
