package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/resilienttest"
)

// Config is one comparison: the same workload through each client.
type Config struct {
	Calls   int
	Workers int
	Profile string
	Seed    int64
	Hedge   bool // hedging on in the resilient column
}

func (c Config) validate() error {
	switch {
	case c.Calls < 1:
		return fmt.Errorf("-calls must be at least 1, got %d", c.Calls)
	case c.Calls > 1000000:
		return fmt.Errorf("-calls must be at most 1000000, got %d", c.Calls)
	case c.Workers < 1:
		return fmt.Errorf("-workers must be at least 1, got %d", c.Workers)
	case c.Workers > 10000:
		return fmt.Errorf("-workers must be at most 10000, got %d", c.Workers)
	}
	if _, ok := profiles[c.Profile]; !ok {
		return fmt.Errorf("unknown -profile %q (want one of %s)", c.Profile, strings.Join(profileNames(), ", "))
	}
	return nil
}

// profile is a fault profile: which APIs the workload calls, how their
// servers misbehave, and what the comparison shows.
type profile struct {
	about    string // what the profile shows, for -h and the header
	dialects []resilienttest.Dialect
	options  func(seed int64) []resilienttest.Option
}

// realisticFaults is what a bad day of a real API looks like (see
// badDayFaults).
func realisticFaults(seed int64) []resilienttest.Option {
	return []resilienttest.Option{resilienttest.WithFaults(badDayFaults(seed))}
}

// badDayFaults is a bad day of a real API: some attempts fail, in every
// way the vendors document, a few of them after the write was stored (a
// 500 or a connection lost on the way back), and a few more are answered
// late; badDay says how many of each.
func badDayFaults(seed int64) resilienttest.Faults {
	return resilienttest.Faults{
		Seed:             seed,
		ServerError:      0.06,
		ServerErrorAfter: 0.02,
		RateLimit:        0.005,
		DropBefore:       0.01,
		DropAfter:        0.02,
		Slow:             0.02,
		Malformed:        0.01,
		HTML:             0.01,
		Huge:             0.005,
		SlowDelay:        300 * time.Millisecond,
		RetryAfter:       time.Second,
		HugeSize:         1 << 20,
	}
}

// badDay says what badDayFaults does, computed from it: the share of
// attempts that fail (every fault but Slow, which answers normally once
// it has waited), and that of the slow ones.
func badDay() string {
	f := badDayFaults(0)
	fail := f.ServerError + f.ServerErrorAfter + f.RateLimit + f.DropBefore + f.DropAfter +
		f.Malformed + f.HTML + f.Huge + f.CutBody
	return fmt.Sprintf("about 1 attempt in %.0f fails, %.1f%%: 5xx (some after the write was stored), "+
		"429 with Retry-After, connections dropped before and after the write, malformed, HTML and huge error "+
		"bodies; %.1f%% more are answered %v late", math.Round(1/fail), 100*fail, 100*f.Slow, f.SlowDelay)
}

// serverOptions returns the options of the server of d in profile p.
// Altyaa's documentation says nothing of idempotency keys: its server
// ignores them, as most APIs do, and stores every write it is sent.
func (p profile) serverOptions(d resilienttest.Dialect, seed int64) []resilienttest.Option {
	opts := p.options(seed)
	if d == resilienttest.Altyaa {
		opts = append(opts, resilienttest.WithIgnoreIdempotencyKeys(true))
	}
	return opts
}

