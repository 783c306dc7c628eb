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
// pipeline down: the stage offers a copy of each record it sends on to the
// tap's buffer without waiting, and when the buffer is full the record is
// not sampled and only counted (Dropped, NodeStats.TapDropped). The hook is
// checked once per batch (once per record between stages fused onto one
// goroutine) and costs an atomic load while no tap is attached.
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

// Dropped returns the number of records the tap did not sample because its
// buffer was full.
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

// offer gives every tap of the set a copy of each of recs, as far as their
// buffers have room.
func (ts *tapSet) offer(recs []Record) {
	for _, t := range ts.taps {
		for i := range recs {
			if !t.offerOne(recs[i]) {
				t.drop(int64(len(recs) - i - 1))
				break
			}
		}
	}
}

// offerOne gives every tap of the set a copy of r, as far as their buffers
// have room.
func (ts *tapSet) offerOne(r Record) {
	for _, t := range ts.taps {
		t.offerOne(r)
	}
}

// offerOne offers the tap a copy of r without waiting; it reports false,
// counting r as dropped, when the buffer is full.
func (t *Tap) offerOne(r Record) bool {
	if len(t.c) < cap(t.c) {
		select {
		case t.c <- copyRecord(r):
			return true
		default:
		}
	}
	t.drop(1)
	return false
}

func (t *Tap) drop(n int64) {
	if n > 0 {
		t.dropped.Add(n)
		t.n.tapDropped.Add(n)
	}
}
