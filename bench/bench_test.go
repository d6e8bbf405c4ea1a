package bench

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// This file holds the six workloads of README.md. Each reports ns/op, B/op
// and allocs/op, and its own figures with ReportMetric. They stay correct
// under -benchtime=1x: every figure is computed from whatever b.N was.

const apiPath = "/v1/posts/1"

// BenchmarkHappyStub is workload 1: a GET answered 200 by a stub
// RoundTripper, without I/O, so that ns/op and allocs/op are the library's
// own cost plus http.Client's. Every configuration other than bare also
// reports added-ns/op and added-allocs/op: its cost minus that of a bare
// http.Client over the same stub, measured in the same sub-benchmark right
// after it, with the timer stopped.
func BenchmarkHappyStub(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			stub := newStubTransport()
			do := p.build(stub, defaultWaits)
			req, err := http.NewRequest(http.MethodGet, "http://api.example.test"+apiPath, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mallocs := ms.Mallocs
			b.ResetTimer()
			for range b.N {
				if err := happyCall(do, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms)
			if p.name == nameBare {
				return
			}
			n := float64(b.N)
			own := cost{ns: float64(b.Elapsed().Nanoseconds()) / n, allocs: float64(ms.Mallocs-mallocs) / n}
			ref, err := loopCost(bare(stub, defaultWaits), req, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(own.ns-ref.ns, "added-ns/op")
			b.ReportMetric(own.allocs-ref.allocs, "added-allocs/op")
		})
	}
}

// cost is the time and the allocations of one call.
type cost struct{ ns, allocs float64 }

// loopCost measures n happy calls of do.
func loopCost(do doer, req *http.Request, n int) (cost, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	start := time.Now()
	for range n {
		if err := happyCall(do, req); err != nil {
			return cost{}, err
		}
	}
	d := time.Since(start)
	runtime.ReadMemStats(&ms)
	return cost{ns: float64(d.Nanoseconds()) / float64(n), allocs: float64(ms.Mallocs-mallocs) / float64(n)}, nil
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
// server, from parallel callers (b.RunParallel). It reports req/s; our
// configurations also report x-bare, their throughput divided by that of a
// bare http.Client measured right after, in the same sub-benchmark, over the
// same server with a transport of its own.
func BenchmarkHappyLoopback(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(okHandler)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, defaultWaits)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(happyWorker(b, do, srv.URL))
			b.StopTimer()
			own := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(own, "req/s")
			if p.name != nameOurs && p.name != nameOursNoBreaker {
				return
			}
			ref := newTransport()
			defer ref.CloseIdleConnections()
			start := time.Now()
			b.RunParallel(happyWorker(b, bare(ref, defaultWaits), srv.URL))
			b.ReportMetric(own/(float64(b.N)/time.Since(start).Seconds()), "x-bare")
		})
	}
}

// happyWorker returns the body of a parallel happy-path loop.
func happyWorker(b *testing.B, do doer, url string) func(*testing.PB) {
	return func(pb *testing.PB) {
		req, err := http.NewRequest(http.MethodGet, url+apiPath, nil)
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
// without waits, and without breakers (half of all attempts fail by
// design). It reports the connections the server saw opened per 100 calls
// (conns/100calls): a library that retries past a response without reading
// and closing it loses its connection each time. It also reports
// attempts/call and success-%.
func BenchmarkOneRetry(b *testing.B) {
	for _, p := range peers(retryingWithoutBreaker) {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(oneRetryHandler())
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, noWaits)
			var ids callCounter
			ok := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if call(do, http.MethodGet, srv.URL+apiPath, nil, ids.next()).ok() {
					ok++
				}
			}
			b.StopTimer()
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
// get a 503. One caller, defaults but the retry budget and the waits (as in
// BenchmarkOutage). It reports the share of calls that succeed (success-%)
// and attempts/call.
func BenchmarkFlaky(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			srv := newServer(flakyHandler(flakyShare))
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, scaledWaits)
			var ids callCounter
			ok := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if call(do, http.MethodGet, srv.URL+apiPath, nil, ids.next()).ok() {
					ok++
				}
			}
			b.StopTimer()
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
// by which the server deduplicates. One caller, defaults but the retry
// budget and the waits. It reports duplicate writes per 1,000 calls
// (dups/1000calls), success-% and attempts/call.
func BenchmarkWriteFault(b *testing.B) {
	for _, p := range allPeers {
		b.Run(p.name, func(b *testing.B) {
			store := newWriteStore(flakyShare)
			srv := newServer(store.ServeHTTP)
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr, scaledWaits)
			var ids callCounter
			ok := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if call(do, http.MethodPost, srv.URL+"/v1/posts", writeBody, ids.next()).ok() {
					ok++
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(1000*float64(store.duplicates())/n, "dups/1000calls")
			b.ReportMetric(100*float64(ok)/n, "success-%")
			b.ReportMetric(float64(srv.attempts.Load())/n, "attempts/call")
		})
	}
}
