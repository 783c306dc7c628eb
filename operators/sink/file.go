package sink

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var fileKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "file",
		Doc: "Writes records to a file, one whole line per record, creating its directory if needed.",
		Options: []planner.OptionSpec{
			{Name: "path", Type: planner.String, Required: true,
				Doc: "The file written."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"jsonl", "csv"}, Default: "jsonl",
				Doc: "jsonl writes one JSON object per line with sorted keys; csv one row per record under a header row."},
			{Name: "columns", Type: planner.StringList,
				Doc: "For csv: the columns in order; by default the sorted fields of the first record."},
			{Name: "append", Type: planner.Bool, Default: false,
				Doc: "Append to the file instead of truncating it when the pipeline starts."},
			{Name: "sync", Type: planner.Bool, Default: false,
				Doc: "Call fsync after every write, so records count as finished only once on disk, not just in the OS."},
		},
	},
	Build: pending,
}
