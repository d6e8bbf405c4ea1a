package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results holds the figures of one run of the benchmarks: every value
// reported for each benchmark and unit, over all counts, and the run's
// configuration lines ("key: value").
type results struct {
	config map[string]string
	keys   []string                        // config keys, in order of appearance
	values map[string]map[string][]float64 // benchmark name → unit → values
}

// procSuffix is the -GOMAXPROCS suffix that go test appends to names.
var procSuffix = regexp.MustCompile(`-\d+$`)

// configLine matches a configuration line of the Go benchmark format.
var configLine = regexp.MustCompile(`^([a-z][^\s:]*):\s*(.*)$`)

// parse reads the output of go test -bench, in the Go benchmark data
// format: configuration lines and result lines, other lines ignored.
func parse(r io.Reader) (*results, error) {
	res := &results{config: make(map[string]string), values: make(map[string]map[string][]float64)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if m := configLine.FindStringSubmatch(text); m != nil {
			if _, seen := res.config[m[1]]; !seen {
				res.keys = append(res.keys, m[1])
			}
			res.config[m[1]] = m[2]
			continue
		}
		if !strings.HasPrefix(text, "Benchmark") {
			continue
		}
		f := strings.Fields(text)
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a line cut by other output, or a benchmark's own log
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		units := res.values[name]
		if units == nil {
			units = make(map[string][]float64)
			res.values[name] = units
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %w", line, f[i], err)
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// median returns the median of the values of a benchmark's unit, and
// whether there is any.
func (r *results) median(bench, unit string) (float64, bool) {
	vs := r.values[bench][unit]
	if len(vs) == 0 {
		return 0, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2], true
	}
	return (s[n/2-1] + s[n/2]) / 2, true
}

// max returns the largest value of a benchmark's unit, and whether there
// is any.
func (r *results) max(bench, unit string) (float64, bool) {
	vs := r.values[bench][unit]
	if len(vs) == 0 {
		return 0, false
	}
	return slices.Max(vs), true
}

// count returns how many values a benchmark's unit has.
func (r *results) count(bench, unit string) int { return len(r.values[bench][unit]) }
