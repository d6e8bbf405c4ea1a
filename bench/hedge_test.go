package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// The hedging workload (issue 14): 32 callers over loopback, in real time,
// each making its calls one after the other, against a server with a slow
// tail, a server that slows down as a whole, and a server that stores
// writes by key. Latencies are wall-clock figures of a shared machine: the
// tests log them; they assert only what does not depend on the machine's
// speed (the hedges a host's allowance pays for, duplicates) and one ratio
// with a wide margin.

const (
	hedgeCallers    = 32
	hedgeFastTime   = 5 * time.Millisecond
	hedgeSlowTime   = 500 * time.Millisecond // the slow tail
	hedgeSlowShare  = 0.02
	hedgeSlowedTime = 50 * time.Millisecond // after the uniform slowdown
	hedgeFixedDelay = 10 * time.Millisecond
)

// A hedgePeer is a client of the hedging workload.
type hedgePeer struct {
	name  string
	ours  bool // our Transport with hedging: the allowance bounds its copies
	build func(base http.RoundTripper) doer
}

var hedgePeers = []hedgePeer{
	{name: "resilient, no hedging", build: func(base http.RoundTripper) doer {
		return clientDo(resilient.New(base))
	}},
	{name: "resilient, Hedging{} (adaptive)", ours: true, build: func(base http.RoundTripper) doer {
		return clientDo(resilient.New(base, resilient.WithHedging(resilient.Hedging{})))
	}},
	{name: "resilient, Hedging{Delay: 10ms}", ours: true, build: func(base http.RoundTripper) doer {
		return clientDo(resilient.New(base, resilient.WithHedging(resilient.Hedging{Delay: hedgeFixedDelay})))
	}},
	{name: "failsafe-go hedgepolicy, 10ms", build: func(base http.RoundTripper) doer {
		return clientDo(failsafehttp.NewRoundTripper(base, hedgepolicy.NewWithDelay[*http.Response](hedgeFixedDelay)))
	}},
}

// hedgeResult is what one client did against one server.
type hedgeResult struct {
	calls, ok, attempts int
	lat                 []time.Duration // per call, sorted by percentile
	late                hedgePhase      // the calls after the slowdown, if any
}

// hedgePhase counts the calls and server attempts of part of a run.
type hedgePhase struct{ calls, attempts int }

func (r hedgeResult) extra() float64 { return float64(r.attempts-r.calls) / float64(r.calls) }

func (r hedgeResult) String() string {
	return fmt.Sprintf("%d calls, %d ok, p50 %v, p99 %v, p99.9 %v, max %v, %.2f%% extra attempts",
		r.calls, r.ok, ms(percentile(r.lat, 50)), ms(percentile(r.lat, 99)), ms(percentile(r.lat, 99.9)),
		ms(percentile(r.lat, 100)), 100*r.extra())
}

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// runCallers makes perCaller calls from each of hedgeCallers goroutines,
// one after the other, numbering the calls from 0 in the order they start;
// before(i) runs before call i starts. It returns the outcomes.
func runCallers(perCaller int, before func(i int), fn func(i int) outcome) []outcome {
	outs := make([]outcome, hedgeCallers*perCaller)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range hedgeCallers {
		wg.Go(func() {
			for range perCaller {
				i := int(next.Add(1) - 1)
				if before != nil {
					before(i)
				}
				outs[i] = fn(i)
			}
		})
	}
	wg.Wait()
	return outs
}

func hedgeTally(outs []outcome, attempts int) hedgeResult {
	r := hedgeResult{calls: len(outs), attempts: attempts}
	for _, o := range outs {
		if o.ok() {
			r.ok++
		}
		r.lat = append(r.lat, o.latency)
	}
	return r
}

// hedgeTailCalls is the number of calls per caller against the slow-tail
// server: 6,400 calls in all, so that p99.9 is the 7th slowest.
const hedgeTailCalls = 200

// TestHedgeTail: 2% of answers take 500 ms, the others 5 ms. Target: p99.9
// improves at least 10 times, with at most 3% extra attempts.
func TestHedgeTail(t *testing.T) {
	res := make(map[string]hedgeResult)
	for _, p := range hedgePeers {
		t.Run(p.name, func(t *testing.T) {
			srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithLatency(hedgeFastTime),
				resilienttest.WithFaults(resilienttest.Faults{Seed: seed, Slow: hedgeSlowShare, SlowDelay: hedgeSlowTime - hedgeFastTime}))
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr)
			u := srv.URL + "/v1/posts"
			outs := runCallers(hedgeTailCalls, nil, func(i int) outcome {
				return call(do, http.MethodGet, u, nil, strconv.Itoa(i))
			})
			r := hedgeTally(outs, srv.Stats().Requests)
			res[p.name] = r
			t.Log(r)
			if r.ok != r.calls {
				t.Errorf("%d of %d calls failed", r.calls-r.ok, r.calls)
			}
			if p.ours {
				checkAllowance(t, r)
			}
		})
	}
	none, adaptive := res[hedgePeers[0].name], res[hedgePeers[1].name]
	if none.calls == 0 || adaptive.calls == 0 {
		return
	}
	p0, p1 := percentile(none.lat, 99.9), percentile(adaptive.lat, 99.9)
	t.Logf("p99.9 without hedging / with adaptive hedging: %.1f× (target 10×)", float64(p0)/float64(p1))
	// By construction the unhedged p99.9 is a slow answer; a hedge that
	// works answers in a fraction of it. Asserted with a wide margin only.
	if p0 < hedgeSlowTime {
		t.Errorf("p99.9 without hedging %v, want at least the slow answer's %v", p0, hedgeSlowTime)
	}
	if p1 > p0/2 {
		t.Errorf("p99.9 with adaptive hedging %v, want at most half of %v without", p1, p0)
	}
}

