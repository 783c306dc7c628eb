package source

import (
	"context"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"time"

	concstream "github.com/sourcegraph/conc/stream"

	"github.com/flowrun/flowrun/operators/codec"
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

// rawLines is a batch of JSON lines read but not decoded yet: their bytes
// back to back in buf, with where each ends and where it was read.
type rawLines struct {
	buf   []byte
	lines []rawLine
}

type rawLine struct {
	end  int
	off  int64
	file string
}

var rawPool = sync.Pool{New: func() any {
	return &rawLines{buf: make([]byte, 0, 64*batchSize), lines: make([]rawLine, 0, batchSize)}
}}

func newRawLines() *rawLines {
	l := rawPool.Get().(*rawLines)
	l.buf, l.lines = l.buf[:0], l.lines[:0]
	return l
}

// add copies line, read at off in file, into the batch.
func (l *rawLines) add(line []byte, off int64, file string) {
	l.buf = append(l.buf, line...)
	l.lines = append(l.lines, rawLine{end: len(l.buf), off: off, file: file})
}

// line returns the bytes of line i.
func (l *rawLines) line(i int) []byte {
	start := 0
	if i > 0 {
		start = l.lines[i-1].end
	}
	return l.buf[start:l.lines[i].end]
}

// decode runs on a decoding worker: it decodes the lines of raw into
// records read at now, after those of batch, and returns the emit that
// hands the lines it could not decode to the on_error policy, in order,
// and then the records to the pipeline, with done.
func (s *stream) decode(ctx context.Context, out flowruntime.Emitter, raw *rawLines, batch []flowruntime.Record, now time.Time, done func()) (emit func() error) {
	dec := s.decoders.Get().(*codec.Decoder)
	defer s.decoders.Put(dec)
	recs := make([]flowruntime.Record, len(batch), len(batch)+len(raw.lines))
	copy(recs, batch)
	type failure struct {
		line int
		err  error
	}
	var failed []failure
	for i, l := range raw.lines {
		m, err := dec.DecodeObject(raw.line(i))
		if err != nil {
			failed = append(failed, failure{i, err})
			continue
		}
		recs = append(recs, flowruntime.Record{
			Fields: m,
			Meta:   flowruntime.Meta{Source: s.stage, Position: l.off, File: l.file, Time: now},
		})
	}
	return func() error {
		defer rawPool.Put(raw)
		for _, f := range failed {
			l := raw.lines[f.line]
			if err := s.reject(ctx, out, l.file, raw.line(f.line), l.off, f.err); err != nil {
				return err
			}
		}
		if len(recs) == 0 {
			done()
			return nil
		}
		if err := out.Emit(ctx, recs, done); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		return nil
	}
}
