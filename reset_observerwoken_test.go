package resilient

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestResetHostObserverToldBeforeTheWaitersWake: the change to closed of
// the breaker ResetHost removes is told on ResetHost's goroutine, and an
// observer that panics on it takes its panic to the caller of ResetHost,
// not to a call ResetHost woke. The calls waiting for the host's pause
// were woken before the observers were told: the first of them to make
// the host's new breaker delivered the change itself, and got the
// observer's panic, while ResetHost returned without it. The test holds
// the Transport's lock of the Retry-After waits (resetMu), as a scheduler
// may hold ResetHost's goroutine there, and reads from the goroutines'
// stacks where each one is.
func TestResetHostObserverToldBeforeTheWaitersWake(t *testing.T) {
	script := &rtScript{steps: []rtStep{
		{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"30"}}}, // the writes pause
		{status: http.StatusServiceUnavailable},                                          // the breaker trips
		{status: http.StatusCreated},                                                     // the waiting write, after ResetHost
	}}
	var exploded atomic.Bool
	tr := New(script, WithMaxRetries(0), WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second}),
		WithBreakerObserver(func(c BreakerChange) {
			if c.To == BreakerClosed && exploded.CompareAndSwap(false, true) {
				panic("observer exploded")
			}
		}))
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
		resp     *http.Response
		err      error
		panicked any
	}
	waited := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			r.panicked = recover()
			waited <- r
		}()
		r.resp, r.err = tr.RoundTrip(newRequest(t, t.Context(), http.MethodPost, url, nil))
	}()
	waiterIn := func(stacks string, state string) bool {
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "TestResetHostObserverToldBeforeTheWaitersWake.func") && strings.Contains(g, "(*Transport).RoundTrip") {
				return strings.Contains(g, "["+state) && strings.Contains(g, "ratelimit_wait.go")
			}
		}
		return false
	}
	resetHeld := func(stacks string) bool {
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "(*Transport).ResetHost") && strings.Contains(g, "sync.(*Mutex).Lock") {
				return true
			}
		}
		return false
	}
	stacks := func() string {
		buf := make([]byte, 1<<20)
		return string(buf[:runtime.Stack(buf, true)])
	}
	for end := time.Now().Add(10 * time.Second); !waiterIn(stacks(), "select"); runtime.Gosched() {
		if time.Now().After(end) {
			t.Fatal("not within 10s: the write waits for the pause")
		}
	}

	tr.resetMu.Lock()
	var resetPanic atomic.Value
	reset := make(chan struct{})
	go func() {
		defer close(reset)
		defer func() { resetPanic.Store(fmt.Sprint(recover())) }()
		tr.ResetHost("api.test")
	}()
	// ResetHost stops at resetMu; the waiting write either ran (woken
	// before) or still waits for the pause.
	var early *result
	for end := time.Now().Add(10 * time.Second); early == nil; runtime.Gosched() {
		select {
		case r := <-waited:
			early = &r
			continue
		default:
		}
		if s := stacks(); resetHeld(s) && waiterIn(s, "select") {
			break
		}
		if time.Now().After(end) {
			t.Fatal("not within 10s: ResetHost stops at resetMu")
		}
	}
	tr.resetMu.Unlock()
	<-reset

	r := result{}
	if early != nil {
		r = *early
	} else {
		r = <-waited
	}
	if r.panicked != nil {
		t.Errorf("the write ResetHost woke panicked with %v: it was told the change ResetHost made, before ResetHost told it", r.panicked)
	}
	if got, _ := resetPanic.Load().(string); got != "observer exploded" {
		t.Errorf("ResetHost panicked with %v, want the observer's panic", got)
	}
	if r.panicked == nil && (r.err != nil || r.resp.StatusCode != http.StatusCreated) {
		t.Errorf("the write waiting for the pause: %v, %v; want 201 once the host was reset", r.resp, r.err)
	}
	if r.resp != nil {
		r.resp.Body.Close()
	}
}
