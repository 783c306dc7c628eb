package planner

import (
	"container/heap"
	"fmt"
	"strings"

	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"

	"github.com/flowrun/flowrun/lang/suggest"
)

// resolve turns the pipeline's stage references (from, dead_letter and
// StageRef options) into stages.
func (p *planner) resolve(pd *pipelineDecl) {
	names := stageNames(pd)
	lookup := func(r ref, what string) *stageDecl {
		if t, ok := pd.byName[r.name]; ok {
			return t
		}
		d := p.errorf(r.at.Range(), "Unknown stage",
			"%s refers to %q, and pipeline %q has no stage of that name.", what, r.name, pd.name)
		if s := suggest.Suggest(r.name, names); s != "" {
			d.Hint = fmt.Sprintf("Did you mean %q?", s)
			pd.suggested[s] = true
		}
		return nil
	}
	for _, s := range pd.stages {
		if s.isSource() && s.fromAttr != nil {
			p.errorf(s.fromAttr.NameRange(), "Source with from",
				"A source produces records and reads from no stage: remove from, or make %q another kind of stage.", s.name)
			continue
		}
		for _, r := range s.from {
			t := lookup(r, "from")
			if t == nil {
				continue
			}
			if t.isSink() {
				p.errorf(r.at.Range(), "Cannot read from a sink",
					"%q is a sink: it writes records out and has no output. Read from the stage that feeds it.", t.name)
				continue
			}
			s.inputs = append(s.inputs, t)
			t.readers = append(t.readers, s)
		}
		if s.deadLetter != nil {
			t := lookup(*s.deadLetter, "dead_letter")
			switch {
			case t == nil:
			case !t.isSink():
				p.errorf(s.deadLetter.at.Range(), "Dead-letter target is not a sink",
					"dead_letter names the sink that receives failed records; %q is a %s stage.", t.name, t.block.Type)
			case t == s:
				p.errorf(s.deadLetter.at.Range(), "Dead-letter target is the stage itself",
					"A sink cannot receive its own failed records: name another sink.")
			default:
				s.st.OnError.DeadLetter = t.name
				t.dlSources = append(t.dlSources, s)
			}
		}
		for name, r := range s.refOpts {
			if t := lookup(r, name); t != nil {
				s.st.Options[name] = t.name
			}
		}
	}
}

// checkCycles reports every cycle of the pipeline (through from and
// dead_letter) and whether there was one.
func (p *planner) checkCycles(pd *pipelineDecl) bool {
	next := func(s *stageDecl) []*stageDecl {
		out := append([]*stageDecl(nil), s.readers...)
		if s.st.OnError.DeadLetter != "" {
			out = append(out, pd.byName[s.st.OnError.DeadLetter])
		}
		return out
	}
	// Tarjan's strongly connected components.
	index := map[*stageDecl]int{}
	low := map[*stageDecl]int{}
	onStack := map[*stageDecl]bool{}
	var stack []*stageDecl
	var sccs [][]*stageDecl
	var visit func(s *stageDecl)
	visit = func(s *stageDecl) {
		index[s] = len(index)
		low[s] = index[s]
		stack = append(stack, s)
		onStack[s] = true
		for _, t := range next(s) {
			if _, seen := index[t]; !seen {
				visit(t)
				low[s] = min(low[s], low[t])
			} else if onStack[t] {
				low[s] = min(low[s], index[t])
			}
		}
		if low[s] == index[s] {
			var scc []*stageDecl
			for {
				t := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[t] = false
				scc = append(scc, t)
				if t == s {
					break
				}
			}
			sccs = append(sccs, scc)
		}
	}
	for _, s := range pd.stages {
		if _, seen := index[s]; !seen {
			visit(s)
		}
	}
	cyclic := false
	for _, scc := range sccs {
		in := map[*stageDecl]bool{}
		first := scc[0]
		for _, s := range scc {
			in[s] = true
			if s.index < first.index {
				first = s
			}
		}
		selfLoop := false
		for _, t := range next(first) {
			selfLoop = selfLoop || t == first
		}
		if len(scc) == 1 && !selfLoop {
			continue
		}
		cyclic = true
		path := cyclePath(first, in, next)
		names := make([]string, len(path))
		for i, s := range path {
			names[i] = s.name
		}
		// Point at where the first stage of the cycle reads the last one.
		last := path[len(path)-2]
		at := header(first.block)
		for _, r := range first.from {
			if r.name == last.name {
				at = r.at.Range()
			}
		}
		if last.st.OnError.DeadLetter == first.name && last.deadLetter != nil && !readsFrom(first, last) {
			at = last.deadLetter.at.Range()
		}
		p.errorf(at, "Cycle",
			"The stages %s read from each other in a loop; a pipeline must be a DAG.", strings.Join(names, " -> "))
	}
	return cyclic
}

