package main

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// naiveRetry is the policy most retry libraries ship with: it resends any
// request, whatever its method, after a network error, a 429 or a 5xx, up
// to maxRetries times, the same request each time (its own headers, so
// the same Idempotency-Key if it has one), with exponential backoff and
// jitter, waiting Retry-After when the server sends one. It cannot tell a
// write the server never saw from one it stored before failing, so it
// resends both.
type naiveRetry struct {
	base       http.RoundTripper
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
}

// newNaiveRetry returns the naive policy over base: 5 retries, the delay
// doubling from 10ms (a short backoff keeps the demo's outage run short,
// where each worker waits out the whole schedule for every call: about
// 15 s at the default flags; it changes the latency, not the attempts or
// the duplicates), capped at 2s, jittered between half and all of it.
func newNaiveRetry(base http.RoundTripper) *naiveRetry {
	return &naiveRetry{base: base, maxRetries: 5, baseDelay: 10 * time.Millisecond, maxDelay: 2 * time.Second}
}

// RoundTrip sends req, and resends it as long as it fails and retries are
// left.
func (n *naiveRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := n.base.RoundTrip(r)
		failed := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		rewindable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
		if !failed || attempt == n.maxRetries || !rewindable || ctx.Err() != nil {
			return resp, err
		}
		d := min(n.maxDelay, n.baseDelay<<attempt)
		d = d/2 + rand.N(d/2+1)
		if resp != nil {
			if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs >= 0 {
				d = max(d, time.Duration(secs)*time.Second)
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}
