package source

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var stdinKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "stdin",
		Doc:     "Reads records from standard input until it ends.",
		Options: codecOptions(),
	},
	Build: pending,
}
