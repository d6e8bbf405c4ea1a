package resilient_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/resilienthttp/resilient"
	"golang.org/x/time/rate"
)

// This file holds the cases of TestBoundsProperty
// (bounds_property_test.go): the options, callers and server behaviors
// each draws.
// boundsKnobs are the options of one side (the Transport's, or a call's
// WithCallOptions) that bound a call: each set flag applies its value.
type boundsKnobs struct {
	MaxRetries     *int
	Backoff        *[2]time.Duration // base, max
	MaxElapsed     *time.Duration
	AttemptTimeout *time.Duration
	MaxRetryAfter  *time.Duration
	Hedging        *resilient.Hedging // MaxHedges 0: WithoutHedging
	Buffered       *int64
	MaxBody        *int64 // WithMaxBufferedBody
}

func (k boundsKnobs) String() string {
	var parts []string
	if k.MaxRetries != nil {
		parts = append(parts, fmt.Sprintf("WithMaxRetries(%d)", *k.MaxRetries))
	}
	if k.Backoff != nil {
		parts = append(parts, fmt.Sprintf("WithBackoff(%v, %v)", k.Backoff[0], k.Backoff[1]))
	}
	if k.MaxElapsed != nil {
		parts = append(parts, fmt.Sprintf("WithMaxElapsed(%v)", *k.MaxElapsed))
	}
	if k.AttemptTimeout != nil {
		parts = append(parts, fmt.Sprintf("WithAttemptTimeout(%v)", *k.AttemptTimeout))
	}
	if k.MaxRetryAfter != nil {
		parts = append(parts, fmt.Sprintf("WithMaxRetryAfter(%v)", *k.MaxRetryAfter))
	}
	if h := k.Hedging; h != nil {
		if h.MaxHedges == 0 {
			parts = append(parts, "WithoutHedging()")
		} else {
			parts = append(parts, fmt.Sprintf("WithHedging(%+v)", *h))
		}
	}
	if k.Buffered != nil {
		parts = append(parts, fmt.Sprintf("WithBufferedResponse(%d)", *k.Buffered))
	}
	if k.MaxBody != nil {
		parts = append(parts, fmt.Sprintf("WithMaxBufferedBody(%d)", *k.MaxBody))
	}
	return strings.Join(parts, ", ")
}

func (k boundsKnobs) options() []resilient.Option {
	var opts []resilient.Option
	if k.MaxRetries != nil {
		opts = append(opts, resilient.WithMaxRetries(*k.MaxRetries))
	}
	if k.Backoff != nil {
		opts = append(opts, resilient.WithBackoff(k.Backoff[0], k.Backoff[1]))
	}
	if k.MaxElapsed != nil {
		opts = append(opts, resilient.WithMaxElapsed(*k.MaxElapsed))
	}
	if k.AttemptTimeout != nil {
		opts = append(opts, resilient.WithAttemptTimeout(*k.AttemptTimeout))
	}
	if k.MaxRetryAfter != nil {
		opts = append(opts, resilient.WithMaxRetryAfter(*k.MaxRetryAfter))
	}
	if h := k.Hedging; h != nil {
		if h.MaxHedges == 0 {
			opts = append(opts, resilient.WithoutHedging())
		} else {
			opts = append(opts, resilient.WithHedging(*h))
		}
	}
	if k.Buffered != nil {
		opts = append(opts, resilient.WithBufferedResponse(*k.Buffered))
	}
	if k.MaxBody != nil {
		opts = append(opts, resilient.WithMaxBufferedBody(*k.MaxBody))
	}
	return opts
}

// over returns k with the values set in o applied over it.
func (k boundsKnobs) over(o boundsKnobs) boundsKnobs {
	if o.MaxRetries != nil {
		k.MaxRetries = o.MaxRetries
	}
	if o.Backoff != nil {
		k.Backoff = o.Backoff
	}
	if o.MaxElapsed != nil {
		k.MaxElapsed = o.MaxElapsed
	}
	if o.AttemptTimeout != nil {
		k.AttemptTimeout = o.AttemptTimeout
	}
	if o.MaxRetryAfter != nil {
		k.MaxRetryAfter = o.MaxRetryAfter
	}
	if o.Hedging != nil {
		k.Hedging = o.Hedging
	}
	if o.Buffered != nil {
		k.Buffered = o.Buffered
	}
	if o.MaxBody != nil {
		k.MaxBody = o.MaxBody
	}
	return k
}

// effective returns the values a call under k works with, defaults filled.
func (k boundsKnobs) effective() (retries int, boMax, elapsed, attempt, retryAfter time.Duration, hedges int) {
	retries, boMax, elapsed, retryAfter = resilient.DefaultMaxRetries, resilient.DefaultBackoffMax, resilient.DefaultMaxElapsed, resilient.DefaultMaxRetryAfter
	if k.MaxRetries != nil {
		retries = *k.MaxRetries
	}
	if k.Backoff != nil {
		boMax = k.Backoff[1]
	}
	if k.MaxElapsed != nil {
		elapsed = *k.MaxElapsed
	}
	if k.AttemptTimeout != nil {
		attempt = *k.AttemptTimeout
	}
	if k.MaxRetryAfter != nil {
		retryAfter = *k.MaxRetryAfter
	}
	if k.Hedging != nil {
		hedges = k.Hedging.MaxHedges
	}
	return
}

