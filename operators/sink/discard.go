package sink

import (
	"context"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var discardKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "discard",
		Doc: "Drops every record; for benchmarks and for branches kept only for their side effects.",
	},
	Build: func(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) {
		return &flowruntime.Node{Sink: Discard{}}, nil
	},
}

// Discard is a sink that drops every record.
type Discard struct{}

// Write drops recs.
func (Discard) Write(context.Context, []flowruntime.Record) error { return nil }

// Close does nothing.
func (Discard) Close() error { return nil }
