package bench

import (
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// Small models of the retry budgets the issue cites as anchors, for the
// retry budget workload (budget_test.go). Each is a retryGate: a policy
// shared by all the calls of one client, asked before every retry. A
// retryModel client drives it with everything else held equal to our
// Transport: 1 + 5 attempts, our backoff schedule and jitter, the same
// answers retried. The models follow the published rules of each policy;
// where their code offers a choice, the comment says which one the model
// takes.

// retryGate is a retry policy shared by the calls of one client. Its
// methods are called by concurrent calls, with the bubble's current time.
type retryGate interface {
	// callStarted is called once per logical call, before its first attempt.
	callStarted(now time.Time)
	// attemptStarted and attemptEnded frame every attempt; failed is true
	// when the attempt's outcome is one the client retries.
	attemptStarted()
	attemptEnded(now time.Time, failed bool)
	// tryRetry asks for a retry after a failed attempt. When it is granted,
	// release is called once the retried attempt has ended.
	tryRetry(now time.Time) (release func(), ok bool)
}

// nopGate is the parts of retryGate a model does not use; models embed it
// and override the methods they need.
type nopGate struct{}

func (nopGate) callStarted(time.Time)        {}
func (nopGate) attemptStarted()              {}
func (nopGate) attemptEnded(time.Time, bool) {}

// grpcThrottle models gRPC's retry throttling (gRFC A6,
// retryThrottling {maxTokens: 10, tokenRatio: 0.1}): the token count starts
// at maxTokens; every attempt that fails with a retryable status takes one
// token, every other answer gives tokenRatio back, within [0, maxTokens];
// a retry is sent only while the count is above maxTokens/2.
type grpcThrottle struct {
	mu         sync.Mutex
	tokens     float64
	max, ratio float64
	nopGate
}

func newGRPCThrottle(maxTokens, ratio float64) *grpcThrottle {
	return &grpcThrottle{tokens: maxTokens, max: maxTokens, ratio: ratio}
}

func (g *grpcThrottle) attemptEnded(_ time.Time, failed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if failed {
		g.tokens = max(0, g.tokens-1)
	} else {
		g.tokens = min(g.max, g.tokens+g.ratio)
	}
}

func (g *grpcThrottle) tryRetry(time.Time) (func(), bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return nil, g.tokens > g.max/2
}

// finagleBudget models Finagle's RetryBudget(ttl = 10s, minRetriesPerSec =
// 10, percentCanRetry = 0.2), a TokenRetryBudget over a LeakyTokenBucket:
// every logical call deposits 1,000, every retry withdraws 1,000/0.2 =
// 5,000, both into a window of the last ttl (ten one-second slices); a
// retry is granted when the window's sum plus the reserve, 10 × 10 ×
// 5,000 (ten retries a second over the window), holds 5,000.
type finagleBudget struct {
	mu      sync.Mutex
	slices  [finagleSlices]int64
	epochs  [finagleSlices]int64 // the second each slice holds
	reserve int64
	nopGate
}

const (
	finagleTTL        = 10 * time.Second
	finagleSlices     = 10
	finagleDeposit    = 1000
	finagleWithdrawal = finagleDeposit * 5 // 1,000 / percentCanRetry (0.2)
	finagleMinPerSec  = 10
)

func newFinagleBudget() *finagleBudget {
	return &finagleBudget{reserve: finagleMinPerSec * int64(finagleTTL/time.Second) * finagleWithdrawal}
}

// add adds n to the slice of now.
func (f *finagleBudget) add(now time.Time, n int64) {
	sec := now.UnixNano() / int64(finagleTTL/finagleSlices)
	i := sec % finagleSlices
	if f.epochs[i] != sec {
		f.epochs[i], f.slices[i] = sec, 0
	}
	f.slices[i] += n
}

// sum returns what the window holds at now.
func (f *finagleBudget) sum(now time.Time) int64 {
	sec := now.UnixNano() / int64(finagleTTL/finagleSlices)
	var s int64
	for i := range f.slices {
		if f.epochs[i] > sec-finagleSlices {
			s += f.slices[i]
		}
	}
	return s
}

func (f *finagleBudget) callStarted(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.add(now, finagleDeposit)
}

func (f *finagleBudget) tryRetry(now time.Time) (func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sum(now)+f.reserve < finagleWithdrawal {
		return nil, false
	}
	f.add(now, -finagleWithdrawal)
	return nil, true
}

// envoyBudget models Envoy's cluster retry_budget {budget_percent: 20,
// min_retry_concurrency: 3}: at most max(3, 20% of the active requests)
// retries may be outstanding at once. As in Envoy's RetryStateImpl, a
// retry is outstanding from the moment it is granted (its backoff
// included) until its attempt has ended; active requests are the attempts
// in flight.
type envoyBudget struct {
	mu              sync.Mutex
	active, retries int
	percent         float64
	minConcurrency  int
	nopGate
}

func newEnvoyBudget(percent float64, minConcurrency int) *envoyBudget {
	return &envoyBudget{percent: percent, minConcurrency: minConcurrency}
}

func (e *envoyBudget) attemptStarted() {
	e.mu.Lock()
	e.active++
	e.mu.Unlock()
}

func (e *envoyBudget) attemptEnded(time.Time, bool) {
	e.mu.Lock()
	e.active--
	e.mu.Unlock()
}

func (e *envoyBudget) tryRetry(time.Time) (func(), bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	limit := max(e.minConcurrency, int(e.percent*float64(e.active)))
	if e.retries >= limit {
		return nil, false
	}
	e.retries++
	return func() {
		e.mu.Lock()
		e.retries--
		e.mu.Unlock()
	}, true
}

// retryModel is a client that retries as our Transport does, asking its
// gate before each retry: at most 1 + maxRetries attempts; network errors,
// 429 and 5xx but 501 are retried; the wait before retry n (from 0) is
// min(cap, base·2^n + a uniform jitter in [0, base·2^n)), our default
// schedule (500 ms, 30 s); the response of a retried attempt is drained and
// closed. It sends GETs without a body only.
type retryModel struct {
	base http.RoundTripper
	gate retryGate

	mu  sync.Mutex
	rnd *rand.Rand
}

func newRetryModel(base http.RoundTripper, gate retryGate) *retryModel {
	return &retryModel{base: base, gate: gate, rnd: rand.New(rand.NewPCG(seed, 2))}
}

// do makes one logical call.
func (m *retryModel) do(req *http.Request) (*http.Response, error) {
	m.gate.callStarted(time.Now())
	var release func()
	for n := 0; ; n++ {
		m.gate.attemptStarted()
		resp, err := m.base.RoundTrip(req)
		failed := err != nil || retryableStatus(resp.StatusCode)
		m.gate.attemptEnded(time.Now(), failed)
		if release != nil {
			release()
			release = nil
		}
		if !failed || n >= maxRetries {
			return resp, err
		}
		var ok bool
		if release, ok = m.gate.tryRetry(time.Now()); !ok {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		timer := time.NewTimer(m.backoff(n))
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			if release != nil {
				release()
			}
			return nil, req.Context().Err()
		}
	}
}

// backoff returns the wait before retry n (from 0), as our Transport's
// default schedule draws it.
func (m *retryModel) backoff(n int) time.Duration {
	base, cap := resilient.DefaultBackoffBase, resilient.DefaultBackoffMax
	d := base << n
	if d >= cap {
		return cap
	}
	m.mu.Lock()
	j := time.Duration(m.rnd.Int64N(int64(d)))
	m.mu.Unlock()
	return min(cap, d+j)
}

// retryableStatus reports whether a client that retries as ours retries an
// answer with status.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
}

