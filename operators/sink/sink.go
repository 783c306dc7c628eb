package sink

import (
	"errors"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every sink kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{stdoutKind, fileKind, discardKind} }

var errPending = errors.New("this kind cannot be built yet")

func pending(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) { return nil, errPending }
