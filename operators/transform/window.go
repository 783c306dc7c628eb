package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var windowKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("window", "Groups records into tumbling windows by count or by time, optionally per key, emitting {key, count, start, end, records} per window.",
			planner.OptionSpec{Name: "size", Type: planner.Int,
				Doc: "Count windows: a window closes after size records (set size or every)."},
			planner.OptionSpec{Name: "every", Type: planner.Duration,
				Doc: "Time windows: a window covers one interval of this length, aligned to the clock (set size or every)."},
			planner.OptionSpec{Name: "group", Type: planner.Expr,
				Doc: "A key expression: one window per key at a time."},
			planner.OptionSpec{Name: "max_records", Type: planner.Int, Default: int64(10000),
				Doc: "The most records held across open windows; reaching it emits the window being filled early."},
		)
		s.InFlight = func(o planner.Options) int {
			if n := o.Int("size"); n > 0 && o.Int("max_records") > n && o.Expr("group") == nil {
				return int(n)
			}
			return int(o.Int("max_records"))
		}
		return s
	}(),
	Build: pending,
}
