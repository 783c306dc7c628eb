package source

import (
	"context"
	"fmt"
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
				Doc: "The time between two records; 0 generates as fast as the pipeline accepts them."},
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
		return &flowruntime.Node{Source: g}, nil
	},
}

// Generate is the generate source. Records carry their sequence number as
// Meta.Position.
type Generate struct {
	stage    string
	count    int64
	interval time.Duration
	template *expression.Program
	clock    flowruntime.Clock
	run      expression.Runner
	env      map[string]any
	// start is the first seq; done tracks how far the sequence is finished.
	start int64
	done  seqCheckpoint
}

// Run generates count records, or until ctx ends when count is 0.
func (g *Generate) Run(ctx context.Context, out flowruntime.Emitter) error {
	size := int64(batchSize)
	if g.interval > 0 {
		size = 1
	}
	done := g.done.reset(g.start)
	for seq := g.start; g.count == 0 || seq < g.count; {
		if ctx.Err() != nil {
			return nil
		}
		if g.interval > 0 && seq > g.start {
			if err := g.clock.Sleep(ctx, g.interval); err != nil {
				return nil
			}
		}
		n := size
		if g.count > 0 {
			n = min(n, g.count-seq)
		}
		now := g.clock.Now()
		batch := make([]flowruntime.Record, n)
		for i := range batch {
			fields, err := g.record(seq)
			if err != nil {
				return err
			}
			batch[i] = flowruntime.Record{
				Fields: fields,
				Meta:   flowruntime.Meta{Source: g.stage, Position: seq, Time: now},
			}
			seq++
		}
		if err := out.Emit(ctx, batch, done.Track(seq)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

func (g *Generate) record(seq int64) (map[string]any, error) {
	if g.template == nil {
		return map[string]any{"seq": seq}, nil
	}
	if g.env == nil {
		g.env = make(map[string]any, 1)
	}
	g.env["seq"] = seq
	v, err := g.run.Run(g.template, g.env)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template: yields %T, not an object", v)
	}
	return m, nil
}