// boundsCall is one call of a case.
type boundsCall struct {
	Method      string
	Body        string        // "" none, "getbody" with GetBody, "plain" without, "slowgetbody" and "failgetbody" with a GetBody of the caller's own
	GetBodyWait time.Duration // how long a "slowgetbody" GetBody takes
	Expect      bool          // Expect: 100-continue
	CallerKey   bool
	Deadline    time.Duration // of the context, 0 for none
	CancelAfter time.Duration // 0 for never
	StartAt     time.Duration // when the call starts, in a concurrent case
	Opts        *boundsKnobs  // WithCallOptions; nil for none
}

func (c boundsCall) String() string {
	s := fmt.Sprintf("%s body=%q key=%v deadline=%v cancel=%v start=%v", c.Method, c.Body, c.CallerKey, c.Deadline, c.CancelAfter, c.StartAt)
	if c.Body == "slowgetbody" {
		s += fmt.Sprintf(" getbody=%v", c.GetBodyWait)
	}
	if c.Expect {
		s += " expect=100-continue"
	}
	if c.Opts != nil {
		s += " WithCallOptions(" + c.Opts.String() + ")"
	}
	return s
}

// boundsCase is the configuration of one case.
type boundsCase struct {
	Seed        uint64
	Knobs       boundsKnobs
	MaxInFlight int
	Breaker     string // "default", "off" or "custom"
	BreakerSet  resilient.BreakerSettings
	Budget      string // "default", "off", "custom"
	BudgetSet   resilient.RetryBudget
	NoRateLimit bool
	RateLimit   rate.Limit // 0 for none
	RateBurst   int
	Concurrent  bool             // the calls run at once, from their StartAt
	Store       string           // WithQuotaStore: "" none, "pause", "paced" or "dry" (see boundsStore)
	StoreDelay  time.Duration    // the delay of the store's Take
	StoreDry    time.Duration    // how long a "dry" store grants no token
	ExpectWait  time.Duration    // the base's ExpectContinueTimeout
	Behaviors   []boundsBehavior // per server request, in order; ok after the last
	Calls       []boundsCall
}

func (c *boundsCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (-bounds.seed=%d)\n  Transport: %s", c.Seed, c.Seed, c.Knobs)
	fmt.Fprintf(&b, "; MaxInFlight %d; breaker %s %+v; budget %s %+v; WithoutRateLimit %v; WithRateLimit(%v, %d)\n",
		c.MaxInFlight, c.Breaker, c.BreakerSet, c.Budget, c.BudgetSet, c.NoRateLimit, c.RateLimit, c.RateBurst)
	if c.Store != "" {
		fmt.Fprintf(&b, "  WithQuotaStore(%s, delay %v, dry %v)\n", c.Store, c.StoreDelay, c.StoreDry)
	}
	fmt.Fprintf(&b, "  ExpectContinueTimeout %v; concurrent %v; server: %v\n", c.ExpectWait, c.Concurrent, c.Behaviors)
	for i, call := range c.Calls {
		fmt.Fprintf(&b, "  call %d: %s\n", i, call)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

func drawDuration(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1)).Truncate(time.Millisecond)
}

// drawKnobs draws a random subset of the bounding options; perCall draws
// fewer of them.
func drawKnobs(r *rand.Rand, perCall bool) boundsKnobs {
	p := 2 // one in p
	if perCall {
		p = 3
	}
	var k boundsKnobs
	if r.IntN(p) == 0 {
		k.MaxRetries = ptr(r.IntN(7))
		if r.IntN(10) == 0 {
			k.MaxRetries = ptr(math.MaxInt) // bounded by the budget alone
		}
	}
	if r.IntN(p) == 0 {
		base := []time.Duration{0, 10 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}[r.IntN(5)]
		k.Backoff = &[2]time.Duration{base, base * time.Duration([]int{1, 4, 60}[r.IntN(3)])}
	}
	if r.IntN(p) == 0 {
		switch r.IntN(3) {
		case 0:
			k.MaxElapsed = ptr(time.Duration(0))
		default:
			k.MaxElapsed = ptr(drawDuration(r, 50*time.Millisecond, 2*time.Minute))
		}
	}
	if r.IntN(p) == 0 {
		if r.IntN(4) == 0 {
			k.AttemptTimeout = ptr(time.Duration(0))
		} else {
			k.AttemptTimeout = ptr(drawDuration(r, 20*time.Millisecond, 10*time.Second))
		}
	}
	if r.IntN(p) == 0 {
		k.MaxRetryAfter = ptr([]time.Duration{0, time.Second, 10 * time.Second, 2 * time.Minute}[r.IntN(4)])
	}
	if r.IntN(p) == 0 {
		switch r.IntN(3) {
		case 0:
			k.Hedging = &resilient.Hedging{} // off
		case 1:
			k.Hedging = &resilient.Hedging{Delay: drawDuration(r, time.Millisecond, 2*time.Second), MaxHedges: 1 + r.IntN(3)}
		case 2:
			k.Hedging = &resilient.Hedging{MaxHedges: 1 + r.IntN(2), Quantile: 0.5} // adaptive
		}
	}
	if r.IntN(p) == 0 {
		k.Buffered = ptr([]int64{0, 4, 1 << 10}[r.IntN(3)])
	}
	if r.IntN(2*p) == 0 {
		k.MaxBody = ptr([]int64{0, 4, 1 << 10}[r.IntN(3)])
	}
	return k
}

