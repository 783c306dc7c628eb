package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

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
			Doc: "The longest line accepted, in bytes; a longer line is input the source cannot decode, like a malformed one: skipped, dead-lettered cut to this length (with length, its real length), or failing the run, as on_error says. It is never held in memory whole."},
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
	// lineNo is the number of the next line (1 for the first), or 0 when
	// reading did not start at the beginning of the input and the number is
	// not known.
	lineNo int64
	dec    codec.Decoder
	// header holds the csv field names once read, from a line that ended
	// at headerEnd (0 when given, not read); row and pending are scratch
	// for csv rows: pending is a record whose quoted field is still open at
	// the end of a line, read at pendOff, on line pendLine.
	header    []string
	headerEnd int64
	row       []string
	pending   []byte
	pendOff   int64
	pendLine  int64
	batch     []flowruntime.Record
	// raw holds the JSON lines of the pending batch not yet decoded, when
	// the stream decodes in parallel; batch is then always empty.
	raw *rawLines
	// now is the read time of the records of the pending batch.
	now time.Time
	// ctx and out are those of the pump that reads, for rejected lines.
	ctx context.Context
	out flowruntime.Emitter
	// done tracks how far this input is finished; carried holds the
	// parts of the pending batch read from earlier inputs.
	done    *flowruntime.Checkpoint
	carried []span
}

// A span is the part of a batch read from one input: the batch's lines
// before lines (from its first), less those of the spans before it. It ends
// at end on the input that done tracks.
type span struct {
	done  *flowruntime.Checkpoint
	end   int64
	lines int
}

// ack tracks the first cut lines of a batch made of spans, and returns the
// done callback that marks them finished: each input whose part of the
// batch ends by the cut is finished up to its end, the input of the line at
// the cut (when cut is inside the batch) up to at, that line's offset, and
// no input after it. A source stopped at a line acknowledges exactly what
// it emitted before it.
func ack(spans []span, cut int, at int64) (done func()) {
	dones := make([]func(), 0, len(spans))
	for _, sp := range spans {
		if sp.lines > cut {
			dones = append(dones, sp.done.Track(at))
			break
		}
		dones = append(dones, sp.done.Track(sp.end))
	}
	if len(dones) == 1 {
		return dones[0]
	}
	return func() {
		for _, d := range dones {
			d()
		}
	}
}

// newReader reads the input r, named file, from offset; done tracks how
// far it is finished.
func (s *stream) newReader(r io.Reader, file string, offset int64, done *flowruntime.Checkpoint) *reader {
	rd := &reader{
		stream: s,
		file:   file,
		lines:  codec.NewLineReader(r, offset, s.maxLine),
		done:   done,
	}
	if offset == 0 {
		rd.lineNo = 1
	}
	return rd
}

// next returns the number of the line just read, or 0 when not known.
func (r *reader) next() int64 {
	n := r.lineNo
	if n > 0 {
		r.lineNo++
	}
	return n
}

// carryFrom takes over prev's pending batch, so that batches stay full
// across the end of one input and the start of the next.
func (r *reader) carryFrom(prev *reader) {
	r.batch, r.raw, r.now = prev.batch, prev.raw, prev.now
	if n := prev.pendingLen(); n > 0 {
		r.carried = append(prev.carried, span{done: prev.done, end: prev.lines.Offset(), lines: n})
	}
	prev.batch, prev.raw, prev.carried = nil, nil, nil
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
	return r.flushTo(ctx, out, r.readPosition())
}

// flushTo is flush for a batch that ends at offset end.
func (r *reader) flushTo(ctx context.Context, out flowruntime.Emitter, end int64) error {
	n := r.pendingLen()
	if n == 0 {
		return nil
	}
	b, raw := r.batch, r.raw
	spans := append(r.carried, span{done: r.done, end: end, lines: n})
	r.batch, r.raw, r.carried = nil, nil, nil
	if raw != nil {
		// Decoded lines are tracked as they are emitted, in order, up to
		// the first one the policy stops the source at.
		now := r.now
		if !r.parallel.Go(func() func() error { return r.stream.decode(ctx, out, raw, now, spans) }) {
			return errStopped
		}
		return nil
	}
	if err := out.Emit(ctx, b, ack(spans, n, 0)); err != nil {
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
		if err := r.take(line, off, err); err != nil {
			return err
		}
	}
}

