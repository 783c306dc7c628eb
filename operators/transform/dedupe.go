package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var dedupeKind = &operators.Kind{
	Schema: schema("dedupe", "Drops a record whose key was seen among the most recent keys.",
		planner.OptionSpec{Name: "key", Type: planner.Expr, Required: true,
			Doc: "The expression whose value identifies duplicates, e.g. id."},
		planner.OptionSpec{Name: "capacity", Type: planner.Int, Default: int64(100000),
			Doc: "How many recent keys are remembered; the oldest is forgotten first, so memory stays bounded."},
	),
	Build: pending,
}
