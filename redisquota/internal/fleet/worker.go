package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient"
	"github.com/resilienthttp/resilient/redisquota"
)

// RunWorker runs a worker when the environment holds its orders, prints
// its report on standard output, and reports true; the caller should then
// exit. Without orders it returns false at once.
func RunWorker() bool {
	v := os.Getenv(EnvWorker)
	if v == "" {
		return false
	}
	var o orders
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		fmt.Fprintln(os.Stderr, "fleet worker: bad orders:", err)
		os.Exit(2)
	}
	rep, err := work(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet worker:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return true
}

// CountingHook counts the round trips of a go-redis client: each command
// and each pipeline.
type CountingHook struct{ N atomic.Int64 }

// DialHook implements redis.Hook.
func (h *CountingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h *CountingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (h *CountingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmds)
	}
}

// sendTimes is a base RoundTripper that records when each attempt left,
// when its answer came, and its status (0 for none).
type sendTimes struct {
	next http.RoundTripper
	mu   sync.Mutex
	ts   [][3]int64
}

func (s *sendTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now().UnixNano()
	resp, err := s.next.RoundTrip(r)
	t1 := time.Now().UnixNano()
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	s.mu.Lock()
	s.ts = append(s.ts, [3]int64{t0, t1, int64(status)})
	s.mu.Unlock()
	return resp, err
}

func work(o orders) (report, error) {
	base := &http.Transport{MaxIdleConns: o.Workers * 2, MaxIdleConnsPerHost: o.Workers * 2}
	defer base.CloseIdleConnections()
	var rt http.RoundTripper = base
	var sends *sendTimes
	if o.Sends {
		sends = &sendTimes{next: base}
		rt = sends
	}
	var (
		mu        sync.Mutex
		waits     []time.Duration
		attempts  atomic.Int64
		warmStart atomic.Int64 // attempts when the warmup ended
	)
	opts := []resilient.Option{resilient.WithObserver(func(a resilient.Attempt) {
		attempts.Add(1)
		mu.Lock()
		waits = append(waits, a.LocalWait)
		mu.Unlock()
	})}
	var (
		hook  CountingHook
		store *redisquota.Store
		rdb   *redis.Client
	)
	if o.Store {
		rdb = redis.NewClient(&redis.Options{Addr: o.RedisAddr, ContextTimeoutEnabled: true})
		rdb.AddHook(&hook)
		sopts := []redisquota.Option{redisquota.WithPrefix(o.Prefix)}
		if o.LeaseTime > 0 {
			sopts = append(sopts, redisquota.WithLeaseTime(o.LeaseTime))
		}
		store = redisquota.New(rdb, sopts...)

		opts = append(opts, resilient.WithQuotaStore(store))
	}
	client := &http.Client{Transport: resilient.New(rt, opts...)}

	start := time.Unix(0, o.Start)
	end := start.Add(o.Duration)
	var pauseSeen atomic.Int64
	if o.Sends && store != nil {
		name, err := readsPartition(o.URL)
		if err != nil {
			return report{}, err
		}
		go watchPause(store.Partition(name), end, &pauseSeen)
	}
	time.Sleep(time.Until(start))
	var rtWarm int64
	warmTimer := time.AfterFunc(time.Until(start.Add(o.Warmup)), func() {
		atomic.StoreInt64(&rtWarm, hook.N.Load())
		warmStart.Store(attempts.Load())
	})
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				calls.Add(1)
				resp, err := client.Get(o.URL)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	warmTimer.Stop()
	rep := report{
		Calls: int(calls.Load()), Failed: int(failed.Load()), Attempts: int(attempts.Load()),
		RoundTrips:   hook.N.Load() - atomic.LoadInt64(&rtWarm),
		WarmAttempts: int(attempts.Load() - warmStart.Load()),
	}
	mu.Lock()
	rep.Waits = waits
	mu.Unlock()
	if sends != nil {
		sends.mu.Lock()
		rep.Sends = sends.ts
		sends.mu.Unlock()
	}
	rep.PauseSeen = pauseSeen.Load()
	if store != nil {
		st := store.Stats()
		rep.StoreCalls, rep.StoreFallbacks = st.Calls, st.Fallbacks
		store.Close()
		rdb.Close()
	}
	return rep, nil
}

// readsPartition returns the name of the rate limiter's partition of GETs
// to rawURL's host, as the Transport names it.
func readsPartition(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("fleet: URL: %w", err)
	}
	return u.Scheme + "://" + u.Host + " reads", nil
}

// watchPause records in seen when p's pause first rises (Unix ns), waking
// on its QuotaWatcher channel, until end.
func watchPause(p resilient.QuotaPartition, end time.Time, seen *atomic.Int64) {
	w, ok := p.(resilient.QuotaWatcher)
	if !ok {
		return
	}
	timeout := time.NewTimer(time.Until(end))
	defer timeout.Stop()
	for {
		ch := w.PauseChanged()
		if now := time.Now(); p.PauseUntil().After(now) {
			seen.Store(now.UnixNano())
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			return
		}
	}
}
