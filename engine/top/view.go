package top

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/flowrun/flowrun/engine/admin"
)

// BarWidth is the width in cells of an edge's fill bar.
const BarWidth = 20

// styles are the looks of the view, made for one renderer.
type styles struct {
	title, dim, header, bottleneck, err lipgloss.Style
	fillLow, fillHigh, fillFull         lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		title:      r.NewStyle().Bold(true),
		dim:        r.NewStyle().Faint(true),
		header:     r.NewStyle().Bold(true).Underline(true),
		bottleneck: r.NewStyle().Bold(true).Foreground(lipgloss.Color("9")),
		err:        r.NewStyle().Bold(true).Foreground(lipgloss.Color("9")),
		fillLow:    r.NewStyle().Foreground(lipgloss.Color("10")),
		fillHigh:   r.NewStyle().Foreground(lipgloss.Color("11")),
		fillFull:   r.NewStyle().Foreground(lipgloss.Color("9")),
	}
}

// render draws the whole frame: a header, the state of the connection,
// then each pipeline.
func (m Model) render() string {
	var b strings.Builder
	st := m.styles
	fmt.Fprintf(&b, "%s  %s  %s\n", st.title.Render("flowrun top"), m.cfg.Addr,
		st.dim.Render("every "+m.cfg.Interval.String()+" · q quits"))
	switch {
	case m.err != nil:
		fmt.Fprintf(&b, "%s %s\n  %v\n", st.err.Render("cannot reach "+m.cfg.Addr),
			st.dim.Render(fmt.Sprintf("(%s failed; retrying every %s)", plural(m.failures, "poll"), m.cfg.Interval)), m.err)
	case !m.polled:
		fmt.Fprintf(&b, "connecting to %s …\n", m.cfg.Addr)
	case len(m.pipelines) == 0:
		b.WriteString("no pipelines\n")
	}
	for _, p := range m.pipelines {
		b.WriteString("\n")
		m.renderPipeline(&b, p)
	}
	return b.String()
}

// renderPipeline draws one pipeline: its totals, its bottleneck, a table
// of its stages and one of its edges.
func (m Model) renderPipeline(b *strings.Builder, p admin.Pipeline) {
	st := m.styles
	fmt.Fprintf(b, "%s  %s  in %d  out %d  in flight %d  window %.1fs\n",
		st.title.Render("pipeline "+strconv.Quote(p.Name)), p.State, p.RecordsIn, p.RecordsOut, p.InFlight, p.WindowSeconds)
	bottleneck := ""
	if p.Bottleneck != nil {
		bottleneck = *p.Bottleneck
		fmt.Fprintf(b, "bottleneck: %s\n", st.bottleneck.Render(bottleneck))
	} else {
		fmt.Fprintf(b, "bottleneck: %s\n", st.dim.Render("none"))
	}
	b.WriteString("\n")

	stages := [][]string{{"", "STAGE", "KIND", "IN/S", "OUT/S", "IN", "OUT", "ERR", "RETRY", "SKIP", "DROP", "DLQ", "BUSY"}}
	for _, s := range p.Stages {
		mark := ""
		if s.Name == bottleneck {
			mark = "▶"
		}
		busy := "-"
		if s.Busy != nil {
			busy = fmt.Sprintf("%.0f%%", 100**s.Busy)
		}
		stages = append(stages, []string{mark, s.Name, s.Kind,
			rate(s.InPerSecond), rate(s.OutPerSecond), count(s.In), count(s.Out),
			count(s.Errors), count(s.Retries), count(s.Skipped), count(s.Dropped), count(s.DeadLettered), busy})
	}
	for i, line := range table(stages, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12) {
		switch {
		case i == 0:
			line = st.header.Render(line)
		case p.Stages[i-1].Name == bottleneck:
			line = st.bottleneck.Render(line) + "  " + st.bottleneck.Render("◀ bottleneck")
		}
		b.WriteString(line + "\n")
	}
	if len(p.Edges) == 0 {
		return
	}
	b.WriteString("\n")
	edges := [][]string{{"", "EDGE", "FILL", "QUEUED", "NOTE"}}
	for _, e := range p.Edges {
		share := fill(e)
		edges = append(edges, []string{"", e.From + " → " + e.To, m.bar(share),
			fmt.Sprintf("%d/%d", e.Queued, e.Capacity), note(e)})
	}
	for i, line := range table(edges, 3) {
		if i == 0 {
			line = st.header.Render(line)
		}
		b.WriteString(line + "\n")
	}
}

// fill is the share of its limit an edge holds, from 0 to 1: of its
// records, or of its bytes when that is more.
func fill(e admin.Edge) float64 {
	share := 0.0
	if e.Capacity > 0 {
		share = float64(e.Queued) / float64(e.Capacity)
	}
	if e.CapacityBytes > 0 {
		share = max(share, float64(e.QueuedBytes)/float64(e.CapacityBytes))
	}
	return min(max(share, 0), 1)
}

// bar draws share as BarWidth cells, coloured by how full it is: full
// from admin.FullShare on.
func (m Model) bar(share float64) string {
	n := int(math.Round(share * BarWidth))
	if share > 0 && n == 0 {
		n = 1
	}
	style := m.styles.fillLow
	switch {
	case share >= admin.FullShare:
		style = m.styles.fillFull
	case share >= admin.FullShare/2:
		style = m.styles.fillHigh
	}
	return style.Render(strings.Repeat("█", n)) + m.styles.dim.Render(strings.Repeat("░", BarWidth-n))
}

// note says what is particular about an edge: full, its bytes, lossy, a
// dead-letter edge.
func note(e admin.Edge) string {
	var parts []string
	if e.Full {
		parts = append(parts, "full")
	}
	if e.CapacityBytes > 0 {
		parts = append(parts, size(e.QueuedBytes)+"/"+size(e.CapacityBytes))
	}
	if e.WhenFull != "" && e.WhenFull != "block" {
		parts = append(parts, "when full: "+e.WhenFull)
	}
	if e.DeadLetter {
		parts = append(parts, "dead letter")
	}
	return strings.Join(parts, ", ")
}

// table pads the cells of rows into aligned lines, two spaces apart, the
// columns numbered in right aligned to the right and the others to the
// left, with no trailing spaces. Widths are measured in cells, so styled
// cells align too.
func table(rows [][]string, right ...int) []string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], lipgloss.Width(c))
		}
	}
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-lipgloss.Width(c))
			if slices.Contains(right, i) {
				b.WriteString(pad + c)
			} else {
				b.WriteString(c + pad)
			}
		}
		lines = append(lines, strings.TrimRight(b.String(), " "))
	}
	return lines
}

// rate renders records per second: with one decimal below 1000, whole
// below a million, then in millions.
func rate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// count renders a count in full.
func count(n int64) string { return strconv.FormatInt(n, 10) }

// size renders a size in bytes with a binary unit.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// plural renders n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
