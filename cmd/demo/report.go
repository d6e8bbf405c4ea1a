package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// writeHeader prints what a run of cfg compares: the profile, the size of
// the workload, the seed and the columns. It is printed before the runs
// start.
func writeHeader(w io.Writer, cfg Config) {
	fmt.Fprintf(w, "profile %s: %d calls from %d workers, seed %d\n", cfg.Profile, cfg.Calls, cfg.Workers, cfg.Seed)
	fmt.Fprint(w, wrap(profiles[cfg.Profile].about, "  ", 100))
	fmt.Fprintln(w, "columns:")
	writeClients(w)
	if cfg.Hedge {
		fmt.Fprintf(w, "  (-hedge: %s also hedges, resilient.WithHedging(resilient.Hedging{}))\n", oursName)
	}
	fmt.Fprintln(w)
}

// writeClients lists the clients compared and what each does.
func writeClients(w io.Writer) {
	width := 0
	for _, c := range clientAbout {
		width = max(width, len(c[0]))
	}
	for _, c := range clientAbout {
		text := wrap(c[1], strings.Repeat(" ", width+4), 100)
		fmt.Fprintf(w, "  %-*s  %s", width, c[0], strings.TrimLeft(text, " "))
	}
}

// writeProfiles lists the profiles and what each shows.
func writeProfiles(w io.Writer) {
	width := 0
	for _, n := range profileNames() {
		width = max(width, len(n))
	}
	for _, n := range profileNames() {
		text := wrap(profiles[n].about, strings.Repeat(" ", width+4), 100)
		fmt.Fprintf(w, "  %-*s  %s", width, n, strings.TrimLeft(text, " "))
	}
}

// wrap breaks text into lines of at most width characters, each starting
// with indent and ending with a newline.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}

// WriteTable prints the runs side by side, one column per client.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	runs := []Run{r.Plain, r.Naive, r.Ours}
	row := func(label string, cell func(Run) string) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, run := range runs {
			fmt.Fprintf(tw, "%s\t", cell(run))
		}
		fmt.Fprintln(tw)
	}
	row("", func(run Run) string { return run.Client })
	row("calls succeeded", func(run Run) string { return pct(run.Succeeded, r.Calls) })
	row("calls failed", func(run Run) string { return pct(run.Failed, r.Calls) })
	for _, reason := range reasons(r.Plain.FailedBy, r.Naive.FailedBy, r.Ours.FailedBy) {
		row("  "+reason, func(run Run) string { return fmt.Sprint(run.FailedBy[reason]) })
	}
	row("duplicate posts created", func(run Run) string { return fmt.Sprint(run.DuplicatePosts) })
	row("429s received", func(run Run) string { return fmt.Sprint(run.Received429) })
	row("server attempts per call", func(run Run) string { return fmt.Sprintf("%.2f", run.AttemptsPerCall) })
	row("latency p50", func(run Run) string { return round(run.P50) })
	row("latency p99", func(run Run) string { return round(run.P99) })
	ours := func(label string, v func(Run) int) {
		row(label, func(run Run) string {
			if run.Client != oursName {
				return "-"
			}
			return fmt.Sprint(v(run))
		})
	}
	ours("breaker trips", func(run Run) int { return run.BreakerTrips })
	ours("retries refused by the budget", func(run Run) int { return run.BudgetRefusals })
	ours("writes not resent (unsafe)", func(run Run) int { return run.UnsafeWrites })
	ours("hedges sent", func(run Run) int { return run.Hedges })
	row("wall time", func(run Run) string { return round(run.Elapsed) })
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

// reasons returns the failure reasons of the runs, sorted.
func reasons(ms ...map[string]int) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
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

// progressBar draws one bar per run on a terminal, on a line of its own
// that it rewrites.
type progressBar struct {
	w    io.Writer
	mu   sync.Mutex
	open bool // a bar is drawn and its line not ended
}

// update draws the bar of a run; a finished run's bar ends its line.
func (b *progressBar) update(client string, done, total int) {
	const width = 40
	n := width * done / total
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\r%-22s [%s%s] %d/%d", client, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
	b.open = done < total
	if !b.open {
		fmt.Fprintln(b.w)
	}
}

// endLine ends the line of a bar left unfinished, so that what follows
// (an interrupted run's error) gets a line of its own.
func (b *progressBar) endLine() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		fmt.Fprintln(b.w)
		b.open = false
	}
}
