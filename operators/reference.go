package operators

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/flowrun/flowrun/planner"
)

// blockOrder is the order in which the reference lists block types: where
// records come from, what happens to them, where they go.
var blockOrder = []string{"source", "filter", "map", "buffered", "throttle", "fanout", "merge",
	"batch", "take", "skip", "reduce", "window", "dedupe", "sink"}

// WriteReference writes the operator reference in Markdown: every kind
// with its description and a table of its options, from the schemas. The
// file docs/operators.md is this output, so the reference cannot drift from
// what the planner accepts.
func (r *Registry) WriteReference(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Operator reference\n\n")
	b.WriteString("<!-- Generated from the operator schemas by `go test ./operators/all -update`; do not edit. -->\n\n")
	b.WriteString("Every stage block also takes the options common to all stages (`from`, `on_error`,\n")
	b.WriteString("`dead_letter`, `retry_*`, `edge_capacity`, `edge_bytes`, `when_full`): see\n")
	b.WriteString("[language.md](language.md#stage-blocks). Options marked *expr* are bare\n")
	b.WriteString("expressions evaluated per record.\n\n")
	for _, block := range r.orderedBlocks() {
		for _, kind := range r.Kinds(block) {
			k, _ := r.Kind(block, kind)
			writeKind(&b, &k.Schema)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Registry) orderedBlocks() []string {
	rank := make(map[string]int, len(blockOrder))
	for i, b := range blockOrder {
		rank[b] = i
	}
	blocks := r.Blocks()
	sort.SliceStable(blocks, func(i, j int) bool {
		ri, iok := rank[blocks[i]]
		rj, jok := rank[blocks[j]]
		if iok != jok {
			return iok
		}
		return ri < rj
	})
	return blocks
}

func writeKind(b *strings.Builder, s *planner.Schema) {
	if s.Block == s.Kind {
		fmt.Fprintf(b, "## %s\n\n", s.Block)
	} else {
		fmt.Fprintf(b, "## %s `%s`\n\n", s.Block, s.Kind)
	}
	if s.Doc != "" {
		fmt.Fprintf(b, "%s\n\n", s.Doc)
	}
	if len(s.Options) == 0 {
		b.WriteString("No options of its own.\n\n")
		return
	}
	b.WriteString("| option | type | default | description |\n|---|---|---|---|\n")
	for _, o := range s.Options {
		def := "—"
		switch {
		case o.Required:
			def = "required"
		case o.Default != nil:
			def = "`" + formatDefault(o.Default) + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", o.Name, typeName(o), def, strings.ReplaceAll(o.Doc, "|", "\\|"))
	}
	b.WriteString("\n")
}

func typeName(o planner.OptionSpec) string {
	switch o.Type {
	case planner.String:
		return "string"
	case planner.Int:
		return "integer"
	case planner.Float:
		return "number"
	case planner.Bool:
		return "boolean"
	case planner.Duration:
		return "duration"
	case planner.Enum:
		return "`" + strings.Join(o.Enum, "` \\| `") + "`"
	case planner.Expr:
		return "*expr*"
	case planner.Predicate:
		return "*expr* (boolean)"
	case planner.Fields:
		return "block of *expr* fields"
	case planner.StringList:
		return "list of strings"
	case planner.Value:
		return "value"
	case planner.StageRef:
		return "stage"
	}
	return "?"
}

func formatDefault(v any) string {
	switch d := v.(type) {
	case time.Duration:
		return fmt.Sprintf("%q", d.String())
	case string:
		return fmt.Sprintf("%q", d)
	}
	return planner.FormatValue(v)
}
