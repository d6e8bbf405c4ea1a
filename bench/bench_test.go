package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the seven workloads of README.md. Each reports ns/op, B/op
// and allocs/op, and its own figures with ReportMetric. They stay correct
// under -benchtime=1x: every figure is computed from whatever b.N was.

const apiPath = "/v1/posts/1"

// BenchmarkHappyStub is workload 1: a GET answered 200 by a stub
// RoundTripper, without I/O, so that ns/op and allocs/op are the library's
// own cost plus http.Client's. Every configuration other than bare also
// reports added-ns/op and added-allocs/op: its cost minus that of a bare
// http.Client over the same stub. The time of the bare client is measured
// in blocks of stubBlock calls that alternate with the library's own blocks
// (with the timer stopped), so that the drift of a shared machine hits both
// alike; the allocations are counted with testing.AllocsPerRun.
func BenchmarkHappyStub(b *testing.B) {
	for _, p := range happyPeers {
		b.Run(p.name, func(b *testing.B) {
			stub := newStubTransport()
			do := p.build(stub, defaultWaits)
			ref := bare(stub, defaultWaits)
			ctx, cancel := p.callerContext()
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.example.test"+apiPath, nil)
			if err != nil {
				b.Fatal(err)
			}
			compare := p.name != nameBare
			var own, base time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(stubBlock, b.N-done)
				d, err := timeCalls(do, req, k)
				if err != nil {
					b.Fatal(err)
				}
				own += d
				if compare {
					b.StopTimer()
					d, err := timeCalls(ref, req, k)
					if err != nil {
						b.Fatal(err)
					}
					base += d
					b.StartTimer()
				}
				done += k
			}
			b.StopTimer()
			if !compare {
				return
			}
			n := float64(b.N)
			b.ReportMetric(float64(own-base)/n, "added-ns/op")
			b.ReportMetric(allocsPerCall(do, req)-allocsPerCall(ref, req), "added-allocs/op")
		})
	}
}

// stubBlock is how many calls of a library alternate with as many calls of
// the bare client in BenchmarkHappyStub.
const stubBlock = 256

// timeCalls returns the time that n happy calls of do take.
func timeCalls(do doer, req *http.Request, n int) (time.Duration, error) {
	start := time.Now()
	for range n {
		if err := happyCall(do, req); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// allocsPerCall returns the average number of allocations of a happy call.
func allocsPerCall(do doer, req *http.Request) float64 {
	return testing.AllocsPerRun(1000, func() { happyCall(do, req) })
}

// happyCall sends req with do and reads the answer to its end; it fails
// unless the answer is a 200.
func happyCall(do doer, req *http.Request) error {
	resp, err := do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	return nil
}

// BenchmarkHappyLoopback is workload 2: GETs answered 200 by a loopback
// server, from loopCallers parallel callers (b.RunParallel). It reports
// req/s. Every configuration other than bare also reports x-bare, its
// throughput divided by that of a bare http.Client with a transport of its
// own, over the same server. x-bare is measured after the timed run, with
// as many calls again for each side, in bursts of loopBurst calls that
// alternate between the two, so that the drift of a shared machine hits
// both alike.
func BenchmarkHappyLoopback(b *testing.B) {
	for _, p := range happyPeers {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(okHandler)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, defaultWaits)
			ctx, cancel := p.callerContext()
			defer cancel()
			b.ReportAllocs()
			b.SetParallelism(max(1, loopCallers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(happyWorker(ctx, b, do, srv.URL))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			if p.name == nameBare {
				return
			}
			rtr := newTransport()
			defer rtr.CloseIdleConnections()
			ref := bare(rtr, defaultWaits)
			// Warm both up: connections are open before the bursts count.
			for _, d := range []doer{do, ref} {
				if _, err := burst(ctx, d, srv.URL, loopCallers); err != nil {
					b.Fatal(err)
				}
			}
			var own, base time.Duration
			for done := 0; done < b.N; {
				k := min(loopBurst, b.N-done)
				d, err := burst(ctx, do, srv.URL, k)
				if err != nil {
					b.Fatal(err)
				}
				own += d
				if d, err = burst(ctx, ref, srv.URL, k); err != nil {
					b.Fatal(err)
				}
				base += d
				done += k
			}
			b.ReportMetric(float64(base)/float64(own), "x-bare")
		})
	}
}

// loopBurst is how many calls of a library alternate with as many calls of
// the bare client when BenchmarkHappyLoopback measures x-bare.
const loopBurst = 256

// loopCallers is the number of goroutines that call at once in
// BenchmarkHappyLoopback (rounded down to a multiple of GOMAXPROCS in its
// timed run).
const loopCallers = 32

// burst makes n happy calls with do from loopCallers goroutines, with
// requests of context ctx, and returns the time they took.
func burst(ctx context.Context, do doer, url string, n int) (time.Duration, error) {
	workers := loopCallers
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+apiPath, nil)
			if err != nil {
				errs[w] = err
				return
			}
			for next.Add(1) <= int64(n) {
				if err := happyCall(do, req); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), errors.Join(errs...)
}

