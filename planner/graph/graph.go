package graph

import (
	"fmt"
	"io"
	"strings"

	"github.com/flowrun/flowrun/planner"
)

// title is the line that names a pipeline and states its memory bound.
func title(p *planner.Pipeline) string {
	return fmt.Sprintf("pipeline %s: memory bound %s", p.Name, p.Bound)
}

// nodeLabel is a stage's name over its block type and kind.
func nodeLabel(st *planner.Stage) (name, what string) {
	what = st.Block
	if st.Kind != st.Block {
		what = fmt.Sprintf("%s (%s)", st.Block, st.Kind)
	}
	if st.Implicit {
		what += ", implicit"
	}
	return st.Name, what
}

// edgeLabel is an edge's capacity and marks, without brackets.
func edgeLabel(e *planner.Edge) string {
	return strings.TrimSuffix(strings.TrimPrefix(e.Label(), "["), "]")
}

// Dot writes each pipeline as a Graphviz digraph, left to right. Sources
// are drawn as ellipses, sinks as cylinders, fanout and merge stages as
// diamonds (dashed when implicit); lossy edges are dashed and dead-letter
// edges dotted red. A comment before and the graph's label state the memory
// bound.
func Dot(w io.Writer, pipelines ...*planner.Pipeline) error {
	var b strings.Builder
	for i, p := range pipelines {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "// %s\n", title(p))
		fmt.Fprintf(&b, "digraph %s {\n", dotID(p.Name))
		b.WriteString("  rankdir=LR;\n")
		fmt.Fprintf(&b, "  label=%s;\n  labelloc=b;\n", dotID(title(p)))
		b.WriteString("  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")
		for _, st := range p.Stages {
			name, what := nodeLabel(st)
			attrs := []string{"label=" + dotID(name+"\n"+what)}
			switch st.Block {
			case "source":
				attrs = append(attrs, "shape=ellipse")
			case "sink":
				attrs = append(attrs, "shape=cylinder")
			case "fanout", "merge":
				attrs = append(attrs, "shape=diamond")
			}
			if st.Implicit {
				attrs = append(attrs, "style=dashed")
			}
			fmt.Fprintf(&b, "  %s [%s];\n", dotID(st.Name), strings.Join(attrs, ", "))
		}
		for _, e := range p.Edges {
			attrs := []string{"label=" + dotID(edgeLabel(e))}
			switch {
			case e.DeadLetter:
				attrs = append(attrs, "style=dotted", "color=red", "fontcolor=red")
			case e.WhenFull.Lossy():
				attrs = append(attrs, "style=dashed")
			}
			fmt.Fprintf(&b, "  %s -> %s [%s];\n", dotID(e.From.Name), dotID(e.To.Name), strings.Join(attrs, ", "))
		}
		b.WriteString("}\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write dot graph: %w", err)
	}
	return nil
}

// dotID quotes s as a dot identifier.
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Mermaid writes the pipelines as one mermaid flowchart, left to right, with
// a title stating the memory bound; several pipelines become subgraphs.
// Sources are stadiums, sinks cylinders, fanout and merge stages hexagons
// (dashed when implicit); lossy edges are dotted, dead-letter edges dotted
// and red.
func Mermaid(w io.Writer, pipelines ...*planner.Pipeline) error {
	var b strings.Builder
	titles := make([]string, len(pipelines))
	for i, p := range pipelines {
		titles[i] = title(p)
	}
	b.WriteString("---\n")
	fmt.Fprintf(&b, "title: %s\n", mermaidTitle(strings.Join(titles, "; ")))
	b.WriteString("---\nflowchart LR\n")
	ids := newIDs()
	var deadLetters, links int
	var dlLinks []int
	implicit := []string{}
	for i, p := range pipelines {
		indent := "  "
		if len(pipelines) > 1 {
			fmt.Fprintf(&b, "  subgraph %s[\"%s\"]\n", ids.id(fmt.Sprintf("pipeline %d", i), "p_"+p.Name), mermaidText(title(p)))
			indent = "    "
		}
		for _, st := range p.Stages {
			name, what := nodeLabel(st)
			id := ids.id(p.Name+"\x00"+st.Name, st.Name)
			text := mermaidText(name) + "<br/><small>" + mermaidText(what) + "</small>"
			open, close := "[", "]"
			switch st.Block {
			case "source":
				open, close = "([", "])"
			case "sink":
				open, close = "[(", ")]"
			case "fanout", "merge":
				open, close = "{{", "}}"
			}
			fmt.Fprintf(&b, "%s%s%s\"%s\"%s\n", indent, id, open, text, close)
			if st.Implicit {
				implicit = append(implicit, id)
			}
		}
		for _, e := range p.Edges {
			from := ids.id(p.Name+"\x00"+e.From.Name, e.From.Name)
			to := ids.id(p.Name+"\x00"+e.To.Name, e.To.Name)
			arrow := "-->"
			if e.DeadLetter || e.WhenFull.Lossy() {
				arrow = "-.->"
			}
			fmt.Fprintf(&b, "%s%s %s|\"%s\"| %s\n", indent, from, arrow, mermaidText(edgeLabel(e)), to)
			if e.DeadLetter {
				deadLetters++
				dlLinks = append(dlLinks, links)
			}
			links++
		}
		if len(pipelines) > 1 {
			b.WriteString("  end\n")
		}
	}
	if len(implicit) > 0 {
		b.WriteString("  classDef implicit stroke-dasharray: 4 3\n")
		fmt.Fprintf(&b, "  class %s implicit\n", strings.Join(implicit, ","))
	}
	if deadLetters > 0 {
		n := make([]string, len(dlLinks))
		for i, l := range dlLinks {
			n[i] = fmt.Sprint(l)
		}
		fmt.Fprintf(&b, "  linkStyle %s stroke:#d33,color:#d33\n", strings.Join(n, ","))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write mermaid graph: %w", err)
	}
	return nil
}

// mermaidText escapes text for a quoted mermaid label.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ")
	return r.Replace(s)
}

// mermaidTitle makes s safe as a YAML scalar on one line.
func mermaidTitle(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// ids gives every node a mermaid id made of letters, digits and
// underscores, unique in the chart and never a mermaid keyword.
type ids struct {
	byKey map[string]string
	used  map[string]bool
}

func newIDs() *ids { return &ids{byKey: map[string]string{}, used: map[string]bool{}} }

func (m *ids) id(key, name string) string {
	if id, ok := m.byKey[key]; ok {
		return id
	}
	var b strings.Builder
	b.WriteString("n_")
	for _, r := range name {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	id := b.String()
	for i := 2; m.used[id]; i++ {
		id = fmt.Sprintf("%s_%d", b.String(), i)
	}
	m.used[id] = true
	m.byKey[key] = id
	return id
}
