package resilient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightHedgeDoesNotQueue checks that a hedged copy that found a
// free slot when it was launched, but whose host filled while GetBody made
// its body, is refused at once, rather than queued for a slot: it is not
// sent when the slot frees (a copy never waits for one, WithMaxInFlight).
func TestMaxInFlightHedgeDoesNotQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &flightRT{latency: func(i int, _ *http.Request) time.Duration {
			switch i {
			case 0:
				return time.Second // the hedged attempt
			case 1:
				return 300 * time.Millisecond // another call, which fills the host
			}
			return 10 * time.Millisecond
		}}
		tr := New(srv, WithMaxInFlight(2), WithHedging(Hedging{Delay: 100 * time.Millisecond}))
		other := make(chan error, 1)
		time.AfterFunc(120*time.Millisecond, func() {
			_, err := getIn(t, tr, context.Background(), "http://api.test/b")
			other <- err
		})
		var r Report
		getBodies := 0
		req := newRequest(t, WithReport(context.Background(), &r), http.MethodGet, "http://api.test/a", bytes.NewReader([]byte("q")))
		req.Body = streamBody("q") // not in memory: the copy's body is GetBody's
		req.GetBody = func() (io.ReadCloser, error) {
			getBodies++
			time.Sleep(50 * time.Millisecond) // the other call takes the last slot meanwhile
			return io.NopCloser(bytes.NewReader([]byte("q"))), nil
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := <-other; err != nil {
			t.Fatalf("the other call: %v", err)
		}
		synctest.Wait()
		if got, want := srv.seen(), []string{"api.test/a", "api.test/b"}; !slices.Equal(got, want) {
			t.Errorf("the server saw %q, want %q: the copy, refused a slot, is not sent", got, want)
		}
		if getBodies != 1 {
			t.Errorf("GetBody called %d times, want 1 (the copy launched)", getBodies)
		}
		if r.Hedges != 0 {
			t.Errorf("Report.Hedges = %d, want 0", r.Hedges)
		}
	})
}
