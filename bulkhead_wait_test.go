package resilient

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestMaxInFlightWaitReported: the time an attempt waits for a slot of its
// host (WithMaxInFlight) is time the call spent waiting, as the rate
// limiter's wait is: it counts in Report.Waited and in the Attempt's
// SlotWait (and in its Duration), whether the wait ends with a slot or
// with the attempt's deadline (and in the log record's slot_wait); a
// call that finds a free slot reports no wait.
func TestMaxInFlightWaitReported(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ctxWait  time.Duration // the waiting call's context deadline; 0 for none
		wantWait time.Duration
		wantDur  time.Duration // the attempt's Duration
		refused  bool
	}{
		{"slot taken", 0, 3 * time.Second, 4 * time.Second, false},
		{"deadline", 2 * time.Second, 2*time.Second - durationFloor, 2*time.Second - durationFloor, true}, // see attemptState.latestStart
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &flightRT{latency: func(i int, _ *http.Request) time.Duration {
					if i == 0 {
						return 3 * time.Second // the holder
					}
					return time.Second
				}}
				var obs observed
				var logs bytes.Buffer
				tr := New(srv, WithMaxInFlight(1), WithObserver(obs.add),
					WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
				var holder sync.WaitGroup
				defer holder.Wait()
				var hr Report
				holder.Go(func() { getIn(t, tr, WithReport(context.Background(), &hr), "http://api.test/hold") })
				synctest.Wait()

				var r Report
				ctx := WithReport(context.Background(), &r)
				if tc.ctxWait > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxWait)
					defer cancel()
				}
				_, err := getIn(t, tr, ctx, "http://api.test/late")
				if tc.refused != errors.Is(err, ErrTooManyInFlight) {
					t.Fatalf("err = %v, want ErrTooManyInFlight: %v", err, tc.refused)
				}
				if r.Waited != tc.wantWait {
					t.Errorf("Report.Waited = %v, want %v (the wait for a slot)", r.Waited, tc.wantWait)
				}
				holder.Wait()
				if hr.Waited != 0 {
					t.Errorf("the holder's Report.Waited = %v, want 0 (it found a free slot)", hr.Waited)
				}
				a := obs.path("/late")
				if len(a) != 1 || a[0].Duration != tc.wantDur || a[0].SlotWait != tc.wantWait || a[0].LocalWait != 0 {
					t.Fatalf("attempts observed %+v, want one of %v with SlotWait %v and no LocalWait", a, tc.wantDur, tc.wantWait)
				}
				for _, rec := range logRecords(t, &logs) {
					want := any(nil) // no attribute without a wait
					if rec["path"] == "/late" {
						want = float64(tc.wantWait)
					}
					if rec["slot_wait"] != want {
						t.Errorf("log record of %v: slot_wait %v, want %v", rec["path"], rec["slot_wait"], want)
					}
				}
				if h := obs.path("/hold"); len(h) != 1 || h[0].SlotWait != 0 {
					t.Errorf("the holder's attempts %+v, want one with no SlotWait", h)
				}
			})
		})
	}
}
