package redisquota_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
)

// TestHedgingOfAHostTheFleetDoesNotPace checks that a Transport on a Store
// hedges the slow calls of a host that announces no quota: the first
// attempt of a partition waits for the Store's first read of its state
// from Redis, which is no pace, and must not turn hedging off for the
// partition. The second call's attempt answers only once its copy came
// (or after 10s): with no copy, it has no hedge.
func TestHedgingOfAHostTheFleetDoesNotPace(t *testing.T) {
	store, _, _ := scriptStore(t)
	var mu sync.Mutex
	hits := 0
	copied := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		n := hits
		mu.Unlock()
		switch n {
		case 2: // the second call's attempt: the slow tail
			select {
			case <-copied:
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		case 3: // its copy
			close(copied)
		}
	}))
	defer srv.Close()
	tr := resilient.New(srv.Client().Transport, resilient.WithQuotaStore(store),
		resilient.WithHedging(resilient.Hedging{Delay: 20 * time.Millisecond}))
	client := &http.Client{Transport: tr}
	for i := range 2 {
		var r resilient.Report
		req, err := http.NewRequestWithContext(resilient.WithReport(context.Background(), &r), "GET", srv.URL+"/v1/items", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if i == 1 && r.Hedges != 1 {
			t.Errorf("the slow call had %d hedges, want 1: the fleet paces no quota of the host", r.Hedges)
		}
	}
}
