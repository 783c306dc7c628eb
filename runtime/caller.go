package runtime

import (
	"sync"
	"time"
)

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
		// marked is the marker of a snapshot, taken from the input once
		// the calls before it were started: it goes on once they are all
		// handled, and nothing more is started until then.
		marked *mark
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
		start := monoNow()
		res, err := c.Call(ctx, rec)
		if err != nil {
			sleep := func(d time.Duration) bool { return ex.clock.Sleep(ctx, d) == nil }
			err = n.tries(ctx, sleep, err, func() error {
				var err error
				res, err = c.Call(ctx, rec)
				return err
			})
		}
		// Busy time is the share of the concurrency in use.
		n.busy.Add(int64(monoNow()-start) / int64(conc))
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
			good = n.settle(ctx, dlo, r.rec, r.err)
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
		for inflight < conc && marked == nil {
			if cur == nil {
				if inEOS {
					break
				}
				b, eos := in.pop()
				if b == nil {
					inEOS = eos
					break
				}
				if b.mark != nil {
					marked = b.mark
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
		if marked != nil && inflight == 0 {
			n.forwardMark(marked)
			marked = nil
			continue
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
