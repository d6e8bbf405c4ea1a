package resilient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// TestHedgingNotWhileQueued: an attempt's hedging delay runs from when the
// attempt is sent, not while it waits for the rate limiter: a copy is for
// a slow answer, not for a slow queue, and a copy sent while the attempt
// still waits for its turn would jump the queue ahead of it, the attempt
// following it to the wire. Before, the delay ran from the attempt's
// start: the host paused for 1s by a 429, the attempt waited out the pause
// and its spread (1.1s), and its copy, due at 1.05s, found the pause over
// and was sent first; the attempt was sent after it, 50ms later.
func TestHedgingNotWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.RateLimited(time.Second)),
			resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Slow(500*time.Millisecond)))
		defer srv.Close()
		tr := New(srv.Transport(), WithHedging(Hedging{Delay: 1050 * time.Millisecond}),
			withRand(func(n int64) int64 { return n - 1 })) // the spread of a pause at its widest: 10%
		defer tr.CloseIdleConnections()

		pauseReads(t, tr, srv)

		// The read waits 1.1s for the pause, is sent, and answers 500ms
		// later: within its hedging delay from when it was sent.
		rep, took := readPosts(t, tr, srv)
		if n := srv.Stats().Requests; n != 2 || rep.Hedges != 0 {
			t.Errorf("the server read %d requests, the Report says %d hedges; want 2 and 0: no copy while the attempt waits for the limiter; report %+v", n, rep.Hedges, rep)
		}
		if want := 1600 * time.Millisecond; took != want || rep.Waited != 1100*time.Millisecond {
			t.Errorf("answered after %v, waited %v; want %v, 1.1s of it waiting for the limiter", took, rep.Waited, want)
		}
	})
}

// TestHedgingNotWhilePaused: a copy due while the host is paused after a
// 429 is not sent: the attempt was sent, then another call's 429 paused
// the host for 10s, and the copy, due 1s after the attempt, is refused,
// as any attempt would be held; the attempt's own answer decides.
func TestHedgingNotWhilePaused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.RateLimited(10*time.Second)),
			resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Slow(3*time.Second)))
		defer srv.Close()
		tr := New(srv.Transport(), WithHedging(Hedging{Delay: time.Second}))
		defer tr.CloseIdleConnections()

		var rep Report
		wait := make(chan struct{})
		go func() {
			defer close(wait)
			resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &rep), "GET", srv.URL+"/v1/posts", nil))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
		time.Sleep(500 * time.Millisecond) // the slow read is sent
		ctx := WithCallOptions(context.Background(), WithMaxRetries(0))
		resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", srv.URL+"/v1/usage", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		<-wait
		synctest.Wait()
		if n := srv.Stats().Requests; n != 2 || rep.Hedges != 0 || rep.StatusCode != http.StatusOK {
			t.Errorf("the server read %d requests, the Report says %d hedges, status %d; want 2, 0, 200: no copy while the host is paused; report %+v",
				n, rep.Hedges, rep.StatusCode, rep)
		}
	})
}

// TestHedgingReportsTheQueue: when a copy answers for an attempt that
// waited for the rate limiter before it was sent, the attempt's record
// and the call's Report still show that wait: the Attempt is the
// attempt's, from its start (its Duration), which the wait is part of,
// not only the copy's, which never waited. Before, the record was the
// copy's alone: LocalWait 0, Report.Waited 0, for a call that spent
// 1.1s of its 1.2s waiting for a pause.
func TestHedgingReportsTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.RateLimited(time.Second)),
			resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Slow(time.Hour)))
		defer srv.Close()
		var attempts collector[Attempt]
		tr := New(srv.Transport(), WithHedging(Hedging{Delay: 100 * time.Millisecond}),
			withRand(func(n int64) int64 { return n - 1 }), // the spread of a pause at its widest: 10%
			WithObserver(attempts.add))
		defer tr.CloseIdleConnections()

		pauseReads(t, tr, srv)

		// The read waits 1.1s for the pause, is sent, and hangs; its
		// copy, sent 100ms later, answers at once.
		rep, took := readPosts(t, tr, srv)
		checkQueuedRead(t, took, 1100*time.Millisecond, rep, attempts.all(), func(a Attempt) time.Duration { return a.LocalWait })
	})
}

