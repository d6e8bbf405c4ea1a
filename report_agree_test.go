package resilient

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilient/resilienttest"
)

var agreeScenarios = flag.Int("agree.n", 0, "scenarios of TestObservationsAgree (0: its default)")

// agreeKey is the key of the *agreeCall in a call's context.
type agreeKey struct{}

// agreeCall is what TestObservationsAgree records of one call, from every
// channel the Transport reports it on.
type agreeCall struct {
	mu      sync.Mutex
	id      string
	report  Report
	obs     []Attempt     // WithContextObserver
	recs    []slog.Record // WithLogger
	traced  []Attempt     // Tracer.Attempt
	starts  []AttemptInfo // Tracer.StartAttempt
	ends    []Report      // Tracer.EndCall
	status  int           // returned; 0 for an error
	err     error         // returned
	elapsed time.Duration // the call's time in the bubble
	cancel  bool          // the caller cancels it at some point
}

func agreeOf(ctx context.Context) *agreeCall {
	c, _ := ctx.Value(agreeKey{}).(*agreeCall)
	return c
}

// agreeHandler is a slog.Handler that files each attempt's record with its
// call, by the record's context.
type agreeHandler struct{ t *testing.T }

func (h agreeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h agreeHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h agreeHandler) WithGroup(string) slog.Handler            { return h }
func (h agreeHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "breaker") {
		return nil
	}
	c := agreeOf(ctx)
	if c == nil {
		h.t.Errorf("record %q without its call's context", r.Message)
		return nil
	}
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	c.mu.Unlock()
	return nil
}

// agreeTracer files what a Tracer sees with its call.
type agreeTracer struct{ t *testing.T }

func (agreeTracer) StartCall(ctx context.Context, req *http.Request) context.Context { return ctx }
func (tr agreeTracer) StartAttempt(req *http.Request, info AttemptInfo) (*http.Request, func(*http.Response, error)) {
	c := agreeOf(req.Context())
	if c == nil {
		tr.t.Errorf("StartAttempt without its call's context: %+v", info)
		return req, nil
	}
	c.mu.Lock()
	c.starts = append(c.starts, info)
	c.mu.Unlock()
	return req, nil
}
func (agreeTracer) Attempt(ctx context.Context, a Attempt) {
	c := agreeOf(ctx)
	c.mu.Lock()
	c.traced = append(c.traced, a)
	c.mu.Unlock()
}
func (agreeTracer) EndCall(ctx context.Context, r *Report) {
	c := agreeOf(ctx)
	c.mu.Lock()
	c.ends = append(c.ends, *r)
	c.mu.Unlock()
}

// TestObservationsAgree drives Transports of random settings against
// fault servers (seeded), in a synctest bubble, and checks that what each
// call's Report says agrees with its Attempt records, its log records and
// what its Tracer saw: every attempt recorded once, in order; the counts,
// waits and durations added up; the outcome, status and stop reason those
// of the last record; the level of each record as WithLogger documents it.
func TestObservationsAgree(t *testing.T) {
	scenarios := 40
	if *agreeScenarios > 0 {
		scenarios = *agreeScenarios
	}
	if testing.Short() {
		scenarios = 8
	}
	for s := range scenarios {
		seed := uint64(20261215 + s)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runAgree(t, seed) })
		})
	}
}

