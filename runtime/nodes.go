package runtime

import (
	"context"
	"errors"
	"sync"
)

// emitter is a source's Emitter: it sends each Emit call's records on the
// source's edge as one acknowledgement unit, in batches of at most the
// batch size, each against credit. Concurrent Emit calls are serialized.
type emitter struct {
	ex    *Execution
	n     *node
	e     *edge
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
	select {
	case em.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-ex.srcCtx.Done():
		return ex.srcCtx.Err()
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
	waitCtx := ex.srcCtx
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
			if stop == nil && i == 0 && ctx.Done() != ex.srcCtx.Done() {
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
	em := &emitter{ex: ex, n: n, e: e, sem: make(chan struct{}, 1), dlo: newOutport(ex, n.dl, n.task)}
	err := n.spec.Source.Run(ex.srcCtx, em)
	if err != nil && !(ex.srcCtx.Err() != nil && errors.Is(err, context.Canceled)) {
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

func (ex *Execution) runMerge(n *node) {
	ctx := ex.opCtx
	t := n.task
	out := n.out[0]
	open := len(n.in)
	ended := make([]bool, len(n.in))
	next := 0
	var sizes []int64
	defer out.close()
	for open > 0 {
		got := false
		for k := 0; k < len(n.in) && !got; k++ {
			i := (next + k) % len(n.in)
			if ended[i] {
				continue
			}
			b, eos := n.in[i].pop()
			if eos {
				ended[i] = true
				open--
				continue
			}
			if b == nil {
				continue
			}
			got = true
			next = i + 1
			cnt, bytes := len(b.recs), b.bytes
			// A turn is worth up to a batch of records, however the input
			// happens to be cut into batches.
			for cnt < ex.batchSize {
				more := n.in[i].popSmall(ex.batchSize - cnt)
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
			if err := ex.send(ctx, t, out, b, &sizes); err != nil {
				return
			}
			n.emitted.Add(int64(cnt))
			n.in[i].release(cnt, bytes)
		}
		if !got && open > 0 {
			t.park(ctx, nil)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

func (ex *Execution) runFanout(n *node) {
	ctx := ex.opCtx
	t := n.task
	in := n.in[0]
	f := n.spec.Fanout
	dlo := newOutport(ex, n.dl, t)
	var sizes []int64
	branches := make([]*batch, len(n.out))
	rr := 0
	ok := true
	defer func() {
		for _, e := range n.out {
			e.close()
		}
		if ok && ctx.Err() == nil {
			dlo.finish(ctx)
		} else if dlo != nil {
			dlo.e.close()
		}
	}()
	deliver := func(e *edge, b *batch, src *batch) bool {
		if e.mode != lossless {
			var recSizes []int64
			if e.capBytes > 0 {
				sizes = sizes[:0]
				for i := range b.recs {
					sizes = append(sizes, RecordSize(b.recs[i]))
				}
				recSizes = sizes
			}
			e.offer(b, recSizes)
			return true
		}
		if b != src {
			b.addAcks(src.acks)
		}
		return ex.send(ctx, t, e, b, &sizes) == nil
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
		n.received.Add(int64(cnt))
		var sent int
		switch f.Mode {
		case "round_robin", "hash":
			if dlo != nil {
				dlo.setAcks(b.acks)
			}
			for _, r := range b.recs {
				i := rr % len(n.out)
				if f.Mode == "hash" {
					var err error
					i, err = routeOf(f.Router, r, len(n.out))
					if err != nil {
						again := func() error {
							var err error
							i, err = routeOf(f.Router, r, len(n.out))
							return err
						}
						if !n.onError(ctx, t, dlo, r, err, again) {
							ok = false
							return
						}
						if err := again(); err != nil {
							continue // skipped or dead-lettered
						}
					}
				} else {
					rr++
				}
				if branches[i] == nil {
					branches[i] = ex.pool.get()
				}
				branches[i].recs = append(branches[i].recs, r)
			}
			for i, bb := range branches {
				if bb == nil {
					continue
				}
				branches[i] = nil
				sent += len(bb.recs)
				if !deliver(n.out[i], bb, b) {
					ok = false
					return
				}
			}
			ex.pool.put(b)
		default:
			// Broadcast: copies for every branch but the first, which gets
			// b itself, last.
			for i := len(n.out) - 1; i >= 0; i-- {
				bb := b
				if i > 0 {
					bb = ex.pool.get()
					for _, r := range b.recs {
						bb.recs = append(bb.recs, copyRecord(r))
					}
				} else if n.out[0].mode != lossless {
					b.releaseAcks()
				}
				sent += len(bb.recs)
				if !deliver(n.out[i], bb, b) {
					ok = false
					return
				}
			}
		}
		n.emitted.Add(int64(sent))
		in.release(cnt, bytes)
	}
}

func routeOf(r Router, rec Record, n int) (int, error) {
	i, err := r.Route(rec, n)
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= n {
		return 0, errors.New("router returned an output out of range")
	}
	return i, nil
}

// runCaller drives a Caller: up to Concurrency calls run at once, each on
// its own goroutine; results are emitted in input order when Ordered.
func (ex *Execution) runCaller(n *node) {
	ctx := ex.opCtx
	t := n.task
	c := n.spec.Caller
	conc := max(c.Concurrency(), 1)
	ordered := c.Ordered()
	in := n.in[0]
	out := newOutport(ex, n.out[0], t)
	dlo := newOutport(ex, n.dl, t)

	type source struct {
		b           *batch
		left, count int
		bytes       int64
	}
	type result struct {
		seq uint64
		rec Record
		err error
		src *source
	}
	var (
		mu        sync.Mutex
		completed []*result
		ready     []*result
		waiting   = map[uint64]*result{}
		cur       *source
		curIdx    int
		inflight  int
		seq, next uint64
		inEOS     bool
		ok        = true
	)
	defer func() {
		if ok && ctx.Err() == nil {
			out.finish(ctx)
			dlo.finish(ctx)
			return
		}
		out.e.close()
		if dlo != nil {
			dlo.e.close()
		}
	}()
	call := func(r *result) {
		defer ex.wg.Done()
		rec := r.rec
		res, err := c.Call(ctx, rec)
		if err != nil && n.policy.Mode == "retry" {
			for attempt := 1; attempt < n.policy.Attempts && err != nil && !IsPermanent(err) && ctx.Err() == nil; attempt++ {
				if ex.clock.Sleep(ctx, backoff(n.policy, attempt)) != nil {
					break
				}
				n.retries.Add(1)
				res, err = c.Call(ctx, rec)
			}
		}
		if err == nil {
			r.rec = res
		}
		r.err = err
		mu.Lock()
		completed = append(completed, r)
		mu.Unlock()
		t.notify()
		if ex.vc != nil {
			ex.vc.detach()
		}
	}
	handle := func(r *result) bool {
		inflight--
		var good bool
		if r.err == nil {
			out.setAcks(r.src.b.acks)
			good = out.emit(ctx, r.rec)
			if good {
				n.emitted.Add(1)
			}
		} else {
			if dlo != nil {
				dlo.setAcks(r.src.b.acks)
			}
			switch {
			case ctx.Err() != nil:
				good = false
			case n.policy.Mode == "skip":
				n.skipped.Add(1)
				n.logSkip(r.rec, r.err, 1)
				good = true
			case dlo != nil && (n.policy.Mode == "dead_letter" || n.policy.Mode == "retry"):
				good = n.deadLetter(ctx, dlo, r.rec, r.err)
			default:
				ex.fail(n.recordError(r.rec, r.err))
				good = false
			}
		}
		if r.src.left--; r.src.left == 0 {
			ex.pool.put(r.src.b)
			in.release(r.src.count, r.src.bytes)
		}
		return good
	}
	for {
		mu.Lock()
		ready, completed = completed, ready[:0]
		mu.Unlock()
		for _, r := range ready {
			if ordered {
				waiting[r.seq] = r
				continue
			}
			if !handle(r) {
				ok = false
				return
			}
		}
		clear(ready)
		for ordered {
			r, found := waiting[next]
			if !found {
				break
			}
			delete(waiting, next)
			next++
			if !handle(r) {
				ok = false
				return
			}
		}
		for inflight < conc {
			if cur == nil {
				if inEOS {
					break
				}
				b, eos := in.pop()
				if b == nil {
					inEOS = eos
					break
				}
				if len(b.recs) == 0 {
					ex.pool.put(b)
					in.release(0, b.bytes)
					continue
				}
				cur = &source{b: b, left: len(b.recs), count: len(b.recs), bytes: b.bytes}
				curIdx = 0
				n.received.Add(int64(len(b.recs)))
			}
			r := &result{seq: seq, rec: cur.b.recs[curIdx], src: cur}
			seq++
			curIdx++
			if curIdx == len(cur.b.recs) {
				cur = nil
			}
			inflight++
			ex.wg.Add(1)
			if ex.vc != nil {
				ex.vc.attach(1)
			}
			go call(r)
		}
		if inEOS && inflight == 0 {
			return
		}
		if !out.flush(ctx) || (dlo != nil && !dlo.flush(ctx)) {
			ok = false
			return
		}
		mu.Lock()
		more := len(completed) > 0
		mu.Unlock()
		if !more {
			t.park(ctx, nil)
		}
		if ctx.Err() != nil {
			ok = false
			return
		}
	}
}
