package source

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var generateKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "generate",
		Doc: "Generates records from an expression of the sequence number seq, for tests, demos and load.",
		Options: []planner.OptionSpec{
			{Name: "count", Type: planner.Int, Default: int64(0),
				Doc: "How many records to generate; 0 generates until the pipeline stops."},
			{Name: "interval", Type: planner.Duration, Default: time0,
				Doc: "The time between two records; 0 generates as fast as the pipeline accepts them."},
			{Name: "template", Type: planner.Expr,
				Doc: "An expression yielding the record as an object, with variable seq = 0, 1, 2...; the default is {seq: seq}."},
		},
	},
	Build: pending,
}
