package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

var filterKind = &operators.Kind{
	Schema: schema("filter", "Passes on the records for which a predicate is true and drops the others.",
		planner.OptionSpec{Name: "where", Type: planner.Predicate, Required: true,
			Doc: "The condition a record must meet to pass, e.g. level == \"ERROR\"; null counts as false."},
	),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		return &flowruntime.Node{Processor: &Filter{where: st.Options.Expr("where")}}, nil
	},
}

// Filter passes on the records its predicate holds for.
type Filter struct {
	where *expression.Program
	run   expression.Runner
}

// Process emits rec when the predicate is true.
func (f *Filter) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	ok, err := f.run.Bool(f.where, rec.Fields)
	if err != nil {
		return onerror.Permanent(err)
	}
	if ok {
		emit(rec)
	}
	return nil
}
