package operators

import (
	"errors"
	"fmt"

	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// BuildGraph turns a planned pipeline into a runtime graph: one node per
// stage (implicit fanout and merge stages included), in the plan's
// topological order, and one edge per planned edge. It reports every stage
// that fails to build, not only the first.
func (r *Registry) BuildGraph(p *planner.Pipeline, env BuildEnv) (*flowruntime.Graph, error) {
	env.Pipeline = p.Name
	g := &flowruntime.Graph{Pipeline: p.Name}
	var errs []error
	for _, st := range p.Stages {
		n, err := r.Build(st, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.Nodes = append(g.Nodes, n)
	}
	for _, e := range p.Edges {
		if e.From == nil || e.To == nil {
			errs = append(errs, fmt.Errorf("pipeline %q: edge with a missing end", p.Name))
			continue
		}
		capacity := e.Capacity
		if capacity <= 0 {
			capacity = p.EdgeCapacity
		}
		g.Edges = append(g.Edges, &flowruntime.Edge{
			From:       e.From.Name,
			To:         e.To.Name,
			Capacity:   capacity,
			Bytes:      e.Bytes,
			WhenFull:   e.WhenFull,
			DeadLetter: e.DeadLetter,
		})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("build pipeline %q: %w", p.Name, errors.Join(errs...))
	}
	return g, nil
}
