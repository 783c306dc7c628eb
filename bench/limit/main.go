// Command limit runs each benchmark workload as a hand-written Go program:
// the ceiling flowrun aims at. It keeps flowrun's data model (every record
// is a map[string]any, integers int64) and uses the same JSON codec
// (operators/codec), so the gap to flowrun is the engine's own cost:
// planning, edges, expression VMs, acknowledgements and hand-offs. Work is
// split into batches of 256 records over one worker per core.
//
//	limit w1 [-count N]                  generate -> filter -> map -> discard
//	limit w2 -in F -out F                JSONL -> filter -> map -> JSONL
//	limit w3 -in F -out F -batches F     w2 + a second file of 256-record batches
//	limit w4 -in F                       CSV -> count per level -> stdout
//
// w1, w2 and w3 print the number of records written to stderr as
// "records_out=N". The garbage collector is tuned as in `flowrun run`
// (runtime/heap, the same heap target), so that the gap to flowrun is not
// a GC setting.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/runtime/heap"
)

// batchSize is the number of records or lines handed to a worker at once.
const batchSize = 256

func main() {
	heap.Tune(heap.DefaultTargetMiB)
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "limit:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: limit w1|w2|w3|w4 [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	count := fs.Int64("count", 5_000_000, "w1: records to generate")
	in := fs.String("in", "", "w2, w3, w4: the input file")
	out := fs.String("out", "", "w2, w3: the output file")
	batches := fs.String("batches", "", "w3: the file of batches")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "w1":
		n := w1(*count)
		fmt.Fprintf(stderr, "records_out=%d\n", n)
		return nil
	case "w2", "w3":
		if args[0] == "w2" {
			*batches = ""
		} else if *batches == "" {
			return errors.New("w3 needs -batches")
		}
		n, err := w23(*in, *out, *batches)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "records_out=%d\n", n)
		return nil
	case "w4":
		return w4(*in, stdout)
	default:
		return fmt.Errorf("unknown workload %q", args[0])
	}
}

// w1 generates count records {id, level, msg}, keeps those whose level is
// ERROR, upper-cases their msg and drops them. One worker per core takes
// the next 256 sequence numbers in turn, builds their records into a batch,
// filters and maps the batch in place and hands what is left to the sink.
// The records live on the heap, as records handed between stages must. It
// returns the records kept.
func w1(count int64) int64 {
	var next, kept atomic.Int64
	var wg sync.WaitGroup
	for range goruntime.GOMAXPROCS(0) {
		wg.Go(func() {
			batch := make([]map[string]any, 0, batchSize)
			var n int64
			for {
				start := next.Add(batchSize) - batchSize
				if start >= count {
					break
				}
				end := min(start+batchSize, count)
				batch = batch[:0]
				for seq := start; seq < end; seq++ {
					level := "INFO"
					if seq%5 == 0 {
						level = "ERROR"
					}
					batch = append(batch, map[string]any{"id": seq, "level": level, "msg": "hello world"})
				}
				keep := batch[:0]
				for _, rec := range batch {
					if rec["level"] != "ERROR" {
						continue
					}
					if s, ok := rec["msg"].(string); ok {
						rec["msg"] = strings.ToUpper(s)
					}
					keep = append(keep, rec)
				}
				discard(keep)
				n += int64(len(keep))
			}
			kept.Add(n)
		})
	}
	wg.Wait()
	return kept.Load()
}

// discard is the sink of w1. Called through a variable, it keeps the
// compiler from proving that records never leave their loop.
var discard = func(recs []map[string]any) {
	if len(recs) > 0 && len(recs[0]) == 0 {
		panic("an empty record")
	}
}

// chunk is a batch of input lines on its way through a worker: lines holds
// their bytes back to back, ends where each stops; the worker fills out with
// the encoded records kept, one line each, and outEnds with where each ends.
type chunk struct {
	lines   []byte
	ends    []int
	out     []byte
	outEnds []int
	err     error
	done    chan struct{}
}

var chunkPool = sync.Pool{New: func() any {
	return &chunk{
		lines:   make([]byte, 0, 64*batchSize),
		ends:    make([]int, 0, batchSize),
		out:     make([]byte, 0, 64*batchSize),
		outEnds: make([]int, 0, batchSize),
		done:    make(chan struct{}, 1),
	}
}}

