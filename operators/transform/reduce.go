package transform

import (
	"fmt"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var reduceKind = &operators.Kind{
	Schema: func() planner.Schema {
		s := schema("reduce", "Folds every record into an accumulator, one per group key, and emits the accumulators at end of stream.",
			planner.OptionSpec{Name: "init", Type: planner.Value, Default: int64(0),
				Doc: "The accumulator's first value, e.g. 0 or {}."},
			planner.OptionSpec{Name: "step", Type: planner.Expr, Required: true,
				Doc: "The next accumulator, from acc and the record's fields, e.g. acc + 1 or {n: acc.n + 1, sum: acc.sum + bytes}."},
			planner.OptionSpec{Name: "group", Type: planner.Expr,
				Doc: "A key expression: one accumulator per key, each emitted as {key, value} in the order keys were first seen; without it one {value} is emitted."},
			planner.OptionSpec{Name: "max_groups", Type: planner.Int, Default: int64(10000),
				Doc: "The most groups held at once; a record opening one more group is an error."},
		)
		s.InFlight = func(o planner.Options) int { return int(o.Int("max_groups")) }
		return checked(s, func(p *operators.Problems, o planner.Options) { p.Min(o, "max_groups", 1) })
	}(),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		r := &Reduce{
			init:   st.Options["init"],
			step:   st.Options.Expr("step"),
			group:  st.Options.Expr("group"),
			max:    int(st.Options.Int("max_groups")),
			groups: map[any]*accumulator{},
			clock:  env.Clock,
		}
		return &flowruntime.Node{Processor: r}, nil
	},
}

// Reduce folds records into accumulators and emits them at end of stream.
// The step expression sees the record's fields and acc; the record's own acc
// field, if any, is hidden from it.
type Reduce struct {
	init   any
	step   *expression.Program
	group  *expression.Program
	max    int
	groups map[any]*accumulator
	order  []*accumulator
	held   int
	clock  flowruntime.Clock
	run    expression.Runner
	enc    codec.Encoder
	buf    []byte
}

type accumulator struct {
	key   any
	value any
}

// Process folds rec into its group's accumulator.
func (r *Reduce) Process(rec flowruntime.Record, _ func(flowruntime.Record)) error {
	var key, id any
	if r.group != nil {
		var err error
		if key, err = r.run.Run(r.group, rec.Fields); err != nil {
			return err
		}
		if id, err = mapKey(&r.enc, &r.buf, key); err != nil {
			return err
		}
	}
	a := r.groups[id]
	if a == nil {
		if len(r.groups) >= r.max {
			return fmt.Errorf("more than max_groups = %d groups; raise max_groups or group by fewer keys", r.max)
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
		return err
	}
	a.value = v
	r.held++
	return nil
}

// Held is the number of records folded since the last flush.
func (r *Reduce) Held() int { return r.held }

// Flush emits every accumulator and starts afresh.
func (r *Reduce) Flush(emit func(flowruntime.Record)) error {
	if r.held == 0 && len(r.order) == 0 {
		if r.group != nil {
			return nil
		}
		// An empty stream still has a total: the initial value.
		r.order = append(r.order, &accumulator{value: operators.Clone(r.init)})
	}
	now := r.clock.Now()
	for _, a := range r.order {
		fields := map[string]any{"value": a.value}
		if r.group != nil {
			fields["key"] = a.key
		}
		emit(flowruntime.Record{Fields: fields, Meta: flowruntime.Meta{Time: now}})
	}
	r.order = r.order[:0]
	clear(r.groups)
	r.held = 0
	return nil
}