var profiles = map[string]profile{
	"aidelly": {
		"Aidelly alone on a bad day (" + badDay() + "); its server dedupes writes by Idempotency-Key. " +
			"Shows retries turning failures into successes.",
		[]resilienttest.Dialect{resilienttest.Aidelly}, realisticFaults},
	"altyaa": {
		"Altyaa alone on the same bad day; its server ignores idempotency keys, as most APIs do. " +
			"Shows which client turns a write that failed after its commit into a duplicate post.",
		[]resilienttest.Dialect{resilienttest.Altyaa}, realisticFaults},
	"postato": {
		"Postato alone on the same bad day; its server dedupes POST /posts by Idempotency-Key, and no other write. " +
			"Shows retries turning failures into successes.",
		[]resilienttest.Dialect{resilienttest.Postato}, realisticFaults},
	"mixed": {
		"The default: the three APIs at once on the same bad day, Altyaa ignoring idempotency keys. " +
			"Shows success, duplicate posts and latency side by side.",
		[]resilienttest.Dialect{resilienttest.Aidelly, resilienttest.Altyaa, resilienttest.Postato}, realisticFaults},
	"outage": {
		"Aidelly answering every request with a 500, its server error (PUBLIC_API_*_FAILED). " +
			"Shows the breaker failing fast instead of multiplying the load (server attempts per call).",
		[]resilienttest.Dialect{resilienttest.Aidelly}, func(seed int64) []resilienttest.Option {
			return []resilienttest.Option{resilienttest.WithFaults(resilienttest.Faults{Seed: seed, ServerError: 1})}
		}},
	"ratelimit": {
		"Aidelly with a tight quota, 120 reads and 120 writes a rolling minute that lasts one second, " +
			"announced in X-RateLimit-* headers. Shows pacing by the headers (429s received).",
		[]resilienttest.Dialect{resilienttest.Aidelly}, func(seed int64) []resilienttest.Option {
			// The minute lasts a second. The reset goes in Unix
			// milliseconds: Aidelly's RFC 3339 reset is to the second,
			// too coarse for a window of one real second.
			return []resilienttest.Option{resilienttest.WithQuota(resilienttest.Quota{
				Limit: 120, Window: time.Minute, PerClass: true, ResetFormat: resilienttest.UnixMillis, TimeScale: 60,
			})}
		}},
}

func profileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// op is one logical call of the workload.
type op struct {
	server int // index into the profile's dialects
	kind   string
	path   string
	body   string
}

// workload returns the calls of a run: writes and reads mixed, the same
// sequence for a given seed.
func workload(cfg Config) []op {
	p := profiles[cfg.Profile]
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
	ops := make([]op, cfg.Calls)
	for i := range ops {
		o := op{server: rng.IntN(len(p.dialects))}
		switch r := rng.IntN(100); {
		case r < 40:
			o.kind, o.path = "create post", "/v1/posts"
			o.body = fmt.Sprintf(`{"content":"demo post %d","platforms":["instagram","x"]}`, i)
		case r < 65:
			o.kind, o.path = "list posts", "/v1/posts"
		case r < 80:
			o.kind, o.path = "fetch post", "/v1/posts/"
		case r < 92:
			o.kind, o.path = "upload url", "/v1/media/upload-url"
			o.body = fmt.Sprintf(`{"filename":"photo-%d.jpg","size":204800}`, i)
		default:
			o.kind, o.path = "usage", "/v1/usage"
		}
		ops[i] = o
	}
	return ops
}

// Run is the figures of one client's run.
type Run struct {
	Client          string         `json:"client"`
	Calls           int            `json:"calls"`
	Succeeded       int            `json:"succeeded"`
	Failed          int            `json:"failed"`
	FailedBy        map[string]int `json:"failed_by"`
	DuplicatePosts  int            `json:"duplicate_posts"`
	Received429     int            `json:"received_429"`
	ServerAttempts  int            `json:"server_attempts"`
	AttemptsPerCall float64        `json:"attempts_per_call"`
	P50             time.Duration  `json:"p50_ns"`
	P99             time.Duration  `json:"p99_ns"`
	BreakerTrips    int            `json:"breaker_trips"`
	BudgetRefusals  int            `json:"budget_refusals"`
	UnsafeWrites    int            `json:"unsafe_writes_returned"`
	Hedges          int            `json:"hedges"`
	Elapsed         time.Duration  `json:"elapsed_ns"`
}

// Report is the comparison.
type Report struct {
	Profile string `json:"profile"`
	Calls   int    `json:"calls"`
	Workers int    `json:"workers"`
	Seed    int64  `json:"seed"`
	Plain   Run    `json:"plain"`
	Naive   Run    `json:"naive"`
	Ours    Run    `json:"resilient"`
}

