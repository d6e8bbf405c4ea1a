package bench

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// The slow-tail workload of hedge_test.go in fake time: the same 32
// callers and 12,800 calls, over in-memory connections in a
// testing/synctest bubble, where an answer takes exactly what the server
// says and the machine's load adds nothing. Its figures do not depend on
// the machine, so the targets are asserted. A second server spreads the
// fast answers as a busy machine does (5 ms plus an exponential wait of
// mean 1.5 ms: p95 9.5 ms, p99 12 ms), which shows what the spread costs.

// tailSpread is the mean of the exponential wait tailHandler adds to the
// fast answers.
const tailSpread = 1500 * time.Microsecond

// tailHandler answers 200 after hedgeSlowTime for a share hedgeSlowShare
// of requests, drawn from a seeded source, and else after hedgeFastTime
// plus an exponential wait of mean spread; it stops waiting when the
// client goes away.
func tailHandler(spread time.Duration) http.HandlerFunc {
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, 4))
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := hedgeFastTime + time.Duration(rnd.ExpFloat64()*float64(spread))
		if rnd.Float64() < hedgeSlowShare {
			d = hedgeSlowTime
		}
		mu.Unlock()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
			writeJSON(w, http.StatusOK, okBody)
		case <-r.Context().Done():
		}
	}
}

// TestHedgeTailFakeTime: the slow tail in fake time. Targets, asserted on
// the server of exact latencies: with adaptive hedging, p99.9 improves at
// least 10 times with at most 3% extra attempts.
func TestHedgeTailFakeTime(t *testing.T) {
	for _, srvCase := range []struct {
		name    string
		opts    func() []resilienttest.Option
		targets bool
	}{
		{"exact", tailServerOptions, true},
		{"spread", func() []resilienttest.Option {
			return []resilienttest.Option{resilienttest.WithHandler(tailHandler(tailSpread))}
		}, false},
	} {
		t.Run(srvCase.name, func(t *testing.T) {
			res := make(map[string]hedgeResult)
			for _, p := range []hedgePeer{hedgeNone, hedgeAdaptive, hedgeFixed} {
				t.Run(p.name, func(t *testing.T) {
					var r hedgeResult
					synctest.Test(t, func(t *testing.T) {
						srv := resilienttest.NewPipeServer(resilienttest.Altyaa, srvCase.opts()...)
						defer srv.Close()
						tr := srv.Transport()
						tr.MaxIdleConnsPerHost = 2 * hedgeCallers
						r = runTail(srv, tr, p, hedgeTailCalls)
					})
					res[p.name] = r
					t.Log(r)
					checkHedges(t, p, r)
				})
			}
			logTailRatios(t, res)
			none, adaptive := res[hedgeNone.name], res[hedgeAdaptive.name]
			if !srvCase.targets || none.calls == 0 || adaptive.calls == 0 {
				return
			}
			if ratio := float64(none.p(99.9)) / float64(adaptive.p(99.9)); ratio < 10 {
				t.Errorf("adaptive hedging: p99.9 %v against %v without, %.1f×; want at least 10×", adaptive.p(99.9), none.p(99.9), ratio)
			}
			if adaptive.extra() > 0.03 {
				t.Errorf("adaptive hedging: %.2f%% extra attempts, want at most 3%%", 100*adaptive.extra())
			}
		})
	}
}
