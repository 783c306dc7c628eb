package transform

import (
	"fmt"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var mapKind = &operators.Kind{
	Schema: checked(schema("map", "Reshapes each record: replaces it with a new object, sets fields from expressions and drops fields.",
		planner.OptionSpec{Name: "to", Type: planner.Expr,
			Doc: "An expression yielding the whole new record as an object; applied first."},
		planner.OptionSpec{Name: "set", Type: planner.Fields,
			Doc: "A block of field = expression; every expression sees the record as it arrived."},
		planner.OptionSpec{Name: "drop", Type: planner.StringList,
			Doc: "Fields to remove, after to and set."},
	), func(p *operators.Problems, o planner.Options) {
		drop, _ := o["drop"].([]string)
		if o.Expr("to") == nil && len(o.Fields("set")) == 0 && len(drop) == 0 {
			p.Add("", "a map needs at least one of to, set and drop")
		}
	}),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		drop, _ := st.Options["drop"].([]string)
		m := &Map{to: st.Options.Expr("to"), set: st.Options.Fields("set"), drop: drop}
		m.vals = make([]any, len(m.set))
		return &flowruntime.Node{Processor: m}, nil
	},
}

// Map reshapes records. It changes the record's fields in place: a record
// given to Process belongs to it.
type Map struct {
	to   *expression.Program
	set  []planner.Field
	drop []string
	run  expression.Runner
	vals []any
}

// Process emits the reshaped record.
func (m *Map) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	in := rec.Fields
	out := in
	if m.to != nil {
		v, err := m.run.Run(m.to, in)
		if err != nil {
			return onerror.Permanent(err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return onerror.Permanent(fmt.Errorf("to yields %s, not an object", typeName(v)))
		}
		out = obj
	}
	for i, f := range m.set {
		v, err := m.run.Run(f.Expr, in)
		if err != nil {
			clear(m.vals[:i])
			return onerror.Permanent(fmt.Errorf("set %s: %w", f.Name, err))
		}
		m.vals[i] = v
	}
	if out == nil && len(m.set) > 0 {
		out = make(map[string]any, len(m.set))
	}
	for i, f := range m.set {
		out[f.Name] = m.vals[i]
		m.vals[i] = nil
	}
	for _, name := range m.drop {
		delete(out, name)
	}
	rec.Fields = out
	emit(rec)
	return nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