// checkAllowance asserts the bound our Transport sets on hedges, whatever
// the machine's speed: a host's copies are at most one in twenty of its
// calls, plus one. The server sees no attempt beyond them: it never fails.
func checkAllowance(t *testing.T, r hedgeResult) {
	t.Helper()
	if max := r.calls/20 + 1; r.attempts-r.calls > max {
		t.Errorf("%d extra attempts for %d calls, want at most %d (5%% + 1)", r.attempts-r.calls, r.calls, max)
	}
}

// hedgeSlowdownCalls is the number of calls per caller against the server
// that slows down: 3,200 in all, the second half at 50 ms.
const hedgeSlowdownCalls = 100

// TestHedgeSlowdown: every answer takes 5 ms, then, from the middle of the
// run on, 50 ms. Target: at most 5% extra attempts; a fixed-delay hedger
// doubles the load after the slowdown.
func TestHedgeSlowdown(t *testing.T) {
	for _, p := range hedgePeers {
		t.Run(p.name, func(t *testing.T) {
			var delay atomic.Int64
			delay.Store(int64(hedgeFastTime))
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				timer := time.NewTimer(time.Duration(delay.Load()))
				defer timer.Stop()
				select {
				case <-timer.C:
					writeJSON(w, http.StatusOK, okBody)
				case <-r.Context().Done():
				}
			})
			srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithHandler(h))
			defer srv.Close()
			tr := newTransport()
			defer tr.CloseIdleConnections()
			do := p.build(tr)
			u := srv.URL + "/v1/posts"
			total := hedgeCallers * hedgeSlowdownCalls
			var atSwitch int
			outs := runCallers(hedgeSlowdownCalls, func(i int) {
				if i == total/2 {
					atSwitch = srv.Stats().Requests
					delay.Store(int64(hedgeSlowedTime))
				}
			}, func(i int) outcome {
				return call(do, http.MethodGet, u, nil, strconv.Itoa(i))
			})
			r := hedgeTally(outs, srv.Stats().Requests)
			r.late = hedgePhase{calls: total - total/2, attempts: r.attempts - atSwitch}
			t.Logf("%v; after the slowdown: %.2f%% extra", r, 100*(float64(r.late.attempts)/float64(r.late.calls)-1))
			if r.ok != r.calls {
				t.Errorf("%d of %d calls failed", r.calls-r.ok, r.calls)
			}
			if p.ours {
				checkAllowance(t, r)
			}
		})
	}
}

// hedgeWriteCalls is the number of POSTs per caller in TestHedgeWrites.
const hedgeWriteCalls = 100

// TestHedgeWrites: POSTs with keys, hedged, to a host named with
// WithKeyHonoringHosts, through the slow-tail server, which stores writes
// by key (and refuses a copy whose key is still being processed with a
// 409). Target: no duplicate.
func TestHedgeWrites(t *testing.T) {
	srv := resilienttest.NewServer(resilienttest.Altyaa, resilienttest.WithLatency(hedgeFastTime),
		resilienttest.WithFaults(resilienttest.Faults{Seed: seed, Slow: hedgeSlowShare, SlowDelay: hedgeSlowTime - hedgeFastTime}))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport()
	defer tr.CloseIdleConnections()
	rt := resilient.New(tr, resilient.WithKeyHonoringHosts(u.Host), resilient.WithHedging(resilient.Hedging{}))
	var hedges atomic.Int64
	outs := runCallers(hedgeWriteCalls, nil, func(i int) outcome {
		var rep resilient.Report
		o := post(rt, srv.URL+"/v1/posts", i, &rep)
		hedges.Add(int64(rep.Hedges))
		return o
	})
	st := srv.Stats()
	r := hedgeTally(outs, st.Requests)
	t.Logf("%v; %d hedges sent; server: %d stored, %d duplicates, %d replays, %d refused in flight (409)",
		r, hedges.Load(), st.StoredWrites, st.Duplicates, st.Replays, st.InFlightConflicts)
	if st.Duplicates != 0 {
		t.Errorf("%d duplicate writes, want 0", st.Duplicates)
	}
	if r.ok != r.calls || st.StoredWrites != r.calls {
		t.Errorf("%d of %d calls succeeded, %d writes stored; want all, once each", r.ok, r.calls, st.StoredWrites)
	}
	if hedges.Load() == 0 {
		t.Error("no write was hedged")
	}
}

// post sends write number i (a body of its own) through rt with a Report.
func post(rt http.RoundTripper, u string, i int, rep *resilient.Report) outcome {
	ctx, cancel := context.WithCancel(resilient.WithReport(context.Background(), rep))
	defer cancel()
	body := []byte(`{"text":"hedged write ` + strconv.Itoa(i) + `"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := (&http.Client{Transport: rt}).Do(req)
	o := outcome{err: err}
	if resp != nil {
		_, o.err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.status = resp.StatusCode
	}
	o.latency = time.Since(start)
	return o
}
