package resilient

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingAdaptiveDelayFloor checks that an adaptive hedging delay is
// 2ms at least (Hedging.Delay): a host whose answers all came at once does
// not get a copy of a call it answers in 1ms.
func TestHedgingAdaptiveDelayFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &latencyRT{latency: func(i int) time.Duration {
			if i == minHedgeSamples {
				return time.Millisecond
			}
			return 0
		}}
		tr := New(rt, WithHedging(Hedging{}))
		for range minHedgeSamples {
			resp, err := roundTrip(t, tr, newRequest(t, context.Background(), http.MethodGet, "http://api.test/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		var r Report
		resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		synctest.Wait()
		if r.Hedges != 0 || rt.count() != minHedgeSamples+1 {
			t.Errorf("a call answered in 1ms got %d copies (%d requests); want none: the delay is 2ms at least", r.Hedges, rt.count())
		}
	})
}
