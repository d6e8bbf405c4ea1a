package resilient

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var (
	contractSeed  = flag.Uint64("contract.seed", 0, "run only the TestContractProperty case of this seed (it is logged on a failure)")
	contractCases = flag.Int("contract.cases", 400, "number of cases of TestContractProperty")
)

// TestContractProperty checks DESIGN.md's RoundTripper contract across
// random combinations of options, callers and a scripted hostile base, each
// case in a synctest bubble (which fails on a goroutine left blocked when
// it ends). For every call: exactly one of the response and the error is
// nil; the caller's request body is closed exactly once, and every body
// GetBody made is closed; the caller's request is left as it was given;
// a whole body the base answered with is read to its end by the caller;
// no more attempts than the options allow, hedged copies as documented;
// no write the host is not known to deduplicate sent again after an
// answer that may mean it was processed; and the call returns no later
// than its context's deadline or its budget (WithMaxElapsed), in the
// bubble's fake time. After the calls, once everything they met has
// expired, a call to the healthy host goes through at once: no slot left
// held. -contract.seed replays one case (the seed and the case are logged
// on a failure).
func TestContractProperty(t *testing.T) {
	seededCases(t, "contract", 20270101, *contractSeed, *contractCases, 60, drawContractCase, runContractCase)
}

// ckind is the kind of a scripted step of the base.
type ckind int

const (
	ckStatus  ckind = iota // an answer with a whole body
	ckRefused              // a refused dial: nothing read, nothing written
	ckReset                // the request read, then the connection reset
	ckHang                 // the request read, then no answer until the attempt's context ends
	ckStall                // an answer whose body stalls after a few bytes
	ckBreak                // an answer whose body breaks after a few bytes
	ckHuge                 // an answer with a 3 MiB body
	ckPanic                // the base panics, the request read
	ckBoth                 // a broken base: a response and an error together
	ckNil                  // a broken base: neither a response nor an error
	ckNilBody              // a careless base: a response with a nil Body and a nil Header
)

var ckNames = [...]string{"status", "refused", "reset", "hang", "stall", "break", "huge", "panic", "both", "nil", "nilbody"}

// cstep is one scripted answer of the base.
type cstep struct {
	kind        ckind
	status      int
	retryAfter  string
	envelope    bool
	keyRequired bool   // the envelope says that the idempotency key is missing
	replayed    bool   // an Idempotent-Replayed header: the host says it deduplicates by key
	shouldRetry string // X-Should-Retry; "" for none
}

func (s cstep) String() string {
	str := ckNames[s.kind]
	if s.kind != ckRefused && s.kind != ckReset && s.kind != ckHang && s.kind != ckPanic && s.kind != ckNil {
		str += fmt.Sprintf(" %d", s.status)
		if s.retryAfter != "" {
			str += " RA=" + s.retryAfter
		}
		if s.envelope {
			str += " env"
		}
		if s.shouldRetry != "" {
			str += " should-retry=" + s.shouldRetry
		}
		if s.keyRequired {
			str += " key-required"
		}
		if s.replayed {
			str += " replayed"
		}
	}
	return str
}

// ambiguous reports whether the step may mean that a write was processed.
func (s cstep) ambiguous() bool {
	switch s.kind {
	case ckReset, ckHang, ckPanic, ckBoth, ckNil:
		return true
	case ckRefused:
		return false
	}
	return s.status >= 500 || s.status < 300
}

// wholeBody reports whether the step answers with a body the caller can
// read to its end.
func (s cstep) wholeBody() bool { return s.kind == ckStatus || s.kind == ckHuge }

