package source

import (
	"context"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	concstream "github.com/sourcegraph/conc/stream"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// ordered builds batches on every core and hands them on in the order they
// were started: a source's expensive per-record work (decoding, evaluating a
// template) runs in parallel while its output stays in input order, so
// checkpoints and the order of records are those of a sequential source.
// The batches in flight are bounded (about two per core).
type ordered struct {
	ctx   context.Context
	tasks *concstream.Stream
	// err is the failed emit's error, set before failed.
	err    error
	failed atomic.Bool
}

func newOrdered(ctx context.Context) *ordered {
	return &ordered{ctx: ctx, tasks: concstream.New().WithMaxGoroutines(goruntime.GOMAXPROCS(0))}
}

// Go runs build on a worker; the emit function it returns is called on one
// goroutine, after those of every earlier Go. Once an emit has failed the
// later ones are not called, and Go returns false: the source should stop.
func (o *ordered) Go(build func() (emit func() error)) bool {
	if o.failed.Load() {
		return false
	}
	o.tasks.Go(func() concstream.Callback {
		emit := build()
		return func() {
			if o.failed.Load() || o.ctx.Err() != nil {
				return
			}
			if err := emit(); err != nil {
				o.err = err
				o.failed.Store(true)
			}
		}
	})
	return true
}

// Wait waits for every batch started to be emitted and returns the first
// emit's error.
func (o *ordered) Wait() error {
	o.tasks.Wait()
	return o.err
}

// recordSlices recycles the batches the parallel sources build: Emit copies
// the records out before it returns, so a batch is free again after it.
var recordSlices = sync.Pool{New: func() any {
	s := make([]flowruntime.Record, 0, batchSize)
	return &s
}}

// getRecords returns an empty batch with room for n records.
func getRecords(n int) *[]flowruntime.Record {
	p := recordSlices.Get().(*[]flowruntime.Record)
	if cap(*p) < n {
		*p = make([]flowruntime.Record, 0, n)
	}
	return p
}

// putRecords recycles a batch, first dropping its records so that a pooled
// batch keeps none of them alive.
func putRecords(p *[]flowruntime.Record) {
	clear(*p)
	*p = (*p)[:0]
	recordSlices.Put(p)
}
