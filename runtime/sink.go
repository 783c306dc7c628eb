package runtime

import (
	"context"
)

func (ex *Execution) runSink(n *node) {
	ctx := ex.opCtx
	t := n.task
	in := n.in[0]
	dlo := newOutport(ex, n.dl, t)
	sink := n.spec.Sink
	ok := true
	defer func() {
		if ok && ctx.Err() == nil {
			dlo.finish(ctx)
		} else if dlo != nil {
			dlo.e.close()
		}
		if err := sink.Close(); err != nil && !ex.failing() {
			ex.fail(&StageError{Pipeline: ex.pipeline, Stage: n.spec.Name, Err: err})
		}
	}()
	if o, isOpener := sink.(Opener); isOpener {
		if err := o.Open(ctx); err != nil {
			ok = false
			ex.fail(&StageError{Pipeline: ex.pipeline, Stage: n.spec.Name, Err: err})
			return
		}
	}
	for {
		b, failed := ex.next(ctx, t, in, dlo)
		if b == nil {
			if failed {
				ok = false
			}
			return
		}
		cnt, bytes := len(b.recs), b.bytes
		// Write what is queued in one go, up to the batch size.
		for cnt < ex.batchSize {
			more := in.popSmall(ex.batchSize - cnt)
			if more == nil {
				break
			}
			b.recs = append(b.recs, more.recs...)
			b.addAcks(more.acks)
			cnt += len(more.recs)
			bytes += more.bytes
			ex.pool.put(more)
		}
		n.received.Add(int64(cnt))
		if dlo != nil {
			dlo.setAcks(b.acks)
		}
		if !ex.write(ctx, n, t, dlo, b.recs) {
			ok = false
			return
		}
		ex.pool.put(b)
		in.release(cnt, bytes)
	}
}

// next waits for the next batch of in, flushing what dlo holds before it
// parks. It returns nil when in ended or ctx ended, and failed when the
// dead letters could not be flushed.
func (ex *Execution) next(ctx context.Context, t *task, in *edge, dlo *outport) (b *batch, failed bool) {
	for {
		b, eos := in.pop()
		switch {
		case b != nil:
			return b, false
		case eos:
			return nil, false
		case dlo != nil && !dlo.flush(ctx):
			return nil, true
		}
		t.park(ctx, nil)
		if ctx.Err() != nil {
			return nil, false
		}
	}
}

// write writes recs with the sink's error policy applied to the batch.
func (ex *Execution) write(ctx context.Context, n *node, t *task, dlo *outport, recs []Record) bool {
	err := n.spec.Sink.Write(ctx, recs)
	if err == nil {
		n.emitted.Add(int64(len(recs)))
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	p := n.policy
	switch p.Mode {
	case "skip":
		n.skipped.Add(int64(len(recs)))
		n.logSkip(recs[0], err, len(recs))
		return true
	case "retry":
		for attempt := 1; attempt < p.Attempts && !IsPermanent(err); attempt++ {
			d := backoff(p, attempt)
			n.log.Debug("retrying batch", "pipeline", ex.pipeline, "stage", n.spec.Name,
				"error", err.Error(), "attempt", attempt, "backoff", d, "records", len(recs))
			if !t.sleep(ctx, ex.clock, d) {
				return false
			}
			n.retries.Add(1)
			if err = n.spec.Sink.Write(ctx, recs); err == nil {
				n.emitted.Add(int64(len(recs)))
				return true
			}
			if ctx.Err() != nil {
				return false
			}
		}
		if dlo == nil {
			ex.fail(n.recordError(recs[0], err))
			return false
		}
		fallthrough
	case "dead_letter":
		for _, r := range recs {
			if !n.deadLetter(ctx, dlo, r, err) {
				return false
			}
		}
		return true
	default:
		ex.fail(n.recordError(recs[0], err))
		return false
	}
}
