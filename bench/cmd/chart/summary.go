package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The markers around the generated part of bench/README.md.
const (
	beginMarker = "<!-- results:begin -->"
	endMarker   = "<!-- results:end -->"
)

// writeSummary writes the figures of r as Markdown: the run's environment,
// the targets with their verdicts, and one table per workload.
func writeSummary(w io.Writer, r *results) {
	cfg := func(k string) string {
		if v, ok := r.config[k]; ok && v != "" {
			return v
		}
		return "unknown"
	}
	runs := 0
	for _, units := range r.values {
		runs = max(runs, len(units["ns/op"]))
	}
	fmt.Fprintf(w, "Measured on %s with %s, on %s (%s cores, %s/%s), %d run(s) per benchmark; figures are medians.\n\n",
		cfg("date"), cfg("go"), cfg("cpu-model"), cfg("cores"), cfg("goos"), cfg("goarch"), runs)
	if c := r.config["command"]; c != "" {
		fmt.Fprintf(w, "Command: `%s`\n\n", c)
	}

	fmt.Fprintln(w, "| target | figure | verdict |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, c := range checks(r) {
		verdict, figure := "met", c.figure
		switch {
		case !c.ok:
			verdict, figure = "not measured", "–"
		case !c.met:
			verdict = "**missed**"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", c.target, figure, verdict)
	}

	for _, wl := range workloads {
		fmt.Fprintf(w, "\n#### %s\n\n", wl.title)
		fmt.Fprintf(w, "| library | %s |\n", strings.Join(wl.units, " | "))
		fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(wl.units)))
		for _, lib := range libraries {
			name := wl.bench + "/" + lib
			if _, ok := r.values[name]; !ok {
				continue
			}
			cells := make([]string, len(wl.units))
			for i, u := range wl.units {
				cells[i] = "–"
				if v, ok := r.median(name, u); ok {
					cells[i] = format(u, v)
				}
			}
			label := lib
			if isOurs(lib) {
				label = "**" + lib + "**"
			}
			fmt.Fprintf(w, "| %s | %s |\n", label, strings.Join(cells, " | "))
		}
	}
}

// replaceSection returns doc with the text between the results markers
// replaced by section.
func replaceSection(doc, section []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return nil, errors.New("no " + beginMarker + " … " + endMarker + " section")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString("\n")
	out.Write(bytes.TrimSpace(section))
	out.WriteString("\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}
