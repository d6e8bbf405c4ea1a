// Command demo runs the same workload against fault-injecting servers of
// the three APIs (Aidelly, Altyaa, Postato) three times: through a plain
// http.Client, through a naive retrying client (what most retry libraries
// do: resend any request, POSTs included, after a network error, a 429 or
// a 5xx), and through resilient.NewClient(); then it prints the figures
// side by side. The header (profile, workload, columns) comes first, a
// progress bar per run on a terminal, the table last.
//
// Usage:
//
//	go run ./cmd/demo [-calls 2000] [-workers 32] [-profile mixed] [-seed 1] [-hedge] [-json]
//
// Profiles (-h says what each shows): aidelly, altyaa, postato (one API on
// a bad day; Altyaa's server ignores idempotency keys, as most APIs do),
// mixed (the three at once), outage (every answer a 500), ratelimit (a
// tight quota announced in rate-limit headers).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; it returns the exit code: 0 on success, 1 on a
// failure to run or an interrupted run, 2 on bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, isTerminal(stderr))
}

// runWith is run, with progress bars on stderr if terminal.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{}
	fs.IntVar(&cfg.Calls, "calls", 2000, "logical calls per run")
	fs.IntVar(&cfg.Workers, "workers", 32, "concurrent workers")
	fs.StringVar(&cfg.Profile, "profile", "mixed", "fault profile: "+strings.Join(profileNames(), ", "))
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the workload and of the server's faults")
	fs.BoolVar(&cfg.Hedge, "hedge", false, "turn hedging on in the resilient column (resilient.WithHedging)")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: demo [flags]\n\n")
		fmt.Fprint(stderr, wrap("Runs the same workload (posts created, listed and fetched, upload URLs, usage) through "+
			"three clients against fault-injecting servers of three APIs, and prints the figures side by side.", "", 100))
		fmt.Fprint(stderr, "\nclients (the columns):\n")
		writeClients(stderr)
		fmt.Fprint(stderr, "\nprofiles (-profile), and what each shows:\n")
		writeProfiles(stderr)
		fmt.Fprint(stderr, "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}

	var (
		progress ProgressFunc
		bar      *progressBar
	)
	if !*asJSON {
		writeHeader(stdout, cfg)
		if terminal {
			bar = &progressBar{w: stderr}
			progress = bar.update
		}
	}
	report, err := Compare(ctx, cfg, progress)
	if err != nil {
		if bar != nil {
			bar.endLine()
		}
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "demo: interrupted: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "demo: %v\n", err)
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			fmt.Fprintf(stderr, "demo: %v\n", err)
			return 1
		}
		return 0
	}
	report.WriteTable(stdout)
	return 0
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
