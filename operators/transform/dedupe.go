package transform

import (
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

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
		planner.OptionSpec{Name: "ttl", Type: planner.Duration, Default: time.Duration(0),
			Doc: "How long a key is remembered after it was first seen; 0 remembers it until capacity pushes it out."},
	), func(p *operators.Problems, o planner.Options) {
		p.Min(o, "capacity", 1)
		p.MinDuration(o, "ttl", 0, false)
	}),
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		d := &Dedupe{
			key:      st.Options.Expr("key"),
			capacity: int(st.Options.Int("capacity")),
			ttl:      st.Options.Duration("ttl"),
			clock:    env.Clock,
			seen:     map[any]struct{}{},
		}
		return &flowruntime.Node{Processor: d}, nil
	},
}

// Dedupe drops records whose key it remembers. It remembers at most
// capacity keys, and each for at most ttl when ttl is set: the key first
// seen longest ago is forgotten first.
type Dedupe struct {
	key      *expression.Program
	capacity int
	ttl      time.Duration
	clock    flowruntime.Clock
	seen     map[any]struct{}
	// queue holds the remembered keys from queue[head], oldest first.
	queue []seenKey
	head  int
	run   expression.Runner
	enc   codec.Encoder
	buf   []byte
}

type seenKey struct {
	key any
	at  time.Time
}

// Process emits rec unless its key is remembered.
func (d *Dedupe) Process(rec flowruntime.Record, emit func(flowruntime.Record)) error {
	v, err := d.run.Run(d.key, rec.Fields)
	if err != nil {
		return onerror.Permanent(err)
	}
	k, err := mapKey(&d.enc, &d.buf, v)
	if err != nil {
		return onerror.Permanent(err)
	}
	var now time.Time
	if d.ttl > 0 {
		now = d.clock.Now()
		for d.head < len(d.queue) && now.Sub(d.queue[d.head].at) >= d.ttl {
			d.forgetOldest()
		}
	}
	if _, dup := d.seen[k]; dup {
		return nil
	}
	if len(d.queue)-d.head >= d.capacity {
		d.forgetOldest()
	}
	if d.head > 0 && d.head >= len(d.queue)/2 {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue, d.head = d.queue[:n], 0
	}
	d.queue = append(d.queue, seenKey{key: k, at: now})
	d.seen[k] = struct{}{}
	emit(rec)
	return nil
}

func (d *Dedupe) forgetOldest() {
	delete(d.seen, d.queue[d.head].key)
	d.queue[d.head] = seenKey{}
	d.head++
}
