package resilient

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var (
	comboSeed  = flag.Uint64("combo.seed", 0, "run only the TestComboProperty case of this seed (it is logged on a failure)")
	comboCases = flag.Int("combo.cases", 500, "number of cases of TestComboProperty")
)

// The two hosts of TestComboProperty: comboHonors deduplicates writes by
// key (per key and path), comboIgnores processes every request it reads.
const (
	comboHonors  = "a.combo.test"
	comboIgnores = "b.combo.test"
)

// TestComboProperty drives an http.Client over one Transport with the
// options a user combines (hedging, a retry budget, WithMaxInFlight, the
// breaker, WithBufferedResponse, WithKeyHonoringHosts, per-call options)
// against two scripted hostile hosts, one that deduplicates writes by key
// and one that ignores keys, which answer with redirects (a 307 to
// another path, to itself or to an odd Location, a 308 to the other host,
// a 303), hostile rate-limit headers, 429s, 5xx, resets, refused dials,
// hangs and stalled bodies, each case in a synctest bubble (which fails
// on a goroutine left blocked). Callers send reads and writes, keyed or
// not, with and without GetBody, some canceled before or during the call.
// For every call: a write reaches a host's handler for one path at most
// once unless it was provably unprocessed (once per key on the host that
// deduplicates; a caller's key to the other host is the caller's word,
// not counted there); every request body given to RoundTrip is closed
// exactly once by it, never read after (http.Client closes it again
// after a redirect, as over a plain transport); every response the
// caller does not get is closed; RoundTrip returns exactly one of a
// response and an error; the call returns no later than its earliest
// deadline; no panic. After the calls, once everything has expired, a
// call to each healthy host goes through at once, and a later call's
// first failure is retried: no slot or budget token left held.
// -combo.seed replays one case (-combo.cases more from it).
func TestComboProperty(t *testing.T) {
	seededCases(t, "combo", 20261207, *comboSeed, *comboCases, 100, drawComboCase, runComboCase)
}

// xkind is the kind of a scripted answer of a combo host.
type xkind int

const (
	xOK       xkind = iota // 200, with rate-limit headers when rl is set
	x500                   // 500: processed, maybe
	x503                   // 503 with Retry-After
	x429                   // 429 with Retry-After: not processed
	xRefused               // a refused dial: nothing read
	xReset                 // the request read, then the connection reset
	xHang                  // the request read, then no answer until the attempt ends
	x307                   // to another path of the host
	x308                   // to the other host
	x303                   // to a read
	xOKHeader              // 201 with hostile rate-limit headers
	xLoop                  // 307 to the same URL
	xStall                 // 200 whose body stalls after a few bytes
	xOddLoc                // 307 to a hostile Location
)

var xNames = [...]string{"200", "500", "503", "429", "refused", "reset", "hang", "307", "308", "303", "201rl", "loop", "stall", "oddloc"}

// xstep is one scripted answer.
type xstep struct {
	kind       xkind
	retryAfter string
	reset      string // X-RateLimit-Reset of xOK and xOKHeader; "" for none
}

func (s xstep) String() string {
	str := xNames[s.kind]
	if s.retryAfter != "" {
		str += " RA=" + s.retryAfter
	}
	if s.reset != "" {
		str += " reset=" + s.reset
	}
	return str
}

// processes reports whether a host processes a write it answers so.
func (s xstep) processes() bool {
	switch s.kind {
	case x429, xRefused, x307, x308, x303, xLoop, xOddLoc:
		return false
	}
	return true
}

// xcall is one random caller.
type xcall struct {
	method      string
	host        string
	body        string // "", "getbody", "plain"
	callerKey   bool   // an Idempotency-Key header: the caller's word that its host deduplicates
	ctxKey      bool   // WithIdempotencyKey (to comboHonors only)
	sharedCtx   bool   // WithIdempotencyKey on a context the case's other such calls share
	early       bool   // its context canceled before the call
	deadline    time.Duration
	cancelAfter time.Duration
	callElapsed time.Duration
	callRetries int // -1 for none
	noHedge     bool
	callBuffer  bool
	steps       []xstep // the call's answers, in the order its requests come
}