// ProgressFunc is told how many calls of a run are done.
type ProgressFunc func(client string, done, total int)

// The clients compared, in the order they run.
const (
	plainName = "plain http.Client"
	naiveName = "naive retries"
	oursName  = "resilient.NewClient()"
)

// clientAbout says what each client does, for -h and the header.
var clientAbout = [][2]string{
	{plainName, "no retries of its own; sets the Idempotency-Key of its writes itself, so that net/http resends " +
		"such a write once, as it does a GET, when the reused connection it went out on closes before any answer"},
	{naiveName, "what most retry libraries do: resends any request, POSTs included, after a network error, " +
		"a 429 or a 5xx, up to 5 times with a jittered backoff from 10 ms (the same request, so the same Idempotency-Key)"},
	{oursName, "this library with its defaults; sets its own Idempotency-Key on Postato's POST /posts, " +
		"the one write Postato documents as deduplicated by key (nothing in Postato's answers proves it), " +
		"and leaves the other keys to the library"},
}

// Compare runs the workload through a plain client, a naive retrying
// client, then ours, each against fresh servers with the same faults.
func Compare(ctx context.Context, cfg Config, progress ProgressFunc) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ops := workload(cfg)
	rep := &Report{Profile: cfg.Profile, Calls: cfg.Calls, Workers: cfg.Workers, Seed: cfg.Seed}
	var err error
	rep.Plain, err = runOnce(ctx, cfg, ops, plainName, progress, func(base http.RoundTripper, _ *counters) http.RoundTripper {
		return base
	})
	if err != nil {
		return nil, err
	}
	rep.Naive, err = runOnce(ctx, cfg, ops, naiveName, progress, func(base http.RoundTripper, _ *counters) http.RoundTripper {
		return newNaiveRetry(base)
	})
	if err != nil {
		return nil, err
	}
	rep.Ours, err = runOnce(ctx, cfg, ops, oursName, progress, func(base http.RoundTripper, n *counters) http.RoundTripper {
		// The same as resilient.NewClient(), on the demo servers' transport,
		// with observers of the breakers and of the attempts.
		opts := []resilient.Option{
			resilient.WithBreakerObserver(func(c resilient.BreakerChange) {
				if c.To == resilient.BreakerOpen {
					n.trips.Add(1)
				}
			}),
			resilient.WithObserver(func(a resilient.Attempt) {
				n.hedges.Add(int64(a.Hedges))
				switch a.StopReason {
				case resilient.StopRetryBudget:
					n.budget.Add(1)
				case resilient.StopUnsafeWrite:
					n.unsafe.Add(1)
				}
			}),
		}
		if cfg.Hedge {
			opts = append(opts, resilient.WithHedging(resilient.Hedging{}))
		}
		return resilient.New(base, opts...)
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// counters are what the resilient client's observers count.
type counters struct {
	trips, budget, unsafe, hedges atomic.Int64
}

// newKey returns a random idempotency key.
func newKey() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var postID = regexp.MustCompile(`"id"\s*:\s*"([^"]+)"`)

// runOnce runs ops through the client wrap builds, against fresh servers.
func runOnce(ctx context.Context, cfg Config, ops []op, name string, progress ProgressFunc, wrap func(base http.RoundTripper, n *counters) http.RoundTripper) (Run, error) {
	p := profiles[cfg.Profile]
	servers := make([]*resilienttest.Server, len(p.dialects))
	for i, d := range p.dialects {
		servers[i] = resilienttest.NewServer(d, p.serverOptions(d, cfg.Seed+int64(i))...)
		defer servers[i].Close()
	}
	base := &http.Transport{MaxIdleConnsPerHost: cfg.Workers, MaxConnsPerHost: 0}
	defer base.CloseIdleConnections()
	var n counters
	client := &http.Client{Transport: wrap(base, &n), Timeout: 2 * time.Minute}

	var (
		mu        sync.Mutex
		ids       = make([][]string, len(servers)) // created posts per server, for fetches
		latencies = make([]time.Duration, len(ops))
		failedBy  = map[string]int{}
		succeeded int
		done      atomic.Int64
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	stopProgress := startProgress(progress, name, len(ops), &done)
	start := time.Now()
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ops) || ctx.Err() != nil {
					return
				}
				o := ops[i]
				path := o.path
				if o.kind == "fetch post" {
					mu.Lock()
					if known := ids[o.server]; len(known) == 0 {
						path = "/v1/posts"
					} else {
						path += known[i%len(known)]
					}
					mu.Unlock()
				}
				t0 := time.Now()
				reason, body := call(ctx, client, servers[o.server].URL+path, o, setsKey(name, p.dialects[o.server], o))
				latencies[i] = time.Since(t0)
				mu.Lock()
				if reason == "" {
					succeeded++
					if o.kind == "create post" {
						if m := postID.FindSubmatch(body); m != nil {
							ids[o.server] = append(ids[o.server], string(m[1]))
						}
					}
				} else {
					failedBy[reason]++
				}
				mu.Unlock()
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	if err := ctx.Err(); err != nil {
		return Run{}, err
	}

	r := Run{Client: name, Calls: len(ops), Succeeded: succeeded, Failed: len(ops) - succeeded, FailedBy: failedBy, Elapsed: elapsed,
		BreakerTrips: int(n.trips.Load()), BudgetRefusals: int(n.budget.Load()), UnsafeWrites: int(n.unsafe.Load()), Hedges: int(n.hedges.Load())}
	for _, s := range servers {
		st := s.Stats()
		r.DuplicatePosts += st.DuplicatesByRoute[resilienttest.RouteCreatePost] // not upload URLs, which are writes too
		r.Received429 += st.RateLimited
		r.ServerAttempts += st.Requests
	}
	r.AttemptsPerCall = float64(r.ServerAttempts) / float64(len(ops))
	slices.Sort(latencies)
	r.P50 = latencies[len(latencies)*50/100]
	r.P99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
	return r, nil
}

// setsKey reports whether the client name sets the Idempotency-Key of the
// write o to an API of dialect d itself. The plain and naive clients set
// it on every write, as a careful integrator does (Aidelly requires one).
// Resilient stamps it, except on Postato's POST /posts, where the caller
// sets its own: Postato's docs say it dedupes that write, and that write
// only, by key, and nothing in its answers proves it, so that a key the
// caller set is what makes the write resendable (the library takes a key
// the caller set as the caller's word that the host dedupes it). Naming
// Postato's host in WithKeyHonoringHosts instead would resend its other
// writes too, which it processes anew under a repeated key.
func setsKey(name string, d resilienttest.Dialect, o op) bool {
	if name != oursName {
		return true
	}
	return d == resilienttest.Postato && o.kind == "create post"
}

// call makes one logical call and returns why it failed ("" for success)
// and the body of a success. With setKey, a write carries an
// Idempotency-Key of the caller's own (see setsKey).
func call(ctx context.Context, client *http.Client, url string, o op, setKey bool) (string, []byte) {
	method := http.MethodGet
	var body io.Reader
	if o.body != "" {
		method, body = http.MethodPost, strings.NewReader(o.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return "bad request", nil
	}
	req.Header.Set("Authorization", "Bearer demo-key")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if setKey {
			req.Header.Set("Idempotency-Key", newKey())
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, resilient.ErrCircuitOpen):
			return "circuit open (fast)", nil
		case errors.Is(err, resilient.ErrRateLimited):
			return "rate limited locally", nil
		}
		return "network error", nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return "429", nil
	case resp.StatusCode >= 500:
		return "5xx", nil
	case resp.StatusCode >= 400:
		return "4xx", nil
	case err != nil:
		return "network error", nil
	}
	return "", data
}

// startProgress calls progress every 100 ms until the returned stop.
func startProgress(progress ProgressFunc, name string, total int, done *atomic.Int64) (stop func()) {
	if progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				progress(name, int(done.Load()), total)
				return
			case <-t.C:
				progress(name, int(done.Load()), total)
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