// TestHedgingReportsTheSlotWait: TestHedgingReportsTheQueue for the wait
// for a slot of the host (WithMaxInFlight): the read waits 990ms for one of
// its two slots, held by two slow calls, is sent, and hangs; its copy,
// sent 100ms later, answers at once. Before, the record was the copy's:
// SlotWait 0, Report.Waited 0.
func TestHedgingReportsTheSlotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithScript(resilienttest.RouteUsage, resilienttest.Slow(time.Second), resilienttest.Slow(time.Second)),
			resilienttest.WithScript(resilienttest.RouteListPosts, resilienttest.Slow(time.Hour)))
		defer srv.Close()
		var attempts collector[Attempt]
		tr := New(srv.Transport(), WithHedging(Hedging{Delay: 100 * time.Millisecond}), WithMaxInFlight(2), WithObserver(attempts.add))
		defer tr.CloseIdleConnections()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				resp, err := roundTrip(t, tr, newRequest(t, context.Background(), "GET", srv.URL+"/v1/usage", nil))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			})
		}
		time.Sleep(10 * time.Millisecond)

		rep, took := readPosts(t, tr, srv)
		wg.Wait()
		checkQueuedRead(t, took, 990*time.Millisecond, rep, attempts.all(), func(a Attempt) time.Duration { return a.SlotWait })
	})
}

// readPosts reads /v1/posts through tr, and returns the call's Report and
// the time it took, once a copy that lost has ended.
func readPosts(t *testing.T, tr *Transport, srv *resilienttest.Server) (Report, time.Duration) {
	t.Helper()
	var rep Report
	start := time.Now()
	resp, err := roundTrip(t, tr, newRequest(t, WithReport(context.Background(), &rep), "GET", srv.URL+"/v1/posts", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	synctest.Wait()
	return rep, took
}

// pauseReads sends the read of /v1/usage that srv answers with its
// scripted 429, whose Retry-After pauses the host's reads.
func pauseReads(t *testing.T, tr *Transport, srv *resilienttest.Server) {
	t.Helper()
	ctx := WithCallOptions(context.Background(), WithMaxRetries(0))
	resp, err := roundTrip(t, tr, newRequest(t, ctx, "GET", srv.URL+"/v1/usage", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
}

// checkQueuedRead checks the call that read /v1/posts after it waited
// waited before it was sent (wait reads that wait from its Attempt), and
// whose copy, sent 100ms later, answered it after took: its Report and
// its Attempt show the wait, and the Attempt runs from the call's start.
func checkQueuedRead(t *testing.T, took, waited time.Duration, rep Report, all []Attempt, wait func(Attempt) time.Duration) {
	t.Helper()
	if took != waited+100*time.Millisecond || rep.Hedges != 1 || rep.Waited != waited {
		t.Errorf("answered after %v with %d hedges, Report.Waited %v; want %v, 1 hedge, %v; report %+v", took, rep.Hedges, rep.Waited, waited+100*time.Millisecond, waited, rep)
	}
	var read []Attempt
	for _, a := range all {
		if a.Path == "/v1/posts" {
			read = append(read, a)
		}
	}
	if len(read) != 1 {
		t.Fatalf("%d attempts of the read observed, want 1: %+v", len(read), read)
	}
	if a := read[0]; a.Hedge != 1 || wait(a) != waited || a.Duration != took {
		t.Errorf("the read's Attempt: Hedge %d, wait %v, Duration %v; want 1, %v, %v", a.Hedge, wait(a), a.Duration, waited, took)
	}
}

// TestHedgingLatencyFromTheSend: the host's latency that sets an adaptive
// hedging delay runs from when each attempt was sent, as the delay does,
// not from its start: 25 reads that each waited 1.1s for a pause and were
// answered 10ms after they were sent make the delay about 10ms, and the
// next read, as slow as 500ms, gets a copy. Measured from their start,
// the history put the delay above 1.1s: a host with a queue got no copies.
func TestHedgingLatencyFromTheSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const warm = 25
		pauses := make([]resilienttest.Step, warm+1)
		reads := make([]resilienttest.Step, warm+1)
		for i := range pauses {
			pauses[i], reads[i] = resilienttest.RateLimited(time.Second), resilienttest.Slow(10*time.Millisecond)
		}
		reads[warm] = resilienttest.Slow(500 * time.Millisecond) // the copy is answered at once
		srv := resilienttest.NewPipeServer(resilienttest.Altyaa,
			resilienttest.WithScript(resilienttest.RouteUsage, pauses...),
			resilienttest.WithScript(resilienttest.RouteListPosts, reads...))
		defer srv.Close()
		tr := New(srv.Transport(), WithHedging(Hedging{}))
		defer tr.CloseIdleConnections()

		var rep Report
		for i := range warm + 1 {
			// A 429 with Retry-After: 1 pauses the host's reads; the read
			// after it waits for the pause, then is sent.
			pauseReads(t, tr, srv)
			rep, _ = readPosts(t, tr, srv)
			if rep.Waited < time.Second {
				t.Fatalf("read %d waited %v, want the pause's 1s or more", i, rep.Waited)
			}
		}
		if rep.Hedges != 1 || rep.Duration-rep.Waited >= 500*time.Millisecond {
			t.Errorf("the slow read after %d answered 10ms after they were sent: %d hedges, answered %v after it was sent; want 1 copy, answered before 500ms",
				warm, rep.Hedges, rep.Duration-rep.Waited)
		}
	})
}
