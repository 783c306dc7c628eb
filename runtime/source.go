package runtime

import (
	"context"
	"errors"
)

// emitter is a source's Emitter: it sends each Emit call's records on the
// source's edge as one acknowledgement unit, in batches of at most the
// batch size, each against credit. Concurrent Emit calls are serialized.
type emitter struct {
	ex *Execution
	n  *node
	e  *edge
	// ctx is the source's own context: the sources' context, also
	// cancelled when nothing downstream wants the source's records.
	ctx   context.Context
	sem   chan struct{}
	sizes []int64
	// dlo takes rejected input when the source dead-letters it.
	dlo *outport
}

// Emit implements Emitter.
func (em *emitter) Emit(ctx context.Context, recs []Record, done func()) error {
	ex := em.ex
	if len(recs) == 0 {
		if done != nil {
			done()
		}
		return nil
	}
	// A stopped source sends nothing more, even when credit is free.
	if err := em.ctx.Err(); err != nil {
		return err
	}
	ex.emitGate.RLock()
	defer ex.emitGate.RUnlock()
	if err := em.ctx.Err(); err != nil {
		return err // stopped while a snapshot paused the sources
	}
	select {
	case em.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-em.ctx.Done():
		return em.ctx.Err()
	}
	defer func() { <-em.sem }()
	t := em.n.task
	var a *ack
	if done != nil {
		a = &ack{done: done, live: &ex.acks}
		a.refs.Store(1)
		ex.acks.Add(1)
	}
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	// Once part of the unit is sent, a graceful stop lets the rest follow
	// (what is sent drains, so credit comes back): the unit is then either
	// wholly sent or not at all, and the source's checkpoint stays exact.
	// Only Kill or a failure (runCtx) interrupts a unit under way.
	waitCtx := em.ctx
	for i := 0; i < len(recs); {
		want := min(len(recs)-i, ex.batchSize)
		n := em.e.tryReserve(want)
		for n == 0 {
			if i == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := waitCtx.Err(); err != nil {
				return err
			}
			if stop == nil && i == 0 && ctx.Done() != em.ctx.Done() {
				stop = context.AfterFunc(ctx, t.notify)
			}
			t.park(waitCtx, nil)
			n = em.e.tryReserve(want)
			if n > 0 {
				t.rewake()
			}
		}
		waitCtx = ex.opCtx
		b := ex.pool.get()
		b.recs = append(b.recs, recs[i:i+n]...)
		if a != nil {
			a.refs.Add(1)
			b.acks = append(b.acks, a)
		}
		if err := ex.pushBytes(waitCtx, t, em.e, b, &em.sizes); err != nil {
			return err
		}
		em.n.emitted.Add(int64(n))
		i += n
	}
	if a != nil {
		a.release()
	}
	return nil
}

func (ex *Execution) runSource(n *node) {
	e := n.out[0]
	ctx, cancel := e.stop.context(ex.srcCtx)
	defer cancel()
	em := &emitter{ex: ex, n: n, e: e, ctx: ctx, sem: make(chan struct{}, 1), dlo: newOutport(ex, n.dl, n.task)}
	err := n.spec.Source.Run(ctx, em)
	var rej *rejected
	switch {
	case errors.As(err, &rej):
		ex.failAfterDrain(n.recordError(rej.rec, rej.err))
	case err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)):
		ex.fail(&StageError{Pipeline: ex.pipeline, Stage: n.spec.Name, Err: err})
	}
	// No Emit runs after Run returned: close the edges once the last one
	// has let go of the semaphore.
	em.sem <- struct{}{}
	e.close()
	if em.dlo != nil {
		em.dlo.finish(ex.opCtx)
	}
}
