package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every source kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{generateKind, fileKind, stdinKind}
}

// codecOptions are the options of sources that decode a byte stream.
func codecOptions() []planner.OptionSpec {
	return []planner.OptionSpec{
		{Name: "codec", Type: planner.Enum, Enum: []string{"lines", "json", "csv"}, Default: "lines",
			Doc: "How the input is decoded: lines gives {line: \"...\"}, json one object per line, csv one object of strings per row keyed by the header row."},
		{Name: "delimiter", Type: planner.String, Default: ",",
			Doc: "The field separator of the csv codec, one character."},
		{Name: "max_line_bytes", Type: planner.Int, Default: int64(1 << 20),
			Doc: "The longest line accepted, in bytes; a longer line is an error at its offset."},
	}
}

// batchSize is how many records a source hands to Emit at once at most.
const batchSize = 256

// stream is the decoding half shared by the sources that read bytes: it
// turns lines into records and hands them on in batches.
type stream struct {
	stage   string
	codec   string
	delim   byte
	maxLine int
	clock   flowruntime.Clock
	log     hclog.Logger
	// positions records how far each input is finished.
	positions *positions
	// parallel, set while a source that decodes JSON on every core runs,
	// decodes and emits the batches; nil decodes each line as it is read.
	parallel *ordered
	// decoders holds the *codec.Decoder of each decoding worker.
	decoders *sync.Pool
}

// checkCodec checks the codec options.
func checkCodec(p *operators.Problems, o planner.Options) {
	if d := o.String("delimiter"); len(d) != 1 || d == "\"" || d == "\n" || d == "\r" {
		p.Add("delimiter", "the delimiter must be one ASCII character other than a quote or a line break, not %q", d)
	}
	p.Min(o, "max_line_bytes", 1)
}

func newStream(st *planner.Stage, env operators.BuildEnv) stream {
	s := stream{
		stage:   st.Name,
		codec:   st.Options.String("codec"),
		delim:   ',',
		maxLine: int(st.Options.Int("max_line_bytes")),
		clock:   env.Clock,
		log:     env.Logger,

		positions: &positions{},
		decoders:  &sync.Pool{New: func() any { return new(codec.Decoder) }},
	}
	if s.codec == "" {
		s.codec = "lines"
	}
	if d := st.Options.String("delimiter"); d != "" {
		s.delim = d[0]
	}
	return s
}

// reader is the state of reading one input.
type reader struct {
	*stream
	file  string
	lines *codec.LineReader
	dec   codec.Decoder
	// header holds the csv field names once read; row and pending are
	// scratch for csv rows.
	header  []string
	row     []string
	pending []byte
	pendOff int64
	batch   []flowruntime.Record
	// raw holds the JSON lines of the pending batch not yet decoded, when
	// the stream decodes in parallel; batch is then always empty.
	raw *rawLines
	// now is the read time of the records of the pending batch.
	now time.Time
	// ctx and out are those of the pump that reads, for rejected lines.
	ctx context.Context
	out flowruntime.Emitter
	// done tracks how far this input is finished; carried finishes the
	// part of the pending batch read from the previous input.
	done    *flowruntime.Checkpoint
	carried func()
}

func (s *stream) newReader(r io.Reader, file string, offset int64) *reader {
	return &reader{
		stream: s,
		file:   file,
		lines:  codec.NewLineReader(r, offset, s.maxLine),
		done:   s.positions.track(file, offset),
	}
}

// carryFrom takes over prev's pending batch, so that batches stay full
// across the end of one input and the start of the next.
func (r *reader) carryFrom(prev *reader) {
	r.batch, r.raw, r.now = prev.batch, prev.raw, prev.now
	prev.batch, prev.raw = nil, nil
	if r.pendingLen() > 0 {
		r.carried = prev.done.Track(prev.lines.Offset())
	}
}

// readPosition is the offset before which every line is in an emitted or
// pending batch: a csv record still open across lines is not.
func (r *reader) readPosition() int64 {
	if r.pending != nil {
		return r.pendOff
	}
	return r.lines.Offset()
}

// utf8BOM is the byte order mark some editors put at the start of a file.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// errStopped means the context ended: the source stops quietly.
var errStopped = errors.New("stopped")

// pendingLen is the number of lines in the pending batch.
func (r *reader) pendingLen() int {
	n := len(r.batch)
	if r.raw != nil {
		n += len(r.raw.lines)
	}
	return n
}

