package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var mapKind = &operators.Kind{
	Schema: schema("map", "Reshapes each record: replaces it with a new object, sets fields from expressions and drops fields.",
		planner.OptionSpec{Name: "to", Type: planner.Expr,
			Doc: "An expression yielding the whole new record as an object; applied first."},
		planner.OptionSpec{Name: "set", Type: planner.Fields,
			Doc: "A block of field = expression; every expression sees the record as it arrived."},
		planner.OptionSpec{Name: "drop", Type: planner.StringList,
			Doc: "Fields to remove, after to and set."},
	),
	Build: pending,
}
