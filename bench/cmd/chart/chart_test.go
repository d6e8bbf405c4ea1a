package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

const sample = `date: Mon Nov 24 16:00:00 UTC 2025
go: go version go1.26.8 linux/amd64
cpu-model: AMD EPYC
cores: 2
goos: linux
goarch: amd64
pkg: github.com/resilienthttp/resilient/bench
cpu: AMD EPYC
BenchmarkHappyStub/bare-2         	  556786	       480.0 ns/op	     408 B/op	       6 allocs/op
BenchmarkHappyStub/resilient-2    	  258789	       900.0 ns/op	         2.000 added-allocs/op	       400.0 added-ns/op	     889 B/op	       8 allocs/op
BenchmarkHappyStub/resilient-2    	  258789	       910.0 ns/op	         2.000 added-allocs/op	       420.0 added-ns/op	     889 B/op	       8 allocs/op
BenchmarkHappyStub/resilient-2    	  258789	       990.0 ns/op	         3.000 added-allocs/op	       600.0 added-ns/op	     889 B/op	       8 allocs/op
BenchmarkHappyStub/resilient-nobreaker-2 	  200870	      800 ns/op	         2.000 added-allocs/op	       300.0 added-ns/op	     889 B/op	       8 allocs/op
BenchmarkHappyStub/retryablehttp-roundtripper-2  	  315321	       714.7 ns/op	         5.000 added-allocs/op	       700 added-ns/op	     665 B/op	      11 allocs/op
BenchmarkHappyStub/failsafe-retry+breaker-2      	  170403	      1174 ns/op	        22.00 added-allocs/op	       865.1 added-ns/op	    1224 B/op	      28 allocs/op
BenchmarkHappyStub/heimdall-2                    	  638724	       325.7 ns/op	         2.000 added-allocs/op	        63.93 added-ns/op	     472 B/op	       8 allocs/op
BenchmarkHappyStub/resty-2                       	  300000	       1500 ns/op	         14.00 added-allocs/op	        1000 added-ns/op	     2100 B/op	      20 allocs/op
some log line the benchmark printed
BenchmarkHappyLoopback/bare-2  	  1000	  50000 ns/op	 20000 req/s
BenchmarkHappyLoopback/resilient-2  	  1000	  51000 ns/op	 19600 req/s	 0.9700 x-bare
BenchmarkOneRetry/resilient-nobreaker-2 	 2000	 108622 ns/op	 2.000 attempts/call	 0.05000 conns/100calls	 100.0 success-%
BenchmarkOutage/resilient-2 	 3	 515577241 ns/op	 6.000 attempts/call	 161.7 p99-ms
BenchmarkFlaky/resilient-2 	 5000	 863046 ns/op	 1.248 attempts/call	 100.0 success-%
BenchmarkWriteFault/resilient-2 	 2000	 109135 ns/op	 1.204 attempts/call	 0 dups/1000calls	 100.0 success-%
BenchmarkWriteFault/resilient-2 	 2000	 109135 ns/op	 1.204 attempts/call	 0.5 dups/1000calls	 100.0 success-%
BenchmarkWriteFault/resilient-2 	 2000	 109135 ns/op	 1.204 attempts/call	 0 dups/1000calls	 100.0 success-%
BenchmarkUpload/bare-2 	 100	 50000 ns/op	 20000 MB/s	 1036 B/op	 12 allocs/op
BenchmarkUpload/resilient-2 	 100	 950000 ns/op	 1000 MB/s	 19.00 x-bare	 1053445 B/op	 29 allocs/op
BenchmarkUpload/retryablehttp-roundtripper-2 	 100	 2000000 ns/op	 500 MB/s	 40.00 x-bare	 2232300 B/op	 46 allocs/op
BenchmarkUpload/heimdall-2 	 100	 900000 ns/op	 1100 MB/s	 18.00 x-bare	 2232075 B/op	 42 allocs/op
BenchmarkUpload/resty-2 	 100	 2100000 ns/op	 500 MB/s	 42.00 x-bare	 2232817 B/op	 65 allocs/op
PASS
ok  	github.com/resilienthttp/resilient/bench	3.752s
`