// happyWorker returns the body of a parallel happy-path loop, whose
// requests have context ctx.
func happyWorker(ctx context.Context, b *testing.B, do doer, url string) func(*testing.PB) {
	return func(pb *testing.PB) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+apiPath, nil)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := happyCall(do, req); err != nil {
				b.Error(err)
				return
			}
		}
	}
}

// BenchmarkOneRetry is workload 3: every call gets a 503 and then a 200,
// without waits, without breakers and without our retry budget (half of
// all attempts fail by design). It reports the connections the server saw opened per 100 calls
// (conns/100calls): a library that retries past a response without reading
// and closing it loses its connection each time. It also reports
// attempts/call and success-%.
func BenchmarkOneRetry(b *testing.B) {
	for _, p := range peers(retryingWithoutBreaker) {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(oneRetryHandler())
			defer srv.Close()
			ok := sequentialCalls(b, p, srv, noWaits, http.MethodGet, apiPath, nil)
			n := float64(b.N)
			b.ReportMetric(100*float64(srv.conns.Load())/n, "conns/100calls")
			b.ReportMetric(float64(srv.attempts.Load())/n, "attempts/call")
			b.ReportMetric(100*float64(ok)/n, "success-%")
		})
	}
}

// The outage workload's episode: outageCallers goroutines that make
// outageCallsEach calls each, against a server that has just gone down.
const (
	outageCallers   = 64
	outageCallsEach = 10
)

// BenchmarkOutage is workload 4: the server answers 503 to everything.
// Each iteration is an episode of 64 concurrent callers making 10 calls
// each through a newly built client (breakers start closed), with every
// library's defaults but the retry budget (5 retries for all) and the
// waits, scaled down to 1ms base and 10ms cap for all. It reports the
// server attempts per logical call (attempts/call: a plain 5-retry client
// makes 6) and the 99th percentile of the time until a caller gets its
// answer (p99-ms); ns/op is the time of one episode of 640 calls.
func BenchmarkOutage(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(outageHandler)
			defer srv.Close()
			var ids callCounter
			lat := make([]time.Duration, 0, b.N*outageCallers*outageCallsEach)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				lat = append(lat, outageEpisode(p, srv.URL, &ids)...)
			}
			b.StopTimer()
			b.ReportMetric(float64(srv.attempts.Load())/float64(len(lat)), "attempts/call")
			b.ReportMetric(float64(percentile(lat, 99))/float64(time.Millisecond), "p99-ms")
		})
	}
}

// outageEpisode runs one episode of the outage workload with a new client
// of p, and returns the latency of each call.
func outageEpisode(p peer, url string, ids *callCounter) []time.Duration {
	tr := newTransport()
	defer tr.CloseIdleConnections()
	do := p.build(tr, scaledWaits)
	lat := make([]time.Duration, outageCallers*outageCallsEach)
	var wg sync.WaitGroup
	for g := range outageCallers {
		wg.Go(func() {
			for i := range outageCallsEach {
				lat[g*outageCallsEach+i] = call(do, http.MethodGet, url+apiPath, nil, ids.next()).latency
			}
		})
	}
	wg.Wait()
	return lat
}

// flakyShare is the share of attempts that fail in workload 5, and of first
// attempts whose answer is lost in workload 6.
const flakyShare = 0.2

// BenchmarkFlaky is workload 5: 20% of attempts, drawn from a seeded source,
// get a 503. One caller, defaults but the 5 retries and the waits (as in
// BenchmarkOutage), our retry budget off (see waits.noBudget). It reports the share of calls that succeed (success-%)
// and attempts/call.
func BenchmarkFlaky(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(flakyHandler(flakyShare))
			defer srv.Close()
			ok := sequentialCalls(b, p, srv, scaledWaitsNoBudget, http.MethodGet, apiPath, nil)
			n := float64(b.N)
			b.ReportMetric(100*float64(ok)/n, "success-%")
			b.ReportMetric(float64(srv.attempts.Load())/n, "attempts/call")
		})
	}
}

