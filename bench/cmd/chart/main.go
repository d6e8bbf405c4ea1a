// Chart renders the results of the bench module's benchmarks: an SVG bar
// chart with one panel per workload, and a Markdown summary (the targets
// with their verdicts, and one table per workload) that it prints and can
// write into README.md between its results markers.
//
// Usage:
//
//	go run ./cmd/chart [-in results/latest.txt] [-svg chart.svg] [-readme README.md]
//
// The input is the output of go test -bench, in the Go benchmark data
// format; "key: value" lines name the run's date, Go version and CPU. With
// several runs of a benchmark (-count), every figure is the median.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

func main() {
	in := flag.String("in", "results/latest.txt", "benchmark output to read")
	svg := flag.String("svg", "chart.svg", "SVG file to write; empty for none")
	readme := flag.String("readme", "", "Markdown file whose results section to rewrite; empty for none")
	flag.Parse()
	if err := run(*in, *svg, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(in, svgPath, readme string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if len(r.values) == 0 {
		return fmt.Errorf("%s: no benchmark results", in)
	}
	if svgPath != "" {
		var b bytes.Buffer
		if err := writeSVG(&b, r); err != nil {
			return err
		}
		if err := os.WriteFile(svgPath, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	var sum bytes.Buffer
	writeSummary(&sum, r)
	os.Stdout.Write(sum.Bytes())
	if readme != "" {
		doc, err := os.ReadFile(readme)
		if err != nil {
			return err
		}
		out, err := replaceSection(doc, sum.Bytes())
		if err != nil {
			return fmt.Errorf("%s: %w", readme, err)
		}
		if err := os.WriteFile(readme, out, 0o644); err != nil {
			return err
		}
	}
	return nil
}
