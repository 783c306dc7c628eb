package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
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
		if fa, aware := sink.(FailureAware); aware && ex.hasFailed() {
			fa.RunFailed()
		}
		if err := sink.Close(); err != nil && !ex.failing() {
			ex.fail(&StageError{Pipeline: ex.pipeline, Stage: n.spec.Name, Err: err})
		}
		n.end()
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
		if b.mark != nil {
			if dlo != nil && !dlo.flush(ctx) {
				ok = false
				return
			}
			n.saveState(b.mark, false)
			n.dl.pushMark(b.mark)
			continue
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
		start := monoNow()
		written := ex.write(ctx, n, t, dlo, b.recs)
		n.busy.Add(int64(monoNow() - start))
		if !written {
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

// write writes recs and isolates the records that fail. A transient error
// is retried as the policy allows. A permanent error of a batch of several
// records splits it in halves, written one after the other, until the
// records that cause it are found, so the good records of the batch are
// still written, once, and in order. A *onerror.Failures names the records
// that failed while the rest were written. Every record given up on then
// follows the policy (settle). It reports whether the sink may go on.
func (ex *Execution) write(ctx context.Context, n *node, t *task, dlo *outport, recs []Record) bool {
	sleep := func(d time.Duration) bool { return t.sleep(ctx, ex.clock, d) }
	write := func() error {
		start := monoNow()
		err := n.spec.Sink.Write(ctx, recs)
		n.writes.observe(monoNow() - start)
		return err
	}
	err := write()
	if err != nil {
		err = n.tries(ctx, sleep, err, write)
	}
	ts := n.tap.Load()
	if err == nil {
		n.emitted.Add(int64(len(recs)))
		if ts != nil {
			ts.offer(recs)
		}
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	var f *onerror.Failures
	if errors.As(err, &f) {
		n.emitted.Add(int64(len(recs) - len(f.Errs)))
		for i := 0; ts != nil && i < len(recs); i++ {
			if _, failed := f.Errs[i]; !failed {
				ts.offerOne(recs[i])
				break
			}
		}
		for i, rec := range recs {
			if e, failed := f.Errs[i]; failed && !n.settle(ctx, dlo, rec, e) {
				return false
			}
		}
		return true
	}
	if onerror.IsPermanent(err) && len(recs) > 1 {
		half := len(recs) / 2
		return ex.write(ctx, n, t, dlo, recs[:half]) && ex.write(ctx, n, t, dlo, recs[half:])
	}
	for _, rec := range recs {
		if !n.settle(ctx, dlo, rec, err) {
			return false
		}
	}
	return true
}
