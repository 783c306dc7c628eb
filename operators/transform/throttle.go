package transform

import (
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
)

var throttleKind = &operators.Kind{
	Schema: schema("throttle", "Limits the rate of records with a token bucket: rate records per period, bursts of up to burst.",
		planner.OptionSpec{Name: "rate", Type: planner.Float, Required: true,
			Doc: "How many records may pass per period."},
		planner.OptionSpec{Name: "per", Type: planner.Duration, Default: time.Second,
			Doc: "The period rate is counted over."},
		planner.OptionSpec{Name: "burst", Type: planner.Int, Default: int64(1),
			Doc: "How many records may pass at once after a quiet spell."},
	),
	Build: pending,
}
