package transform

import (
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var batchKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("batch", "Groups records into one record {records: [...], count: n} per size records or timeout.",
			planner.OptionSpec{Name: "size", Type: planner.Int, Default: int64(256),
				Doc: "The most records in one batch; a full batch is emitted at once."},
			planner.OptionSpec{Name: "timeout", Type: planner.Duration, Default: time.Second,
				Doc: "The longest a record waits in an unfinished batch; 0 waits until the batch is full or the stream ends."},
		)
		s.InFlight = func(o planner.Options) int { return int(o.Int("size")) }
		return s
	}(),
	Build: pending,
}
