package runtime

import (
	"context"
	"sync"
)

// A stage that will take nothing more (a Finisher that finished, or a node
// none of whose outputs is wanted) marks its input edges as no longer
// wanted, and from then on acknowledges and drops what still arrives on
// them. The marks travel up the graph at once, in the goroutine that made
// the first one:
//
//   - a processor chain, caller or merge whose output is not wanted marks
//     every input;
//   - a fanout does so only once none of its outputs is wanted, whatever
//     its mode, so a branch that still reads keeps the source going;
//   - a source none of whose outputs is wanted is stopped gracefully: its
//     own context is cancelled, so it stops at a checkpoint, and what it
//     already emitted drains and is acknowledged as after Stop.
//
// A dead-letter edge does not count: a stage whose results nobody wants
// has nothing left to dead-letter, and a consumer of dead letters that
// finishes stops nothing.
//
// Records a source emits after the mark are therefore bounded by what can
// be in flight when it is made (the edges' capacities) plus the Emit call
// under way, which a graceful stop lets finish.

// unwant marks e as no longer wanted by its consumer and stops what only
// feeds it. It may run on any goroutine, several times and concurrently.
func (e *edge) unwant() {
	if e == nil || !e.unwanted.CompareAndSwap(false, true) {
		return
	}
	// Wake the producer so that it looks at its outputs again.
	e.producer.notify()
	if e.spec.DeadLetter {
		return
	}
	p := e.from
	for _, o := range p.out {
		if !o.unwanted.Load() {
			return
		}
	}
	if p.spec.Source != nil {
		p.out[0].stop.stop()
		p.task.notify()
		return
	}
	for _, in := range p.in {
		in.unwant()
	}
}

// sourceStop is the stop switch of a source, kept on its output edge. The
// switch may be thrown before the source's goroutine has made its context.
type sourceStop struct {
	mu      sync.Mutex
	stopped bool
	cancel  context.CancelFunc
}

// context returns the source's own context, a child of parent, already
// cancelled if the source was stopped before. The caller must call cancel
// once the source has returned.
func (s *sourceStop) context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	s.mu.Lock()
	s.cancel = cancel
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		cancel()
	}
	return ctx, cancel
}

// stop cancels the source's context, now or as soon as it exists.
func (s *sourceStop) stop() {
	s.mu.Lock()
	s.stopped = true
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}
