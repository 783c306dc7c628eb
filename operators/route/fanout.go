package route

import (
	"errors"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{fanoutKind, mergeKind} }

var errPending = errors.New("this kind cannot be built yet")

var fanoutKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "fanout", Kind: "fanout",
		Doc: "Sends each record to every stage reading it (broadcast), or to one of them in turn or by key.",
		Options: []planner.OptionSpec{
			{Name: "mode", Type: planner.Enum, Enum: []string{"broadcast", "round_robin", "hash"}, Default: "broadcast",
				Doc: "broadcast sends every record to every reader, round_robin each record to the next reader, hash by the value of key."},
			{Name: "key", Type: planner.Expr,
				Doc: "For hash: the expression whose value picks the reader, so equal keys go to the same reader."},
		},
	},
	Build: func(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) { return nil, errPending },
}
