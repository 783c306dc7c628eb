package route

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var mergeKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "merge", Kind: "merge",
		Doc: "Joins the stages listed in from into one stream, taking from each in turn.",
	},
	Build: func(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) {
		return &flowruntime.Node{Merge: true}, nil
	},
}