// The models' own rules, checked one by one.

func TestGRPCThrottleModel(t *testing.T) {
	g := newGRPCThrottle(10, 0.1)
	now := time.Time{}
	for i := range 4 {
		g.attemptEnded(now, true)
		if _, ok := g.tryRetry(now); !ok {
			t.Fatalf("retry refused after %d failures, with %.1f tokens", i+1, g.tokens)
		}
	}
	g.attemptEnded(now, true) // 5 tokens: not above half
	if _, ok := g.tryRetry(now); ok {
		t.Fatalf("retry granted with %.1f tokens, want none at maxTokens/2", g.tokens)
	}
	for range 11 {
		g.attemptEnded(now, false)
	}
	if _, ok := g.tryRetry(now); !ok {
		t.Errorf("retry refused with %.1f tokens after 11 successes", g.tokens)
	}
	for range 200 {
		g.attemptEnded(now, false)
	}
	if g.tokens != 10 {
		t.Errorf("tokens = %v after many successes, want the maximum, 10", g.tokens)
	}
	for range 20 {
		g.attemptEnded(now, true)
	}
	if g.tokens != 0 {
		t.Errorf("tokens = %v after many failures, want 0", g.tokens)
	}
}

func TestFinagleBudgetModel(t *testing.T) {
	f := newFinagleBudget()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	granted := 0
	for {
		if _, ok := f.tryRetry(now); !ok {
			break
		}
		granted++
	}
	if granted != 100 {
		t.Fatalf("%d retries granted from the reserve, want 10/s × 10 s = 100", granted)
	}
	for range 5 {
		f.callStarted(now)
	}
	if _, ok := f.tryRetry(now); !ok {
		t.Error("five calls did not pay for a retry (20%)")
	}
	if _, ok := f.tryRetry(now); ok {
		t.Error("a retry granted beyond the reserve and 20% of the calls")
	}
	later := now.Add(finagleTTL)
	if _, ok := f.tryRetry(later); !ok {
		t.Error("the window did not forget the retries of 10 s ago")
	}
}

