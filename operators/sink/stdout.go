package sink

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var stdoutKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "stdout",
		Doc: "Writes each record to standard output, one per line.",
		Options: []planner.OptionSpec{
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "json writes each record as one JSON object with sorted keys; lines writes the string of one field."},
			{Name: "field", Type: planner.String, Default: "line",
				Doc: "For lines: the field written; a record without it is written as JSON."},
		},
	},
	Build: pending,
}
