// Package fleet runs a fleet of worker processes against one quota: the
// fleet demo's and the fleet test's harness. The parent serves a
// resilienttest API with a quota on a loopback port, and starts the
// workers (the same binary, run again with an environment variable that
// holds their orders); each runs goroutines calling the API through a
// resilient.Transport, with or without a redisquota.Store, and prints what
// it measured as one line of JSON.
package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/resilienthttp/resilient/resilienttest"
)

// EnvWorker is the environment variable that holds a worker's orders.
const EnvWorker = "REDISQUOTA_FLEET_WORKER"

// Config is one run of a fleet.
type Config struct {
	Procs    int           `json:"procs"`       // worker processes
	Workers  int           `json:"workers"`     // goroutines per process
	Limit    int           `json:"limit"`       // the server's quota: requests per window
	Window   time.Duration `json:"window_ns"`   // the quota's window, in real time
	Duration time.Duration `json:"duration_ns"` // how long the workers call
	Warmup   time.Duration `json:"warmup_ns"`   // the start of the run left out of the steady-state figures
	Latency  time.Duration `json:"latency_ns"`  // the server's latency per request

	Store     bool   `json:"store"`      // share the quota through Redis; else each process paces alone
	RedisAddr string `json:"redis_addr"` // host:port
	Prefix    string `json:"prefix"`     // the Store's key prefix
	// LeaseTime is the Stores' WithLeaseTime; zero for the default.
	LeaseTime time.Duration `json:"lease_time_ns,omitempty"`

	// PauseAt, when positive, makes the server answer its PauseAt-th
	// request 429 with a Retry-After of PauseFor (whole seconds).
	PauseAt  int           `json:"pause_at,omitempty"`
	PauseFor time.Duration `json:"pause_for_ns,omitempty"`
}

// Result is what a run measured.
type Result struct {
	Mode     string `json:"mode"` // "local" or "redis"
	Procs    int    `json:"procs"`
	Workers  int    `json:"workers"`
	Calls    int    `json:"calls"`
	Failed   int    `json:"failed"`   // calls that returned an error or a status other than 200
	Attempts int    `json:"attempts"` // as the server counted them
	Rejected int    `json:"rejected"` // 429s the server sent

	// RejectedShare is Rejected/Attempts.
	RejectedShare float64 `json:"rejected_share"`
	// QuotaUsed is the requests the server accepted over the quota the
	// run's duration allowed.
	QuotaUsed float64 `json:"quota_used"`
	// Shares are each process's share of the accepted requests, and
	// MaxShareDev the largest |share·procs − 1|.
	Shares      []float64 `json:"shares"`
	MaxShareDev float64   `json:"max_share_dev"`
	// RoundTrips is the Redis round trips per attempt after the warmup.
	RoundTrips float64 `json:"redis_round_trips_per_request"`
	// Fallbacks counts the tokens the processes' Stores took from their
	// local limiters while Redis did not answer in time.
	Fallbacks int64 `json:"fallbacks"`
	// AddedP50 and AddedP99 are the percentiles of the limiter's wait per
	// attempt (Attempt.LocalWait).
	AddedP50 time.Duration `json:"added_p50_ns"`
	AddedP99 time.Duration `json:"added_p99_ns"`

	// With PauseAt: requests that reached the server after the first 429
	// reached its process and before its Retry-After ended, and the
	// attempts in flight then.
	PauseHits     int `json:"pause_hits,omitempty"`
	PauseInflight int `json:"pause_inflight,omitempty"`
	// PauseReached is, for each process, how long after the first 429
	// the pause reached it (its partition's pause rose); -1 for a process
	// it never reached while the process ran. PauseLate counts the
	// attempts a process sent after the pause reached it and before the
	// pause ended: each worker may send one that passed the rate limiter
	// just before, none more.
	PauseReached []time.Duration `json:"pause_reached_ns,omitempty"`
	PauseLate    int             `json:"pause_late,omitempty"`

	Elapsed time.Duration `json:"elapsed_ns"`
}

// orders is what a worker receives.
type orders struct {
	Index     int           `json:"index"`
	URL       string        `json:"url"`
	Workers   int           `json:"workers"`
	Start     int64         `json:"start"` // Unix ns
	Duration  time.Duration `json:"duration"`
	Warmup    time.Duration `json:"warmup"`
	Store     bool          `json:"store"`
	RedisAddr string        `json:"redis_addr"`
	Prefix    string        `json:"prefix"`
	LeaseTime time.Duration `json:"lease_time"`
	Sends     bool          `json:"sends"` // report each attempt's times
}

// report is what a worker prints.
type report struct {
	Calls, Failed  int
	Attempts       int
	Waits          []time.Duration // LocalWait of each attempt
	RoundTrips     int64           // Redis round trips after the warmup
	WarmAttempts   int             // attempts after the warmup
	Sends          [][3]int64      // start and end (Unix ns) and status of each attempt
	StoreCalls     int64
	StoreFallbacks int64
	PauseSeen      int64 // with Sends: when the partition's pause first rose (Unix ns); 0 for never
}

