package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Layout of the chart, in SVG user units (pixels).
const (
	panelW, panelH = 400, 284
	gap            = 16
	columns        = 3
	headerH        = 44
	footerH        = 28
	labelW         = 160 // room for a configuration's name, left of the bars
	valueW         = 104 // room for a value and its note, right of the bars
	rowH           = 22
	firstRowY      = 58 // below the panel's title and target line
)

// Colors: ours stand out, the peers are gray, the baseline is light.
const (
	colorOurs   = "#0969da"
	colorPeer   = "#8c959f"
	colorBare   = "#c9d1d9"
	colorTarget = "#cf222e"
	colorText   = "#1f2328"
	colorMuted  = "#59636e"
)

// writeSVG draws one bar chart per workload of r, in a grid.
func writeSVG(w io.Writer, r *results) error {
	rows := (len(workloads) + columns - 1) / columns
	width := columns*panelW + (columns+1)*gap
	height := headerH + rows*(panelH+gap) + footerH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="-apple-system,Segoe UI,Helvetica,Arial,sans-serif">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="18" font-weight="600" fill="%s">resilient vs the peers: per-call cost and resilience</text>`+"\n", gap, colorText)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="12" fill="%s" text-anchor="end"><tspan fill="%s">■</tspan> ours  <tspan fill="%s">■</tspan> peers  <tspan fill="%s">■</tspan> bare http.Transport  <tspan fill="%s">┆</tspan> target</text>`+"\n",
		width-gap, colorMuted, colorOurs, colorPeer, colorBare, colorTarget)
	for i, wl := range workloads {
		x := gap + (i%columns)*(panelW+gap)
		y := headerH + (i/columns)*(panelH+gap)
		drawPanel(&b, r, wl, x, y)
	}
	runs := 0
	for _, units := range r.values {
		runs = max(runs, len(units["ns/op"]))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`+"\n", gap, height-10, colorMuted,
		esc(fmt.Sprintf("Medians of %d run(s), %s, %s, %s. How each workload is built: bench/README.md.",
			runs, r.config["date"], r.config["go"], r.config["cpu-model"])))
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// bar is one row of a panel.
type bar struct {
	lib   string
	value float64
	note  string
}

func drawPanel(b *strings.Builder, r *results, wl workload, x, y int) {
	unit := wl.units[0]
	var bars []bar
	for _, lib := range libraries {
		if wl.noBare && lib == "bare" {
			continue
		}
		v, ok := r.median(wl.bench+"/"+lib, unit)
		if !ok {
			continue
		}
		br := bar{lib: lib, value: v}
		if a, ok := r.median(wl.bench+"/"+lib, "added-allocs/op"); ok {
			br.note = fmt.Sprintf(" +%s allocs", format("added-allocs/op", a))
		}
		bars = append(bars, br)
	}
	fmt.Fprintf(b, `<g transform="translate(%d,%d)">`+"\n", x, y)
	fmt.Fprintf(b, `<rect width="%d" height="%d" rx="6" fill="#f6f8fa" stroke="#d0d7de"/>`+"\n", panelW, panelH)
	fmt.Fprintf(b, `<text x="12" y="22" font-size="13" font-weight="600" fill="%s">%s</text>`+"\n", colorText, esc(wl.short))
	fmt.Fprintf(b, `<text x="12" y="40" font-size="11" fill="%s">%s · target %s</text>`+"\n", colorMuted, esc(wl.label), esc(wl.target))

	target, hasTarget := 0.0, false
	if wl.targetValue != nil {
		target, hasTarget = wl.targetValue(r)
	}
	top := 0.0
	for _, br := range bars {
		top = math.Max(top, br.value)
	}
	if hasTarget {
		top = math.Max(top, target)
	}
	if top <= 0 {
		top = 1
	}
	area := float64(panelW - labelW - valueW - 12)
	scale := func(v float64) float64 { return math.Max(0, v) / top * area }

	if len(bars) == 0 {
		fmt.Fprintf(b, `<text x="12" y="%d" font-size="11" fill="%s">not measured</text>`+"\n", firstRowY+14, colorMuted)
	}
	// The target line goes first, under the bars and their values.
	if hasTarget && len(bars) > 0 {
		tx := float64(labelW) + scale(target)
		y0, y1 := firstRowY, firstRowY+len(bars)*rowH
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="4 3"/>`+"\n",
			tx, y0-4, tx, y1, colorTarget)
	}
	for i, br := range bars {
		ry := firstRowY + i*rowH
		color := colorPeer
		switch {
		case isOurs(br.lib):
			color = colorOurs
		case br.lib == "bare":
			color = colorBare
		}
		weight := "400"
		if isOurs(br.lib) {
			weight = "600"
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" font-weight="%s" fill="%s" text-anchor="end">%s</text>`+"\n",
			labelW-6, ry+14, weight, colorText, esc(br.lib))
		w := scale(br.value)
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%d" rx="2" fill="%s"/>`+"\n", labelW, ry+3, w, rowH-6, color)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10.5" fill="%s">%s</text>`+"\n",
			float64(labelW)+w+4, ry+14, colorText, esc(format(unit, br.value)+br.note))
	}
	b.WriteString("</g>\n")
}

func esc(s string) string { return html.EscapeString(s) }
