package runtime

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/flowrun/flowrun/runtime/overflow"
	"golang.org/x/time/rate"
)

// edge is a bounded, credit-based queue of batches between two tasks,
// modelled on grpc-go's writeQuota: a mutex-guarded credit count and a
// one-slot wake-up channel on each side (the tasks' own).
//
// used counts the credits taken: records reserved by the producer for the
// batch it is filling, queued, or being processed by the consumer. It never
// exceeds capacity. usedBytes does the same for bytes when capBytes > 0.
type edge struct {
	spec     *Edge
	capacity int64
	capBytes int64
	mode     overflow.Mode
	ex       *Execution
	from, to *node
	producer *task
	consumer *task

	mu                       sync.Mutex
	q                        []*batch
	head                     int
	closed                   bool
	used, usedBytes          int64
	prodWaiting, consWaiting bool

	fill, fillBytes atomic.Int64
	dropped         atomic.Int64
	// dropWarn limits the warnings about drops (see warnFirst).
	dropWarn rate.Sometimes

	// unwanted is set once the consumer will take nothing more from the
	// edge: it drops what still arrives, and the producer stops when none
	// of its outputs is wanted (see unwant). stop is the switch of the
	// source whose output this is.
	unwanted atomic.Bool
	stop     sourceStop

	// tapFrom is the node whose taps see the batches pushed on the edge
	// (nil for a dead-letter edge and a broadcast's later branches).
	tapFrom *node
}

// tryReserve takes up to want record credits without waiting.
func (e *edge) tryReserve(want int) int {
	e.mu.Lock()
	n := e.takeLocked(want)
	e.mu.Unlock()
	return n
}

func (e *edge) takeLocked(want int) int {
	avail := e.capacity - e.used
	if avail <= 0 {
		e.prodWaiting = true
		return 0
	}
	n := int64(want)
	if n > avail {
		n = avail
	}
	e.used += n
	return int(n)
}

