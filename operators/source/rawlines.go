package source

import (
	"context"
	"errors"
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
	end int
	// off and num are the line's offset and number (0 if not known).
	off, num int64
	// long is the real length of a line over max_line_bytes, whose head
	// only is kept; 0 for every other line.
	long int64
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

// add copies line, read at off in file on line num, into the batch; long is
// the real length of a line over max_line_bytes, of which line is the head.
func (l *rawLines) add(line []byte, off, num, long int64, file string) {
	l.buf = append(l.buf, line...)
	l.lines = append(l.lines, rawLine{end: len(l.buf), off: off, num: num, long: long, file: file})
}

// line returns the bytes of line i.
func (l *rawLines) line(i int) []byte {
	start := 0
	if i > 0 {
		start = l.lines[i-1].end
	}
	return l.buf[start:l.lines[i].end]
}

// decode runs on a decoding worker: it decodes the lines of raw, read from
// spans, into records read at now, and returns the emit that hands the
// lines it could not decode to the on_error policy, in order, and then the
// records to the pipeline, acknowledged up to the end of every span. When
// the policy stops the source at a line, the records before it are emitted,
// acknowledged up to the start of that line and no further, and the emit
// returns the policy's error.
func (s *stream) decode(ctx context.Context, out flowruntime.Emitter, raw *rawLines, now time.Time, spans []span) (emit func() error) {
	dec := s.decoders.Get().(*codec.Decoder)
	defer s.decoders.Put(dec)
	recs := getRecords(len(raw.lines))
	// A failure is the line at index line, after the first before records
	// of the batch.
	type failure struct {
		line, before int
		err          error
	}
	var failed []failure
	for i, l := range raw.lines {
		if l.long > 0 {
			failed = append(failed, failure{i, len(*recs), &codec.LineTooLongError{Length: l.long, Max: s.maxLine}})
			continue
		}
		m, err := dec.DecodeObject(raw.line(i))
		if err != nil {
			failed = append(failed, failure{i, len(*recs), err})
			continue
		}
		*recs = append(*recs, flowruntime.Record{
			Fields: m,
			Meta:   flowruntime.Meta{Source: s.stage, Position: l.off, File: l.file, Time: now},
		})
	}
	// send emits the first n records, finished with done.
	send := func(n int, done func()) error {
		if n == 0 {
			done()
			return nil
		}
		if err := out.Emit(ctx, (*recs)[:n], done); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
		return nil
	}
	return func() error {
		defer rawPool.Put(raw)
		defer putRecords(recs)
		for _, f := range failed {
			l := raw.lines[f.line]
			err := s.reject(ctx, out, l.file, raw.line(f.line), l.off, l.num, f.err, l.long)
			if err == nil {
				continue
			}
			if errors.Is(err, errStopped) {
				return err
			}
			if serr := send(f.before, ack(spans, f.line, l.off)); serr != nil {
				return serr
			}
			return err
		}
		return send(len(*recs), ack(spans, len(raw.lines), 0))
	}
}
