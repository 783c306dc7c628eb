package source

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every source kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{generateKind, fileKind, stdinKind}
}

// codecOptions are the options of sources that decode a byte stream.
func codecOptions() []planner.OptionSpec {
	return []planner.OptionSpec{
		{Name: "codec", Type: planner.Enum, Enum: []string{"lines", "json", "csv"}, Default: "lines",
			Doc: "How the input is decoded: lines gives {line: \"...\"}, json one object per line, csv one object per row keyed by the header row."},
		{Name: "delimiter", Type: planner.String, Default: ",",
			Doc: "The field separator of the csv codec, one character."},
		{Name: "max_line_bytes", Type: planner.Int, Default: int64(1 << 20),
			Doc: "The longest line accepted, in bytes; a longer line stops the source with an error naming its offset."},
	}
}

// batchSize is how many records a source hands to Emit at once at most.
const batchSize = 256

func pending(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
	return nil, errPending
}
