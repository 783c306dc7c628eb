package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var reduceKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("reduce", "Folds every record into an accumulator, one per group key, and emits the accumulators at end of stream or every period.",
			planner.OptionSpec{Name: "init", Type: planner.Value, Default: int64(0),
				Doc: "The accumulator's first value, e.g. 0 or {}."},
			planner.OptionSpec{Name: "step", Type: planner.Expr, Required: true,
				Doc: "The next accumulator, from acc and the record's fields, e.g. acc + 1 or {n: acc.n + 1, sum: acc.sum + bytes}."},
			planner.OptionSpec{Name: "group", Type: planner.Expr,
				Doc: "A key expression: one accumulator per key, each emitted as {key, value} in the order keys were first seen; without it one {value} is emitted."},
			planner.OptionSpec{Name: "max_groups", Type: planner.Int, Default: int64(10000),
				Doc: "The most groups held at once; a record opening one more group is an error."},
			planner.OptionSpec{Name: "every", Type: planner.Duration, Default: time.Duration(0),
				Doc: "Also emit the accumulators, with the period's start and end, and start afresh at every multiple of this period on the clock; 0 emits only at end of stream."},
		)
		s.InFlight = func(o planner.Options) int { return int(o.Int("max_groups")) }
		return checked(s, func(p *operators.Problems, o planner.Options) {
			p.Min(o, "max_groups", 1)
			p.MinDuration(o, "every", 0, false)
		})
	}(),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		r := &Reduce{
			stage:  st.Name,
			init:   st.Options["init"],
			step:   st.Options.Expr("step"),
			group:  st.Options.Expr("group"),
			max:    int(st.Options.Int("max_groups")),
			every:  st.Options.Duration("every"),
			groups: map[any]*accumulator{},
			clock:  env.Clock,
		}
		return &flowruntime.Node{Processor: r}, nil
	},
}

var _ flowruntime.Stateful = (*Reduce)(nil)

// Reduce folds records into accumulators and emits them at end of stream
// and, with every, at the end of each period (it is Timed then). It is
// Stateful: a restored reduce goes on with the saved accumulators. The step
// expression sees the record's fields and acc; the record's own acc field,
// if any, is hidden from it.
type Reduce struct {
	stage string
	init  any
	step  *expression.Program
	group *expression.Program
	max   int
	every time.Duration
	// start and end bound the current period when every is set and a
	// record has been folded in it.
	start, end time.Time
	groups     map[any]*accumulator
	order      []*accumulator
	held       int
	clock      flowruntime.Clock
	run        expression.Runner
	enc        codec.Encoder
	buf        []byte
}

type accumulator struct {
	key   any
	value any
}

// Process folds rec into its group's accumulator, first emitting the
// accumulators of a period that is over.
func (r *Reduce) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	if r.every > 0 {
		now := r.clock.Now()
		if len(r.order) > 0 && !now.Before(r.end) {
			r.emitAll(emit)
		}
		if len(r.order) == 0 {
			r.start = now.Truncate(r.every)
			r.end = r.start.Add(r.every)
		}
	}
	var key, id any
	if r.group != nil {
		var err error
		if key, err = r.run.Run(r.group, rec.Fields); err != nil {
			return onerror.Permanent(err)
		}
		if id, err = mapKey(&r.enc, &r.buf, key); err != nil {
			return onerror.Permanent(err)
		}
	}
	a := r.groups[id]
	if a == nil {
		if len(r.groups) >= r.max {
			return onerror.Permanent(fmt.Errorf("more than max_groups = %d groups; raise max_groups or group by fewer keys", r.max))
		}
		a = &accumulator{key: key, value: operators.Clone(r.init)}
		r.groups[id] = a
		r.order = append(r.order, a)
	}
	fields := rec.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	saved, had := fields["acc"]
	fields["acc"] = a.value
	v, err := r.run.Run(r.step, fields)
	if had {
		fields["acc"] = saved
	} else {
		delete(fields, "acc")
	}
	if err != nil {
		return onerror.Permanent(err)
	}
	a.value = v
	r.held++
	return nil
}

// Held is the number of records folded since the last flush.
func (r *Reduce) Held() int { return r.held }

// Flush emits every accumulator at end of stream.
func (r *Reduce) Flush(emit func(flowruntime.Record)) error {
	if len(r.order) == 0 && r.group == nil && r.every == 0 {
		// An empty stream still has a total: the initial value.
		r.order = append(r.order, &accumulator{value: operators.Clone(r.init)})
	}
	r.emitAll(emit)
	return nil
}