func runAgree(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 7))
	retryAfter := []time.Duration{-1, 0, time.Second, 3 * time.Second, 20 * time.Second}[r.IntN(5)]
	dialect := []resilienttest.Dialect{resilienttest.Aidelly, resilienttest.Altyaa, resilienttest.Postato}[r.IntN(3)]
	srvOpts := []resilienttest.Option{
		resilienttest.WithFaults(resilienttest.Faults{
			Seed:             int64(seed),
			ServerError:      0.25,
			RateLimit:        0.12,
			DropBefore:       0.05,
			DropAfter:        0.05,
			Slow:             0.10,
			Malformed:        0.03,
			HTML:             0.03,
			ServerErrorAfter: 0.03,
			CutBody:          0.03,
			SlowDelay:        time.Duration(1+r.IntN(3)) * time.Second,
			RetryAfter:       retryAfter,
		}),
		resilienttest.WithLatency(time.Duration(5+r.IntN(50)) * time.Millisecond),
	}
	if r.IntN(3) == 0 {
		srvOpts = append(srvOpts, resilienttest.WithQuota(resilienttest.Quota{Limit: 5 + r.IntN(20), Window: time.Second}))
	}
	srv := resilienttest.NewPipeServer(dialect, srvOpts...)
	defer srv.Close()

	var settings []string
	opts := []Option{
		WithMaxRetries(r.IntN(5)),
		WithBackoff(time.Duration(10+r.IntN(500))*time.Millisecond, 2*time.Second),
		WithLogger(slog.New(agreeHandler{t})),
		WithContextObserver(func(ctx context.Context, a Attempt) {
			c := agreeOf(ctx)
			if c == nil {
				t.Errorf("an attempt without its call's context: %+v", a)
				return
			}
			c.mu.Lock()
			c.obs = append(c.obs, a)
			c.mu.Unlock()
		}),
		WithTracer(agreeTracer{t}),
	}
	maybe := func(name string, o Option) {
		if r.IntN(2) == 0 {
			opts = append(opts, o)
			settings = append(settings, name)
		}
	}
	maybe("retry-after cap", WithMaxRetryAfter(time.Duration(1+r.IntN(5))*time.Second))
	maybe("hedging", WithHedging(Hedging{Delay: time.Duration(50+r.IntN(200)) * time.Millisecond, MaxHedges: 1 + r.IntN(2)}))
	maybe("breaker", WithBreaker(BreakerSettings{ConsecutiveFailures: 2 + r.IntN(3), OpenTimeout: time.Second}))
	maybe("budget", WithRetryBudget(RetryBudget{Ratio: 0.1, Burst: float64(1 + r.IntN(3))}))
	maybe("in flight", WithMaxInFlight(1+r.IntN(2)))
	maybe("rate limit", WithRateLimit(rate.Limit(2+r.IntN(20)), 1+r.IntN(3)))
	maybe("attempt timeout", WithAttemptTimeout(time.Duration(300+r.IntN(2000))*time.Millisecond))
	maybe("buffered", WithBufferedResponse(1<<16))
	maybe("max elapsed", WithMaxElapsed(time.Duration(2+r.IntN(20))*time.Second))
	tr := New(srv.Transport(), opts...)
	defer tr.CloseIdleConnections()

	callers, per := 1+r.IntN(3), 4+r.IntN(6)
	var mu sync.Mutex
	var calls []*agreeCall
	var wg sync.WaitGroup
	for g := range callers {
		cr := rand.New(rand.NewPCG(seed, uint64(100+g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c := &agreeCall{id: fmt.Sprintf("%d-%d", g, i)}
				agreeOne(t, tr, srv.URL, cr, c)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				time.Sleep(time.Duration(cr.IntN(500)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	synctest.Wait()
	outcomes := map[string]int{}
	var attempts int
	for _, c := range calls {
		checkAgree(t, c, settings)
		attempts += c.report.Attempts
		outcomes[string(c.report.Outcome)+"/"+string(c.report.StopReason)]++
	}
	t.Logf("%v: %d calls, %d attempts: %v; server %+v", settings, len(calls), attempts, outcomes, srv.Stats())
}

// agreeOne makes call c, of a kind drawn from r.
func agreeOne(t *testing.T, tr *Transport, base string, r *rand.Rand, c *agreeCall) {
	ctx := context.WithValue(context.Background(), agreeKey{}, c)
	ctx = WithReport(ctx, &c.report)
	switch r.IntN(5) {
	case 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(200+r.IntN(5000))*time.Millisecond)
		defer cancel()
	case 1:
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		time.AfterFunc(time.Duration(r.IntN(4000))*time.Millisecond, cancel)
		c.cancel = true
	}
	method, path, body := http.MethodGet, "/v1/posts", ""
	switch r.IntN(5) {
	case 0:
		path = "/v1/nothing-here" // a 404
	case 1, 2:
		method, body = http.MethodPost, fmt.Sprintf(`{"content":"post %s"}`, c.id)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := newRequest(t, ctx, method, base+path, rd)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	c.elapsed, c.err = time.Since(start), err
	if resp != nil {
		c.status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// agreeLevel is the level WithLogger documents for an attempt's record;
// canceled says that the call's caller canceled it at some point (its
// context has no deadline then).
func agreeLevel(a Attempt, canceled bool) slog.Level {
	switch {
	case a.Retry:
		return slog.LevelWarn
	case a.Outcome == OutcomeSuccess && a.Number == 1:
		return slog.LevelDebug
	case a.Outcome == OutcomeSuccess:
		return slog.LevelInfo
	case a.Outcome == OutcomePermanent && a.StatusCode >= 400 && a.StatusCode < 500 && a.StatusCode != 408 && a.StatusCode != 429:
		return slog.LevelInfo
	case (a.Outcome == OutcomeCanceled || a.StopReason == StopCanceled) && (errors.Is(a.Err, context.Canceled) || canceled):
		// The caller canceled it, also as a retryable answer came.
		return slog.LevelInfo
	}
	return slog.LevelError
}

// recAttrs returns the attributes of a record by key.
func recAttrs(rec slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
	return m
}

// checkAgree checks one call of TestObservationsAgree.
func checkAgree(t *testing.T, c *agreeCall, settings []string) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("call %s (%v): %s\nreport %+v\nattempts %+v", c.id, settings, fmt.Sprintf(format, args...), c.report, c.obs)
	}
	rep := c.report
	if len(c.ends) != 1 {
		errorf("Tracer.EndCall called %d times, want 1", len(c.ends))
	} else if c.ends[0] != rep {
		errorf("Tracer.EndCall got %+v, WithReport %+v", c.ends[0], rep)
	}
	if rep.StatusCode != c.status {
		errorf("Report.StatusCode %d, returned %d", rep.StatusCode, c.status)
	}
	if rep.Duration != c.elapsed {
		errorf("Report.Duration %v, the call took %v", rep.Duration, c.elapsed)
	}
	if len(c.traced) != len(c.obs) {
		errorf("Tracer.Attempt saw %d attempts, the observer %d", len(c.traced), len(c.obs))
	}
	if len(c.obs) == 0 {
		if rep.Attempts != 0 || rep.Outcome != OutcomeCanceled || len(c.recs) != 0 {
			errorf("no attempt observed; %d records", len(c.recs))
		}
		return
	}
	last := c.obs[len(c.obs)-1]
	canceledWaiting := last.Retry // the call ended while it waited to retry
	var hedges int
	var waited, durations time.Duration
	for i, a := range c.obs {
		if a.Number != i+1 || a.MaxAttempts != c.obs[0].MaxAttempts {
			errorf("attempt %d is numbered %d of %d", i+1, a.Number, a.MaxAttempts)
		}
		if i < len(c.obs)-1 && !a.Retry {
			errorf("attempt %d is followed by another, Retry false", a.Number)
		}
		if !a.Retry && a.Delay != 0 {
			errorf("attempt %d: no retry, Delay %v", a.Number, a.Delay)
		}
		if a.Retry && a.StopReason != "" {
			errorf("attempt %d: retried, StopReason %q", a.Number, a.StopReason)
		}
		if a.Delay < 0 || a.LocalWait < 0 || a.SlotWait < 0 || a.Duration < 0 {
			errorf("attempt %d: a negative time", a.Number)
		}
		if a.Duration < a.LocalWait+a.SlotWait {
			errorf("attempt %d: Duration %v shorter than its waits %v + %v", a.Number, a.Duration, a.LocalWait, a.SlotWait)
		}
		if a.Hedge > a.Hedges || a.Hedge < 0 {
			errorf("attempt %d: answered by copy %d of %d sent", a.Number, a.Hedge, a.Hedges)
		}
		if a.Outcome == OutcomeSuccess && a.StatusCode == 0 {
			errorf("attempt %d: a success without a status", a.Number)
		}
		hedges += a.Hedges
		waited += a.LocalWait + a.SlotWait
		durations += a.Duration
		if a.Retry && (i < len(c.obs)-1) {
			waited += a.Delay
			durations += a.Delay
		}
	}
	if rep.Attempts != len(c.obs)+hedges || rep.Hedges != hedges {
		errorf("Report: %d attempts, %d hedges; observed %d attempts, %d hedges", rep.Attempts, rep.Hedges, len(c.obs), hedges)
	}
	if len(c.starts) > rep.Attempts {
		errorf("Tracer.StartAttempt called %d times, Report.Attempts %d", len(c.starts), rep.Attempts)
	}
	for i, s := range c.starts {
		if s.ResendCount != i {
			errorf("StartAttempt %d has ResendCount %d", i, s.ResendCount)
		}
	}
	if canceledWaiting {
		if rep.Outcome != OutcomeCanceled || rep.StopReason != StopCanceled {
			errorf("canceled while waiting to retry: Report outcome %q, stop %q", rep.Outcome, rep.StopReason)
		}
		if rep.Waited < waited || rep.Waited > waited+last.Delay {
			errorf("Report.Waited %v, want %v plus part of %v", rep.Waited, waited, last.Delay)
		}
		if rep.Duration != durations+(rep.Waited-waited) {
			errorf("Report.Duration %v; attempts and waits add up to %v", rep.Duration, durations+(rep.Waited-waited))
		}
	} else {
		if rep.Outcome != last.Outcome {
			errorf("Report.Outcome %q, the last attempt's %q", rep.Outcome, last.Outcome)
		}
		if rep.StopReason != last.StopReason {
			errorf("Report.StopReason %q, the last attempt's %q", rep.StopReason, last.StopReason)
		}
		if rep.Waited != waited {
			errorf("Report.Waited %v; the attempts' waits and delays add up to %v", rep.Waited, waited)
		}
		if rep.Duration != durations {
			errorf("Report.Duration %v; the attempts' durations and delays add up to %v", rep.Duration, durations)
		}
		if last.StatusCode != rep.StatusCode && !refusedOutcome(last.Outcome) && last.StopReason != StopRetryBudget && last.StatusCode != 0 {
			errorf("Report.StatusCode %d, the last attempt's %d", rep.StatusCode, last.StatusCode)
		}
	}

	// The log: one record per attempt, and one more for a call canceled
	// while it waited.
	want := len(c.obs)
	if canceledWaiting {
		want++
	}
	if len(c.recs) != want {
		errorf("%d log records, want %d", len(c.recs), want)
		return
	}
	for i, a := range c.obs {
		rec := c.recs[i]
		attrs := recAttrs(rec)
		if lv := agreeLevel(a, c.cancel); rec.Level != lv {
			errorf("attempt %d (%s, status %d, err %v) logged at %v, want %v", a.Number, a.Outcome, a.StatusCode, a.Err, rec.Level, lv)
		}
		if v, ok := attrs["attempt"]; !ok || v.Int64() != int64(a.Number) {
			errorf("record %d: attempt %v, want %d", i, v, a.Number)
		}
		if v, ok := attrs["status"]; ok != (a.StatusCode != 0) || ok && v.Int64() != int64(a.StatusCode) {
			errorf("record %d: status %v, want %d", i, v, a.StatusCode)
		}
		if v, ok := attrs["delay"]; ok != a.Retry || ok && v.Duration() != a.Delay {
			errorf("record %d: delay %v, want %v (retry %v)", i, v, a.Delay, a.Retry)
		}
		if v, ok := attrs["stop_reason"]; ok != (a.StopReason != "") || ok && v.String() != string(a.StopReason) {
			errorf("record %d: stop_reason %v, want %q", i, v, a.StopReason)
		}
		if v := attrs["outcome"]; v.String() != string(a.Outcome) {
			errorf("record %d: outcome %v, want %q", i, v, a.Outcome)
		}
		if v := attrs["duration"]; v.Duration() != a.Duration {
			errorf("record %d: duration %v, want %v", i, v, a.Duration)
		}
	}
	if canceledWaiting {
		rec := c.recs[len(c.recs)-1]
		attrs := recAttrs(rec)
		wantLevel := slog.LevelInfo
		if !c.cancel || rep.Outcome != OutcomeCanceled {
			wantLevel = rec.Level // a deadline: Error
		}
		if attrs["stop_reason"].String() != string(StopCanceled) || attrs["attempt"].Int64() != int64(last.Number) || rec.Level != wantLevel {
			errorf("the record of the canceled wait: %v %v", rec.Level, attrs)
		}
	}
}

// refusedOutcome reports whether o is a local refusal.
func refusedOutcome(o Outcome) bool {
	return o == OutcomeCircuitOpen || o == OutcomeRateLimited || o == OutcomeTooManyInFlight
}
