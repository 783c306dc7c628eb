package runtime

import (
	"context"
	"time"
)

// procLoop runs a chain of processors (one, or several fused) on one
// goroutine: each record of an input batch goes through every stage and
// lands in the pending batch of the chain's output.
type procLoop struct {
	ex     *Execution
	t      *task
	nodes  []*node
	stages []*stage
	in     *edge
	out    *outport
	ports  []*outport // out and every stage's dead-letter port
	ctx    context.Context
	held   []*ack // units held by a Holder
	dead   bool
	// finishers are the stages that can end the stream early; ended is set
	// once one finished and the outputs closed.
	finishers []Finisher
	ended     bool
	// blocked is the time of the batch under way not to count as busy at
	// its end: spent waiting for output credit, or counted already.
	blocked time.Duration
}

type stage struct {
	pl      *procLoop
	n       *node
	p       Processor
	h       Holder
	tm      Timed
	g       Gate
	tg      TryGate
	next    *stage
	dlo     *outport
	emit    func(Record)
	in, out int64
	// tap is the node's taps for the batch under way, for a stage whose
	// output goes to the next fused stage rather than on an edge (where
	// the edge taps it).
	tap *tapSet
}

func (pl *procLoop) init() {
	ex := pl.ex
	pl.ctx = ex.opCtx
	pl.in = pl.nodes[0].in[0]
	last := pl.nodes[len(pl.nodes)-1]
	pl.out = newOutport(ex, last.out[0], pl.t)
	pl.ports = append(pl.ports, pl.out)
	for _, n := range pl.nodes {
		s := &stage{pl: pl, n: n, p: n.spec.Processor}
		s.h, _ = s.p.(Holder)
		if f, ok := s.p.(Finisher); ok {
			pl.finishers = append(pl.finishers, f)
		}
		s.tm, _ = s.p.(Timed)
		s.g, _ = s.p.(Gate)
		if s.g != nil {
			s.tg, _ = s.p.(TryGate)
		}
		if n.dl != nil {
			s.dlo = newOutport(ex, n.dl, pl.t)
			pl.ports = append(pl.ports, s.dlo)
		}
		pl.stages = append(pl.stages, s)
	}
	for i, s := range pl.stages {
		if i+1 < len(pl.stages) {
			next := pl.stages[i+1]
			s.next = next
			if next.g != nil {
				s.emit = func(r Record) {
					s.out++
					if s.tap != nil {
						s.tap.offerOne(r)
						s.tap = nil // one sample a batch
					}
					pl.process(next, r)
				}
				continue
			}
			// The common case, kept short: a plain next stage.
			s.emit = func(r Record) {
				s.out++
				if s.tap != nil {
					s.tap.offerOne(r)
					s.tap = nil // one sample a batch
				}
				if pl.dead {
					return
				}
				next.in++
				if err := next.p.Process(r, next.emit); err != nil {
					pl.failed(next, r, err)
				}
			}
			continue
		}
		o := pl.out
		size := ex.batchSize
		s.emit = func(r Record) {
			s.out++
			// Fast path: credit reserved, batch open and not about to fill.
			if o.avail > 0 && o.acked && o.pend != nil && len(o.pend.recs)+1 < size {
				o.pend.recs = append(o.pend.recs, r)
				o.avail--
				return
			}
			// Sends the full batch, or takes more credit, maybe waiting for
			// it (timed then: not work). Count first, so that no stage
			// downstream has received more than this chain counts.
			pl.count()
			if o.avail > 0 && o.e.capBytes == 0 {
				if !o.emit(pl.ctx, r) {
					pl.dead = true
				}
				return
			}
			t0 := monoNow()
			if !o.emit(pl.ctx, r) {
				pl.dead = true
			}
			pl.blocked += monoNow() - t0
		}
	}
}

// loadTaps reads the taps of the stages whose output the edges do not see,
// once per batch.
func (pl *procLoop) loadTaps() {
	for _, s := range pl.stages {
		if s.next != nil {
			s.tap = s.n.tap.Load()
		}
	}
}

// busy counts the time since start, less blocked, as busy time of every
// stage of the chain.
func (pl *procLoop) busy(start time.Duration) {
	d := monoNow() - start - pl.blocked
	pl.blocked = 0
	if d <= 0 {
		return
	}
	for _, s := range pl.stages {
		s.n.busy.Add(int64(d))
	}
}

// failed applies s's error policy to r: a transient error is retried, then
// the record is settled.
func (pl *procLoop) failed(s *stage, r Record, err error) {
	sleep := func(d time.Duration) bool { return pl.t.sleep(pl.ctx, pl.ex.clock, d) }
	err = s.n.tries(pl.ctx, sleep, err, func() error { return s.p.Process(r, s.emit) })
	if err != nil && !s.n.settle(pl.ctx, s.dlo, r, err) {
		pl.dead = true
	}
}

func (pl *procLoop) setAcks(acks []*ack) {
	for _, o := range pl.ports {
		o.setAcks(acks)
	}
}

func (pl *procLoop) flushAll() {
	for _, o := range pl.ports {
		if !o.flush(pl.ctx) {
			pl.dead = true
		}
	}
}

func (pl *procLoop) process(s *stage, r Record) {
	if pl.dead {
		return
	}
	s.in++
	if s.g != nil && (s.tg == nil || !s.tg.TryWait()) {
		pl.count()
		pl.flushAll()
		// The wait is the stage's work (a throttle's pacing), counted at
		// once rather than at the end of a batch that may take long.
		t0 := monoNow()
		err := s.g.Wait(pl.ctx)
		d := monoNow() - t0
		pl.blocked += d
		for _, st := range pl.stages {
			st.n.busy.Add(int64(d))
		}
		if err != nil {
			if pl.ctx.Err() == nil {
				pl.ex.fail(s.n.recordError(r, err))
			}
			pl.dead = true
			return
		}
	}
	if err := s.p.Process(r, s.emit); err != nil {
		pl.failed(s, r, err)
	}
}