// Deadline is the end of the current period.
func (r *Reduce) Deadline() (time.Time, bool) {
	return r.end, r.every > 0 && len(r.order) > 0
}

// Tick emits the accumulators once their period is over.
func (r *Reduce) Tick(now time.Time, emit func(flowruntime.Record)) error {
	if r.every > 0 && len(r.order) > 0 && !now.Before(r.end) {
		r.emitAll(emit)
	}
	return nil
}

// emitAll emits every accumulator, in the order the groups opened, and
// starts afresh.
func (r *Reduce) emitAll(emit func(flowruntime.Record)) {
	now := r.clock.Now()
	for _, a := range r.order {
		fields := map[string]any{"value": a.value}
		if r.group != nil {
			fields["key"] = a.key
		}
		if r.every > 0 {
			fields["start"] = r.start.UTC().Format(time.RFC3339Nano)
			fields["end"] = r.end.UTC().Format(time.RFC3339Nano)
		}
		emit(flowruntime.Record{Fields: fields, Meta: flowruntime.Meta{Time: now}})
	}
	clear(r.order)
	r.order = r.order[:0]
	clear(r.groups)
	r.held = 0
}

// reduceState is a reduce's saved state: its accumulators in the order
// their groups opened, how many records they hold, and, with every, the
// period they belong to. A period that ended while the pipeline was down
// is emitted at the first tick after the restart.
type reduceState struct {
	stateHeader
	keyedShape
	Start  time.Time      `json:"start,omitzero"`
	End    time.Time      `json:"end,omitzero"`
	Held   int            `json:"held"`
	Groups []reducedGroup `json:"groups"`
}

// reducedGroup is one accumulator; Key is absent without group.
type reducedGroup struct {
	Key   json.RawMessage `json:"key,omitempty"`
	Value json.RawMessage `json:"value"`
}

// SaveState returns the accumulators and the count of records they hold.
func (r *Reduce) SaveState() ([]byte, error) {
	return saveState("reduce", r.stage, func(c *valueCodec) (any, error) {
		st := reduceState{stateHeader: header("reduce"), keyedShape: shapeOf(r.group, r.every),
			Held: r.held, Groups: make([]reducedGroup, len(r.order))}
		if r.every > 0 && len(r.order) > 0 {
			st.Start, st.End = r.start, r.end
		}
		for i, a := range r.order {
			g := &st.Groups[i]
			var err error
			if r.group != nil {
				if g.Key, err = c.encode(a.key); err != nil {
					return nil, fmt.Errorf("group key: %w", err)
				}
			}
			if g.Value, err = c.encode(a.value); err != nil {
				return nil, fmt.Errorf("accumulator: %w", err)
			}
		}
		return st, nil
	})
}

// RestoreState replaces the accumulators with saved ones. The state must
// have been saved by a reduce with the same group (present or not) and
// every; more groups than max_groups are kept, and new ones refused until
// the next emission.
func (r *Reduce) RestoreState(b []byte) error {
	var st reduceState
	return restoreState("reduce", r.stage, b, &st, func(c *valueCodec) error {
		if err := st.fits(shapeOf(r.group, r.every)); err != nil {
			return err
		}
		switch {
		case st.Held < 0:
			return fmt.Errorf("negative held count %d", st.Held)
		case !st.Grouped && len(st.Groups) > 1:
			return fmt.Errorf("%d accumulators without group", len(st.Groups))
		case r.every > 0 && len(st.Groups) > 0 && !st.End.After(st.Start):
			return errors.New("accumulators without the period they belong to")
		}
		groups := make(map[any]*accumulator, len(st.Groups))
		order := make([]*accumulator, 0, len(st.Groups))
		for i, g := range st.Groups {
			key, id, err := c.groupKey(g.Key, st.Grouped, &r.enc, &r.buf)
			if err != nil {
				return fmt.Errorf("group %d: %w", i, err)
			}
			if groups[id] != nil {
				return fmt.Errorf("group %d: key %s saved twice", i, g.Key)
			}
			v, err := c.decode(g.Value)
			if err != nil {
				return fmt.Errorf("group %d: accumulator: %w", i, err)
			}
			a := &accumulator{key: key, value: v}
			groups[id] = a
			order = append(order, a)
		}
		r.groups, r.order, r.held = groups, order, st.Held
		r.start, r.end = time.Time{}, time.Time{}
		if r.every > 0 && len(order) > 0 {
			r.start, r.end = st.Start, st.End
		}
		return nil
	})
}