func (c xcall) write() bool { return c.method == "POST" || c.method == "PATCH" }

func (c xcall) String() string {
	return fmt.Sprintf("{%s %s body=%q key=%v ctxKey=%v shared=%v early=%v deadline=%v cancel=%v elapsed=%v retries=%d noHedge=%v buffer=%v steps=%v}",
		c.method, c.host, c.body, c.callerKey, c.ctxKey, c.sharedCtx, c.early, c.deadline, c.cancelAfter, c.callElapsed, c.callRetries, c.noHedge, c.callBuffer, c.steps)
}

type comboCase struct {
	seed       uint64
	desc       []string
	opts       []Option
	elapsed    time.Duration
	concurrent bool
	calls      []xcall
}

func (c *comboCase) String() string {
	return fmt.Sprintf("seed %d; options %s; concurrent %v; calls %v", c.seed, strings.Join(c.desc, ", "), c.concurrent, c.calls)
}

func drawComboCase(seed uint64) *comboCase {
	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	c := &comboCase{seed: seed, elapsed: DefaultMaxElapsed}
	pick := func(p float64) bool { return r.Float64() < p }
	add := func(desc string, o Option) { c.desc = append(c.desc, desc); c.opts = append(c.opts, o) }
	jitter := rand.New(rand.NewPCG(seed, 2))
	var jmu sync.Mutex
	c.opts = append(c.opts, withRand(func(n int64) int64 { jmu.Lock(); defer jmu.Unlock(); return jitter.Int64N(n) }))
	if pick(0.6) {
		h := Hedging{MaxHedges: 1 + r.IntN(2), Delay: []time.Duration{time.Millisecond, 50 * time.Millisecond}[r.IntN(2)]}
		add(fmt.Sprintf("WithHedging(%+v)", h), WithHedging(h))
	}
	if pick(0.6) {
		b := RetryBudget{Ratio: 0.1, Burst: float64(1 + r.IntN(5)), ThrottledCost: 0.1}
		add(fmt.Sprintf("WithRetryBudget(%+v)", b), WithRetryBudget(b))
	}
	if pick(0.5) {
		n := 1 + r.IntN(2)
		add(fmt.Sprintf("WithMaxInFlight(%d)", n), WithMaxInFlight(n))
	}
	if pick(0.5) {
		add("WithBreaker(tight)", WithBreaker(BreakerSettings{MinRequests: 2, ConsecutiveFailures: 2, OpenTimeout: time.Second, Window: 5 * time.Second}))
	}
	if pick(0.5) {
		add("WithKeyHonoringHosts(a)", WithKeyHonoringHosts(comboHonors))
	}
	if pick(0.5) {
		c.elapsed = []time.Duration{500 * time.Millisecond, 5 * time.Second, 30 * time.Second}[r.IntN(3)]
		add(fmt.Sprintf("WithMaxElapsed(%v)", c.elapsed), WithMaxElapsed(c.elapsed))
	}
	if pick(0.5) {
		d := []time.Duration{100 * time.Millisecond, time.Second}[r.IntN(2)]
		add(fmt.Sprintf("WithAttemptTimeout(%v)", d), WithAttemptTimeout(d))
	}
	if pick(0.5) {
		add("WithBackoff(10ms,1s)", WithBackoff(10*time.Millisecond, time.Second))
	}
	if pick(0.3) {
		add("WithBufferedResponse(1KiB)", WithBufferedResponse(1<<10))
	}
	if pick(0.2) {
		add("WithMaxBufferedBody(4)", WithMaxBufferedBody(4))
	}
	c.concurrent = pick(0.4)
	retryAfters := []string{"", "0", "1", "5", "7200", "soon"}
	resets := []string{"", "1", "30", "99999999", "-5"}
	for range 1 + r.IntN(6) {
		x := xcall{method: []string{"GET", "POST", "PATCH", "PUT", "POST"}[r.IntN(5)], host: comboIgnores, callRetries: -1}
		if pick(0.5) {
			x.host = comboHonors
		}
		if x.method != "GET" {
			x.body = []string{"", "getbody", "getbody", "plain"}[r.IntN(4)]
		}
		if x.method != "GET" && pick(0.1) {
			x.body = "nobody"
		}
		// A caller's key to comboIgnores is the caller's mistaken word:
		// its writes there are not counted.
		x.callerKey = x.write() && pick(0.2)
		x.ctxKey = x.write() && x.host == comboHonors && !x.callerKey && pick(0.2)
		x.sharedCtx = x.ctxKey && pick(0.5)
		x.early = pick(0.03)
		if pick(0.3) {
			x.deadline = []time.Duration{50 * time.Millisecond, 700 * time.Millisecond, 5 * time.Second}[r.IntN(3)]
		}
		if pick(0.2) {
			x.cancelAfter = []time.Duration{5 * time.Millisecond, 300 * time.Millisecond, 3 * time.Second}[r.IntN(3)]
		}
		if pick(0.2) {
			x.callElapsed = []time.Duration{50 * time.Millisecond, 2 * time.Second}[r.IntN(2)]
		}
		if pick(0.2) {
			x.callRetries = r.IntN(4)
		}
		x.noHedge = pick(0.15)
		x.callBuffer = pick(0.15)
		for range 1 + r.IntN(8) {
			var s xstep
			switch k := r.IntN(26); {
			case k < 5:
				s.kind = xOK
				if pick(0.5) {
					s.reset = resets[r.IntN(len(resets))]
				}
			case k < 7:
				s.kind = x500
			case k < 9:
				s.kind = x503
				s.retryAfter = retryAfters[r.IntN(len(retryAfters))]
			case k < 11:
				s.kind = x429
				s.retryAfter = retryAfters[r.IntN(len(retryAfters))]
			case k < 12:
				s.kind = xRefused
			case k < 14:
				s.kind = xReset
			case k < 15:
				s.kind = xHang
			case k < 17:
				s.kind = x307
			case k < 18:
				s.kind = x308
			case k < 19:
				s.kind = x303
			case k < 20:
				s.kind = xLoop
			case k < 21:
				s.kind = xStall
			case k < 22:
				s.kind = xOddLoc
				s.reset = []string{"", "https://a.combo.test/v1/posts", "http://user:pw@b.combo.test/v1/x?token=s3cret", "//a.combo.test:81/v1/p", "http://a.combo.test./v1/posts"}[r.IntN(5)]
			default:
				s.kind = xOKHeader
				s.reset = resets[1+r.IntN(len(resets)-1)]
			}
			if (s.kind == x307 || s.kind == x308 || s.kind == x303) && pick(0.3) {
				s.reset = resets[1+r.IntN(len(resets)-1)]
				s.retryAfter = retryAfters[r.IntN(len(retryAfters))]
			}
			x.steps = append(x.steps, s)
		}
		c.calls = append(c.calls, x)
	}
	return c
}

