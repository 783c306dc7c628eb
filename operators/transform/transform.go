package transform

import (
	"errors"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{
		filterKind, mapKind, takeKind, skipKind, dedupeKind,
		reduceKind, batchKind, windowKind, throttleKind,
	}
}

var errPending = errors.New("this kind cannot be built yet")

func pending(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) {
	return nil, errPending
}

func schema(block, doc string, opts ...planner.OptionSpec) planner.Schema {
	return planner.Schema{Block: block, Kind: block, Doc: doc, Options: opts}
}