// ccall is one random caller.
type ccall struct {
	method      string
	body        string // "", "getbody", "plain"
	callerKey   bool
	deadline    time.Duration // 0 for none
	cancelAfter time.Duration // 0 for none
	callElapsed time.Duration // a per-call WithMaxElapsed; 0 for none
	callRetries int           // a per-call WithMaxRetries; -1 for none
	brokenBody  bool          // the caller's body fails after a few bytes
	getBodyErr  bool          // GetBody fails after its first body
	ctxKey      bool          // a key set with WithIdempotencyKey
	callHedges  int           // a per-call WithHedging's MaxHedges; 0 for none, -1 for WithoutHedging
	callBuffer  bool          // a per-call WithBufferedResponse
	callNoKeys  bool          // a per-call WithoutIdempotencyKeys
}

// write reports whether the call is a write the write rule covers.
func (c ccall) write() bool { return c.method == "POST" || c.method == "PATCH" }

func (c ccall) String() string {
	return fmt.Sprintf("%s body=%q key=%v ctxKey=%v deadline=%v cancel=%v elapsed=%v retries=%d broken=%v getBodyErr=%v hedges=%d buffer=%v noKeys=%v",
		c.method, c.body, c.callerKey, c.ctxKey, c.deadline, c.cancelAfter, c.callElapsed, c.callRetries, c.brokenBody, c.getBodyErr,
		c.callHedges, c.callBuffer, c.callNoKeys)
}

// contractCase is one drawn case.
type contractCase struct {
	seed      uint64
	desc      []string
	opts      []Option
	retries   int
	maxHedges int
	elapsed   time.Duration
	keyHosts  bool
	// attemptTimeout is WithAttemptTimeout's; 0 for none
	attemptTimeout time.Duration
	concurrent     bool
	steps          []cstep
	calls          []ccall
}

func (c *contractCase) String() string {
	return fmt.Sprintf("seed %d; options %s; steps %v; calls %v; concurrent %v", c.seed, strings.Join(c.desc, ", "), c.steps, c.calls, c.concurrent)
}

// makeCalls runs run for each of c's calls, all at once when c is
// concurrent, else one after another (with settle, each once its bubble
// settled), and returns once the bubble settled after the last.
func (c *contractCase) makeCalls(run func(int, ccall), settle bool) {
	if c.concurrent {
		var wg sync.WaitGroup
		for i, call := range c.calls {
			wg.Go(func() { run(i, call) })
		}
		wg.Wait()
	} else {
		for i, call := range c.calls {
			run(i, call)
			if settle {
				synctest.Wait()
			}
		}
	}
	synctest.Wait()
}