// xseen is what a host saw of one request.
type xseen struct {
	host, path, method, key string
	step                    xstep
	processed               bool
}

// xbase is the two scripted hosts.
type xbase struct {
	calls []xcall

	mu      sync.Mutex
	healthy bool
	n       map[string]int     // requests so far, by call
	seen    map[string][]xseen // by call
	stored  map[string]bool    // comboHonors' keys, by key and path
	opened  []*crespBody       // every response body answered with
}

func (b *xbase) RoundTrip(req *http.Request) (*http.Response, error) {
	id := req.Header.Get("X-Combo-Call")
	// A host named with WithKeyHonoringHosts is named on every port
	// (see WithKeyHonoringHosts): the host's name is the host here.
	host := strings.TrimSuffix(req.URL.Hostname(), ".")
	if host != comboHonors && host != comboIgnores {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errRefused
	}
	key := wireHeader(req.Header, "Idempotency-Key") // as the host reads it, whatever its spelling
	b.mu.Lock()
	st := xstep{kind: xOK}
	nth := b.n[id]
	if i, err := strconv.Atoi(id); err == nil && !b.healthy {
		n := b.n[id]
		b.n[id]++
		if n < len(b.calls[i].steps) {
			st = b.calls[i].steps[n]
		}
	} else if strings.HasPrefix(id, "final") {
		// The calls after the run: a 500, then answers.
		if b.n[id]++; b.n[id] == 1 {
			st = xstep{kind: x500}
		}
	}
	write := req.Method == "POST" || req.Method == "PATCH"
	replayed := false
	processed := write && st.processes()
	if write && host == comboHonors && key != "" && st.kind != xRefused && st.kind != x429 {
		// A write it processed under the key is answered as a replay,
		// whatever the script says.
		k := key + " " + req.URL.Path
		if b.stored[k] {
			processed, replayed = false, true
		}
		b.stored[k] = b.stored[k] || processed
	}
	b.seen[id] = append(b.seen[id], xseen{host: host, path: req.URL.Path, method: req.Method, key: key, step: st, processed: processed})
	b.mu.Unlock()

	if req.Body != nil {
		if st.kind != xRefused {
			io.Copy(io.Discard, req.Body)
		}
		req.Body.Close()
	}
	switch st.kind {
	case xRefused:
		return nil, errRefused
	case xReset:
		return nil, errReset
	case xHang:
		<-req.Context().Done()
		return nil, context.Cause(req.Context())
	}
	h := http.Header{}
	status, body := 200, `{"id":"p_1"}`
	if replayed {
		h.Set("Idempotent-Replayed", "true")
	} else {
		switch st.kind {
		case x500:
			status, body = 500, `{"error":{"code":"internal","message":"boom"}}`
		case x503:
			status, body = 503, `{"error":{"code":"service_unavailable","message":"later"}}`
		case x429:
			status, body = 429, `{"error":{"code":"rate_limit_exceeded","message":"slow down"}}`
		case x307:
			status, body = 307, "moved"
			h.Set("Location", "/v1/next"+strconv.Itoa(nth))
		case x308:
			status, body = 308, "moved"
			other := comboIgnores
			if host == comboIgnores {
				other = comboHonors
			}
			h.Set("Location", "http://"+other+"/v1/moved")
		case x303:
			status, body = 303, "see other"
			h.Set("Location", "/v1/see")
		case xOKHeader:
			status = 201
		case xLoop:
			status, body = 307, "again"
			h.Set("Location", req.URL.String())
		case xOddLoc:
			status, body = 307, "odd"
			if st.reset != "" {
				h.Set("Location", st.reset)
			}
		}
		if st.retryAfter != "" {
			h.Set("Retry-After", st.retryAfter)
		}
		if st.reset != "" && st.kind != xOddLoc {
			// (on a redirect too: a hostile host's quota headers)
			h.Set("X-RateLimit-Limit", "10")
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", st.reset)
		}
	}
	h.Set("Content-Type", "application/json")
	var rc io.ReadCloser = io.NopCloser(strings.NewReader(body))
	cl := int64(len(body))
	if st.kind == xStall && !replayed {
		rc, cl = &cstallBody{prefix: strings.NewReader(body[:4]), ctx: req.Context(), closed: make(chan struct{})}, -1
	}
	counted := &crespBody{ReadCloser: rc, id: id + " " + st.String()}
	b.mu.Lock()
	b.opened = append(b.opened, counted)
	b.mu.Unlock()
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: counted, ContentLength: cl, Request: req,
	}, nil
}

