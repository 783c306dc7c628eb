package transform

import (
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var dedupeKind = &operators.Kind{
	Schema: checked(schema("dedupe", "Drops a record whose key was seen among the most recent keys.",
		planner.OptionSpec{Name: "key", Type: planner.Expr, Required: true,
			Doc: "The expression whose value identifies duplicates, e.g. id."},
		planner.OptionSpec{Name: "capacity", Type: planner.Int, Default: int64(100000),
			Doc: "How many keys are remembered; the key first seen longest ago is forgotten first, so memory stays bounded."},
	), func(p *operators.Problems, o planner.Options) { p.Min(o, "capacity", 1) }),
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		d := &Dedupe{key: st.Options.Expr("key"), capacity: int(st.Options.Int("capacity")), seen: map[any]struct{}{}}
		return &flowruntime.Node{Processor: d}, nil
	},
}

// Dedupe drops records whose key it remembers. It remembers at most
// capacity keys in a ring: a new key beyond that evicts the oldest.
type Dedupe struct {
	key      *expression.Program
	capacity int
	seen     map[any]struct{}
	ring     []any
	next     int
	run      expression.Runner
	enc      codec.Encoder
	buf      []byte
}

// Process emits rec unless its key is remembered.
func (d *Dedupe) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	v, err := d.run.Run(d.key, rec.Fields)
	if err != nil {
		return err
	}
	k, err := mapKey(&d.enc, &d.buf, v)
	if err != nil {
		return err
	}
	if _, dup := d.seen[k]; dup {
		return nil
	}
	if len(d.ring) < d.capacity {
		d.ring = append(d.ring, k)
	} else {
		delete(d.seen, d.ring[d.next])
		d.ring[d.next] = k
		d.next = (d.next + 1) % d.capacity
	}
	d.seen[k] = struct{}{}
	emit(rec)
	return nil
}