func drawContractCase(seed uint64) *contractCase {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := &contractCase{seed: seed, retries: DefaultMaxRetries, elapsed: DefaultMaxElapsed}
	pick := func(p float64) bool { return r.Float64() < p }
	add := func(desc string, o Option) { c.desc = append(c.desc, desc); c.opts = append(c.opts, o) }
	jitter := rand.New(rand.NewPCG(seed, 1))
	var jmu sync.Mutex
	c.opts = append(c.opts, withRand(func(n int64) int64 { jmu.Lock(); defer jmu.Unlock(); return jitter.Int64N(n) }))
	if pick(0.7) {
		c.retries = r.IntN(7)
		add(fmt.Sprintf("WithMaxRetries(%d)", c.retries), WithMaxRetries(c.retries))
	}
	switch r.IntN(3) {
	case 0:
		add("WithBackoff(0,0)", WithBackoff(0, 0))
	case 1:
		add("WithBackoff(10ms,1s)", WithBackoff(10*time.Millisecond, time.Second))
	}
	if pick(0.6) {
		c.elapsed = []time.Duration{0, 300 * time.Millisecond, 2 * time.Second, 30 * time.Second}[r.IntN(4)]
		add(fmt.Sprintf("WithMaxElapsed(%v)", c.elapsed), WithMaxElapsed(c.elapsed))
	}
	if pick(0.5) {
		d := []time.Duration{time.Millisecond, 100 * time.Millisecond, time.Second}[r.IntN(3)]
		c.attemptTimeout = d
		add(fmt.Sprintf("WithAttemptTimeout(%v)", d), WithAttemptTimeout(d))
	}
	if pick(0.3) {
		d := []time.Duration{time.Millisecond, 2 * time.Second, 2 * time.Hour}[r.IntN(3)]
		add(fmt.Sprintf("WithMaxRetryAfter(%v)", d), WithMaxRetryAfter(d))
	}
	switch r.IntN(3) {
	case 0:
		add("WithoutRetryBudget", WithoutRetryBudget())
	case 1:
		add("WithRetryBudget(0.1,1)", WithRetryBudget(RetryBudget{Ratio: 0.1, Burst: 1}))
	}
	if pick(0.4) {
		h := Hedging{MaxHedges: 1 + r.IntN(2)}
		if pick(0.7) {
			h.Delay = []time.Duration{time.Millisecond, 50 * time.Millisecond, time.Second}[r.IntN(3)]
		}
		c.maxHedges = h.MaxHedges
		add(fmt.Sprintf("WithHedging(%+v)", h), WithHedging(h))
	}
	switch r.IntN(3) {
	case 0:
		add("WithoutBreaker", WithoutBreaker())
	case 1:
		add("WithBreaker(tight)", WithBreaker(BreakerSettings{MinRequests: 2, ConsecutiveFailures: 2, OpenTimeout: time.Second, Window: 5 * time.Second}))
	}
	if pick(0.3) {
		n := 1 + r.IntN(2)
		add(fmt.Sprintf("WithMaxInFlight(%d)", n), WithMaxInFlight(n))
	}
	if pick(0.4) {
		n := []int64{1, 16, 1 << 10, 1 << 20}[r.IntN(4)]
		add(fmt.Sprintf("WithBufferedResponse(%d)", n), WithBufferedResponse(n))
	}
	switch r.IntN(3) {
	case 0:
		add("WithoutRateLimit", WithoutRateLimit())
	case 1:
		add("WithRateLimit(5,1)", WithRateLimit(5, 1))
	}
	if pick(0.2) {
		add("WithoutIdempotencyKeys", WithoutIdempotencyKeys())
	}
	if pick(0.2) {
		c.keyHosts = true
		add("WithKeyHonoringHosts", WithKeyHonoringHosts("api.contract.test"))
	}
	if pick(0.2) {
		n := []int64{0, 4, 1 << 10}[r.IntN(3)]
		add(fmt.Sprintf("WithMaxBufferedBody(%d)", n), WithMaxBufferedBody(n))
	}
	if pick(0.15) {
		add("WithIdempotencyHeader(X-Idempotency-Key)", WithIdempotencyHeader("X-Idempotency-Key"))
	}
	if pick(0.2) {
		add("WithMaxPeek(8)", WithMaxPeek(8))
	}
	if pick(0.3) {
		add("WithObserver", WithObserver(func(Attempt) {}))
	}
	if pick(0.05) {
		// An observer that panics on a retry: the panic goes on to the
		// caller, every slot and body released.
		add("WithObserver(panics)", WithObserver(func(a Attempt) {
			if a.Retry {
				panic("contract: observer exploded")
			}
		}))
	}
	if pick(0.1) {
		add("WithClassifier(5xx of a read permanent)", WithClassifier(func(resp *http.Response, _ *APIError, _ error, def Class) Class {
			if resp != nil && resp.StatusCode == 502 {
				return Permanent
			}
			return def
		}))
	}

	statuses := []int{200, 201, 400, 409, 429, 500, 502, 503, 504}
	retryAfters := []string{"", "", "0", "1", "3", "120", "7200", "soon", "Wed, 21 Oct 2099 07:28:00 GMT"}
	nsteps := 1 + r.IntN(8)
	for range nsteps {
		var s cstep
		switch k := r.IntN(20); {
		case k < 10:
			s.kind = ckStatus
		case k < 11:
			s.kind = ckRefused
		case k < 13:
			s.kind = ckReset
		case k < 15:
			s.kind = ckHang
		case k < 16:
			s.kind = ckStall
		case k < 17:
			s.kind = ckBreak
		case k < 18:
			s.kind = ckHuge
		case k < 19:
			switch r.IntN(6) {
			case 0:
				s.kind = ckPanic
			case 1:
				s.kind = ckBoth
			case 2:
				s.kind = ckNil
			case 3:
				s.kind = ckNilBody
			default:
				s.kind = ckStatus
			}
		default:
			s.kind = ckStatus
		}
		s.status = statuses[r.IntN(len(statuses))]
		s.retryAfter = retryAfters[r.IntN(len(retryAfters))]
		s.envelope = pick(0.6)
		s.keyRequired = s.envelope && s.status == 400 && pick(0.4)
		s.replayed = pick(0.05)
		if pick(0.15) {
			s.shouldRetry = []string{"true", "false"}[r.IntN(2)]
		}
		c.steps = append(c.steps, s)
	}
	c.concurrent = pick(0.3)
	for range 1 + r.IntN(3) {
		call := ccall{method: []string{"GET", "POST", "PUT", "POST", "PATCH"}[r.IntN(5)]}
		if call.method != "GET" || pick(0.2) {
			call.body = []string{"", "getbody", "plain", "plain"}[r.IntN(4)]
		}
		call.callerKey = call.write() && pick(0.2)
		if pick(0.4) {
			call.deadline = []time.Duration{50 * time.Millisecond, 700 * time.Millisecond, 5 * time.Second, time.Minute}[r.IntN(4)]
		}
		if pick(0.2) {
			call.cancelAfter = []time.Duration{-1, 10 * time.Millisecond, 900 * time.Millisecond, 10 * time.Second}[r.IntN(4)]
		}
		if pick(0.15) {
			call.callElapsed = []time.Duration{time.Millisecond, 400 * time.Millisecond, 10 * time.Second}[r.IntN(3)]
		}
		call.callRetries = -1
		if pick(0.15) {
			call.callRetries = r.IntN(4)
		}
		call.brokenBody = call.body == "plain" && pick(0.1)
		call.getBodyErr = call.body == "getbody" && pick(0.2)
		call.ctxKey = call.write() && !call.callerKey && pick(0.15)
		if pick(0.15) {
			call.callHedges = []int{-1, 1, 2}[r.IntN(3)]
		}
		call.callBuffer = pick(0.1)
		call.callNoKeys = call.write() && pick(0.1)
		c.calls = append(c.calls, call)
	}
	// Without any bound, a base that never answers keeps a call as it
	// keeps a plain client's: where a call has none, the base answers.
	for _, call := range c.calls {
		if c.attemptTimeout == 0 && call.deadline == 0 && call.cancelAfter == 0 && call.callElapsed == 0 && c.elapsed == 0 {
			for j := range c.steps {
				// (A success's body that stalls is read within the
				// attempt with WithBufferedResponse: without a bound, as
				// long as the base takes.)
				if c.steps[j].kind == ckHang || c.steps[j].kind == ckStall {
					c.steps[j] = cstep{kind: ckStatus, status: 503}
				}
			}
		}
	}
	return c
}

