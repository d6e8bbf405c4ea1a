package main

import (
	"fmt"
	"math"
	"strings"
)

// The configurations, in the order the benchmarks run them; the names are
// the sub-benchmark names.
var libraries = []string{
	"bare",
	"resilient",
	"resilient-nobreaker",
	"retryablehttp-roundtripper",
	"retryablehttp-client",
	"failsafe-retry+breaker",
	"failsafe-retry",
	"heimdall",
}

// isOurs reports whether a configuration is ours.
func isOurs(lib string) bool { return strings.HasPrefix(lib, "resilient") }

// A workload is one benchmark: how it is tabulated and charted.
type workload struct {
	bench string   // benchmark name without the Benchmark prefix
	title string   // what it measures, for the table's heading
	short string   // the chart panel's title
	units []string // the table's columns; units[0] is charted
	// label is the charted figure's name; target its target, as text.
	label, target string
	// targetValue returns the target line of the chart, if any.
	targetValue func(r *results) (float64, bool)
	noBare      bool // the chart leaves bare out
}

func fixed(v float64) func(*results) (float64, bool) {
	return func(*results) (float64, bool) { return v, true }
}

var workloads = []workload{
	{
		bench: "HappyStub", short: "1. Happy path, stub transport",
		title: "1. Happy path over a stub RoundTripper (a library's own cost)",
		units: []string{"added-ns/op", "added-allocs/op", "ns/op", "allocs/op", "B/op"},
		label: "ns added per call vs bare", target: "≤ 500 ns and ≤ 4 allocs",
		targetValue: fixed(500), noBare: true,
	},
	{
		bench: "HappyLoopback", short: "2. Happy path, loopback, parallel",
		title: "2. Happy path over loopback, parallel callers",
		units: []string{"x-bare", "req/s", "ns/op", "allocs/op", "B/op"},
		label: "throughput relative to bare", target: "≥ 0.95",
		targetValue: fixed(0.95), noBare: true,
	},
	{
		bench: "OneRetry", short: "3. One retry per call (503, 200)",
		title: "3. One retry per call (503, then 200), no waits, no breakers",
		units: []string{"conns/100calls", "attempts/call", "success-%", "ns/op"},
		label: "connections opened per 100 calls", target: "≤ 2",
		targetValue: fixed(2),
	},
	{
		bench: "Outage", short: "4. Outage: 503 to everything",
		title: "4. Outage: 503 to everything, 64 callers × 10 calls per episode",
		units: []string{"attempts/call", "p99-ms", "ns/op"},
		label: "server attempts per call", target: "≤ 1.2",
		targetValue: fixed(1.2),
	},
	{
		bench: "Flaky", short: "5. Flaky: 20% of attempts 503",
		title: "5. Flaky: 20% of attempts get 503 (seeded)",
		units: []string{"success-%", "attempts/call", "ns/op"},
		label: "calls that succeed, %", target: "≥ 99.9%",
		targetValue: fixed(99.9),
	},
	{
		bench: "WriteFault", short: "6. POST, answer lost after the write",
		title: "6. POST, connection dropped after the write on 20% of first attempts",
		units: []string{"dups/1000calls", "success-%", "attempts/call", "ns/op"},
		label: "duplicate writes per 1,000 calls", target: "0",
		targetValue: fixed(0),
	},
}

// format renders a figure of unit for a table or a chart.
func format(unit string, v float64) string {
	switch unit {
	case "success-%", "conns/100calls":
		return fmt.Sprintf("%.2f", v)
	case "x-bare", "attempts/call":
		return fmt.Sprintf("%.3f", v)
	case "added-allocs/op":
		return fmt.Sprintf("%.1f", v)
	case "dups/1000calls", "p99-ms":
		return fmt.Sprintf("%.1f", v)
	case "ns/op", "added-ns/op", "B/op", "req/s":
		return fmt.Sprintf("%.0f", v)
	}
	if math.Abs(v) >= 100 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// A check is one target of the issue, judged on the figures.
type check struct {
	target string
	figure string
	met    bool
	ok     bool // the figures needed were there
}

// checks judges every target on the medians of r.
func checks(r *results) []check {
	m := func(bench, unit string) (float64, bool) { return r.median(bench, unit) }
	var cs []check
	add := func(target string, ok bool, figure string, met bool) {
		cs = append(cs, check{target: target, figure: figure, met: met, ok: ok})
	}

	ns, ok1 := m("HappyStub/resilient", "added-ns/op")
	allocs, ok2 := m("HappyStub/resilient", "added-allocs/op")
	add("1. full chain adds ≤ 500 ns", ok1, format("ns/op", ns)+" ns", ns <= 500)
	add("1. full chain adds ≤ 4 allocs", ok2, format("added-allocs/op", allocs), allocs <= 4.05)
	nbAllocs, ok3 := m("HappyStub/resilient-nobreaker", "added-allocs/op")
	add("1. without breaker adds ≤ 3 allocs", ok3, format("added-allocs/op", nbAllocs), nbAllocs <= 3.05)

	best, bestLib, okp := math.Inf(1), "", false
	for _, lib := range libraries {
		if lib == "bare" || isOurs(lib) {
			continue
		}
		if v, ok := m("HappyStub/"+lib, "added-ns/op"); ok && v < best {
			best, bestLib, okp = v, lib, true
		}
	}
	add("1. full chain adds less than every peer", ok1 && okp,
		fmt.Sprintf("%s ns; least of the peers: %s ns (%s)", format("ns/op", ns), format("ns/op", best), bestLib), ns < best)

	fs, okf := m("HappyStub/failsafe-retry+breaker", "added-ns/op")
	add("1. full chain ≤ 0.5× failsafe-go retry+breaker", ok1 && okf,
		fmt.Sprintf("%s× (%s vs %s ns)", format("x-bare", ns/fs), format("ns/op", ns), format("ns/op", fs)), ns <= 0.5*fs)
	nb, okn := m("HappyStub/resilient-nobreaker", "added-ns/op")
	rt, okr := m("HappyStub/retryablehttp-roundtripper", "added-ns/op")
	add("1. without breaker ≤ 0.5× go-retryablehttp RoundTripper", okn && okr,
		fmt.Sprintf("%s× (%s vs %s ns)", format("x-bare", nb/rt), format("ns/op", nb), format("ns/op", rt)), nb <= 0.5*rt)

	x, ok := m("HappyLoopback/resilient", "x-bare")
	add("2. loopback throughput ≥ 95% of bare", ok, fmt.Sprintf("%.1f%%", 100*x), x >= 0.95)
	c, ok := m("OneRetry/resilient-nobreaker", "conns/100calls")
	add("3. ≤ 2 connections per 100 retried calls", ok, format("conns/100calls", c), c <= 2)
	a, ok := m("Outage/resilient", "attempts/call")
	add("4. outage amplification ≤ 1.2 (defaults)", ok, format("attempts/call", a), a <= 1.2)
	s, ok := m("Flaky/resilient", "success-%")
	add("5. ≥ 99.9% of calls succeed at 20% 503s", ok, format("success-%", s)+"%", s >= 99.9)
	// Any duplicate in any run misses this one: it is judged on the worst.
	d, ok := r.max("WriteFault/resilient", "dups/1000calls")
	add("6. zero duplicate writes (worst run)", ok, format("dups/1000calls", d)+" per 1,000", d == 0)
	return cs
}