// BenchmarkWriteFault is workload 6: POSTs with a JSON body to a server that
// stores each write and then, on 20% of first attempts (seeded), drops the
// connection without answering. The caller sets no idempotency key: a
// library that retries such a write stores it twice unless it sends a key,
// by which the server deduplicates. One caller, defaults but the 5
// retries and the waits, our retry budget off. It reports duplicate writes per 1,000 calls
// (dups/1000calls), success-% and attempts/call. One more row than the
// other workloads: ours told that the server deduplicates by key
// (resilient-keyhosts), which resends the writes whose answers were lost.
func BenchmarkWriteFault(b *testing.B) {
	keyHosts := peer{name: nameOursKeyHosts, breaker: true, build: oursKeyHosts}
	for _, p := range append(allPeers[:3:3], append([]peer{keyHosts}, allPeers[3:]...)...) {
		b.Run(p.name, func(b *testing.B) {
			store := newWriteStore(flakyShare)
			srv := newServer(store.ServeHTTP)
			defer srv.Close()
			ok := sequentialCalls(b, p, srv, scaledWaitsNoBudget, http.MethodPost, "/v1/posts", writeBody)
			n := float64(b.N)
			b.ReportMetric(1000*float64(store.duplicates())/n, "dups/1000calls")
			b.ReportMetric(100*float64(ok)/n, "success-%")
			b.ReportMetric(float64(srv.attempts.Load())/n, "attempts/call")
		})
	}
}

// sequentialCalls makes b.N calls, one after the other, through the library
// p builds over a transport of its own, and returns how many succeeded. The
// timer runs only while the calls are made.
func sequentialCalls(b *testing.B, p peer, srv *server, w waits, method, path string, body []byte) (ok int) {
	tr := newTransport()
	defer tr.CloseIdleConnections()
	do := p.build(tr, w)
	var ids callCounter
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if call(do, method, srv.URL+path, body, ids.next()).ok() {
			ok++
		}
	}
	b.StopTimer()
	return ok
}

// BenchmarkUpload is workload 7: a POST of a 1 MiB body that has no
// GetBody and cannot seek (its Content-Length known), answered 200 by a
// stub RoundTripper that reads the body to its end, without I/O. A library
// that may resend the body must keep a copy of it as it goes (or read it
// all first); one that never resends it needs none. Each configuration but
// bare reports x-bare: its time divided by a bare http.Client's over the
// same stub, measured in blocks of uploadBlock calls that alternate
// between the two.
func BenchmarkUpload(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), uploadSize/16)
	stub := &uploadStub{buf: make([]byte, 32<<10)}
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			do := p.build(stub, defaultWaits)
			ref := bare(stub, defaultWaits)
			compare := p.name != nameBare
			var own, base time.Duration
			b.SetBytes(uploadSize)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				k := min(uploadBlock, b.N-done)
				d, err := timeUploads(do, data, k)
				if err != nil {
					b.Fatal(err)
				}
				own += d
				if compare {
					b.StopTimer()
					if d, err = timeUploads(ref, data, k); err != nil {
						b.Fatal(err)
					}
					base += d
					b.StartTimer()
				}
				done += k
			}
			b.StopTimer()
			if compare {
				b.ReportMetric(float64(own)/float64(base), "x-bare")
			}
		})
	}
}

// uploadSize is the body of BenchmarkUpload; uploadBlock how many of its
// calls alternate with as many of the bare client's.
const (
	uploadSize  = 1 << 20
	uploadBlock = 16
)

// timeUploads returns the time that n uploads of data with do take.
func timeUploads(do doer, data []byte, n int) (time.Duration, error) {
	start := time.Now()
	for range n {
		req, err := http.NewRequest(http.MethodPost, "http://api.example.test/v1/files", nil)
		if err != nil {
			return 0, err
		}
		// A body without GetBody that cannot seek, as from a pipe, its
		// length known. (An *os.File can seek: go-retryablehttp and
		// failsafe-go rewind such a body instead of copying it.)
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.ContentLength = int64(len(data))
		if err := happyCall(do, req); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// uploadStub reads each request's body to its end through a buffer of
// its own, as a transport copies it to its connection, and answers 200. It
// is for one goroutine at a time.
type uploadStub struct {
	buf  []byte
	read int64 // bytes of body read by the last call
}

func (s *uploadStub) RoundTrip(req *http.Request) (*http.Response, error) {
	s.read = 0
	if req.Body != nil {
		for {
			n, err := req.Body.Read(s.buf)
			s.read += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				req.Body.Close()
				return nil, err
			}
		}
		req.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: &stubBody{data: okBody}, ContentLength: int64(len(okBody)), Request: req,
	}, nil
}
