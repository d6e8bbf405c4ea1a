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

// This file holds the tests of the order in which ResetHost clears a
// host's state, tells the observers and wakes the calls waiting for it.
// Each holds one of the Transport's locks, so that ResetHost stops at a
// known step, and reads from the goroutines' stacks where each one is.

// resetScene is a write waiting for its host's rate-limit pause while the
// host's breaker is open: a 429 with Retry-After: 30 paused the host's
// writes, and a 503 tripped its breaker (ConsecutiveFailures 1). The
// host's next answer is a 201.
type resetScene struct {
	tr     *Transport
	script *rtScript
	waited chan resetResult // the waiting write's result
}

// resetResult is what the waiting write of a resetScene got.
type resetResult struct {
	resp     *http.Response
	err      error
	panicked any
}

const resetSceneURL = "http://api.test/posts"

// newResetScene returns a resetScene over a Transport with opts, once its
// write waits for the pause.
func newResetScene(t *testing.T, opts ...Option) *resetScene {
	t.Helper()
	s := &resetScene{script: &rtScript{steps: []rtStep{
		{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"30"}}}, // the writes pause
		{status: http.StatusServiceUnavailable},                                          // the breaker trips
		{status: http.StatusCreated},                                                     // the waiting write, after ResetHost
	}}, waited: make(chan resetResult, 1)}
	s.tr = New(s.script, append([]Option{WithMaxRetries(0),
		WithBreaker(BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: 5 * time.Second})}, opts...)...)
	if resp, err := roundTrip(t, s.tr, newRequest(t, t.Context(), http.MethodPost, resetSceneURL, nil)); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("first write: %v, %v; want 429", resp, err)
	}
	if resp, err := roundTrip(t, s.tr, newRequest(t, t.Context(), http.MethodGet, resetSceneURL, nil)); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("read: %v, %v; want 503", resp, err)
	}
	if got := s.tr.BreakerState(resetSceneURL); got != BreakerOpen {
		t.Fatalf("BreakerState = %v, want open", got)
	}
	go func() {
		var r resetResult
		defer func() {
			r.panicked = recover()
			s.waited <- r
		}()
		r.resp, r.err = s.tr.RoundTrip(newRequest(t, t.Context(), http.MethodPost, resetSceneURL, nil))
	}()
	pollStacks(t, "the write waits for the pause", s.waiting)
	return s
}

// waiting reports whether, in stacks, the scene's write still waits for
// the pause.
func (s *resetScene) waiting(stacks []string) bool {
	g := stackWith(stacks, "newResetScene.func", "(*Transport).RoundTrip")
	return strings.Contains(g, "[select") && strings.Contains(g, "ratelimit_wait.go")
}

// goroutineStacks returns the stack of every goroutine, one each.
func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	return strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
}

// stackWith returns the first of stacks that holds every one of marks, or
// "" for none.
func stackWith(stacks []string, marks ...string) string {
next:
	for _, g := range stacks {
		for _, m := range marks {
			if !strings.Contains(g, m) {
				continue next
			}
		}
		return g
	}
	return ""
}

// pollStacks returns the goroutines' stacks once ok holds of them, or
// fails the test after 10 s.
func pollStacks(t *testing.T, what string, ok func([]string) bool) []string {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); runtime.Gosched() {
		if s := goroutineStacks(); ok(s) {
			return s
		}
	}
	t.Fatalf("not within 10s: %s", what)
	return nil
}

// TestResetHostClearsBreakerBeforeWaking checks that ResetHost removes the
// host's open breaker before it wakes the calls waiting for the host's
// rate-limit pause: a woken call that found the old breaker still open was
// refused with ErrCircuitOpen, though the caller had just said the outage
// was over. The test holds the breaker table's lock, so that ResetHost
// stops where it clears the breakers.
func TestResetHostClearsBreakerBeforeWaking(t *testing.T) {
	s := newResetScene(t)
	s.tr.breakers.mu.Lock()
	reset := make(chan struct{})
	go func() {
		defer close(reset)
		s.tr.ResetHost("api.test")
	}()
	stacks := pollStacks(t, "ResetHost reaches the breakers", func(st []string) bool {
		return stackWith(st, "(*Transport).ResetHost", "(*breakerSet).resetHost") != ""
	})
	if !s.waiting(stacks) {
		t.Errorf("the waiting write was woken before ResetHost cleared the host's breaker")
	}
	s.tr.breakers.mu.Unlock()
	<-reset

	r := <-s.waited
	if r.err != nil || r.resp.StatusCode != http.StatusCreated {
		t.Errorf("the write waiting for the pause: %v, %v; want 201 once the host was reset", r.resp, r.err)
	}
	if r.resp != nil {
		r.resp.Body.Close()
	}
	if n := s.script.numCalls(); n != 3 {
		t.Errorf("the host saw %d attempts, want 3", n)
	}
}

// TestResetHostObserverToldBeforeTheWaitersWake: the change to closed of
// the breaker ResetHost removes is told on ResetHost's goroutine, and an
// observer that panics on it takes its panic to the caller of ResetHost,
// not to a call ResetHost woke. The calls waiting for the host's pause
// were woken before the observers were told: the first of them to make
// the host's new breaker delivered the change itself, and got the
// observer's panic, while ResetHost returned without it. The test holds
// the Transport's lock of the Retry-After waits (resetMu), as a scheduler
// may hold ResetHost's goroutine there.
func TestResetHostObserverToldBeforeTheWaitersWake(t *testing.T) {
	var exploded atomic.Bool
	s := newResetScene(t, WithBreakerObserver(func(c BreakerChange) {
		if c.To == BreakerClosed && exploded.CompareAndSwap(false, true) {
			panic("observer exploded")
		}
	}))
	s.tr.resetMu.Lock()
	var resetPanic atomic.Value
	reset := make(chan struct{})
	go func() {
		defer close(reset)
		defer func() { resetPanic.Store(fmt.Sprint(recover())) }()
		s.tr.ResetHost("api.test")
	}()
	// ResetHost stops at resetMu; the waiting write either ran (woken
	// before) or still waits for the pause.
	var early *resetResult
	for end := time.Now().Add(10 * time.Second); early == nil; runtime.Gosched() {
		select {
		case r := <-s.waited:
			early = &r
			continue
		default:
		}
		if st := goroutineStacks(); stackWith(st, "(*Transport).ResetHost", "sync.(*Mutex).Lock") != "" && s.waiting(st) {
			break
		}
		if time.Now().After(end) {
			t.Fatal("not within 10s: ResetHost stops at resetMu")
		}
	}
	s.tr.resetMu.Unlock()
	<-reset

	var r resetResult
	if early != nil {
		r = *early
	} else {
		r = <-s.waited
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
