package resilient

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestResetHostClearsBreakerBeforeWaking checks that ResetHost removes the
// host's open breaker before it wakes the calls waiting for the host's
// rate-limit pause: a woken call that found the old breaker still open was
// refused with ErrCircuitOpen, though the caller had just said the outage
// was over. The test holds the breaker table's lock, so that ResetHost
// stops where it clears the breakers, and reads from the goroutines'
// stacks whether the waiting call was woken by then.
func TestResetHostClearsBreakerBeforeWaking(t *testing.T) {
	script := &rtScript{steps: []rtStep{
		{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"30"}}}, // the writes pause
		{status: http.StatusServiceUnavailable},                                          // the breaker trips
		{status: http.StatusCreated},                                                     // the waiting write, after ResetHost
	}}
	tr := New(script, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second}))
	const url = "http://api.test/posts"
	if resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodPost, url, nil)); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first write: %v, %v; want 429", resp, err)
	}
	if resp, err := roundTrip(t, tr, newRequest(t, t.Context(), http.MethodGet, url, nil)); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("read: %v, %v; want 503", resp, err)
	}
	if got := tr.BreakerState(url); got != BreakerOpen {
		t.Fatalf("BreakerState = %v, want open", got)
	}

	type result struct {
		resp *http.Response
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(newRequest(t, t.Context(), http.MethodPost, url, nil))
		waited <- result{resp, err}
	}()
	waiterIn := func(stacks string, state string) bool {
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "TestResetHostClearsBreakerBeforeWaking.func") && strings.Contains(g, "(*Transport).RoundTrip") {
				return strings.Contains(g, "["+state) && strings.Contains(g, "ratelimit_wait.go")
			}
		}
		return false
	}
	resetAt := func(stacks string) bool {
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "(*Transport).ResetHost") && strings.Contains(g, "(*breakerSet).resetHost") {
				return true
			}
		}
		return false
	}
	stacks := func() string {
		buf := make([]byte, 1<<20)
		return string(buf[:runtime.Stack(buf, true)])
	}
	poll := func(what string, ok func(string) bool) string {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); runtime.Gosched() {
			if s := stacks(); ok(s) {
				return s
			}
		}
		t.Fatalf("not within 10s: %s", what)
		return ""
	}
	poll("the write waits for the pause", func(s string) bool { return waiterIn(s, "select") })

	tr.breakers.mu.Lock()
	reset := make(chan struct{})
	go func() {
		defer close(reset)
		tr.ResetHost("api.test")
	}()
	s := poll("ResetHost reaches the breakers", resetAt)
	if !waiterIn(s, "select") {
		t.Errorf("the waiting write was woken before ResetHost cleared the host's breaker")
	}
	tr.breakers.mu.Unlock()
	<-reset

	r := <-waited
	if r.err != nil || r.resp.StatusCode != http.StatusCreated {
		t.Errorf("the write waiting for the pause: %v, %v; want 201 once the host was reset", r.resp, r.err)
	}
	if r.resp != nil {
		r.resp.Body.Close()
	}
	if n := script.numCalls(); n != 3 {
		t.Errorf("the host saw %d attempts, want 3", n)
	}
}