func drawBoundsCase(seed uint64) *boundsCase {
	r := rand.New(rand.NewPCG(seed, 0xb0))
	c := &boundsCase{Seed: seed, Knobs: drawKnobs(r, false)}
	if r.IntN(3) == 0 {
		c.MaxInFlight = 1 + r.IntN(3)
	}
	switch r.IntN(3) {
	case 0:
		c.Breaker = "default"
	case 1:
		c.Breaker = "off"
	default:
		c.Breaker = "custom"
		c.BreakerSet = resilient.BreakerSettings{
			ConsecutiveFailures: r.IntN(4),
			MinRequests:         1 + r.IntN(5),
			FailureRatio:        0.5,
			OpenTimeout:         drawDuration(r, 100*time.Millisecond, 30*time.Second),
			ProbeTimeout:        drawDuration(r, 100*time.Millisecond, 30*time.Second),
		}
	}
	switch r.IntN(3) {
	case 0:
		c.Budget = "default"
	case 1:
		c.Budget = "off"
	default:
		c.Budget = "custom"
		c.BudgetSet = resilient.RetryBudget{Ratio: 0.1, Burst: float64(r.IntN(4)), ThrottledCost: 0.5}
	}
	c.NoRateLimit = r.IntN(4) == 0
	if !c.NoRateLimit && r.IntN(4) == 0 {
		c.RateLimit, c.RateBurst = rate.Limit(1+r.IntN(20)), 1+r.IntN(3)
	}
	// The server: mostly faults, some answers.
	for range 1 + r.IntN(40) {
		c.Behaviors = append(c.Behaviors, boundsBehavior(r.IntN(int(bhCount))))
	}
	c.Concurrent = r.IntN(3) == 0
	if !c.NoRateLimit && r.IntN(4) == 0 {
		c.Store = []string{"pause", "paced", "dry"}[r.IntN(3)]
		c.StoreDelay = drawDuration(r, time.Millisecond, []time.Duration{time.Second, 30 * time.Second, 3 * time.Minute}[r.IntN(3)])
		if c.Store == "dry" {
			c.StoreDry = drawDuration(r, 0, 3*time.Minute)
		}
	}
	if r.IntN(3) == 0 {
		c.ExpectWait = drawDuration(r, 10*time.Millisecond, 5*time.Second)
	}
	for range 1 + r.IntN(4) {
		call := boundsCall{Method: http.MethodGet}
		if c.Concurrent && r.IntN(2) == 0 {
			call.StartAt = drawDuration(r, 0, 5*time.Second)
		}
		if r.IntN(2) == 0 {
			call.Method = http.MethodPost
			call.Body = []string{"", "getbody", "plain", "slowgetbody", "failgetbody"}[r.IntN(5)]
			if call.Body == "slowgetbody" {
				call.GetBodyWait = drawDuration(r, 0, 3*time.Second)
			}
			call.CallerKey = r.IntN(3) == 0
			call.Expect = call.Body != "" && r.IntN(3) == 0
		}
		if r.IntN(2) == 0 {
			call.Deadline = drawDuration(r, 10*time.Millisecond, 3*time.Minute)
			if r.IntN(20) == 0 {
				call.Deadline = time.Nanosecond // over before the call starts
			}
		}
		if r.IntN(4) == 0 {
			call.CancelAfter = drawDuration(r, 0, time.Minute)
		}
		if r.IntN(3) == 0 {
			call.Opts = ptr(drawKnobs(r, true))
		}
		c.Calls = append(c.Calls, call)
	}
	return c
}

func (c *boundsCase) transportOptions() []resilient.Option {
	opts := c.Knobs.options()
	if c.MaxInFlight > 0 {
		opts = append(opts, resilient.WithMaxInFlight(c.MaxInFlight))
	}
	switch c.Breaker {
	case "off":
		opts = append(opts, resilient.WithoutBreaker())
	case "custom":
		opts = append(opts, resilient.WithBreaker(c.BreakerSet))
	}
	switch c.Budget {
	case "off":
		opts = append(opts, resilient.WithoutRetryBudget())
	case "custom":
		opts = append(opts, resilient.WithRetryBudget(c.BudgetSet))
	}
	if c.NoRateLimit {
		opts = append(opts, resilient.WithoutRateLimit())
	} else if c.RateLimit > 0 {
		opts = append(opts, resilient.WithRateLimit(c.RateLimit, c.RateBurst))
	}
	return opts
}