// w23 is W2 (and W3 when batches is set): a reader cuts the input into
// chunks of 256 lines, one worker per core decodes, filters, maps and
// encodes each chunk, and the writer writes the chunks in input order to out
// and, for W3, groups the records into batches of 256 written to batches as
// {"count":n,"records":[...]}. It returns the records written to out.
func w23(in, out, batches string) (int64, error) {
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	o, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(o, 256<<10)
	var bw *bufio.Writer
	if batches != "" {
		bo, err := os.Create(batches)
		if err != nil {
			return 0, err
		}
		defer bo.Close()
		bw = bufio.NewWriterSize(bo, 256<<10)
	}

	workers := goruntime.GOMAXPROCS(0)
	work := make(chan *chunk, 2*workers)
	order := make(chan *chunk, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var dec codec.Decoder
			var enc codec.Encoder
			for c := range work {
				c.err = process(c, &dec, &enc)
				c.done <- struct{}{}
			}
		})
	}

	readErr := make(chan error, 1)
	go func() {
		defer close(order)
		defer close(work)
		readErr <- readChunks(f, func(c *chunk) {
			order <- c
			work <- c
		})
	}()

	var n int64
	var b batcher
	var werr error
	for c := range order {
		<-c.done
		if werr == nil && c.err != nil {
			werr = c.err
		}
		if werr == nil {
			if _, err := w.Write(c.out); err != nil {
				werr = err
			}
			n += int64(len(c.outEnds))
			if bw != nil {
				werr = b.add(bw, c)
			}
		}
		chunkPool.Put(c)
	}
	wg.Wait()
	if err := <-readErr; err != nil {
		return n, err
	}
	if werr != nil {
		return n, werr
	}
	if bw != nil {
		if err := b.flush(bw); err != nil {
			return n, err
		}
		if err := bw.Flush(); err != nil {
			return n, err
		}
	}
	if err := w.Flush(); err != nil {
		return n, err
	}
	return n, o.Close()
}

// readChunks reads r line by line into chunks of batchSize lines and hands
// each full chunk, and the last one, to emit.
func readChunks(r io.Reader, emit func(*chunk)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 1<<20)
	c := newChunk()
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		c.lines = append(c.lines, line...)
		c.ends = append(c.ends, len(c.lines))
		if len(c.ends) == batchSize {
			emit(c)
			c = newChunk()
		}
	}
	if len(c.ends) > 0 {
		emit(c)
	}
	return sc.Err()
}

func newChunk() *chunk {
	c := chunkPool.Get().(*chunk)
	c.lines, c.ends, c.out, c.outEnds, c.err = c.lines[:0], c.ends[:0], c.out[:0], c.outEnds[:0], nil
	return c
}

// process decodes each line of c into a record, keeps those whose level is
// ERROR, upper-cases their msg and encodes them into c.out.
func process(c *chunk, dec *codec.Decoder, enc *codec.Encoder) error {
	start := 0
	for _, end := range c.ends {
		rec, err := dec.DecodeObject(c.lines[start:end])
		start = end
		if err != nil {
			return err
		}
		if rec["level"] != "ERROR" {
			continue
		}
		if s, ok := rec["msg"].(string); ok {
			rec["msg"] = strings.ToUpper(s)
		}
		if c.out, err = enc.AppendObject(c.out, rec); err != nil {
			return err
		}
		c.out = append(c.out, '\n')
		c.outEnds = append(c.outEnds, len(c.out))
	}
	return nil
}

// batcher groups encoded records into lines {"count":n,"records":[...]} of
// batchSize records.
type batcher struct {
	buf []byte
	n   int
}

func (b *batcher) add(w *bufio.Writer, c *chunk) error {
	start := 0
	for _, end := range c.outEnds {
		rec := c.out[start : end-1] // without the newline
		start = end
		if b.n > 0 {
			b.buf = append(b.buf, ',')
		}
		b.buf = append(b.buf, rec...)
		b.n++
		if b.n == batchSize {
			if err := b.flush(w); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *batcher) flush(w *bufio.Writer) error {
	if b.n == 0 {
		return nil
	}
	var head []byte
	head = append(head, `{"count":`...)
	head = strconv.AppendInt(head, int64(b.n), 10)
	head = append(head, `,"records":[`...)
	if _, err := w.Write(head); err != nil {
		return err
	}
	if _, err := w.Write(b.buf); err != nil {
		return err
	}
	_, err := w.WriteString("]}\n")
	b.buf, b.n = b.buf[:0], 0
	return err
}

// keep is called with each record of w4. Called through a variable, it
// keeps the records on the heap, as records handed between stages must be.
var keep = func(rec map[string]any) {
	if len(rec) == 0 {
		panic("an empty record")
	}
}

// w4 reads a CSV file with a header row, builds one record per row keyed
// by the header, counts the records per level in the order levels are first
// seen and prints {"key":level,"value":n} per level.
func w4(in string, stdout io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256<<10), 1<<20)
	var header, cells []string
	counts := make(map[string]int64)
	var order []string
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if cells, err = codec.SplitCSV(cells[:0], line, ','); err != nil {
			return err
		}
		if header == nil {
			header = append([]string(nil), cells...)
			continue
		}
		rec := make(map[string]any, len(header))
		for i, h := range header {
			if i < len(cells) {
				rec[h] = cells[i]
			}
		}
		keep(rec)
		level, _ := rec["level"].(string)
		if _, ok := counts[level]; !ok {
			order = append(order, level)
		}
		counts[level]++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var enc codec.Encoder
	var buf bytes.Buffer
	for _, k := range order {
		line, err := enc.AppendObject(nil, map[string]any{"key": k, "value": counts[k]})
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	_, err = stdout.Write(buf.Bytes())
	return err
}
