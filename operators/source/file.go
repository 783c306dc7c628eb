package source

import (
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

const time0 = time.Duration(0)

var fileKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "file",
		Doc: "Reads records from files matching a path or glob, optionally following them as they grow.",
		Options: append([]planner.OptionSpec{
			{Name: "path", Type: planner.String, Required: true,
				Doc: "The file to read, or a glob (logs/*.jsonl) whose matches are read in name order."},
			{Name: "follow", Type: planner.Bool, Default: false,
				Doc: "Keep reading as the files grow (tail -f) instead of ending at their end."},
			{Name: "start_at", Type: planner.Enum, Enum: []string{"beginning", "end"}, Default: "beginning",
				Doc: "Where reading starts in each file: its beginning, or its end (only new lines, with follow)."},
			{Name: "poll_interval", Type: planner.Duration, Default: 250 * time.Millisecond,
				Doc: "How often a followed file, or a glob with follow, is checked for new data."},
		}, codecOptions()...),
	},
	Build: pending,
}
