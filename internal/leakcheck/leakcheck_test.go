package leakcheck

import (
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// parked closes started, then blocks until release is closed, under a
// name the dump shows, and closes done.
func parked(started chan<- struct{}, release <-chan struct{}, done chan<- struct{}) {
	close(started)
	<-release
	close(done)
}

// park starts parked and returns once it runs in parked (a goroutine just
// started is shown in its go statement's wrapper), with the function that
// releases it and waits for its end.
func park() (release func()) {
	started, rel, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go parked(started, rel, done)
	<-started
	return func() {
		close(rel)
		<-done
	}
}

func TestFindsAndForgetsAGoroutine(t *testing.T) {
	release := park()
	released := false
	defer func() {
		if !released {
			release() // a failure leaves no goroutine to the tests after it
		}
	}()
	if err := Find(10 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "leakcheck.parked") {
		t.Fatalf("Find with a goroutine parked = %v, want an error naming leakcheck.parked", err)
	}
	found := false
	for _, s := range Running() {
		found = found || strings.Contains(s, "leakcheck.parked")
	}
	if !found {
		t.Fatalf("Running() does not list the parked goroutine")
	}
	release()
	released = true
	if err := Find(wait); err != nil {
		t.Fatalf("Find once the goroutine ended = %v, want nil", err)
	}
}

func TestRunningIgnoresTheRunner(t *testing.T) {
	// This test runs under testing's own goroutines (the main one waiting
	// in m.Run, tRunner for this test: the caller): none is reported, once
	// the earlier tests' own have ended (a test's tRunner may still be
	// exiting as the next test starts).
	if err := Find(wait); err != nil {
		t.Fatalf("Find in a test with nothing started = %v, want nil", err)
	}
}

func TestFuncName(t *testing.T) {
	for in, want := range map[string]string{
		"net/http.(*conn).serve(0xc000123456, {0x1, 0x2})": "net/http.(*conn).serve",
		"main.main()":                    "main.main",
		"...additional frames elided...": "...additional frames elided...",
	} {
		if got := funcName(in); got != want {
			t.Errorf("funcName(%q) = %q, want %q", in, got, want)
		}
	}
}

// leakingTests is a test run that passes and leaves a goroutine parked,
// whose release it keeps.
type leakingTests struct{ release *func() }

func (l leakingTests) Run() int {
	*l.release = park()
	return 0
}

// failingTests is a test run that fails.
type failingTests struct{}

func (failingTests) Run() int { return 2 }

func TestRunFailsAPassingRunThatLeaks(t *testing.T) {
	l := leakingTests{new(func())}
	defer func() { (*l.release)() }()
	var out strings.Builder
	if code := run(l, 10*time.Millisecond, &out); code != 1 {
		t.Fatalf("run of passing tests that leak = %d, want 1", code)
	}
	if !strings.Contains(out.String(), "leakcheck.parked") {
		t.Fatalf("run printed %q, want the leaked goroutine's stack", out.String())
	}
}

func TestRunKeepsAFailingRunsCode(t *testing.T) {
	var out strings.Builder
	if code := run(failingTests{}, wait, &out); code != 2 || out.Len() != 0 {
		t.Fatalf("run of failing tests = %d, printed %q; want 2 and nothing", code, out.String())
	}
}