// xbody is a request body of TestComboProperty: the caller's, or one
// GetBody made.
type xbody struct {
	*cbody
	call     string
	original bool
}

// xclosing counts closes in its cbody, and closes the body it wraps.
type xclosing struct {
	*cbody
	inner io.Closer
}

func (c *xclosing) Close() error {
	c.cbody.Close()
	return c.inner.Close()
}

// xrt is the RoundTripper between http.Client and the Transport: it
// checks what each RoundTrip returns.
// It hands the Transport each request body in a wrapper of its own, to
// count the Transport's closes apart from http.Client's.
type xrt struct {
	t  *testing.T
	tr http.RoundTripper

	mu    sync.Mutex
	given []xbody
}

func (x *xrt) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		r2 := *req
		b := &cbody{r: req.Body}
		r2.Body = &xclosing{b, req.Body}
		x.mu.Lock()
		x.given = append(x.given, xbody{b, req.Header.Get("X-Combo-Call"), false})
		x.mu.Unlock()
		req = &r2
	}
	resp, err := x.tr.RoundTrip(req)
	if (resp == nil) == (err == nil) {
		x.t.Errorf("RoundTrip(%s %s) returned response %v and error %v", req.Method, req.URL, statusOf(resp), err)
	}
	return resp, err
}

func runComboCase(t *testing.T, c *comboCase) {
	base := &xbase{calls: c.calls, n: map[string]int{}, seen: map[string][]xseen{}, stored: map[string]bool{}}
	tr := New(base, c.opts...)
	rt := &xrt{t: t, tr: tr}
	client := &http.Client{Transport: rt}
	var (
		mu       sync.Mutex
		bodies   []xbody
		panicked atomic.Bool
	)
	track := func(id string, original bool, b *cbody) *cbody {
		mu.Lock()
		bodies = append(bodies, xbody{b, id, original})
		mu.Unlock()
		return b
	}
	const payload = `{"text":"hello"}`
	// The context of the calls with sharedCtx set: one key for them all,
	// which names the first write made with it (see WithIdempotencyKey).
	sharedCtx := WithIdempotencyKey(context.Background(), "shared")
	run := func(i int, x xcall) {
		id := strconv.Itoa(i)
		start := time.Now()
		ctx := context.Background()
		if x.sharedCtx {
			ctx = sharedCtx
		}
		limit := c.elapsed
		if x.callElapsed > 0 {
			limit = x.callElapsed
			ctx = WithCallOptions(ctx, WithMaxElapsed(x.callElapsed))
		}
		if x.deadline > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, x.deadline)
			defer cancel()
			limit = min(limit, x.deadline)
		}
		if x.cancelAfter > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			defer time.AfterFunc(x.cancelAfter, cancel).Stop()
			limit = min(limit, x.cancelAfter)
		}
		if x.callRetries >= 0 {
			ctx = WithCallOptions(ctx, WithMaxRetries(x.callRetries))
		}
		if x.noHedge {
			ctx = WithCallOptions(ctx, WithoutHedging())
		}
		if x.callBuffer {
			ctx = WithCallOptions(ctx, WithBufferedResponse(1<<10))
		}
		if x.ctxKey && !x.sharedCtx {
			ctx = WithIdempotencyKey(ctx, "ctx-"+id)
		}
		if x.early {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			cancel()
			limit = 0
		}
		var rb io.ReadCloser
		if x.body == "nobody" {
			rb = http.NoBody
		} else if x.body != "" {
			rb = track(id, true, &cbody{r: strings.NewReader(payload)})
		}
		req, err := http.NewRequestWithContext(ctx, x.method, "http://"+x.host+"/v1/posts", rb)
		if err != nil {
			t.Fatal(err)
		}
		if x.body != "" && x.body != "nobody" {
			req.ContentLength = int64(len(payload))
		}
		if x.body == "getbody" {
			req.GetBody = func() (io.ReadCloser, error) {
				return track(id, false, &cbody{r: strings.NewReader(payload)}), nil
			}
		}
		req.Header.Set("X-Combo-Call", id)
		if x.callerKey {
			req.Header.Set("Idempotency-Key", "caller-"+id)
		}
		var resp *http.Response
		func() {
			defer func() {
				if p := recover(); p != nil {
					panicked.Store(true)
					t.Errorf("call %d %s: panicked: %v", i, x, p)
				}
			}()
			resp, err = client.Do(req)
		}()
		took := time.Since(start)
		if took > limit {
			t.Errorf("call %d %s: returned after %v, past its limit %v (%v, %v)", i, x, took, limit, statusOf(resp), err)
		}
		if resp != nil {
			stop := time.AfterFunc(time.Hour, func() { resp.Body.Close() })
			io.Copy(io.Discard, resp.Body)
			stop.Stop()
			resp.Body.Close()
		}
	}
	if c.concurrent {
		var wg sync.WaitGroup
		for i, x := range c.calls {
			wg.Go(func() { run(i, x) })
		}
		wg.Wait()
	} else {
		for i, x := range c.calls {
			run(i, x)
		}
	}
	synctest.Wait()

	// The write rule: a write reaches a handler at most once, unless
	// provably unprocessed.
	base.mu.Lock()
	for i, x := range c.calls {
		seen := base.seen[strconv.Itoa(i)]
		n := map[string]int{}
		for _, s := range seen {
			if s.processed {
				n[s.host+s.path]++ // (a write to one path, on any port)
			}
		}
		for where, k := range n {
			if x.callerKey && x.host == comboIgnores && strings.HasPrefix(where, comboIgnores) {
				continue // the caller's word that it deduplicates
			}
			if k > 1 {
				t.Errorf("call %d %s: a write processed %d times by %s; seen %+v", i, x, k, where, seen)
			}
		}
	}
	base.healthy = true
	base.mu.Unlock()

	// No slot left held, no budget token lost: once everything expired
	// (the retry budget refills by the hour), a call to each healthy host
	// goes through at once, and then a call's first failure is retried.
	time.Sleep(3 * time.Hour)
	for _, host := range []string{comboHonors, comboIgnores} {
		// (Three successes first: the tight breaker trips on one failure
		// in two attempts.)
		for _, id := range []string{"healthy", "healthy", "healthy", "final"} {
			var rep Report
			// (A budget of its own: the case's may be shorter than a backoff.)
			ctx := WithCallOptions(context.Background(), WithMaxElapsed(time.Hour), WithMaxRetries(1))
			req := newRequest(t, WithReport(ctx, &rep), "GET", "http://"+host+"/v1/posts", nil)
			req.Header.Set("X-Combo-Call", id+" "+host)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Errorf("call %q to the healthy %s, hours later: %v; report %+v", id, host, err, rep)
				continue
			}
			resp.Body.Close()
			if want := map[string]int{"healthy": 1, "final": 2}[id]; resp.StatusCode != 200 || rep.Attempts != want || id == "healthy" && rep.Waited != 0 {
				t.Errorf("call %q to the healthy %s, hours later: %d; report %+v", id, host, resp.StatusCode, rep)
			}
		}
	}
	synctest.Wait()
	if panicked.Load() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	base.mu.Lock()
	defer base.mu.Unlock()
	for j, b := range bodies {
		// (http.Client closes again the body of a hop it follows a
		// redirect from, over a plain transport too.)
		if closes, after := b.stats(); closes < 1 || after != 0 {
			t.Errorf("request body %d of call %s (original %v) closed %d times, read %d times after", j, b.call, b.original, closes, after)
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for j, b := range rt.given {
		if closes, after := b.stats(); closes != 1 || after != 0 {
			t.Errorf("request body %d given to RoundTrip (call %s) closed %d times by it, read %d times after", j, b.call, closes, after)
		}
	}
	for _, b := range base.opened {
		if k := b.closes.Load(); k == 0 {
			t.Errorf("response (call %s) never closed", b.id)
		}
	}
}
