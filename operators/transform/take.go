package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var takeKind = &operators.Kind{
	Schema: schema("take", "Passes on the first count records and drops the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records pass."},
	),
	Build: pending,
}

var skipKind = &operators.Kind{
	Schema: schema("skip", "Drops the first count records and passes on the rest.",
		planner.OptionSpec{Name: "count", Type: planner.Int, Required: true,
			Doc: "How many records are dropped."},
	),
	Build: pending,
}
