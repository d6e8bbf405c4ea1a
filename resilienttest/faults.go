package resilienttest

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// stepKind is what a Step or a random fault does to an attempt.
type stepKind int

const (
	stepNormal      stepKind = iota // the normal answer
	stepRespond                     // the dialect's answer for a status
	stepServerAfter                 // process (store a write), then a 500
	stepDropBefore                  // close the connection before processing
	stepDropAfter                   // process, then close without answering
	stepSlow                        // wait, then the normal answer
	stepHTML                        // an HTML error page
	stepMalformed                   // a truncated JSON envelope
	stepHuge                        // a huge error body
	stepRateLimited                 // 429 with Retry-After
)

// A Step is one scripted answer of a route, made with Respond, DropBefore,
// DropAfter, Slow, HTML, Malformed, Huge or RateLimited.
type Step struct {
	kind   stepKind
	status int
	delay  time.Duration
	size   int
}

// Respond answers with status: the dialect's error envelope for that
// status on the route (a 5xx is the route's server error, 429 its rate
// limit, 409 its conflict, 404 its not-found, any other 4xx its validation
// error), or, for a 2xx, the normal answer (a write is then processed and
// stored).
func Respond(status int) Step { return Step{kind: stepRespond, status: status} }

// FailAfterStoring processes the request (a write is stored) and then
// answers 500 with the route's server error, as a server whose response
// path failed after its commit.
func FailAfterStoring() Step {
	return Step{kind: stepServerAfter, status: http.StatusInternalServerError}
}

// DropBefore closes the connection without processing the request or
// answering it.
func DropBefore() Step { return Step{kind: stepDropBefore} }

// DropAfter processes the request (a write is stored) and then closes the
// connection without answering: the client cannot tell whether it worked.
func DropAfter() Step { return Step{kind: stepDropAfter} }

// Slow waits d (or until the client gives up), then gives the normal
// answer.
func Slow(d time.Duration) Step { return Step{kind: stepSlow, delay: d} }

// HTML answers status with an HTML error page, as a proxy in front of an
// API does.
func HTML(status int) Step { return Step{kind: stepHTML, status: status} }

// Malformed answers status with a JSON error envelope cut in the middle.
func Malformed(status int) Step { return Step{kind: stepMalformed, status: status} }

// Huge answers status with a JSON error body of size bytes.
func Huge(status, size int) Step { return Step{kind: stepHuge, status: status, size: size} }

// RateLimited answers 429 with the dialect's rate-limit envelope and a
// Retry-After of retryAfter, rounded up to the second.
func RateLimited(retryAfter time.Duration) Step {
	return Step{kind: stepRateLimited, status: http.StatusTooManyRequests, delay: retryAfter}
}

// Faults is a random mix of faults. Each field of probability is the chance
// that an attempt gets that fault; at most one fault is drawn per attempt,
// and their sum must not pass 1. Draws come from a generator seeded with
// Seed: the same sequence of requests gets the same faults.
type Faults struct {
	Seed int64

	ServerError      float64 // a 5xx (500, 502, 503 or 504) with the route's server error, before processing
	ServerErrorAfter float64 // a write is stored, then a 500 with the route's server error
	RateLimit        float64 // 429 with Retry-After
	DropBefore       float64 // the connection is closed before the request is processed
	DropAfter        float64 // the request is processed, then the connection closed without an answer
	Slow             float64 // the answer comes after SlowDelay
	Malformed        float64 // a 500 whose JSON envelope is cut in the middle
	HTML             float64 // a 502 HTML page
	Huge             float64 // a 500 with a HugeSize JSON body

	SlowDelay  time.Duration // default 1s
	RetryAfter time.Duration // default 1s
	HugeSize   int           // default 10 MiB

	// FirstAttemptsOnly limits faults to the first attempt of each write,
	// told by its Idempotency-Key: a retry with the same key is answered
	// normally. Requests without a key always draw.
	FirstAttemptsOnly bool
}

// faultPicker draws faults from a seeded generator.
type faultPicker struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaultPicker(f Faults) *faultPicker {
	if f.SlowDelay <= 0 {
		f.SlowDelay = time.Second
	}
	if f.RetryAfter <= 0 {
		f.RetryAfter = time.Second
	}
	if f.HugeSize <= 0 {
		f.HugeSize = 10 << 20
	}
	return &faultPicker{f: f, rng: rand.New(rand.NewPCG(uint64(f.Seed), 0x9e3779b97f4a7c15))}
}

// pick draws the fault of one attempt.
func (p *faultPicker) pick() Step {
	p.mu.Lock()
	u := p.rng.Float64()
	pick := p.rng.IntN(4)
	p.mu.Unlock()
	f := &p.f
	for _, c := range [...]struct {
		p    float64
		step Step
	}{
		{f.ServerError, Step{kind: stepRespond, status: [...]int{500, 502, 503, 504}[pick]}},
		{f.ServerErrorAfter, FailAfterStoring()},
		{f.RateLimit, RateLimited(f.RetryAfter)},
		{f.DropBefore, DropBefore()},
		{f.DropAfter, DropAfter()},
		{f.Slow, Slow(f.SlowDelay)},
		{f.Malformed, Malformed(http.StatusInternalServerError)},
		{f.HTML, HTML(http.StatusBadGateway)},
		{f.Huge, Huge(http.StatusInternalServerError, f.HugeSize)},
	} {
		if u < c.p {
			return c.step
		}
		u -= c.p
	}
	return Step{kind: stepNormal}
}
