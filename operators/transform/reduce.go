package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var reduceKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("reduce", "Folds every record into an accumulator, one per group key, and emits them at end of stream.",
			planner.OptionSpec{Name: "init", Type: planner.Value, Default: int64(0),
				Doc: "The accumulator's first value, e.g. 0 or {}."},
			planner.OptionSpec{Name: "step", Type: planner.Expr, Required: true,
				Doc: "The next accumulator from acc and the record's fields, e.g. acc + 1."},
			planner.OptionSpec{Name: "group", Type: planner.Expr,
				Doc: "A key expression: one accumulator per key, emitted as {key, value}; without it one {value} is emitted."},
			planner.OptionSpec{Name: "max_groups", Type: planner.Int, Default: int64(10000),
				Doc: "The most groups held at once; a record opening one more group is an error."},
		)
		s.InFlight = func(o planner.Options) int { return int(o.Int("max_groups")) }
		return s
	}(),
	Build: pending,
}
