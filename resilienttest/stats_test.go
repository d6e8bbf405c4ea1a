package resilienttest

import (
	"fmt"
	"sync"
	"testing"
)

// TestStatsConcurrent proves under -race that the counters stay exact when
// many clients hit the server at once, while others read Stats.
func TestStatsConcurrent(t *testing.T) {
	const workers, perWorker = 8, 40
	s := NewServer(Aidelly, WithFaults(Faults{Seed: 5, ServerError: 0.2, RateLimit: 0.1}))
	defer s.Close()

	var (
		mu                     sync.Mutex
		created, fails, got429 int
		wg                     sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				var r result
				if i%2 == 0 {
					r = send(t, s, "POST", "/v1/posts", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), fmt.Sprintf("k-%d-%d", w, i))
				} else {
					r = send(t, s, "GET", "/v1/posts", "", "")
				}
				_ = s.Stats()
				mu.Lock()
				switch {
				case r.err != nil:
					t.Error(r.err)
				case r.status == 201:
					created++
				case r.status == 429:
					got429++
				case r.status >= 500:
					fails++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	st := s.Stats()
	total := 0
	for _, n := range st.Attempts {
		total += n
	}
	if st.Requests != workers*perWorker || total != st.Requests {
		t.Errorf("Requests = %d, attempts sum to %d; want %d", st.Requests, total, workers*perWorker)
	}
	if st.Attempts[RouteCreatePost] != workers*perWorker/2 {
		t.Errorf("create attempts = %d, want %d", st.Attempts[RouteCreatePost], workers*perWorker/2)
	}
	if st.StoredWrites != created || st.ServerErrors != fails || st.RateLimited != got429 || st.Duplicates != 0 {
		t.Errorf("stats %+v; clients saw %d created, %d 5xx, %d 429", st, created, fails, got429)
	}
	if st.Injected != fails+got429 {
		t.Errorf("Injected = %d, want %d", st.Injected, fails+got429)
	}
	if st.Connections < 1 || st.Connections > workers*perWorker {
		t.Errorf("Connections = %d", st.Connections)
	}
}

func TestStatsSnapshotAndReset(t *testing.T) {
	s := NewServer(Postato)
	defer s.Close()
	send(t, s, "GET", "/v1/usage", "", "")
	snap := s.Stats()
	snap.Attempts[RouteUsage] = 99 // a snapshot shares nothing with the server
	if got := s.Stats().Attempts[RouteUsage]; got != 1 {
		t.Fatalf("Attempts[usage] = %d after editing a snapshot, want 1", got)
	}
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"a":1}`, "k"), 201)
	s.Reset()
	st := s.Stats()
	if st.Requests != 0 || len(st.Attempts) != 0 || st.StoredWrites != 0 || st.Connections != 0 {
		t.Fatalf("after Reset: %+v", st)
	}
	// The store survives Reset: the same key replays.
	mustStatus(t, send(t, s, "POST", "/v1/posts", `{"a":1}`, "k"), 201)
	if st := s.Stats(); st.Replays != 1 || st.StoredWrites != 0 || st.Requests != 1 {
		t.Fatalf("after Reset and a replay: %+v", st)
	}
}