func readsFrom(s, t *stageDecl) bool {
	for _, r := range s.from {
		if r.name == t.name {
			return true
		}
	}
	return false
}

// cyclePath returns a cycle through start inside the component in, as a
// path that ends with start again.
func cyclePath(start *stageDecl, in map[*stageDecl]bool, next func(*stageDecl) []*stageDecl) []*stageDecl {
	prev := map[*stageDecl]*stageDecl{}
	queue := []*stageDecl{start}
	seen := map[*stageDecl]bool{start: true}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, t := range next(s) {
			if !in[t] {
				continue
			}
			if t == start {
				path := []*stageDecl{start}
				for c := s; c != start; c = prev[c] {
					path = append(path, c)
				}
				// path is start, s, ..., reversed after start.
				for i, j := 1, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return append(path, start)
			}
			if !seen[t] {
				seen[t] = true
				prev[t] = s
				queue = append(queue, t)
			}
		}
	}
	return []*stageDecl{start, start}
}

// checkShape reports stages nobody reads, stages that read nothing and
// misplaced when_full options.
func (p *planner) checkShape(pd *pipelineDecl) {
	for _, s := range pd.stages {
		switch {
		case s.isSink():
			if s.fromAttr == nil && len(s.dlSources) == 0 && !pd.suggested[s.name] {
				p.errorf(header(s.block), "Sink reads nothing",
					"Sink %q has no from and is no stage's dead_letter: add from = STAGE.", s.name)
			}
		case len(s.readers) == 0 && !pd.suggested[s.name]:
			d := p.errorf(header(s.block), "Stage output is not read",
				"Nothing reads the records of %s %q: add a stage with from = %s, or remove it.", s.block.Type, s.name, s.name)
			if s.isSource() {
				d.Detail = fmt.Sprintf("Nothing reads the records of source %q: add a stage with from = %s, or remove it.", s.name, s.name)
			}
		}
		if !s.isSource() && s.fromAttr == nil && !s.isSink() {
			p.errorf(header(s.block), "Missing from",
				"A %s stage reads from another stage: add from = STAGE.", s.block.Type)
		}
		if s.whenFull.Lossy() {
			switch {
			case len(s.from) > 1:
				p.errorf(s.whenFullAt, "when_full with several inputs",
					"when_full makes this stage's input a lossy branch of a broadcast; it needs a single stage in from.")
				s.whenFull = overflow.Block
			case len(s.inputs) == 1 && s.inputs[0].block.Type == "fanout" && s.inputs[0].st.Options.String("mode") != "broadcast":
				p.errorf(s.whenFullAt, "when_full needs a broadcast",
					"Fanout %q sends each record to one reader (mode %q); only a broadcast fanout has lossy branches.", s.inputs[0].name, s.inputs[0].st.Options.String("mode"))
				s.whenFull = overflow.Block
			}
		}
	}
}

