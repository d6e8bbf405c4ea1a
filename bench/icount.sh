#!/usr/bin/env bash
# Counts the instructions a benchmark executes per op, with valgrind's
# cachegrind: a figure that other processes on the machine do not move,
# unlike ns/op, so that two builds can be compared on a busy machine.
#
#   bench/icount.sh DIR REGEX [N]
#
# builds the tests of the package in DIR (relative to the repository's
# root), runs the one benchmark matching REGEX for N and for 2N iterations
# (default N=50000), each under cachegrind with the garbage collector off,
# one P, no asynchronous preemption and no RDTSCP (valgrind 3.19 does not
# know the instruction, which Go's runtime uses on an AMD CPU: the run
# would die of SIGILL), and prints the difference per
# iteration: what one op costs, the benchmark's setup subtracted. An op of
# a benchmark that alternates with a bare client (measureAdded in the root
# package, workload 1 here) runs both: compare two builds, or two
# sub-benchmarks, rather than reading one figure alone.
#
# Instructions are not time: a clock read or a cache miss costs more than
# its count says, and the collector's work is left out. Time is what the
# targets are judged on (run.sh); this says whether a change to the code
# removed work. Needs valgrind (Debian: apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: bench/icount.sh DIR REGEX [N]}
re=${2:?usage: bench/icount.sh DIR REGEX [N]}
n=${3:-50000}
command -v valgrind >/dev/null || { echo "icount.sh: valgrind is not installed" >&2; exit 1; }
bin=$(mktemp)
trap 'rm -f "$bin"' EXIT
(cd "$dir" && go test -c -o "$bin" .)
count() {
	local out
	if ! out=$(GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off \
		valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "$re" -test.benchtime="${1}x" 2>&1); then
		echo "icount.sh: the run of $1 iterations failed:" >&2
		echo "$out" | grep -v '^r[0-9a-z]* *0x' | tail -25 >&2
		return 1
	fi
	# The count is of one benchmark's op: a REGEX that matches none (a
	# name with a regexp character, such as failsafe-retry+breaker, not
	# escaped) would print the harness's few instructions as a figure, and
	# one that matches several (HappyPath/x matches BenchmarkHappyPathLoop/x
	# as well) the sum of their ops.
	local names
	names=$(echo "$out" | awk '/^Benchmark[^ \t]*[ \t]+[0-9]+[ \t]/ {print $1}' | sort -u)
	if [ "$(echo "$names" | grep -c .)" != 1 ]; then
		echo "icount.sh: $re must match exactly one benchmark; it matched:" >&2
		echo "${names:-(none)}" >&2
		return 1
	fi
	echo "$out" | sed -n 's/.*I *refs: *//p' | tr -d ,
}
a=$(count "$n")
b=$(count $((2 * n)))
[ -n "$a" ] && [ -n "$b" ] || { echo "icount.sh: valgrind printed no count" >&2; exit 1; }
echo "$re: $(((b - a) / n)) instructions/op"
