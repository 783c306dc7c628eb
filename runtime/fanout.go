package runtime

import (
	"errors"
)

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
		if e.mode.Lossy() {
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
		if b.mark != nil {
			if dlo != nil && !dlo.flush(ctx) {
				ok = false
				return
			}
			n.forwardMark(b.mark)
			continue
		}
		cnt, bytes := len(b.recs), b.bytes
		if in.unwanted.Load() {
			// No branch wants anything more: acknowledge and drop.
			in.release(cnt, bytes)
			ex.pool.put(b)
			continue
		}
		n.received.Add(int64(cnt))
		var sent int
		switch f.Mode {
		case RoundRobin, Hash:
			if dlo != nil {
				dlo.setAcks(b.acks)
			}
			for _, r := range b.recs {
				i := rr % len(n.out)
				if f.Mode == Hash {
					var err error
					i, err = routeOf(f.Router, r, len(n.out))
					if err != nil {
						if !n.settle(ctx, dlo, r, err) {
							ok = false
							return
						}
						continue // skipped or dead-lettered
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
				} else if n.out[0].mode.Lossy() {
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
