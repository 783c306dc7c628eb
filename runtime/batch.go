package runtime

import (
	"sync"
	"sync/atomic"
)

// ack is one acknowledgement unit: the records of one Emit call. Every batch
// holding records derived from it holds one reference.
type ack struct {
	refs atomic.Int64
	done func()
	live *atomic.Int64 // the execution's count of unfinished units
}

// release drops a reference; the last one finishes the unit: done runs
// before the unit stops counting as unfinished, so that whoever sees no
// unfinished unit (a snapshot) also sees what done recorded.
func (a *ack) release() {
	if a.refs.Add(-1) == 0 {
		a.done()
		a.live.Add(-1)
	}
}

// batch is the unit that moves on edges. It holds one reference on each
// entry of acks, and bytes is what it was charged on its edge's byte limit.
type batch struct {
	recs  []Record
	acks  []*ack
	bytes int64
	// mark, when set, makes the batch a snapshot's marker (no records);
	// markers are not recycled.
	mark *mark
}

// addAcks takes a reference on each of acks for b. A unit equal to b's last
// one is not added again: b already holds it.
func (b *batch) addAcks(acks []*ack) {
	for _, a := range acks {
		if n := len(b.acks); n > 0 && b.acks[n-1] == a {
			continue
		}
		a.refs.Add(1)
		b.acks = append(b.acks, a)
	}
}

// releaseAcks drops b's references.
func (b *batch) releaseAcks() {
	for i, a := range b.acks {
		a.release()
		b.acks[i] = nil
	}
	b.acks = b.acks[:0]
}

// batchPool recycles batches and their record slices.
type batchPool struct {
	size int
	p    sync.Pool
}

func newBatchPool(size int) *batchPool {
	bp := &batchPool{size: size}
	bp.p.New = func() any { return &batch{recs: make([]Record, 0, size)} }
	return bp
}

func (bp *batchPool) get() *batch {
	b := bp.p.Get().(*batch)
	if b.recs == nil {
		b.recs = make([]Record, 0, bp.size)
	}
	return b
}

// put releases b's acknowledgements and recycles it. Record slices smaller
// than the batch size (sources' own slices) are not kept.
func (bp *batchPool) put(b *batch) {
	b.releaseAcks()
	if cap(b.recs) >= bp.size {
		clear(b.recs)
		b.recs = b.recs[:0]
	} else {
		b.recs = nil
	}
	b.bytes = 0
	bp.p.Put(b)
}