// reserve takes between 1 and want record credits, waiting (parked on t)
// while there are none. It fails only when ctx ends.
func (e *edge) reserve(ctx context.Context, t *task, want int) (int, error) {
	for parked := false; ; parked = true {
		if n := e.tryReserve(want); n > 0 {
			if parked {
				t.rewake()
			}
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t.park(ctx, nil)
	}
}

// unreserve gives back credits reserved and not used.
func (e *edge) unreserve(n int) {
	if n == 0 {
		return
	}
	e.mu.Lock()
	e.used -= int64(n)
	e.mu.Unlock()
}

// push queues b, whose records were reserved (and bytes charged).
func (e *edge) push(b *batch) {
	if e.tapFrom != nil {
		if ts := e.tapFrom.tap.Load(); ts != nil {
			ts.offer(b.recs)
		}
	}
	n, bytes := int64(len(b.recs)), b.bytes
	// Counted before the consumer can see b, so that the counters never
	// exceed what the credits allow.
	e.fill.Add(n)
	if bytes != 0 {
		e.fillBytes.Add(bytes)
	}
	e.ex.addInFlight(n, bytes)
	e.mu.Lock()
	e.q = append(e.q, b)
	wake := e.consWaiting
	e.consWaiting = false
	e.mu.Unlock()
	if wake {
		e.consumer.notify()
	}
}

// chargeBytes charges bytes for the longest prefix of sizes that fits the
// byte limit (at least one record when the edge holds no bytes), waiting
// while nothing fits. It returns the prefix length and its bytes.
func (e *edge) chargeBytes(ctx context.Context, t *task, sizes []int64) (int, int64, error) {
	for parked := false; ; parked = true {
		e.mu.Lock()
		free := e.capBytes - e.usedBytes
		k, sum := 0, int64(0)
		for k < len(sizes) && sum+sizes[k] <= free {
			sum += sizes[k]
			k++
		}
		if k == 0 && e.usedBytes == 0 && len(sizes) > 0 {
			k, sum = 1, sizes[0]
		}
		if k > 0 {
			e.usedBytes += sum
			e.mu.Unlock()
			if parked {
				t.rewake()
			}
			return k, sum, nil
		}
		e.prodWaiting = true
		e.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		t.park(ctx, nil)
	}
}

// pop takes the oldest batch. With none queued it reports whether the edge
// is closed (end of stream); otherwise it arranges for the consumer to be
// notified of the next push.
func (e *edge) pop() (b *batch, eos bool) {
	e.mu.Lock()
	if e.head < len(e.q) {
		b = e.popLocked()
		e.mu.Unlock()
		return b, false
	}
	if e.closed {
		e.mu.Unlock()
		return nil, true
	}
	e.consWaiting = true
	e.mu.Unlock()
	return nil, false
}

// popSmall takes the oldest batch if there is one holding at most max
// records.
func (e *edge) popSmall(max int) *batch {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head < len(e.q) && e.q[e.head].mark == nil && len(e.q[e.head].recs) <= max {
		return e.popLocked()
	}
	return nil
}

func (e *edge) popLocked() *batch {
	b := e.q[e.head]
	e.q[e.head] = nil
	e.head++
	if e.head == len(e.q) {
		e.q = e.q[:0]
		e.head = 0
	} else if e.head >= 64 && 2*e.head >= len(e.q) {
		n := copy(e.q, e.q[e.head:])
		clear(e.q[n:])
		e.q = e.q[:n]
		e.head = 0
	}
	return b
}

// release hands back the credits of n records and bytes the consumer has
// finished.
func (e *edge) release(n int, bytes int64) {
	// Uncounted before the credits return, so that the counters never
	// exceed what the credits allow.
	e.fill.Add(-int64(n))
	if bytes != 0 {
		e.fillBytes.Add(-bytes)
	}
	e.ex.addInFlight(-int64(n), -bytes)
	e.mu.Lock()
	e.used -= int64(n)
	e.usedBytes -= bytes
	wake := e.prodWaiting
	e.prodWaiting = false
	e.mu.Unlock()
	if wake {
		e.producer.notify()
	}
}

// close ends the stream: the consumer sees end of stream once the queue is
// empty.
func (e *edge) close() {
	e.mu.Lock()
	e.closed = true
	wake := e.consWaiting
	e.consWaiting = false
	e.mu.Unlock()
	if wake {
		e.consumer.notify()
	}
}

// offer queues b on a lossy edge without waiting, dropping records that do
// not fit: the newest (b's tail) for drop_newest, the oldest queued ones
// first for drop_oldest. It returns the number of records dropped. b must
// hold no acknowledgements; it is recycled if nothing of it is kept.
func (e *edge) offer(b *batch, sizes []int64) int {
	if e.tapFrom != nil {
		if ts := e.tapFrom.tap.Load(); ts != nil {
			ts.offer(b.recs)
		}
	}
	n := int64(len(b.recs))
	var total int64
	for _, s := range sizes {
		total += s
	}
	var dropped int64
	var evicted []*batch
	e.mu.Lock()
	if e.mode == overflow.DropOldest {
		for e.head < len(e.q) && (e.used+n > e.capacity || (e.capBytes > 0 && e.usedBytes+total > e.capBytes)) {
			hb := e.q[e.head]
			k := len(hb.recs)
			if e.capBytes == 0 {
				k = int(min(int64(k), e.used+n-e.capacity))
			}
			var kb int64
			if e.capBytes > 0 {
				kb = hb.bytes
			}
			hb.recs = hb.recs[k:]
			e.used -= int64(k)
			e.usedBytes -= kb
			hb.bytes -= kb
			e.fill.Add(-int64(k))
			e.fillBytes.Add(-kb)
			e.ex.addInFlight(-int64(k), -kb)
			dropped += int64(k)
			if len(hb.recs) == 0 {
				e.q[e.head] = nil
				e.head++
				evicted = append(evicted, hb)
			}
		}
		if e.head == len(e.q) {
			e.q = e.q[:0]
			e.head = 0
		}
		// Still too much: drop the oldest of b.
		k := 0
		if over := e.used + int64(len(b.recs)) - e.capacity; over > 0 {
			k = int(min(over, int64(len(b.recs))))
		}
		if e.capBytes > 0 {
			for _, s := range sizes[:k] {
				total -= s
			}
			for k < len(b.recs) && e.usedBytes+total > e.capBytes {
				total -= sizes[k]
				k++
			}
		}
		clear(b.recs[:k])
		b.recs = b.recs[k:]
		dropped += int64(k)
	} else {
		keep := len(b.recs)
		if free := e.capacity - e.used; int64(keep) > free {
			keep = int(max(free, 0))
		}
		if e.capBytes > 0 {
			var sum int64
			for i := 0; i < keep; i++ {
				if e.usedBytes+sum+sizes[i] > e.capBytes {
					keep = i
					break
				}
				sum += sizes[i]
			}
			total = sum
		}
		dropped += int64(len(b.recs) - keep)
		clear(b.recs[keep:])
		b.recs = b.recs[:keep]
	}
	kept := int64(len(b.recs))
	if kept > 0 {
		e.used += kept
		if e.capBytes > 0 {
			e.usedBytes += total
			b.bytes = total
		}
		e.fill.Add(kept)
		if b.bytes != 0 {
			e.fillBytes.Add(b.bytes)
		}
		e.ex.addInFlight(kept, b.bytes)
		e.q = append(e.q, b)
	}
	wake := kept > 0 && e.consWaiting
	if wake {
		e.consWaiting = false
	}
	e.mu.Unlock()
	for _, hb := range evicted {
		e.ex.pool.put(hb)
	}
	if kept == 0 {
		e.ex.pool.put(b)
	}
	if dropped > 0 {
		total := e.dropped.Add(dropped)
		e.to.dropped.Add(dropped)
		e.dropWarn.Do(func() {
			e.from.log.Warn("lossy branch full: records dropped", "pipeline", e.ex.pipeline,
				"from", e.spec.From, "to", e.spec.To, "when_full", e.mode.String(), "dropped", dropped, "dropped_total", total)
		})
	}
	if wake {
		e.consumer.notify()
	}
	return int(dropped)
}