func (pl *procLoop) count() {
	for _, s := range pl.stages {
		if s.in != 0 {
			s.n.received.Add(s.in)
			s.in = 0
		}
		if s.out != 0 {
			s.n.emitted.Add(s.out)
			s.out = 0
		}
	}
}

// hold moves b's units into the holder's list.
func (pl *procLoop) hold(b *batch) {
	for _, a := range b.acks {
		if n := len(pl.held); n > 0 && pl.held[n-1] == a {
			a.release()
			continue
		}
		pl.held = append(pl.held, a)
	}
	clear(b.acks)
	b.acks = b.acks[:0]
}

// unhold lets go of the held units once the holder holds nothing.
func (pl *procLoop) unhold(force bool) {
	s := pl.stages[0]
	if s.h == nil || len(pl.held) == 0 || (!force && s.h.Held() > 0) {
		return
	}
	// Pending batches took their own references already.
	for i, a := range pl.held {
		a.release()
		pl.held[i] = nil
	}
	pl.held = pl.held[:0]
	pl.setAcks(nil)
}

func (pl *procLoop) handle(b *batch) {
	start := monoNow()
	if len(pl.stages) > 1 {
		pl.loadTaps()
	}
	first := pl.stages[0]
	n, bytes := len(b.recs), b.bytes
	if first.h != nil {
		pl.hold(b)
		pl.setAcks(pl.held)
	} else {
		pl.setAcks(b.acks)
	}
	if first.g == nil {
		for i := range b.recs {
			first.in++
			if err := first.p.Process(b.recs[i], first.emit); err != nil {
				pl.failed(first, b.recs[i], err)
			}
			if pl.dead {
				pl.count()
				pl.busy(start)
				return
			}
		}
	} else {
		for i := range b.recs {
			pl.process(first, b.recs[i])
			if pl.dead {
				pl.count()
				pl.busy(start)
				return
			}
		}
	}
	pl.unhold(false)
	pl.count()
	pl.busy(start)
	pl.in.release(n, bytes)
	pl.ex.pool.put(b)
}

func (pl *procLoop) run() {
	ex := pl.ex
	s := pl.stages[0]
	defer func() {
		for _, n := range pl.nodes {
			n.end()
		}
	}()
	defer func() {
		if pl.ended {
			return
		}
		if !pl.dead && pl.ctx.Err() == nil {
			for _, o := range pl.ports {
				o.finish(pl.ctx)
			}
			return
		}
		for _, o := range pl.ports {
			o.e.close()
		}
	}()
	if pl.finished() {
		pl.end() // a take of 0 wants nothing at all
	}
	for !pl.dead {
		if !pl.ended && pl.in.unwanted.Load() {
			pl.end() // nothing downstream wants the chain's output
		}
		if s.tm != nil && !pl.ended && !pl.timed() {
			return
		}
		b, eos := pl.in.pop()
		if b != nil && b.mark != nil {
			pl.mark(b.mark)
			continue
		}
		if b != nil && pl.ended {
			pl.discard(b)
			continue
		}
		if b != nil {
			pl.handle(b)
			if !pl.dead && pl.finished() {
				pl.end()
			}
			continue
		}
		if eos && pl.ended {
			return
		}
		if eos {
			if s.h != nil {
				pl.loadTaps()
				pl.setAcks(pl.held)
				if err := s.h.Flush(s.emit); err != nil {
					ex.fail(&StageError{Pipeline: ex.pipeline, Stage: s.n.spec.Name, Err: err})
					pl.dead = true
				}
				pl.unhold(true)
				pl.count()
			}
			return
		}
		if !pl.ended {
			pl.flushAll()
		}
		var timer <-chan time.Time
		stop := func() {}
		if s.tm != nil && !pl.ended {
			if dl, ok := s.tm.Deadline(); ok {
				timer, stop = pl.t.timer(ex.clock, dl.Sub(ex.clock.Now()))
			}
		}
		pl.t.park(pl.ctx, timer)
		stop()
		if pl.ctx.Err() != nil {
			return
		}
	}
}

// mark passes a snapshot's marker: what the chain emitted before it goes
// first, every stage saves its state, a holder lets go of the
// acknowledgements it held (its state carries those records now), and the
// marker goes on.
func (pl *procLoop) mark(m *mark) {
	if !pl.ended {
		pl.flushAll()
	}
	for _, s := range pl.stages {
		s.n.saveState(m, false)
	}
	if pl.stages[0].h != nil {
		pl.unhold(true)
	}
	if pl.ended || pl.dead {
		return
	}
	for _, o := range pl.ports {
		o.e.pushMark(m)
	}
}

// timed ticks a Timed processor whose deadline has come. It reports false
// when the loop must end.
func (pl *procLoop) timed() bool {
	s := pl.stages[0]
	dl, ok := s.tm.Deadline()
	if !ok {
		return true
	}
	now := pl.ex.clock.Now()
	if now.Before(dl) {
		return true
	}
	start := monoNow()
	defer pl.busy(start)
	pl.loadTaps()
	pl.setAcks(pl.held)
	if err := s.tm.Tick(now, s.emit); err != nil {
		pl.ex.fail(&StageError{Pipeline: pl.ex.pipeline, Stage: s.n.spec.Name, Err: err})
		pl.dead = true
		return false
	}
	pl.unhold(false)
	pl.count()
	return !pl.dead
}