// buildDAG inserts implicit fanout and merge stages, creates every edge with
// its capacity, sorts the stages topologically and states the memory bound.
func (p *planner) buildDAG(pd *pipelineDecl) {
	var stages []*Stage
	prio := map[*Stage]int{}
	for _, s := range pd.stages {
		s.entry, s.out = s.st, s.st
		stages = append(stages, s.st)
		prio[s.st] = 3 * s.index
		if s.block.Type == "fanout" {
			continue
		}
		lossy := false
		for _, r := range s.readers {
			lossy = lossy || r.whenFull.Lossy()
		}
		if len(s.readers) > 1 || lossy {
			f := p.implicit(s, "fanout")
			f.Options["mode"] = "broadcast"
			s.out = f
			stages = append(stages, f)
			prio[f] = 3*s.index + 1
			connect(s.st, f, pd.edgeCap, pd.edgeBytes, overflow.Block, false)
		}
	}
	for _, s := range pd.stages {
		if s.block.Type != "merge" && len(s.inputs)+len(s.dlSources) > 1 {
			m := p.implicit(s, "merge")
			s.entry = m
			stages = append(stages, m)
			prio[m] = 3*s.index - 1
			connect(m, s.st, s.capacity(pd), s.bytes(pd), overflow.Block, false)
		}
	}
	for _, s := range pd.stages {
		for _, t := range s.inputs {
			whenFull := overflow.Block
			if t.out != t.st || (t.block.Type == "fanout" && t.st.Options.String("mode") == "broadcast") {
				whenFull = s.whenFull
			}
			connect(t.out, s.entry, s.capacity(pd), s.bytes(pd), whenFull, false)
		}
		for _, t := range s.dlSources {
			connect(t.st, s.entry, s.capacity(pd), s.bytes(pd), overflow.Block, true)
		}
	}

	pd.pipe.Stages = topoSort(stages, prio)
	bound := MemoryBound{}
	for _, st := range pd.pipe.Stages {
		for _, e := range st.Outputs {
			pd.pipe.Edges = append(pd.pipe.Edges, e)
			bound.Records += e.Capacity
			bound.Bytes += e.Bytes
		}
	}
	for _, s := range pd.stages {
		if s.schema != nil && s.schema.InFlight != nil {
			bound.Records += s.schema.InFlight(s.st.Options)
		}
	}
	pd.pipe.Bound = bound
}

// capacity is the capacity of the edges into the stage.
func (s *stageDecl) capacity(pd *pipelineDecl) int {
	if s.edgeCap > 0 {
		return s.edgeCap
	}
	return pd.edgeCap
}

// bytes is the byte limit of the edges into the stage.
func (s *stageDecl) bytes(pd *pipelineDecl) int64 {
	if s.edgeBytes > 0 {
		return s.edgeBytes
	}
	return pd.edgeBytes
}

// implicit returns a new implicit stage of block type (fanout or merge)
// serving s, with the defaults of its schema.
func (p *planner) implicit(s *stageDecl, block string) *Stage {
	st := &Stage{
		Name:     s.name + "." + block,
		Block:    block,
		Kind:     block,
		Implicit: true,
		Options:  Options{},
		OnError:  ErrorPolicy{Policy: onerror.Default(onerror.Other)},
		Range:    s.st.Range,
	}
	if sc, ok := p.reg.Lookup(block, block); ok {
		for _, o := range sc.Options {
			if o.Default != nil {
				st.Options[o.Name] = o.Default
			}
		}
	}
	return st
}

func connect(from, to *Stage, capacity int, bytes int64, whenFull overflow.Mode, deadLetter bool) {
	e := &Edge{From: from, To: to, Capacity: capacity, Bytes: bytes, WhenFull: whenFull, DeadLetter: deadLetter}
	from.Outputs = append(from.Outputs, e)
	to.Inputs = append(to.Inputs, e)
}

// topoSort orders stages so that every stage comes after the stages it
// reads from; among stages that are ready, the lowest priority comes first.
func topoSort(stages []*Stage, prio map[*Stage]int) []*Stage {
	indeg := map[*Stage]int{}
	for _, st := range stages {
		indeg[st] = len(st.Inputs)
	}
	h := &stageHeap{prio: prio}
	for _, st := range stages {
		if indeg[st] == 0 {
			heap.Push(h, st)
		}
	}
	out := make([]*Stage, 0, len(stages))
	for h.Len() > 0 {
		st := heap.Pop(h).(*Stage)
		out = append(out, st)
		for _, e := range st.Outputs {
			indeg[e.To]--
			if indeg[e.To] == 0 {
				heap.Push(h, e.To)
			}
		}
	}
	return out
}

type stageHeap struct {
	items []*Stage
	prio  map[*Stage]int
}

func (h *stageHeap) Len() int           { return len(h.items) }
func (h *stageHeap) Less(i, j int) bool { return h.prio[h.items[i]] < h.prio[h.items[j]] }
func (h *stageHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *stageHeap) Push(x any)         { h.items = append(h.items, x.(*Stage)) }
func (h *stageHeap) Pop() any {
	n := len(h.items)
	x := h.items[n-1]
	h.items = h.items[:n-1]
	return x
}