// take handles what the line reader returned: a line, a line over
// max_line_bytes (its head and a *codec.LineTooLongError), which is input
// the source cannot decode, or the end of the input or a read error, which
// it returns.
func (r *reader) take(line []byte, off int64, err error) error {
	if err == nil {
		return r.line(line, off, r.next())
	}
	var long *codec.LineTooLongError
	if !errors.As(err, &long) {
		return err
	}
	num := r.next()
	if r.pending != nil {
		// The open csv record would only grow past the limit too.
		if err := r.bad(r.pending, r.pendOff, r.pendLine, codec.ErrOpenQuote, 0); err != nil {
			return err
		}
		r.pending = nil
	}
	if r.parallel != nil && r.codec == "json" {
		// In line, so that the decoding workers reject it in its turn.
		r.queue(line, off, num, long.Length)
		return nil
	}
	return r.bad(line, off, num, long, long.Length)
}

// finish decodes an unterminated last line at the end of the input.
func (r *reader) finish() error {
	if line, off, err := r.lines.Rest(); !errors.Is(err, io.EOF) {
		if err := r.take(line, off, err); err != nil {
			return err
		}
	}
	if r.pending != nil {
		pending := r.pending
		r.pending = nil
		return r.bad(pending, r.pendOff, r.pendLine, codec.ErrOpenQuote, 0)
	}
	return nil
}

// where places err at line num of file ("stdin" for standard input), or at
// byte off when the line's number is not known.
func where(file string, off, num int64, err error) error {
	if file == "" {
		file = "stdin"
	}
	if num > 0 {
		return fmt.Errorf("%s:%d: %w", file, num, err)
	}
	return fmt.Errorf("%s: byte %d: %w", file, off, err)
}

// bad hands a line that cannot be decoded to the source's on_error policy
// (see reject). When the policy stops the source, the records read before
// the line are emitted first, so that every good record before it is
// written before the run fails.
func (r *reader) bad(line []byte, off, num int64, err error, length int64) error {
	err = r.reject(r.ctx, r.out, r.file, line, off, num, err, length)
	if err == nil || errors.Is(err, errStopped) {
		return err
	}
	if ferr := r.flushTo(r.ctx, r.out, off); ferr != nil {
		return ferr
	}
	return err
}

// reject hands line, at off in file and on line num of it (0 if not known),
// to the source's on_error policy (runtime.Reject) as the record {line,
// file, line_number}, with length, the line's real length, when line is
// only the head of a line over max_line_bytes: skip counts it, dead_letter
// sends it on with the error, stop returns the error that fails the source,
// naming file:num (or the byte offset).
func (s *stream) reject(ctx context.Context, out flowruntime.Emitter, file string, line []byte, off, num int64, err error, length int64) error {
	err = where(file, off, num, err)
	name := file
	if name == "" {
		name = "stdin"
	}
	fields := map[string]any{"line": string(line), "file": name}
	if num > 0 {
		fields["line_number"] = num
	}
	if length > 0 {
		fields["line"] = string(cutRune(line))
		fields["length"] = length
	}
	rec := flowruntime.Record{
		Fields: fields,
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

// cutRune drops an incomplete UTF-8 sequence from the end of b, the head of
// a line cut at max_line_bytes.
func cutRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// queue adds a JSON line, or the head of one over max_line_bytes (length
// its real length), to the pending batch of a stream that decodes in
// parallel.
func (r *reader) queue(line []byte, off, num, length int64) {
	if r.pendingLen() == 0 {
		r.now = r.clock.Now()
	}
	if r.raw == nil {
		r.raw = newRawLines()
	}
	r.raw.add(line, off, num, length, r.file)
}

func (r *reader) line(line []byte, off, num int64) error {
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
			r.queue(line, off, num, 0)
			return nil
		}
		m, err := r.dec.DecodeObject(line)
		if err != nil {
			return r.bad(line, off, num, err, 0)
		}
		fields = m
	case "csv":
		if r.pending != nil {
			if len(r.pending)+1+len(line) > r.maxLine {
				// A quoted field open past max_line_bytes: the record is
				// rejected, and this line starts the next one.
				pending := r.pending
				r.pending = nil
				if err := r.bad(pending, r.pendOff, r.pendLine, codec.ErrOpenQuote, 0); err != nil {
					return err
				}
				return r.line(line, off, num)
			}
			r.pending = append(append(r.pending, '\n'), line...)
			line, off, num = r.pending, r.pendOff, r.pendLine
		} else if len(line) == 0 {
			return nil
		}
		row, err := codec.SplitCSV(r.row[:0], line, r.delim)
		if errors.Is(err, codec.ErrOpenQuote) {
			if r.pending == nil {
				r.pending, r.pendOff, r.pendLine = append([]byte(nil), line...), off, num
			}
			return nil
		}
		r.pending = nil
		r.row = row
		if r.header == nil {
			r.header, r.headerEnd = append([]string(nil), row...), r.lines.Offset()
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
