package resilient

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestHedgingAllFailedKeepsTheServersWait: when every copy of a hedged
// attempt fails, the copy whose answer asks for the longest wait decides
// the attempt: the attempt's 503 without Retry-After does not win over its
// copy's 429 with Retry-After: 30, whose wait the retry honors, with the
// rate limiter off too (WithoutRateLimit: the retry of a 429 still waits
// for its Retry-After). The retry was sent after the 503's backoff, inside
// the pause the server had asked for.
func TestHedgingAllFailedKeepsTheServersWait(t *testing.T) {
	eachLimiter(t, func(t *testing.T, opts []Option) {
		sc, opts := allFailedScene(rtStep{status: 429, header: http.Header{"Retry-After": {"30"}}, body: "slow down"}, opts)
		tr := New(sc, opts...)
		type result struct {
			resp *http.Response
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := tr.RoundTrip(newRequest(t, context.Background(), "GET", "http://api.test/", nil))
			done <- result{resp, err}
		}()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := sc.numCalls(); n != 2 {
			t.Errorf("%d requests within 29s, want 2: the retry came inside the 30s the copy's 429 asked for", n)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		r.resp.Body.Close()
		synctest.Wait()
		if r.resp.StatusCode != 200 || sc.numCalls() != 3 {
			t.Errorf("%d after %d requests, want 200 after 3", r.resp.StatusCode, sc.numCalls())
		}
	})
}

// TestHedgingAllFailedSiblingsWaitPastTheBound: when every copy of a hedged
// attempt failed, a copy's 503 whose Retry-After is past WithMaxRetryAfter
// does not decide the attempt over the attempt's own 503: the call would
// not wait for it (a 503's wait that long is not believed: the rate
// limiter pauses nothing for it), so it ended the call at once
// (StopRetryAfterTooLong) where the attempt's own answer, as without
// hedging, is retried after its backoff and succeeds.
func TestHedgingAllFailedSiblingsWaitPastTheBound(t *testing.T) {
	eachLimiter(t, func(t *testing.T, opts []Option) {
		sc, opts := allFailedScene(rtStep{status: 503, header: http.Header{"Retry-After": {"3600"}}, body: "down for maintenance"}, opts)
		var r Report
		resp, err := New(sc, opts...).RoundTrip(newRequest(t, WithReport(context.Background(), &r), "GET", "http://api.test/", nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || sc.numCalls() != 3 {
			t.Errorf("%d after %d requests (stop reason %q), want 200 after 3: a copy's wait past WithMaxRetryAfter ended the call that its attempt's own 503 retries", resp.StatusCode, sc.numCalls(), r.StopReason)
		}
	})
}

// eachLimiter runs fn in a synctest bubble with the rate limiter on, then
// off (its options).
func eachLimiter(t *testing.T, fn func(t *testing.T, opts []Option)) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"rate limiter on", nil},
		{"rate limiter off", []Option{WithoutRateLimit()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { fn(t, tc.opts) })
		})
	}
}

// allFailedScene returns the script of a hedged attempt whose every copy
// fails, then a 200: the attempt's own 503, answered at 100ms, after its
// copy's answer (copy, the copy being sent at 10ms); and the options of
// that hedging, with extra.
func allFailedScene(copy rtStep, extra []Option) (*rtScript, []Option) {
	sc := &rtScript{steps: []rtStep{
		{status: 503, body: "busy", before: func(*http.Request) { time.Sleep(100 * time.Millisecond) }},
		copy,
		{status: 200, body: "ok"},
	}}
	return sc, append([]Option{WithBackoff(time.Millisecond, time.Millisecond),
		WithHedging(Hedging{Delay: 10 * time.Millisecond, MaxHedges: 1})}, extra...)
}

// TestHedgingThrottledCopyKeepsTheSiblings5xx: when a copy's 429 decides a
// hedged attempt of a keyed write, and another copy's 503 may have had the
// write processed, a call that ends later on an error that reads as never
// sent (a refused dial) says that the write may have been processed, as it
// does after a 503 without hedging: a Transport above must not resend it
// as unsent. (The 503 of the copy that lost was forgotten.)
func TestHedgingThrottledCopyKeepsTheSiblings5xx(t *testing.T) {
	slow := func(*http.Request) { time.Sleep(100 * time.Millisecond) }
	throttled := http.Header{"Retry-After": {"1"}}
	for _, tc := range []struct {
		name           string
		attempt, hedge rtStep
	}{
		{"the attempt's 429", rtStep{status: 429, header: throttled, body: "slow down", before: slow}, rtStep{status: 503, body: "busy"}},
		{"the copy's 429", rtStep{status: 503, body: "busy", before: slow}, rtStep{status: 429, header: throttled, body: "slow down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &rtScript{steps: []rtStep{tc.attempt, tc.hedge, {err: errRefused}}}
				tr := New(sc, fastRetries, WithMaxRetries(2), WithoutRateLimit(), WithKeyHonoringHosts("api.test"),
					WithHedging(Hedging{Delay: 10 * time.Millisecond}))
				var r Report
				resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &r), "POST", "http://api.test/v1/posts", strings.NewReader(`{"content":"hello"}`)))
				synctest.Wait()
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%d after %d requests (%d copies); want the refused dial", resp.StatusCode, sc.numCalls(), r.Hedges)
				}
				if sc.numCalls() != 4 || r.Hedges != 1 {
					t.Errorf("%d requests (%d copies), want 4 (1 copy)", sc.numCalls(), r.Hedges)
				}
				if _, neverSent := classifyErr(err); neverSent {
					t.Errorf("%v reads as never sent: a Transport above would resend the write the 503 may have stored", err)
				}
			})
		})
	}
}