func mustParse(t *testing.T) *results {
	t.Helper()
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParse(t *testing.T) {
	r := mustParse(t)
	if got := r.config["go"]; got != "go version go1.26.8 linux/amd64" {
		t.Errorf("config[go] = %q", got)
	}
	if got := r.config["date"]; got != "Mon Nov 24 16:00:00 UTC 2025" {
		t.Errorf("config[date] = %q", got)
	}
	for _, tc := range []struct {
		bench, unit string
		want        float64
		n           int
	}{
		{"HappyStub/resilient", "added-ns/op", 420, 3},
		{"HappyStub/resilient", "ns/op", 910, 3},
		{"HappyStub/bare", "allocs/op", 6, 1},
		{"HappyStub/failsafe-retry+breaker", "added-ns/op", 865.1, 1},
		{"HappyLoopback/resilient", "x-bare", 0.97, 1},
		{"WriteFault/resilient", "dups/1000calls", 0, 3},
	} {
		got, ok := r.median(tc.bench, tc.unit)
		if !ok || got != tc.want {
			t.Errorf("median(%s, %s) = %v, %v; want %v", tc.bench, tc.unit, got, ok, tc.want)
		}
		if n := r.count(tc.bench, tc.unit); n != tc.n {
			t.Errorf("count(%s, %s) = %d, want %d", tc.bench, tc.unit, n, tc.n)
		}
	}
	if got, _ := r.max("WriteFault/resilient", "dups/1000calls"); got != 0.5 {
		t.Errorf("max(dups) = %v, want 0.5", got)
	}
	if _, ok := r.median("HappyStub/nobody", "ns/op"); ok {
		t.Errorf("median of a missing benchmark reported ok")
	}
}

func TestParseEvenMedian(t *testing.T) {
	r, err := parse(strings.NewReader("BenchmarkX-8 10 1 ns/op\nBenchmarkX-8 10 4 ns/op\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.median("X", "ns/op"); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestParseBadValue(t *testing.T) {
	if _, err := parse(strings.NewReader("BenchmarkX-8 10 abc ns/op\n")); err == nil {
		t.Errorf("parse accepted a value that is not a number")
	}
}

func TestChecks(t *testing.T) {
	got := make(map[string]check)
	for _, c := range checks(mustParse(t)) {
		got[c.target] = c
	}
	for _, tc := range []struct {
		prefix  string
		ok, met bool
	}{
		{"1. full chain ≤ 0.5× go-retryablehttp", true, false},      // 420 > 350
		{"1. without breaker ≤ 0.4× go-retryablehttp", true, false}, // 300 > 280
		{"1. full chain ≤ 0.25× failsafe-go", true, false},          // 420 > 216
		{"1. full chain adds 0 allocs", true, false},                // median 2
		{"2. loopback throughput", true, true},                      // 0.97
		{"7. 1 MiB without GetBody", true, true},                    // 950000 ≤ 990000
		{"3. ", true, true},
		{"4. ", true, false},
		{"5. ", true, true},
		{"6. ", true, false}, // one run had a duplicate
	} {
		found := false
		for target, c := range got {
			if strings.HasPrefix(target, tc.prefix) {
				found = true
				if c.ok != tc.ok || c.met != tc.met {
					t.Errorf("%s: ok %v met %v (figure %s); want ok %v met %v", target, c.ok, c.met, c.figure, tc.ok, tc.met)
				}
			}
		}
		if !found {
			t.Errorf("no check %q", tc.prefix)
		}
	}
}

func TestChecksWithoutFigures(t *testing.T) {
	for _, c := range checks(&results{values: map[string]map[string][]float64{}}) {
		if c.ok {
			t.Errorf("%s: judged without figures", c.target)
		}
	}
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	writeSummary(&b, mustParse(t))
	s := b.String()
	for _, want := range []string{
		"Measured on Mon Nov 24 16:00:00 UTC 2025 with go version go1.26.8 linux/amd64, on AMD EPYC (2 cores, linux/amd64), 3 run(s)",
		"| 1. full chain ≤ 0.5× go-retryablehttp RoundTripper | 0.600× (420 vs 700 ns) | **missed** |",
		"| 7. 1 MiB without GetBody ≤ 1.1× the cheapest peer | 1.056× (x-bare 19.0 vs 18.0, heimdall; ns/op 950000 vs 900000) | met |",
		"| **resilient** | 19.0 | 950000 | 1053445 | 29 |",
		"| **resilient** | 420 | 2.0 | 910 | 8 | 889 |",
		"| heimdall | 64 | 2.0 | 326 | 8 | 472 |",
		"| resty | 1000 | 14.0 | 1500 | 20 | 2100 |",
		"| resty | 42.0 | 2100000 | 2232817 | 65 |",
		"| **resilient** | 0.0 | 100.00 | 1.204 | 109135 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestReplaceSection(t *testing.T) {
	doc := []byte("# Title\n\n" + beginMarker + "\nold\n" + endMarker + "\n\nrest\n")
	got, err := replaceSection(doc, []byte("\nnew figures\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\n" + beginMarker + "\nnew figures\n" + endMarker + "\n\nrest\n"
	if string(got) != want {
		t.Errorf("replaceSection = %q, want %q", got, want)
	}
	if _, err := replaceSection([]byte("no markers"), nil); err == nil {
		t.Errorf("replaceSection without markers: no error")
	}
}

func TestSVG(t *testing.T) {
	var b bytes.Buffer
	if err := writeSVG(&b, mustParse(t)); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, with a bar and a label per measured configuration.
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	rects, lines := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "line":
				lines++
			}
		}
	}
	// 1 background + 7 panels + bars: 6 (stub, bare left out) + 1 (loopback,
	// bare left out) + 1 + 1 + 1 + 1 + 4 (upload, bare left out).
	if want := 1 + 7 + 15; rects != want {
		t.Errorf("%d rects, want %d", rects, want)
	}
	if lines != 7 {
		t.Errorf("%d target lines, want 7", lines)
	}
	for _, want := range []string{"failsafe-retry+breaker", "+2.0 allocs", "0.970", "Medians of 3 run(s)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// TestPanelHoldsEveryConfiguration checks that a panel has room for a bar of
// every configuration a workload runs: all but one (resilient-deadline runs
// only in the happy paths, which leave bare out; resilient-keyhosts only in
// the write faults).
func TestPanelHoldsEveryConfiguration(t *testing.T) {
	if bars := len(libraries) - 1; firstRowY+bars*rowH > panelH {
		t.Errorf("%d bars need %d units, the panel is %d high", bars, firstRowY+bars*rowH, panelH)
	}
}