// Run runs one fleet. command returns the command that runs a worker: the
// current binary, whose main (or TestMain) calls RunWorker first; Run adds
// the worker's orders to its environment.
func Run(ctx context.Context, cfg Config, command func() *exec.Cmd) (Result, error) {
	if cfg.Procs < 1 || cfg.Workers < 1 || cfg.Limit < 1 || cfg.Window <= 0 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("fleet: invalid config %+v", cfg)
	}
	var opts []resilienttest.Option
	opts = append(opts, resilienttest.WithQuota(resilienttest.Quota{
		Limit: cfg.Limit, Window: time.Minute, TimeScale: float64(time.Minute) / float64(cfg.Window),
		ResetFormat: resilienttest.IETF,
	}))
	if cfg.Latency > 0 {
		opts = append(opts, resilienttest.WithLatency(cfg.Latency))
	}
	if cfg.PauseAt > 0 {
		steps := make([]resilienttest.Step, cfg.PauseAt)
		steps[cfg.PauseAt-1] = resilienttest.RateLimited(cfg.PauseFor)
		opts = append(opts, resilienttest.WithScript(resilienttest.RouteUsage, steps...))
	}
	var rec recorder
	opts = append(opts, resilienttest.WithExchanges(rec.add))
	api := resilienttest.NewPipeServer(resilienttest.Altyaa, opts...)
	defer api.Close()
	srv := httptest.NewServer(api)
	defer srv.Close()

	start := time.Now().Add(300 * time.Millisecond) // the workers start together
	cmds := make([]*exec.Cmd, cfg.Procs)
	outs := make([]*bytes.Buffer, cfg.Procs)
	for i := range cmds {
		o := orders{
			Index: i, URL: srv.URL + "/v1/usage", Workers: cfg.Workers,
			Start: start.UnixNano(), Duration: cfg.Duration, Warmup: cfg.Warmup,
			Store: cfg.Store, RedisAddr: cfg.RedisAddr, Prefix: cfg.Prefix, LeaseTime: cfg.LeaseTime,
			Sends: cfg.PauseAt > 0,
		}
		b, _ := json.Marshal(o)
		cmd := command()
		cmd.Env = append(os.Environ(), EnvWorker+"="+string(b))
		outs[i] = new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = outs[i], os.Stderr
		if err := cmd.Start(); err != nil {
			return Result{}, fmt.Errorf("fleet: starting worker %d: %w", i, err)
		}
		cmds[i] = cmd
	}
	var errs []error
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("fleet: worker %d: %w", i, err))
		}
	}
	if len(errs) > 0 {
		return Result{}, errs[0]
	}
	reps := make([]report, cfg.Procs)
	for i, out := range outs {
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &reps[i]); err != nil {
			return Result{}, fmt.Errorf("fleet: worker %d's report %q: %w", i, out.String(), err)
		}
	}
	return summarize(cfg, reps, &rec, start), nil
}

func summarize(cfg Config, reps []report, rec *recorder, start time.Time) Result {
	res := Result{Mode: "local", Procs: cfg.Procs, Workers: cfg.Workers, Elapsed: cfg.Duration}
	if cfg.Store {
		res.Mode = "redis"
	}
	st := rec.snapshot()
	end := start.Add(cfg.Duration)
	accepted := 0
	for _, h := range st {
		res.Attempts++
		switch {
		case h.status == http.StatusTooManyRequests:
			res.Rejected++
		case h.arrived.Before(end):
			accepted++
		}
	}
	if res.Attempts > 0 {
		res.RejectedShare = float64(res.Rejected) / float64(res.Attempts)
	}
	res.QuotaUsed = float64(accepted) / (float64(cfg.Limit) * cfg.Duration.Seconds() / cfg.Window.Seconds())

	var waits []time.Duration
	var rt int64
	warm, ok := 0, 0
	for _, r := range reps {
		res.Calls += r.Calls
		res.Failed += r.Failed
		ok += r.Calls - r.Failed
		waits = append(waits, r.Waits...)
		rt += r.RoundTrips
		warm += r.WarmAttempts
		res.Fallbacks += r.StoreFallbacks

	}
	for _, r := range reps {
		share := 0.0
		if ok > 0 {
			share = float64(r.Calls-r.Failed) / float64(ok)
		}
		res.Shares = append(res.Shares, share)
		res.MaxShareDev = max(res.MaxShareDev, math.Abs(share*float64(cfg.Procs)-1))
	}
	if warm > 0 {
		res.RoundTrips = float64(rt) / float64(warm)
	}
	slices.Sort(waits)
	res.AddedP50, res.AddedP99 = percentile(waits, 0.50), percentile(waits, 0.99)

	if cfg.PauseAt > 0 {
		// The first 429 as its process received it.
		var at int64
		for _, r := range reps {
			for _, s := range r.Sends {
				if s[2] == http.StatusTooManyRequests && (at == 0 || s[1] < at) {
					at = s[1]
				}
			}
		}
		if at > 0 {
			t429 := time.Unix(0, at)
			pauseEnd := t429.Add(cfg.PauseFor)
			for _, h := range st {
				if h.arrived.After(t429) && h.arrived.Before(pauseEnd) {
					res.PauseHits++
				}
			}
			for _, r := range reps {
				for _, s := range r.Sends {
					if s[0] <= at && s[1] >= at && s[2] != http.StatusTooManyRequests {
						res.PauseInflight++
					}
				}
				reached := time.Duration(-1)
				if r.PauseSeen > 0 {
					reached = time.Duration(r.PauseSeen - at)
					for _, s := range r.Sends {
						if s[0] > r.PauseSeen && s[0] < pauseEnd.UnixNano() {
							res.PauseLate++
						}
					}
				}
				res.PauseReached = append(res.PauseReached, reached)
			}
		}
	}
	return res
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// recorder keeps the server's view of every request.
type recorder struct {
	mu   sync.Mutex
	hits []hit
}

type hit struct {
	arrived, done time.Time
	status        int
}

func (r *recorder) add(e resilienttest.Exchange) {
	r.mu.Lock()
	r.hits = append(r.hits, hit{e.Arrived, e.Answered, e.Status})
	r.mu.Unlock()
}

func (r *recorder) snapshot() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hits)
}
