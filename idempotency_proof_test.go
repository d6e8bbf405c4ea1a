package resilient_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// writeFaults fails 30% of first attempts of a write, 10% each: stored and
// then the connection dropped without an answer; stored and then a 500
// PUBLIC_API_POST_CREATE_FAILED; a 5xx before storing.
var writeFaults = resilienttest.Faults{
	Seed:              20261124,
	DropAfter:         0.10,
	ServerErrorAfter:  0.10,
	ServerError:       0.10,
	FirstAttemptsOnly: true,
}

// postMany makes n logical POSTs of distinct payloads from 16 goroutines
// and returns how many ended in 201.
func postMany(t *testing.T, client *http.Client, url string, n int) (created int) {
	t.Helper()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf(`{"content":"post %d","platforms":["instagram"]}`, i)
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/posts", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return created
}

// TestIdempotencyProof: with automatic keys, 1,000 POSTs through faults
// that fail 30% of first attempts, a third of them after the write was
// stored, all succeed and the server stores each write exactly once, to a
// host that deduplicates by key, named with WithKeyHonoringHosts or learned
// from its envelopes.
func TestIdempotencyProof(t *testing.T) {
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	for _, tc := range []struct {
		name    string
		d       resilienttest.Dialect
		faults  resilienttest.Faults
		named   bool
		wantAll bool
	}{
		// Drops give no answer to learn from: the host is named.
		{"postato named", resilienttest.Postato, writeFaults, true, true},
		// Every failure answers with an Aidelly envelope: learned at once.
		{"aidelly learned", resilienttest.Aidelly, resilienttest.Faults{
			Seed: 20261129, ServerErrorAfter: 0.15, ServerError: 0.15, FirstAttemptsOnly: true}, false, true},
		// Postato's 5xx envelope has the shape many APIs share and no code
		// of its table: nothing is learned, and a failed write is
		// returned, never resent (name the host to have it resent).
		{"postato not named", resilienttest.Postato, writeFaults, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := resilienttest.NewServer(tc.d, resilienttest.WithFaults(tc.faults))
			defer srv.Close()
			// 30% of first attempts fail on purpose, more than the default
			// retry budget pays for (a fifth of a retry per success): the
			// proof is about writes, so the budget is off.
			opts := []resilient.Option{resilient.WithBackoff(time.Millisecond, 10*time.Millisecond), resilient.WithoutRetryBudget()}
			if tc.named {
				opts = append(opts, resilient.WithKeyHonoringHosts(strings.TrimPrefix(srv.URL, "http://")))
			}
			created := postMany(t, resilient.NewClient(opts...), srv.URL, 1000)
			st := srv.Stats()
			t.Logf("created %d, attempts %d, stored %d, replays %d, dropped %d, 5xx %d", created, st.Requests, st.StoredWrites, st.Replays, st.Dropped, st.ServerErrors)
			if tc.wantAll && created != 1000 {
				t.Errorf("%d of 1000 calls succeeded, want all", created)
			}
			if st.Duplicates != 0 || st.Conflicts != 0 {
				t.Errorf("%d duplicates, %d keys used for two payloads; want none", st.Duplicates, st.Conflicts)
			}
			if !tc.wantAll {
				if st.Requests != 1000 || created > 800 {
					t.Errorf("%d attempts, %d created; want each write once, the faulted ones failed", st.Requests, created)
				}
				return
			}
			if st.StoredWrites != 1000 {
				t.Errorf("store holds %d writes, want exactly 1000", st.StoredWrites)
			}
			if st.Replays < 100 {
				t.Errorf("faults did not happen as configured: %d replays", st.Replays)
			}
		})
	}
}

// TestWriteRuleProof is the proof of issue 12: a server that ignores keys
// commits every POST, then answers 500 or drops the connection on 30% of
// them; 1,000 POSTs from 16 goroutines create exactly 1,000 objects, and
// every failed call returns what the server said after one attempt.
func TestWriteRuleProof(t *testing.T) {
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	for _, tc := range []struct {
		name   string
		faults resilienttest.Faults
	}{
		{"500 after commit", resilienttest.Faults{Seed: 12, ServerErrorAfter: 0.30}},
		{"drop after commit", resilienttest.Faults{Seed: 12, DropAfter: 0.30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := resilienttest.NewServer(resilienttest.Altyaa,
				resilienttest.WithIgnoreIdempotencyKeys(true), resilienttest.WithFaults(tc.faults))
			defer srv.Close()
			var unsafeStops atomic.Int64
			client := resilient.NewClient(resilient.WithBackoff(time.Millisecond, 10*time.Millisecond),
				resilient.WithObserver(func(a resilient.Attempt) {
					if a.StopReason == resilient.StopUnsafeWrite {
						unsafeStops.Add(1)
					}
				}))
			created := postMany(t, client, srv.URL, 1000)
			st := srv.Stats()
			t.Logf("created %d, attempts %d, stored %d, dropped %d, 5xx %d", created, st.Requests, st.StoredWrites, st.Dropped, st.ServerErrors)
			if st.StoredWrites != 1000 || st.Duplicates != 0 {
				t.Errorf("server created %d objects with %d duplicates, want exactly 1000", st.StoredWrites, st.Duplicates)
			}
			if st.Requests != 1000 {
				t.Errorf("server saw %d attempts for 1000 writes, want each once", st.Requests)
			}
			failed := 1000 - created
			if failed < 200 || int64(failed) != unsafeStops.Load() {
				t.Errorf("%d calls failed, %d stopped as unsafe writes; want the faulted ones (about 30%%), each stopped for that", failed, unsafeStops.Load())
			}
		})
	}
}

// TestIdempotencyProofWithoutKeys: with automatic keys off and no caller
// key, a write that may have been processed is never sent again, so the
// server never sees a payload twice; some calls fail, which is correct.
func TestIdempotencyProofWithoutKeys(t *testing.T) {
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	f := writeFaults
	f.FirstAttemptsOnly = false // no key tells retries apart: every attempt draws
	srv := resilienttest.NewServer(resilienttest.Postato, resilienttest.WithFaults(f))
	defer srv.Close()

	client := resilient.NewClient(resilient.WithBackoff(time.Millisecond, 10*time.Millisecond), resilient.WithoutIdempotencyKeys())
	created := postMany(t, client, srv.URL, 1000)
	st := srv.Stats()
	t.Logf("created %d, attempts %d, stored %d", created, st.Requests, st.StoredWrites)
	if st.Duplicates != 0 {
		t.Errorf("server stored %d duplicate writes", st.Duplicates)
	}
	if st.Requests != 1000 {
		t.Errorf("server saw %d attempts for 1000 writes without keys, want each once", st.Requests)
	}
	if created == 1000 || created < 600 {
		t.Errorf("%d calls succeeded; want the faulted ones (about 30%%) to fail", created)
	}
}
