package runtime

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultTapBuffer is the buffer of a tap when Execution.Tap is given none.
const DefaultTapBuffer = 64

// A Tap samples the records leaving one stage of a running execution, for
// a person watching it (the admin API's /api/v1/tap). It never slows the
// pipeline down: a stage offers a tap one record of each batch it sends on
// (the first; one per input batch between stages fused onto one
// goroutine), a copy, without waiting, and when the tap's buffer is full
// the sample is dropped and counted (Dropped, NodeStats.TapDropped). So a
// tap costs at most one record copy per batch however fast it is read, and
// an atomic load per batch while none is attached. At low rates, where
// batches hold a record or a few, it sees most records; at high rates one
// in a batch (up to 256).
//
// What leaves a stage is what it sends to the stages it feeds: a source's
// records, a processor's or a caller's results, a merge's records, a
// fanout's records once (on its first output in broadcast mode, on every
// output otherwise); for a sink, the records it wrote. Dead-lettered
// records are not tapped.
type Tap struct {
	n       *node
	ex      *Execution
	c       chan Record
	dropped atomic.Int64
	once    sync.Once
}

// tapSet is the immutable list of the taps of one node, replaced whole
// when a tap comes or goes.
type tapSet struct {
	taps []*Tap
}

// tapMu serializes the changes of every node's tap set.
var tapMu sync.Mutex

// Tap attaches a tap to the stage named stage, with a buffer of buffer
// records (DefaultTapBuffer when buffer <= 0). Read it with Records until
// you have enough or Done is closed, then Close it.
func (e *Execution) Tap(stage string, buffer int) (*Tap, error) {
	var n *node
	for _, c := range e.nodes {
		if c.spec.Name == stage {
			n = c
			break
		}
	}
	if n == nil {
		return nil, fmt.Errorf("pipeline %q has no stage %q", e.pipeline, stage)
	}
	if buffer <= 0 {
		buffer = DefaultTapBuffer
	}
	t := &Tap{n: n, ex: e, c: make(chan Record, buffer)}
	tapMu.Lock()
	defer tapMu.Unlock()
	var taps []*Tap
	if ts := n.tap.Load(); ts != nil {
		taps = slices.Clone(ts.taps)
	}
	n.tap.Store(&tapSet{taps: append(taps, t)})
	return t, nil
}

// Records returns the channel the sampled records arrive on, each a deep
// copy the reader owns. It is never closed: stop reading once Done is
// closed and the channel is empty.
func (t *Tap) Records() <-chan Record { return t.c }

// Done is closed once the execution has ended: no record arrives after.
func (t *Tap) Done() <-chan struct{} { return t.ex.done }

// Dropped returns the number of samples the tap missed because its buffer
// was full.
func (t *Tap) Dropped() int64 { return t.dropped.Load() }

// Close detaches the tap. The stage may still offer it the records of the
// batch under way.
func (t *Tap) Close() {
	t.once.Do(func() {
		tapMu.Lock()
		defer tapMu.Unlock()
		ts := t.n.tap.Load()
		if ts == nil {
			return
		}
		taps := slices.DeleteFunc(slices.Clone(ts.taps), func(o *Tap) bool { return o == t })
		if len(taps) == 0 {
			t.n.tap.Store(nil)
			return
		}
		t.n.tap.Store(&tapSet{taps: taps})
	})
}

// offer offers every tap of the set the first of recs, the batch's sample.
func (ts *tapSet) offer(recs []Record) {
	if len(recs) > 0 {
		ts.offerOne(recs[0])
	}
}

// offerOne offers every tap of the set a copy of r.
func (ts *tapSet) offerOne(r Record) {
	for _, t := range ts.taps {
		t.offerOne(r)
	}
}

// offerOne offers the tap a copy of r without waiting, and counts it as
// dropped when the buffer is full.
func (t *Tap) offerOne(r Record) {
	if len(t.c) < cap(t.c) {
		select {
		case t.c <- copyRecord(r):
			return
		default:
		}
	}
	t.dropped.Add(1)
	t.n.tapDropped.Add(1)
}
