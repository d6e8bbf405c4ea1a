#!/usr/bin/env bash
# Runs every workload of the bench module against the peers, COUNT times
# (default 6), prints a benchstat table, and refreshes the published
# figures: results/latest.txt (raw), results/benchstat.txt, chart.svg and
# the results section of README.md.
#
# Needs only Go and the module proxy. Takes about 10 minutes on 2 cores;
# COUNT=1 ./run.sh gives a first look in under 2.
set -euo pipefail
cd "$(dirname "$0")"

count=${COUNT:-6}
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

mkdir -p results
out=results/latest.txt.tmp
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "go: $(go version)"
	echo "cpu-model: ${cpu:-unknown}"
	echo "cores: $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo unknown)"
	echo "command: COUNT=$count bench/run.sh"
} >"$out"

# Each workload runs with its own -benchtime: time-based for the happy
# paths, a fixed number of calls (or outage episodes) for the others, so
# that every library gets the same calls and the seeded faults repeat.
run() {
	echo "== $1 (-benchtime=$2 -count=$count)" >&2
	go test -run '^$' -bench "^Benchmark$1\$" -benchtime "$2" -count "$count" . | tee -a "$out"
}
run HappyStub 1s
run HappyLoopback 1s
run OneRetry 2000x
run Outage 3x
run Flaky 5000x
run WriteFault 2000x
run Upload 2000x
mv "$out" results/latest.txt

echo "== benchstat" >&2
go run "$benchstat" results/latest.txt | tee results/benchstat.txt

echo "== chart.svg, README.md" >&2
go run ./cmd/chart -in results/latest.txt -svg chart.svg -readme README.md
