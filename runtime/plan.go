package runtime

import (
	"fmt"
	goruntime "runtime"
)

// loop is one goroutine of an execution.
type loop struct {
	stage string
	run   func()
}

// plan gives every node a task and returns the goroutines to start:
// one per source, sink, fanout, merge and caller, and one per chain of
// processors. A chain fuses consecutive plain processors (neither Holder,
// Timed nor Gate) joined by a lossless edge without a byte limit that is
// the only output of the first and the only input of the second.
func (ex *Execution) plan(noFusion bool) []loop {
	chains := map[*node]*procLoop{}
	var order []any
	for _, n := range ex.topo {
		switch {
		case n.spec.Processor != nil:
			if !noFusion && plain(n) && len(n.in) == 1 {
				e := n.in[0]
				if m := e.from; !e.spec.DeadLetter && !e.mode.Lossy() && e.capBytes == 0 && plain(m) && len(m.out) == 1 && chains[m] != nil {
					pl := chains[m]
					pl.nodes = append(pl.nodes, n)
					chains[n] = pl
					n.task = pl.t
					continue
				}
			}
			pl := &procLoop{ex: ex, t: newTask(ex.vc), nodes: []*node{n}}
			chains[n] = pl
			n.task = pl.t
			order = append(order, pl)
		default:
			n.task = newTask(ex.vc)
			order = append(order, n)
		}
	}
	for _, e := range ex.edges {
		e.producer = e.from.task
		e.consumer = e.to.task
	}
	loops := make([]loop, 0, len(order))
	for _, o := range order {
		switch o := o.(type) {
		case *procLoop:
			o.init()
			loops = append(loops, loop{stage: o.nodes[0].spec.Name, run: o.run})
		case *node:
			n := o
			var run func()
			switch {
			case n.spec.Source != nil:
				run = func() { ex.runSource(n) }
			case n.spec.Sink != nil:
				ex.liveSinks.Add(1)
				run = func() {
					defer ex.sinkFinished()
					ex.runSink(n)
				}
			case n.spec.Caller != nil:
				run = func() { ex.runCaller(n) }
			case n.spec.Fanout != nil:
				run = func() { ex.runFanout(n) }
			default:
				run = func() { ex.runMerge(n) }
			}
			loops = append(loops, loop{stage: n.spec.Name, run: run})
		}
	}
	return loops
}

func plain(n *node) bool {
	p := n.spec.Processor
	if p == nil {
		return false
	}
	_, h := p.(Holder)
	_, t := p.(Timed)
	_, g := p.(Gate)
	return !h && !t && !g
}

// runTask runs one goroutine of the execution, turning a panic of an
// operator into the execution's failure.
func (ex *Execution) runTask(l loop) {
	defer ex.wg.Done()
	if ex.vc != nil {
		defer ex.vc.detach()
	}
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 4096)
			buf = buf[:goruntime.Stack(buf, false)]
			ex.fail(&StageError{Pipeline: ex.pipeline, Stage: l.stage, Err: fmt.Errorf("panic: %v\n%s", r, buf)})
		}
	}()
	l.run()
}
