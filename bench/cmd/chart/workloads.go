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
	"resilient-deadline",
	"resilient-keyhosts",
	"retryablehttp-roundtripper",
	"retryablehttp-client",
	"failsafe-retry+breaker",
	"failsafe-retry",
	"heimdall",
	"resty",
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
		label: "ns added per call vs bare", target: "≤ 0.5× go-retryablehttp RoundTripper's, 0 allocs",
		targetValue: scaledPeer("HappyStub/retryablehttp-roundtripper", "added-ns/op", 0.5), noBare: true,
	},
	{
		bench: "HappyLoopback", short: "2. Happy path, loopback, parallel",
		title: "2. Happy path over loopback, 32 parallel callers",
		units: []string{"x-bare", "req/s", "ns/op", "allocs/op", "B/op"},
		label: "throughput relative to bare", target: "≥ 0.97",
		targetValue: fixed(0.97), noBare: true,
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
	{
		bench: "Upload", short: "7. POST 1 MiB without GetBody",
		title: "7. POST of a 1 MiB body without GetBody, stub transport",
		units: []string{"x-bare", "ns/op", "B/op", "allocs/op"},
		label: "time relative to bare, alternating", target: "≤ 1.1× the cheapest peer",
		targetValue: func(r *results) (float64, bool) {
			v, _, ok := cheapestPeer(r, "Upload", "x-bare")
			return 1.1 * v, ok
		},
		noBare: true,
	},
}

// scaledPeer returns a target line at f times a peer's median.
func scaledPeer(bench, unit string, f float64) func(*results) (float64, bool) {
	return func(r *results) (float64, bool) {
		v, ok := r.median(bench, unit)
		return f * v, ok
	}
}

// cheapestPeer returns the least median of unit among the peers (neither
// ours nor bare) in bench, and which peer it is.
func cheapestPeer(r *results, bench, unit string) (float64, string, bool) {
	best, lib, ok := math.Inf(1), "", false
	for _, l := range libraries {
		if l == "bare" || isOurs(l) {
			continue
		}
		if v, found := r.median(bench+"/"+l, unit); found && v < best {
			best, lib, ok = v, l, true
		}
	}
	return best, lib, ok
}

// format renders a figure of unit for a table or a chart.
func format(unit string, v float64) string {
	switch unit {
	case "success-%", "conns/100calls":
		return fmt.Sprintf("%.2f", v)
	case "attempts/call":
		return fmt.Sprintf("%.3f", v)
	case "x-bare":
		if v >= 10 {
			return fmt.Sprintf("%.1f", v)
		}
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
	nb, okn := m("HappyStub/resilient-nobreaker", "added-ns/op")
	rt, okr := m("HappyStub/retryablehttp-roundtripper", "added-ns/op")
	fs, okf := m("HappyStub/failsafe-retry+breaker", "added-ns/op")
	ratio := func(a, b float64) string {
		return fmt.Sprintf("%s× (%s vs %s ns)", format("x-bare", a/b), format("ns/op", a), format("ns/op", b))
	}
	add("1. full chain ≤ 0.5× go-retryablehttp RoundTripper", ok1 && okr, ratio(ns, rt), ns <= 0.5*rt)
	add("1. without breaker ≤ 0.4× go-retryablehttp RoundTripper", okn && okr, ratio(nb, rt), nb <= 0.4*rt)
	add("1. full chain ≤ 0.25× failsafe-go retry+breaker", ok1 && okf, ratio(ns, fs), ns <= 0.25*fs)
	add("1. full chain adds 0 allocs", ok2, format("added-allocs/op", allocs), allocs <= 0.05)

	x, ok := m("HappyLoopback/resilient", "x-bare")
	add("2. loopback throughput, 32 callers, ≥ 97% of bare", ok, fmt.Sprintf("%.1f%%", 100*x), x >= 0.97)
	c, ok := m("OneRetry/resilient-nobreaker", "conns/100calls")
	add("3. ≤ 2 connections per 100 retried calls", ok, format("conns/100calls", c), c <= 2)
	a, ok := m("Outage/resilient", "attempts/call")
	add("4. outage amplification ≤ 1.2 (defaults)", ok, format("attempts/call", a), a <= 1.2)
	s, ok := m("Flaky/resilient", "success-%")
	add("5. ≥ 99.9% of calls succeed at 20% 503s", ok, format("success-%", s)+"%", s >= 99.9)
	// Any duplicate in any run misses this one: it is judged on the worst.
	d, ok := r.max("WriteFault/resilient", "dups/1000calls")
	add("6. zero duplicate writes (worst run)", ok, format("dups/1000calls", d)+" per 1,000", d == 0)
	// Judged on x-bare, each library's time over a bare client's in
	// alternating blocks, as workloads 1 and 2 are: the peers' ns/op,
	// measured minutes apart, spread by a factor of 2 to 4 on the shared
	// machine within one run.
	up, oku := m("Upload/resilient", "x-bare")
	cheap, cheapLib, okc := cheapestPeer(r, "Upload", "x-bare")
	upNs, _ := m("Upload/resilient", "ns/op")
	peerNs, _ := m("Upload/"+cheapLib, "ns/op")
	add("7. 1 MiB without GetBody ≤ 1.1× the cheapest peer", oku && okc,
		fmt.Sprintf("%.3f× (x-bare %.1f vs %.1f, %s; ns/op %s vs %s)", up/cheap, up, cheap, cheapLib, format("ns/op", upNs), format("ns/op", peerNs)), up <= 1.1*cheap)
	return cs
}
