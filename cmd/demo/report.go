package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the two runs side by side.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "profile %s: %d calls from %d workers, seed %d\n\n", r.Profile, r.Calls, r.Workers, r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(label, a, b string) { fmt.Fprintf(tw, "%s\t%s\t%s\t\n", label, a, b) }
	row("", r.Plain.Client, r.Ours.Client)
	row("calls succeeded", pct(r.Plain.Succeeded, r.Calls), pct(r.Ours.Succeeded, r.Calls))
	row("calls failed", pct(r.Plain.Failed, r.Calls), pct(r.Ours.Failed, r.Calls))
	for _, reason := range reasons(r.Plain.FailedBy, r.Ours.FailedBy) {
		row("  "+reason, fmt.Sprint(r.Plain.FailedBy[reason]), fmt.Sprint(r.Ours.FailedBy[reason]))
	}
	row("duplicate posts created", fmt.Sprint(r.Plain.DuplicatePosts), fmt.Sprint(r.Ours.DuplicatePosts))
	row("429s received", fmt.Sprint(r.Plain.Received429), fmt.Sprint(r.Ours.Received429))
	row("server attempts per call", fmt.Sprintf("%.2f", r.Plain.AttemptsPerCall), fmt.Sprintf("%.2f", r.Ours.AttemptsPerCall))
	row("latency p50", round(r.Plain.P50), round(r.Ours.P50))
	row("latency p99", round(r.Plain.P99), round(r.Ours.P99))
	row("breaker trips", "-", fmt.Sprint(r.Ours.BreakerTrips))
	row("wall time", round(r.Plain.Elapsed), round(r.Ours.Elapsed))
	tw.Flush()
}

func pct(n, total int) string {
	return fmt.Sprintf("%d (%.1f%%)", n, 100*float64(n)/float64(total))
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// reasons returns the failure reasons of both runs, sorted.
func reasons(a, b map[string]int) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]int{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// newProgressBar returns a ProgressFunc that draws one bar per run on w, a
// terminal.
func newProgressBar(w io.Writer) ProgressFunc {
	return func(client string, done, total int) {
		const width = 40
		n := width * done / total
		fmt.Fprintf(w, "\r%-22s [%s%s] %d/%d", client, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}
