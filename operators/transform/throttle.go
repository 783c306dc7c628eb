package transform

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var (
	_ flowruntime.Gate    = (*Throttle)(nil)
	_ flowruntime.TryGate = (*Throttle)(nil)
)

var throttleKind = &operators.Kind{
	Schema: checked(schema("throttle", "Limits the rate of records with a token bucket: rate records per period, in bursts of up to burst.",
		planner.OptionSpec{Name: "rate", Type: planner.Float, Required: true,
			Doc: "How many records may pass per period."},
		planner.OptionSpec{Name: "per", Type: planner.Duration, Default: time.Second,
			Doc: "The period rate is counted over."},
		planner.OptionSpec{Name: "burst", Type: planner.Int, Default: int64(1),
			Doc: "How many records may pass at once after a quiet spell."},
	), func(p *operators.Problems, o planner.Options) {
		if r := o.Float("rate"); r <= 0 {
			p.Add("rate", "the rate must be more than 0, not %v", r)
		}
		p.MinDuration(o, "per", 0, true)
		p.Min(o, "burst", 1)
	}),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		r, per := st.Options.Float("rate"), st.Options.Duration("per")
		t := &Throttle{
			limiter: rate.NewLimiter(rate.Limit(r/per.Seconds()), int(st.Options.Int("burst"))),
			clock:   env.Clock,
		}
		return &flowruntime.Node{Processor: t}, nil
	},
}

// Throttle paces records with a token bucket on the runtime's clock. It is
// a Gate (the runtime calls Wait before each record) and a TryGate (a
// record with a token at hand passes without ending the output batch).
type Throttle struct {
	limiter *rate.Limiter
	clock   flowruntime.Clock
}

// Wait blocks until the bucket has a token for one more record.
func (t *Throttle) Wait(ctx context.Context) error {
	now := t.clock.Now()
	r := t.limiter.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("throttle: cannot reserve a token")
	}
	if d := r.DelayFrom(now); d > 0 {
		if err := t.clock.Sleep(ctx, d); err != nil {
			r.CancelAt(t.clock.Now())
			return err
		}
	}
	return nil
}

// TryWait takes a token and returns true when one is there now; otherwise
// it changes nothing and returns false.
func (t *Throttle) TryWait() bool {
	return t.limiter.AllowN(t.clock.Now(), 1)
}

// Process passes rec on.
func (t *Throttle) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	emit(rec)
	return nil
}
