package runtime

import (
	"errors"
	"fmt"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// Validate checks that g has a shape the runtime can run: unique node
// names, one component per node, edges between known nodes, the number of
// inputs and outputs each kind of node needs, known modes, and no cycle. It
// reports every problem, not only the first.
func Validate(g *Graph) error {
	_, err := validate(g)
	return err
}

// validate returns the indexes of g.Nodes in a topological order.
func validate(g *Graph) ([]int, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(g.Nodes) == 0 {
		bad("the graph has no nodes")
	}
	index := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			bad("node %d is nil", i)
			continue
		}
		if n.Name == "" {
			bad("node %d has no name", i)
		} else if _, dup := index[n.Name]; dup {
			bad("two nodes are named %q", n.Name)
			continue
		}
		index[n.Name] = i
		kinds := 0
		for _, set := range []bool{n.Source != nil, n.Processor != nil, n.Caller != nil, n.Sink != nil, n.Fanout != nil, n.Merge} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			bad("node %q must be exactly one of source, processor, caller, sink, fanout or merge (it is %d)", n.Name, kinds)
		}
		if m := n.OnError.Mode; m > onerror.DeadLetter {
			bad("node %q: unknown error policy %s", n.Name, m)
		}
		if f := n.Fanout; f != nil {
			switch f.Mode {
			case Broadcast, RoundRobin:
			case Hash:
				if f.Router == nil {
					bad("node %q: a hash fanout needs a Router", n.Name)
				}
			default:
				bad("node %q: unknown fanout mode %d", n.Name, f.Mode)
			}
		}
	}
	ins := make([]int, len(g.Nodes))
	outs := make([]int, len(g.Nodes))
	dls := make([]int, len(g.Nodes))
	succ := make([][]int, len(g.Nodes))
	for _, e := range g.Edges {
		if e == nil {
			bad("an edge is nil")
			continue
		}
		from, okFrom := index[e.From]
		to, okTo := index[e.To]
		if !okFrom {
			bad("edge %s -> %s: no node named %q", e.From, e.To, e.From)
		}
		if !okTo {
			bad("edge %s -> %s: no node named %q", e.From, e.To, e.To)
		}
		if e.Capacity < 0 {
			bad("edge %s -> %s: negative capacity %d", e.From, e.To, e.Capacity)
		}
		if e.Bytes < 0 {
			bad("edge %s -> %s: negative byte limit %d", e.From, e.To, e.Bytes)
		}
		if e.WhenFull > overflow.DropNewest {
			bad("edge %s -> %s: unknown when_full %v", e.From, e.To, e.WhenFull)
		}
		if !okFrom || !okTo {
			continue
		}
		if e.WhenFull != overflow.Block && (g.Nodes[from].Fanout == nil || e.DeadLetter) {
			bad("edge %s -> %s: only an output of a fanout may be lossy (when_full)", e.From, e.To)
		}
		ins[to]++
		if e.DeadLetter {
			dls[from]++
		} else {
			outs[from]++
		}
		succ[from] = append(succ[from], to)
	}
	for i, n := range g.Nodes {
		if n == nil {
			continue
		}
		need := func(what string, got, lo, hi int) {
			if got < lo || (hi >= 0 && got > hi) {
				want := fmt.Sprint(lo)
				switch {
				case hi < 0:
					want = fmt.Sprintf("at least %d", lo)
				case hi != lo:
					want = fmt.Sprintf("%d to %d", lo, hi)
				}
				bad("node %q has %d %s, want %s", n.Name, got, what, want)
			}
		}
		switch {
		case n.Source != nil:
			need("inputs", ins[i], 0, 0)
			need("outputs", outs[i], 1, 1)
		case n.Processor != nil, n.Caller != nil:
			need("inputs", ins[i], 1, 1)
			need("outputs", outs[i], 1, 1)
		case n.Sink != nil:
			need("inputs", ins[i], 1, 1)
			need("outputs", outs[i], 0, 0)
		case n.Fanout != nil:
			need("inputs", ins[i], 1, 1)
			need("outputs", outs[i], 1, -1)
		case n.Merge:
			need("inputs", ins[i], 1, -1)
			need("outputs", outs[i], 1, 1)
			need("dead-letter edges", dls[i], 0, 0)
		}
		need("dead-letter edges", dls[i], 0, 1)
		if n.OnError.Mode == onerror.DeadLetter && dls[i] == 0 {
			bad("node %q: on_error dead_letter needs a dead-letter edge", n.Name)
		}
	}
	// Kahn's algorithm: a topological order, or a cycle.
	indeg := append([]int(nil), ins...)
	var order, ready []int
	for i := range g.Nodes {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, j := range succ[i] {
			if indeg[j]--; indeg[j] == 0 {
				ready = append(ready, j)
			}
		}
	}
	if len(errs) == 0 && len(order) < len(g.Nodes) {
		// Nodes left have an input on a cycle; keep those that also lead
		// back into what is left: the cycles themselves.
		left := make([]bool, len(g.Nodes))
		for i, d := range indeg {
			left[i] = d > 0
		}
		for changed := true; changed; {
			changed = false
			for i := range left {
				if !left[i] {
					continue
				}
				leads := false
				for _, j := range succ[i] {
					leads = leads || left[j]
				}
				if !leads {
					left[i], changed = false, true
				}
			}
		}
		var names []string
		for i := range left {
			if left[i] {
				names = append(names, g.Nodes[i].Name)
			}
		}
		bad("the graph has a cycle through %q", names)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("pipeline %q: invalid graph: %w", g.Pipeline, errors.Join(errs...))
	}
	return order, nil
}
