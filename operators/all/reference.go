package all

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/flowrun/flowrun/planner"
)

// blockOrder is the order of the reference: sources, the stages between,
// sinks.
var blockOrder = []string{"source", "filter", "map", "buffered", "throttle", "fanout", "merge",
	"batch", "take", "skip", "reduce", "window", "dedupe", "sink"}

// WriteReference writes a Markdown reference of every registered kind:
// what it does and each option's type, default and meaning.
func WriteReference(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Stage kinds\n\nGenerated from the registered schemas (`go test ./operators/all -update`).\n" +
		"Every stage also takes the options the planner handles: `from`, `on_error`, `dead_letter`,\n" +
		"`retry_attempts`, `retry_backoff`, `retry_max_backoff`, `edge_capacity`, `edge_bytes`, `when_full`.\n")
	seen := map[string]bool{}
	blocks := append([]string(nil), blockOrder...)
	for _, bl := range registry.Blocks() {
		if !slices.Contains(blocks, bl) {
			blocks = append(blocks, bl)
		}
	}
	for _, block := range blocks {
		for _, kind := range registry.Kinds(block) {
			s, _ := registry.Lookup(block, kind)
			if seen[block+"/"+kind] {
				continue
			}
			seen[block+"/"+kind] = true
			title := block
			if kind != block {
				title = fmt.Sprintf("%s (kind = %q)", block, kind)
			}
			fmt.Fprintf(&b, "\n## %s\n\n%s\n", title, s.Doc)
			if len(s.Options) == 0 {
				b.WriteString("\nNo options of its own.\n")
				continue
			}
			b.WriteString("\n| option | type | default | meaning |\n| --- | --- | --- | --- |\n")
			for _, o := range s.Options {
				def := "—"
				switch {
				case o.Required:
					def = "required"
				case o.Default != nil:
					def = "`" + formatDefault(o.Default) + "`"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", o.Name, typeName(o), def, strings.ReplaceAll(o.Doc, "|", `\|`))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
		return "bool"
	case planner.Duration:
		return "duration"
	case planner.Enum:
		return strings.Join(o.Enum, " \\| ")
	case planner.Expr:
		return "expression"
	case planner.Predicate:
		return "condition"
	case planner.Fields:
		return "block of field = expression"
	case planner.StringList:
		return "list of strings"
	case planner.Value:
		return "value"
	case planner.StageRef:
		return "stage name"
	}
	return "?"
}

func formatDefault(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case time.Duration:
		return fmt.Sprintf("%q", x.String())
	}
	return fmt.Sprint(v)
}
