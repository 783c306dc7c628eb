package runtime

import ()

func (ex *Execution) runMerge(n *node) {
	ctx := ex.opCtx
	t := n.task
	out := n.out[0]
	open := len(n.in)
	ended := make([]bool, len(n.in))
	// marked holds the inputs that delivered the marker of the snapshot
	// under way: nothing more is taken from them until every open input
	// did, and the marker goes on.
	marked := make([]bool, len(n.in))
	var m *mark
	aligned := func() bool {
		for i := range n.in {
			if !ended[i] && !marked[i] {
				return false
			}
		}
		return true
	}
	next := 0
	var sizes []int64
	defer out.close()
	for open > 0 {
		got := false
		for k := 0; k < len(n.in) && !got; k++ {
			i := (next + k) % len(n.in)
			if ended[i] || marked[i] {
				continue
			}
			b, eos := n.in[i].pop()
			if eos {
				ended[i] = true
				open--
				if m != nil && aligned() {
					n.forwardMark(m)
					m = nil
					clear(marked)
				}
				continue
			}
			if b == nil {
				continue
			}
			if b.mark != nil {
				got = true
				m, marked[i] = b.mark, true
				if aligned() {
					n.forwardMark(m)
					m = nil
					clear(marked)
				}
				continue
			}
			got = true
			next = i + 1
			if n.in[i].unwanted.Load() {
				// The output is not wanted: acknowledge and drop.
				n.in[i].release(len(b.recs), b.bytes)
				ex.pool.put(b)
				continue
			}
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
