package source

import (
	"context"
	"sync"
	"time"

	"github.com/flowrun/flowrun/operators/codec"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

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
// records read at now, and returns the emit that hands the lines it could
// not decode to the on_error policy, in order, and then the records to the
// pipeline, with done.
func (s *stream) decode(ctx context.Context, out flowruntime.Emitter, raw *rawLines, now time.Time, done func()) (emit func() error) {
	dec := s.decoders.Get().(*codec.Decoder)
	defer s.decoders.Put(dec)
	recs := getRecords(len(raw.lines))
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
		*recs = append(*recs, flowruntime.Record{
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
		defer putRecords(recs)
		if len(*recs) == 0 {
			done()
			return nil
		}
		if err := out.Emit(ctx, *recs, done); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		return nil
	}
}
