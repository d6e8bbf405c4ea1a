// Command fleetdemo runs a fleet of processes against one quota, once with
// each process pacing itself alone and once sharing the quota through
// Redis with a redisquota.Store, and prints the two runs side by side.
//
//	go run ./cmd/fleetdemo            # from the redisquota module
//	go run ./cmd/fleetdemo -json
//
// The parent serves a resilienttest API whose quota is -limit requests per
// -window (one API key's quota: every process shares it), and starts -procs
// copies of itself, each calling it from -workers goroutines for
// -duration. Redis must answer at -redis (REDIS_ADDR by default, else
// 127.0.0.1:6379).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resilienthttp/resilient/redisquota/internal/fleet"
)

func main() {
	if fleet.RunWorker() {
		return
	}
	def := os.Getenv("REDIS_ADDR")
	if def == "" {
		def = "127.0.0.1:6379"
	}
	var cfg fleet.Config
	flag.IntVar(&cfg.Procs, "procs", 4, "worker processes")
	flag.IntVar(&cfg.Workers, "workers", 8, "goroutines per process")
	flag.IntVar(&cfg.Limit, "limit", 600, "the quota: requests per window, for the whole fleet")
	flag.DurationVar(&cfg.Window, "window", time.Second, "the quota's window (a minute, scaled down)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each run calls")
	flag.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "the start of a run left out of the round trips per request")
	flag.DurationVar(&cfg.Latency, "latency", time.Millisecond, "the server's latency per request")
	flag.StringVar(&cfg.RedisAddr, "redis", def, "Redis host:port")
	asJSON := flag.Bool("json", false, "print the results as JSON")
	flag.Parse()

	rdb := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err := rdb.Ping(ctx).Err()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleetdemo: Redis at %s does not answer: %v\n", cfg.RedisAddr, err)
		os.Exit(1)
	}
	var b [6]byte
	rand.Read(b[:])
	cfg.Prefix = "fleetdemo:" + hex.EncodeToString(b[:])
	defer cleanup(rdb, cfg.Prefix)

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetdemo:", err)
		os.Exit(1)
	}
	command := func() *exec.Cmd { return exec.Command(self) }
	var results []fleet.Result
	for _, store := range []bool{false, true} {
		c := cfg
		c.Store = store
		res, err := fleet.Run(context.Background(), c, command)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleetdemo:", err)
			os.Exit(1)
		}
		results = append(results, res)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"config": cfg, "runs": results})
		return
	}
	printTable(cfg, results[0], results[1])
}

func cleanup(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
	rdb.Close()
}

func printTable(cfg fleet.Config, local, shared fleet.Result) {
	fmt.Printf("fleet: %d processes × %d goroutines, one quota of %d requests per %v, %v per run\n\n",
		cfg.Procs, cfg.Workers, cfg.Limit, cfg.Window, cfg.Duration)
	row := func(name, a, b string) { fmt.Printf("%34s  %18s  %18s\n", name, a, b) }
	row("", "each paces alone", "shared via Redis")
	row("attempts (server)", fmt.Sprint(local.Attempts), fmt.Sprint(shared.Attempts))
	row("429 share", pct(local.RejectedShare), pct(shared.RejectedShare))
	row("quota used", pct(local.QuotaUsed), pct(shared.QuotaUsed))
	row("per-process share of accepted", shares(local.Shares), shares(shared.Shares))
	row("largest deviation from fair", pct(local.MaxShareDev), pct(shared.MaxShareDev))
	row("Redis round trips per request", "-", fmt.Sprintf("%.3f", shared.RoundTrips))
	row("added latency p50", local.AddedP50.Round(time.Microsecond).String(), shared.AddedP50.Round(time.Microsecond).String())
	row("added latency p99", local.AddedP99.Round(time.Microsecond).String(), shared.AddedP99.Round(time.Microsecond).String())
	row("calls failed", fmt.Sprint(local.Failed), fmt.Sprint(shared.Failed))
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func shares(s []float64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprintf("%.0f", 100*v)
	}
	return strings.Join(parts, "/") + " %"
}
