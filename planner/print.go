package planner

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowrun/flowrun/planner/expression"
)

// Print writes a plan in a stable, readable text form: the variables, each
// pipeline's stages in topological order with their options and output
// edges, and the tests. Two equal plans print the same.
func Print(w io.Writer, p *Plan) error {
	var b strings.Builder
	if len(p.Vars) > 0 {
		names := make([]string, 0, len(p.Vars))
		for n := range p.Vars {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "var %s = %s\n", n, FormatValue(p.Vars[n]))
		}
		b.WriteString("\n")
	}
	for i, pl := range p.Pipelines {
		if i > 0 {
			b.WriteString("\n")
		}
		printPipeline(&b, pl)
	}
	for _, t := range p.Tests {
		fmt.Fprintf(&b, "\ntest %q (pipeline %s)\n", t.Name, t.Pipeline)
		for _, kind := range []struct {
			name string
			recs map[string][]map[string]any
		}{{"input", t.Inputs}, {"expect", t.Expect}} {
			names := make([]string, 0, len(kind.recs))
			for n := range kind.recs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(&b, "  %s %s:\n", kind.name, n)
				for _, r := range kind.recs[n] {
					fmt.Fprintf(&b, "    %s\n", FormatValue(r))
				}
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("print plan: %w", err)
	}
	return nil
}

func printPipeline(b *strings.Builder, pl *Pipeline) {
	fmt.Fprintf(b, "pipeline %s\n", pl.Name)
	fmt.Fprintf(b, "  edge capacity %d", pl.EdgeCapacity)
	if pl.EdgeBytes > 0 {
		fmt.Fprintf(b, ", edge bytes %d", pl.EdgeBytes)
	}
	fmt.Fprintf(b, "; memory bound %s\n", pl.Bound)
	for _, st := range pl.Stages {
		fmt.Fprintf(b, "  %s %s", st.Block, st.Name)
		if st.Kind != st.Block {
			fmt.Fprintf(b, " (%s)", st.Kind)
		}
		if st.Implicit {
			b.WriteString(" implicit")
		}
		b.WriteString("\n")
		names := make([]string, 0, len(st.Options))
		for n := range st.Options {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			printOption(b, n, st.Options[n])
		}
		if !st.Implicit {
			fmt.Fprintf(b, "    on_error: %s\n", st.OnError)
		}
		for _, e := range st.Outputs {
			fmt.Fprintf(b, "    -> %s %s\n", e.To.Name, e.Label())
		}
	}
}

func printOption(b *strings.Builder, name string, v any) {
	if fields, ok := v.([]Field); ok {
		fmt.Fprintf(b, "    %s {\n", name)
		for _, f := range fields {
			fmt.Fprintf(b, "      %s = %s\n", f.Name, indentLines(f.Expr.Source, "      "))
		}
		b.WriteString("    }\n")
		return
	}
	fmt.Fprintf(b, "    %s = %s\n", name, indentLines(FormatValue(v), "    "))
}

// indentLines indents the lines after the first of a multi-line text.
func indentLines(s, indent string) string {
	return strings.ReplaceAll(s, "\n", "\n"+indent)
}

// String renders the bound as "N records" plus ", M bytes" when Bytes is set.
func (m MemoryBound) String() string {
	s := fmt.Sprintf("%d records", m.Records)
	if m.Bytes > 0 {
		s += fmt.Sprintf(", %d bytes", m.Bytes)
	}
	return s
}

// String renders the policy, and its dead letter when it has one.
func (e ErrorPolicy) String() string {
	if e.DeadLetter != "" {
		return fmt.Sprintf("%s, dead letters to %s", e.Policy, e.DeadLetter)
	}
	return e.Policy.String()
}

// Label describes an edge's limits: its capacity, bytes, and whether it is
// lossy or carries dead letters, as in "[1024]" or "[64, drop_oldest]".
func (e *Edge) Label() string {
	parts := []string{strconv.Itoa(e.Capacity)}
	if e.Bytes > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", e.Bytes))
	}
	if e.WhenFull.Lossy() {
		parts = append(parts, e.WhenFull.String())
	}
	if e.DeadLetter {
		parts = append(parts, "dead letter")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// FormatValue renders a decoded option or variable value in .flow syntax:
// strings quoted, durations as strings, expressions as written, lists and
// objects (keys sorted) inline.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") && !strings.Contains(s, "Inf") && !strings.Contains(s, "NaN") {
			s += ".0"
		}
		return s
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		return strconv.Quote(x.String())
	case *expression.Program:
		return x.Source
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case []any:
		q := make([]string, len(x))
		for i, e := range x {
			q[i] = FormatValue(e)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		q := make([]string, len(keys))
		for i, k := range keys {
			key := k
			if !isIdent(k) {
				key = strconv.Quote(k)
			}
			q[i] = key + " = " + FormatValue(x[k])
		}
		return "{ " + strings.Join(q, ", ") + " }"
	case []Field:
		q := make([]string, len(x))
		for i, f := range x {
			q[i] = f.Name + " = " + f.Expr.Source
		}
		return "{ " + strings.Join(q, "; ") + " }"
	}
	return fmt.Sprintf("%v", v)
}