// cbody is a request body that counts its Close calls and its reads after
// Close; its type is unknown to http.NewRequest.
type cbody struct {
	mu          sync.Mutex
	r           io.Reader
	closes      int
	readsClosed int
}

func (b *cbody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closes > 0 {
		b.readsClosed++
		return 0, errors.New("read after close")
	}
	return b.r.Read(p)
}

func (b *cbody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closes++
	return nil
}

func (b *cbody) stats() (closes, readsClosed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closes, b.readsClosed
}

// cstallBody yields its prefix, then blocks until ctx ends or it is
// closed; with broken set, it fails at once instead.
type cstallBody struct {
	prefix *strings.Reader
	ctx    context.Context
	closed chan struct{}
	once   sync.Once
	broken bool
}

func (b *cstallBody) Read(p []byte) (int, error) {
	if b.prefix.Len() > 0 {
		return b.prefix.Read(p)
	}
	if b.broken {
		return 0, io.ErrUnexpectedEOF
	}
	select {
	case <-b.ctx.Done():
		return 0, context.Cause(b.ctx)
	case <-b.closed:
		return 0, errors.New("read on closed body")
	}
}

func (b *cstallBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// cseen is what the base saw of one request.
type cseen struct {
	step        cstep
	seq, endSeq int    // order of start and end among all requests
	key         string // the idempotency key it carried; "" for none
}

// cbase is the scripted base.
type cbase struct {
	steps []cstep

	mu      sync.Mutex
	n       int
	seq     int
	healthy bool // answer 200 from now on
	byCall  map[string][]*cseen
	bodies  map[string][]byte // expected body of each response, by X-Contract-Response
	opened  []*crespBody      // every response body it answered with
	taught  bool              // it said that it deduplicates by key
}

// crespBody is a response body of the base that counts its Close calls.
type crespBody struct {
	io.ReadCloser
	id     string
	closes atomic.Int32
}

func (b *crespBody) Close() error {
	b.closes.Add(1)
	return b.ReadCloser.Close()
}

func (b *cbase) RoundTrip(req *http.Request) (*http.Response, error) {
	id := req.Header.Get("X-Contract-Call")
	b.mu.Lock()
	i := b.n
	b.n++
	st := cstep{kind: ckStatus, status: 200}
	if i < len(b.steps) && !b.healthy {
		st = b.steps[i]
	}
	b.seq++
	seen := &cseen{step: st, seq: b.seq, key: cmp.Or(req.Header.Get("Idempotency-Key"), req.Header.Get("X-Idempotency-Key"))}
	b.byCall[id] = append(b.byCall[id], seen)
	b.mu.Unlock()
	end := func() {
		b.mu.Lock()
		b.seq++
		seen.endSeq = b.seq
		b.mu.Unlock()
	}
	defer end()

	if req.Body != nil {
		if st.kind != ckRefused {
			io.Copy(io.Discard, req.Body)
		}
		req.Body.Close()
	}
	switch st.kind {
	case ckRefused:
		return nil, errRefused
	case ckReset:
		return nil, errReset
	case ckHang:
		<-req.Context().Done()
		return nil, context.Cause(req.Context())
	case ckPanic:
		panic("contract: base exploded")
	case ckNil:
		return nil, nil
	case ckNilBody:
		return &http.Response{StatusCode: st.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: req}, nil
	}
	h := http.Header{}
	respID := strconv.Itoa(i)
	h.Set("X-Contract-Response", respID)
	if st.retryAfter != "" {
		h.Set("Retry-After", st.retryAfter)
	}
	if st.shouldRetry != "" {
		h.Set("X-Should-Retry", st.shouldRetry)
	}
	if st.replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	var body string
	if st.envelope {
		h.Set("Content-Type", "application/json")
		code := map[int]string{400: "invalid_request", 409: "conflict", 429: "rate_limit_exceeded"}[st.status]
		if code == "" {
			code = "service_unavailable"
		}
		if st.keyRequired {
			code = "idempotency_key_required"
		}
		if st.status < 300 {
			body = `{"id":"p_1","status":"scheduled"}`
		} else {
			body = `{"error":{"code":"` + code + `","message":"scripted"}}`
		}
	} else {
		body = "scripted answer " + respID
	}
	var rc io.ReadCloser
	cl := int64(-1)
	switch st.kind {
	case ckStatus:
		rc, cl = io.NopCloser(strings.NewReader(body)), int64(len(body))
	case ckHuge:
		big := body + strings.Repeat("x", 3<<20)
		body = big
		rc, cl = io.NopCloser(strings.NewReader(big)), int64(len(big))
	case ckStall, ckBreak, ckBoth:
		rc = &cstallBody{prefix: strings.NewReader(body[:len(body)/2]), ctx: req.Context(), closed: make(chan struct{}), broken: st.kind == ckBreak}
	}
	counted := &crespBody{ReadCloser: rc, id: respID}
	rc = counted
	b.mu.Lock()
	b.bodies[respID] = []byte(body)
	b.opened = append(b.opened, counted)
	// A key required is a host's word that it deduplicates by key too.
	b.taught = b.taught || st.replayed || st.keyRequired && st.envelope
	b.mu.Unlock()
	resp := &http.Response{
		Status: strconv.Itoa(st.status) + " " + http.StatusText(st.status), StatusCode: st.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: rc, ContentLength: cl, Request: req,
	}
	if st.kind == ckBoth {
		counted.ReadCloser = io.NopCloser(strings.NewReader(body))
		return resp, errReset
	}
	return resp, nil
}

// contractSnapshot is what the caller gave RoundTrip.
type contractSnapshot struct {
	method        string
	url           string
	host          string
	header        http.Header
	body          io.ReadCloser
	getBody       uintptr
	contentLength int64
	ctx           context.Context
}

func contractSnapshotOf(req *http.Request) contractSnapshot {
	return contractSnapshot{req.Method, req.URL.String(), req.Host, req.Header.Clone(), req.Body,
		reflect.ValueOf(req.GetBody).Pointer(), req.ContentLength, req.Context()}
}

func runContractCase(t *testing.T, c *contractCase) {
	base := &cbase{steps: c.steps, byCall: map[string][]*cseen{}, bodies: map[string][]byte{}}
	tr := New(base, c.opts...)
	const url = "http://api.contract.test/v1/posts?token=s3cret"

	var (
		mu           sync.Mutex
		getBodys     []*cbody
		callerBodies []func()
	)
	run := func(i int, call ccall) {
		id := strconv.Itoa(i)
		start := time.Now()
		ctx := context.Background()
		var deadline time.Time
		earliest := func(d time.Duration) {
			if at := start.Add(d); deadline.IsZero() || at.Before(deadline) {
				deadline = at
			}
		}
		elapsed := c.elapsed
		if call.callElapsed > 0 {
			elapsed = call.callElapsed
			ctx = WithCallOptions(ctx, WithMaxElapsed(call.callElapsed))
		}
		if elapsed > 0 {
			earliest(elapsed)
		}
		if call.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, call.deadline)
			defer cancel()
			earliest(call.deadline)
		}
		switch {
		case call.cancelAfter > 0:
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			tm := time.AfterFunc(call.cancelAfter, cancel)
			defer tm.Stop()
			earliest(call.cancelAfter)
		case call.cancelAfter < 0:
			// Canceled before the call.
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			cancel()
			earliest(0)
		}
		retries := c.retries
		if call.callRetries >= 0 {
			retries = call.callRetries
			ctx = WithCallOptions(ctx, WithMaxRetries(call.callRetries))
		}
		maxHedges := c.maxHedges
		switch {
		case call.callHedges < 0:
			maxHedges = 0
			ctx = WithCallOptions(ctx, WithoutHedging())
		case call.callHedges > 0:
			maxHedges = call.callHedges
			ctx = WithCallOptions(ctx, WithHedging(Hedging{Delay: 20 * time.Millisecond, MaxHedges: call.callHedges}))
		}
		if call.callBuffer {
			ctx = WithCallOptions(ctx, WithBufferedResponse(1<<10))
		}
		if call.callNoKeys {
			ctx = WithCallOptions(ctx, WithoutIdempotencyKeys())
		}
		if call.ctxKey {
			ctx = WithIdempotencyKey(ctx, "ctx-"+id)
		}
		var rep Report
		ctx = WithReport(ctx, &rep)
		const payload = `{"text":"hello","n":1}`
		var body *cbody
		if call.body != "" {
			body = &cbody{r: strings.NewReader(payload)}
			if call.brokenBody {
				body.r = io.MultiReader(strings.NewReader(payload[:5]), errReader{errors.New("caller's source broke")})
			}
		}
		var req *http.Request
		if body != nil {
			req = newRequest(t, ctx, call.method, url, body)
		} else {
			req = newRequest(t, ctx, call.method, url, nil)
		}
		if call.body == "getbody" {
			req.ContentLength = int64(len(payload))
			made := 0
			req.GetBody = func() (io.ReadCloser, error) {
				if made++; made > 1 && call.getBodyErr {
					return nil, errors.New("GetBody failed")
				}
				b := &cbody{r: strings.NewReader(payload)}
				mu.Lock()
				getBodys = append(getBodys, b)
				mu.Unlock()
				return b, nil
			}
		}
		req.Header.Set("X-Contract-Call", id)
		req.Header.Set("Authorization", "Bearer tok")
		if call.callerKey {
			req.Header.Set("Idempotency-Key", "caller-"+id)
		}
		snap := contractSnapshotOf(req)

		var (
			resp     *http.Response
			err      error
			panicked any
		)
		func() {
			defer func() { panicked = recover() }()
			resp, err = tr.RoundTrip(req)
		}()
		took := time.Since(start)
		where := fmt.Sprintf("call %d (%s)", i, call)
		if panicked != nil {
			if s, _ := panicked.(string); s != "contract: base exploded" && s != "contract: observer exploded" {
				t.Errorf("%s: panicked with %v", where, panicked)
			}
		} else {
			if resp != nil && err != nil {
				t.Errorf("%s: RoundTrip returned both a response (%d) and an error %v", where, resp.StatusCode, err)
			}
			if resp == nil && err == nil {
				t.Errorf("%s: RoundTrip returned neither a response nor an error", where)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error leaks the query: %v", where, err)
			}
		}
		if !deadline.IsZero() && took > deadline.Sub(start) {
			t.Errorf("%s: returned after %v, past its deadline %v (%v, err %v); report %+v", where, took, deadline.Sub(start), statusOf(resp), err, rep)
		}
		if resp != nil {
			respID := resp.Header.Get("X-Contract-Response")
			stop := time.AfterFunc(time.Hour, func() { resp.Body.Close() })
			got, rerr := io.ReadAll(resp.Body)
			stop.Stop()
			resp.Body.Close()
			base.mu.Lock()
			want, ok := base.bodies[respID]
			n, _ := strconv.Atoi(respID)
			var st cstep
			if n < len(c.steps) {
				st = c.steps[n]
			} else {
				st = cstep{kind: ckStatus, status: 200}
			}
			base.mu.Unlock()
			if !ok {
				if respID != "" || len(got) != 0 || rerr != nil {
					t.Errorf("%s: response %q not from the base: %q, %v", where, respID, got, rerr)
				}
			} else if errors.Is(rerr, errBodyTruncated) && bytes.HasPrefix(want, got) && len(got) >= min(len(want), maxDrain) {
				// A response retried past, returned on a give-up: what was
				// drained of it (README, "Bounds").
			} else if st.wholeBody() && (rerr != nil || !bytes.Equal(got, want)) {
				t.Errorf("%s: read %d of %d bytes of response %s (%v), err %v", where, len(got), len(want), respID, st, rerr)
			}
			if resp.Request != nil && resp.Request.Header.Get("X-Contract-Call") != id {
				t.Errorf("%s: resp.Request is not the call's", where)
			}
		}
		// The caller's request, as given.
		if now := contractSnapshotOf(req); now.method != snap.method || now.url != snap.url || now.host != snap.host ||
			!reflect.DeepEqual(now.header, snap.header) || now.body != snap.body || now.getBody != snap.getBody ||
			now.contentLength != snap.contentLength || now.ctx != snap.ctx {
			t.Errorf("%s: the caller's request was modified: %+v, was %+v", where, now, snap)
		}

		// What the base saw of the call, once every copy ended.
		if !c.concurrent {
			synctest.Wait()
		}
		if body != nil {
			// Checked once every call and copy ended.
			mu.Lock()
			callerBodies = append(callerBodies, func() {
				if closes, after := body.stats(); closes != 1 || after != 0 {
					t.Errorf("%s: the caller's body closed %d times, read %d times after; %v %v", where, closes, after, statusOf(resp), err)
				}
			})
			mu.Unlock()
		}
		base.mu.Lock()
		seen := append([]*cseen(nil), base.byCall[id]...)
		base.mu.Unlock()
		if panicked == nil {
			if got := rep.Attempts - rep.Hedges; got > retries+1 {
				t.Errorf("%s: %d attempts, want at most %d; report %+v", where, got, retries+1, rep)
			}
			if rep.Hedges > (rep.Attempts-rep.Hedges)*maxHedges {
				t.Errorf("%s: %d hedges for %d attempts, MaxHedges %d", where, rep.Hedges, rep.Attempts-rep.Hedges, maxHedges)
			}
		}
		if max := (retries + 1) * (1 + maxHedges); len(seen) > max {
			t.Errorf("%s: the base saw %d requests, at most %d allowed", where, len(seen), max)
		}
		if !c.concurrent && panicked == nil && len(seen) > rep.Attempts {
			t.Errorf("%s: the base saw %d requests, the Report says %d attempts", where, len(seen), rep.Attempts)
		}
		// The write rule. A host that deduplicates by key processes a
		// write once per key; any other processes every request it read
		// that may mean it was processed. A write sent without a key is
		// processed by any host each time.
		keys := map[string]bool{}
		keyless := true
		for _, a := range seen {
			if a.key != "" {
				keyless = false
				if a.step.ambiguous() {
					keys[a.key] = true
				}
			}
		}
		base.mu.Lock()
		taught := base.taught
		base.mu.Unlock()
		if call.write() && len(keys) > 1 {
			t.Errorf("%s: a write processed under %d keys %v by a host that deduplicates by key; seen %v", where, len(keys), keys, stepsOf(seen))
		}
		if call.write() && (keyless || !call.callerKey && !call.ctxKey && !c.keyHosts && !taught) {
			for _, a := range seen {
				if !a.step.ambiguous() {
					continue
				}
				for _, b := range seen {
					if b.seq > a.endSeq && a.endSeq != 0 {
						t.Errorf("%s: a write sent again (%v) after %v; seen %v", where, b.step, a.step, stepsOf(seen))
					}
				}
			}
		}
	}
	c.makeCalls(run, false)
	mu.Lock()
	defer mu.Unlock()
	// Once every pause, open breaker and spent budget has expired, a
	// call to the healthy host goes straight through: no slot was left
	// held by what the calls met.
	time.Sleep(3 * time.Hour)
	base.mu.Lock()
	base.healthy = true
	base.mu.Unlock()
	var rep Report
	resp, err := tr.RoundTrip(newRequest(t, WithReport(context.Background(), &rep), "GET", url, nil))
	if err != nil {
		t.Errorf("a call to the healthy host, hours later: %v; report %+v", err, rep)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 || rep.Attempts != 1 || rep.Waited != 0 {
			t.Errorf("a call to the healthy host, hours later: %d; report %+v", resp.StatusCode, rep)
		}
	}
	synctest.Wait()
	for _, check := range callerBodies {
		check()
	}
	for j, b := range getBodys {
		if closes, _ := b.stats(); closes == 0 {
			t.Errorf("body %d made by GetBody never closed", j)
		}
	}
	base.mu.Lock()
	defer base.mu.Unlock()
	for _, b := range base.opened {
		if b.closes.Load() == 0 {
			t.Errorf("response %s of the base never closed (steps %v)", b.id, c.steps)
		}
	}
}

func statusOf(resp *http.Response) any {
	if resp == nil {
		return "no response"
	}
	return resp.StatusCode
}

func stepsOf(s []*cseen) []cstep {
	var out []cstep
	for _, x := range s {
		out = append(out, x.step)
	}
	return out
}
