package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var filterKind = &operators.Kind{
	Schema: schema("filter", "Passes on the records for which a predicate is true and drops the others.",
		planner.OptionSpec{Name: "where", Type: planner.Predicate, Required: true,
			Doc: "The condition a record must meet to pass, e.g. level == \"ERROR\"."},
	),
	Build: pending,
}
