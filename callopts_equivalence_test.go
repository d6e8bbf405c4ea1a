package resilient

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestCallOptionsActAsTransportOptions: a call made with per-call options
// (WithCallOptions, split over two nested contexts) does what the same
// options given to New do, over seeded random sets of them, several
// server behaviours (a 5xx, a 429 with Retry-After, a 403, a hang, a reset
// after a refused dial, a slow answer, a key required, a stalled body) and
// methods (a read, a write to a host that honors keys and to one not
// known to): the same requests on the wire (their count, key, attempt
// header and body), at the same times, with the same result and Report.
// The errors differ only by the mark of a limit set for the call, which
// keeps its cut from the host's breaker (see WithCallOptions).
func TestCallOptionsActAsTransportOptions(t *testing.T) {
	type named struct {
		name string
		opt  Option
	}
	all := []named{
		{"WithMaxRetries(0)", WithMaxRetries(0)},
		{"WithMaxRetries(2)", WithMaxRetries(2)},
		{"WithBackoff(0, 0)", WithBackoff(0, 0)},
		{"WithBackoff(1s, 2s)", WithBackoff(time.Second, 2*time.Second)},
		{"WithBackOff(nil)", WithBackOff(nil)},
		{"WithMaxElapsed(3s)", WithMaxElapsed(3 * time.Second)},
		{"WithMaxElapsed(0)", WithMaxElapsed(0)},
		{"WithMaxRetryAfter(0)", WithMaxRetryAfter(0)},
		{"WithMaxRetryAfter(5s)", WithMaxRetryAfter(5 * time.Second)},
		{"WithAttemptTimeout(10s)", WithAttemptTimeout(10 * time.Second)},
		{"WithClassifier(403 Throttled)", WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
			if resp != nil && resp.StatusCode == http.StatusForbidden {
				return Throttled
			}
			return def
		})},
		{"WithHedging(100ms)", WithHedging(Hedging{Delay: 100 * time.Millisecond})},
		{"WithoutHedging()", WithoutHedging()},
		{"WithoutIdempotencyKeys()", WithoutIdempotencyKeys()},
		{"WithIdempotencyMethods(PUT, POST)", WithIdempotencyMethods(http.MethodPut, http.MethodPost)},
		{"WithMaxBufferedBody(0)", WithMaxBufferedBody(0)},
		{"WithBufferedResponse(1KiB)", WithBufferedResponse(1 << 10)},
		{"WithAttemptHeader(X-Try)", WithAttemptHeader("X-Try")},
	}
	slow := func(r *http.Request) {
		select {
		case <-time.After(1500 * time.Millisecond):
		case <-r.Context().Done():
		}
	}
	scripts := []struct {
		name  string
		steps []rtStep
	}{
		{"503", []rtStep{{status: 503}, {status: 200, body: "ok"}}},
		{"429", []rtStep{{status: 429, header: http.Header{"Retry-After": {"2"}}}, {status: 200, body: "ok"}}},
		{"403", []rtStep{{status: 403, body: `{"error":{"code":"forbidden","message":"x"}}`}, {status: 200}}},
		{"hang", []rtStep{{hang: true}, {status: 200}}},
		{"reset", []rtStep{{err: errReset}, {status: 503}, {status: 200}}},
		{"refused", []rtStep{{err: errRefused}, {status: 200}}},
		{"slow", []rtStep{{status: 200, before: slow}}},
		{"key required", []rtStep{{status: 400, body: `{"error":{"code":"idempotency_key_required","message":"Idempotency key is required"}}`}, {status: 200}}},
		{"stalled body", []rtStep{{status: 200, body: "ab", stall: true}, {status: 200, body: "ok"}}},
	}
	run := func(t *testing.T, opts []Option, split int, perCall bool, steps []rtStep, method, host string) string {
		t.Helper()
		var out string
		synctest.Test(t, func(t *testing.T) {
			s := &rtScript{steps: steps}
			base := []Option{WithKeyHonoringHosts("api.test"), withRand(func(int64) int64 { return 0 })}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var tr *Transport
			if perCall {
				tr = New(s, base...)
				ctx = WithCallOptions(WithCallOptions(ctx, opts[:split]...), opts[split:]...)
			} else {
				tr = New(s, append(base, opts...)...)
			}
			var rep Report
			ctx = WithReport(ctx, &rep)
			start := time.Now()
			resp, err := tr.RoundTrip(newRequest(t, ctx, method, "http://"+host+"/x", strings.NewReader("b")))
			took := time.Since(start)
			status, body := 0, ""
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, body = resp.StatusCode, fmt.Sprintf("%s (%v)", b, rerr)
			}
			time.Sleep(time.Minute) // the hedged copies end
			var wire []string
			for i := range s.numCalls() {
				c := s.call(i)
				wire = append(wire, fmt.Sprintf("key %v, X-Try %q, body %q", c.header.Get(DefaultIdempotencyHeader) != "", c.header.Get("X-Try"), c.body))
			}
			msg := ""
			if err != nil {
				msg = strings.ReplaceAll(err.Error(), ": "+errCallersLimit.Error(), "")
			}
			out = fmt.Sprintf("%d %q after %v, %d attempts, stop %q, error %q, sent %q", status, body, took, rep.Attempts, rep.StopReason, msg, wire)
		})
		return out
	}
	r := rand.New(rand.NewPCG(7, 11))
	for range 60 {
		var opts []Option
		var names []string
		for range 1 + r.IntN(4) {
			o := all[r.IntN(len(all))]
			opts, names = append(opts, o.opt), append(names, o.name)
		}
		split := r.IntN(len(opts) + 1)
		for _, sc := range scripts {
			for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
				for _, host := range []string{"api.test", "other.test"} {
					want := run(t, opts, split, false, sc.steps, method, host)
					if got := run(t, opts, split, true, sc.steps, method, host); got != want {
						t.Errorf("%v (the first %d outer), %s, %s %s:\nper call:      %s\nper Transport: %s", names, split, sc.name, method, host, got, want)
					}
				}
			}
		}
	}
}