func TestEnvoyBudgetModel(t *testing.T) {
	e := newEnvoyBudget(0.2, 3)
	now := time.Time{}
	var releases []func()
	for range 3 {
		rel, ok := e.tryRetry(now)
		if !ok {
			t.Fatal("one of the first 3 retries refused")
		}
		releases = append(releases, rel)
	}
	if _, ok := e.tryRetry(now); ok {
		t.Fatal("a 4th concurrent retry granted with no request active")
	}
	releases[0]()
	if _, ok := e.tryRetry(now); !ok {
		t.Fatal("a retry refused after one was released")
	}
	for range 20 {
		e.attemptStarted()
	}
	if _, ok := e.tryRetry(now); !ok {
		t.Error("a 4th retry refused with 20 requests active (20% of 20 = 4)")
	}
	if _, ok := e.tryRetry(now); ok {
		t.Error("a 5th retry granted with 20 requests active")
	}
}

// grantAll is a gate that grants every retry: the bare retry loop.
type grantAll struct{ nopGate }

func (grantAll) tryRetry(time.Time) (func(), bool) { return nil, true }

func TestRetryModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := resilienttest.NewPipeServer(resilienttest.Postato,
			resilienttest.WithFaults(resilienttest.Faults{Seed: seed, ServerError: 1}))
		defer srv.Close()
		m := newRetryModel(srv.Transport(), grantAll{})
		start := time.Now()
		o := call(m.do, http.MethodGet, srv.URL+"/v1/posts", nil, "1")
		if o.ok() || o.status < 500 {
			t.Errorf("call = %d, %v; want the last 5xx", o.status, o.err)
		}
		if n := srv.Stats().Requests; n != 1+maxRetries {
			t.Errorf("%d attempts, want %d", n, 1+maxRetries)
		}
		// Five waits of base·2^n plus jitter: at least 15.5 s, less than 31 s.
		if d := time.Since(start); d < 15500*time.Millisecond || d >= 31*time.Second {
			t.Errorf("the retries took %v of fake time, want [15.5s, 31s)", d)
		}
	})
	m := newRetryModel(nil, grantAll{})
	for n := range 8 {
		d := resilient.DefaultBackoffBase << n
		lo, hi := min(d, resilient.DefaultBackoffMax), min(2*d, resilient.DefaultBackoffMax)
		for range 100 {
			if w := m.backoff(n); w < lo || w > hi || w == hi && hi != resilient.DefaultBackoffMax {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v)", n, w, lo, hi)
			}
		}
	}
}
