package source

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var generateKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "generate",
		Doc: "Generates records from an expression of the sequence number seq, for tests, demos and load.",
		Options: []planner.OptionSpec{
			{Name: "count", Type: planner.Int, Default: int64(0),
				Doc: "How many records to generate; 0 generates until the pipeline stops."},
			{Name: "interval", Type: planner.Duration, Default: time.Duration(0),
				Doc: "The time between two records; 0 generates as fast as the pipeline accepts them, building batches on every core (emitted in sequence order)."},
			{Name: "template", Type: planner.Expr,
				Doc: "An expression yielding the record as an object, with variable seq = 0, 1, 2...; the default is {seq: seq}."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			p.Min(o, "count", 0)
			p.MinDuration(o, "interval", 0, false)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		g := &Generate{
			stage:    st.Name,
			count:    st.Options.Int("count"),
			interval: st.Options.Duration("interval"),
			template: st.Options.Expr("template"),
			clock:    env.Clock,
		}
		if g.template != nil {
			g.object, _ = g.template.Object()
		}
		return &flowruntime.Node{Source: g}, nil
	},
}

// Generate is the generate source. Records carry their sequence number as
// Meta.Position. Without an interval, batches are built on every core and
// emitted in sequence order.
type Generate struct {
	stage    string
	count    int64
	interval time.Duration
	template *expression.Program
	// object is the template compiled field by field, when it is an
	// object literal.
	object *expression.Object
	clock  flowruntime.Clock
	// runners holds the *templateRunner of each worker.
	runners sync.Pool
	// start is the first seq; done tracks how far the sequence is finished.
	start int64
	done  seqCheckpoint
}

// templateRunner evaluates the template on one goroutine.
type templateRunner struct {
	run expression.Runner
	env map[string]any
}

// Run generates count records, or until ctx ends when count is 0.
func (g *Generate) Run(ctx context.Context, out flowruntime.Emitter) error {
	done := g.done.reset(g.start)
	if g.interval > 0 {
		return g.paced(ctx, out, done)
	}
	o := newOrdered(ctx)
	for seq := g.start; (g.count == 0 || seq < g.count) && ctx.Err() == nil; {
		from, n := seq, int64(batchSize)
		if g.count > 0 {
			n = min(n, g.count-seq)
		}
		seq += n
		ack := done.Track(seq)
		started := o.Go(func() func() error {
			batch := getRecords(int(n))
			err := g.batch(batch, from, n)
			return func() error {
				if err != nil {
					return err
				}
				defer putRecords(batch)
				return out.Emit(ctx, *batch, ack)
			}
		})
		if !started {
			break
		}
	}
	err := o.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// paced generates one record per interval.
func (g *Generate) paced(ctx context.Context, out flowruntime.Emitter, done *flowruntime.Checkpoint) error {
	for seq := g.start; g.count == 0 || seq < g.count; seq++ {
		if seq > g.start {
			if err := g.clock.Sleep(ctx, g.interval); err != nil {
				return nil
			}
		}
		var batch []flowruntime.Record
		if err := g.batch(&batch, seq, 1); err != nil {
			return err
		}
		if err := out.Emit(ctx, batch, done.Track(seq+1)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// batch appends the n records from seq on to batch.
func (g *Generate) batch(batch *[]flowruntime.Record, seq, n int64) error {
	r, _ := g.runners.Get().(*templateRunner)
	if r == nil {
		r = &templateRunner{env: make(map[string]any, 1)}
	}
	defer g.runners.Put(r)
	now := g.clock.Now()
	for end := seq + n; seq < end; seq++ {
		fields, err := g.record(r, seq)
		if err != nil {
			return err
		}
		*batch = append(*batch, flowruntime.Record{
			Fields: fields,
			Meta:   flowruntime.Meta{Source: g.stage, Position: seq, Time: now},
		})
	}
	return nil
}

func (g *Generate) record(r *templateRunner, seq int64) (map[string]any, error) {
	if g.template == nil {
		return map[string]any{"seq": seq}, nil
	}
	r.env["seq"] = seq
	if g.object != nil {
		m, err := r.run.Object(g.object, r.env)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		return m, nil
	}
	v, err := r.run.Run(g.template, r.env)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template: yields %T, not an object", v)
	}
	return m, nil
}