// flush emits the pending batch, or hands it to the decoding workers.
func (r *reader) flush(ctx context.Context, out flowruntime.Emitter) error {
	if r.pendingLen() == 0 {
		return nil
	}
	b, raw := r.batch, r.raw
	r.batch, r.raw = nil, nil
	done := r.done.Track(r.readPosition())
	if carried := r.carried; carried != nil {
		r.carried = nil
		own := done
		done = func() { carried(); own() }
	}
	if raw != nil {
		now := r.now
		if !r.parallel.Go(func() func() error { return r.stream.decode(ctx, out, raw, now, done) }) {
			return errStopped
		}
		return nil
	}
	if err := out.Emit(ctx, b, done); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	return nil
}

// pump reads and emits whole lines until the input has none left (io.EOF,
// with the batch still pending) or fails. The batch is emitted when full and
// before a read that may wait.
func (r *reader) pump(ctx context.Context, out flowruntime.Emitter) error {
	r.ctx, r.out = ctx, out
	for {
		if ctx.Err() != nil {
			return errStopped
		}
		if n := r.pendingLen(); n >= batchSize || (n > 0 && !r.lines.Buffered()) {
			if err := r.flush(ctx, out); err != nil {
				return err
			}
		}
		line, off, err := r.lines.Next()
		if err != nil {
			if errors.Is(err, codec.ErrLineTooLong) {
				return where(r.file, off, err)
			}
			return err
		}
		if err := r.line(line, off); err != nil {
			return err
		}
	}
}

// finish decodes an unterminated last line at the end of the input.
func (r *reader) finish() error {
	if line, off, ok := r.lines.Rest(); ok {
		if err := r.line(line, off); err != nil {
			return err
		}
	}
	if r.pending != nil {
		return r.bad(r.pending, r.pendOff, codec.ErrOpenQuote)
	}
	return nil
}

// where places err at byte off of file.
func where(file string, off int64, err error) error {
	if file != "" {
		return fmt.Errorf("%s: byte %d: %w", file, off, err)
	}
	return fmt.Errorf("byte %d: %w", off, err)
}

// bad hands a line that cannot be decoded to the source's on_error policy
// (runtime.Reject), as a record {line: "..."}: skip counts it, dead_letter
// sends it on with the error, stop fails the source.
func (r *reader) bad(line []byte, off int64, err error) error {
	return r.reject(r.ctx, r.out, r.file, line, off, err)
}

// reject hands line, at off in file, to the source's on_error policy.
func (s *stream) reject(ctx context.Context, out flowruntime.Emitter, file string, line []byte, off int64, err error) error {
	err = where(file, off, err)
	rec := flowruntime.Record{
		Fields: map[string]any{"line": string(line)},
		Meta:   flowruntime.Meta{Source: s.stage, Position: off, File: file, Time: s.clock.Now()},
	}
	if err := flowruntime.Reject(ctx, out, rec, err); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	return nil
}

func (r *reader) line(line []byte, off int64) error {
	if off == 0 {
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	var fields map[string]any
	switch r.codec {
	case "lines":
		fields = map[string]any{"line": string(line)}
	case "json":
		if len(trimSpace(line)) == 0 {
			return nil
		}
		if r.parallel != nil {
			if r.pendingLen() == 0 {
				r.now = r.clock.Now()
			}
			if r.raw == nil {
				r.raw = newRawLines()
			}
			r.raw.add(line, off, r.file)
			return nil
		}
		m, err := r.dec.DecodeObject(line)
		if err != nil {
			return r.bad(line, off, err)
		}
		fields = m
	case "csv":
		if r.pending != nil {
			r.pending = append(append(r.pending, '\n'), line...)
			line, off = r.pending, r.pendOff
		} else if len(line) == 0 {
			return nil
		}
		row, err := codec.SplitCSV(r.row[:0], line, r.delim)
		if errors.Is(err, codec.ErrOpenQuote) {
			if r.pending == nil {
				r.pending, r.pendOff = append([]byte(nil), line...), off
			}
			return nil
		}
		r.pending = nil
		r.row = row
		if r.header == nil {
			r.header = append([]string(nil), row...)
			return nil
		}
		fields = make(map[string]any, len(r.header))
		for i, v := range row {
			if i < len(r.header) {
				fields[r.header[i]] = v
			} else {
				fields[fmt.Sprintf("column_%d", i+1)] = v
			}
		}
	default:
		return fmt.Errorf("unknown codec %q", r.codec)
	}
	if r.pendingLen() == 0 {
		r.now = r.clock.Now()
	}
	r.batch = append(r.batch, flowruntime.Record{
		Fields: fields,
		Meta:   flowruntime.Meta{Source: r.stage, Position: off, File: r.file, Time: r.now},
	})
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
