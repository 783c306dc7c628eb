package source

import (
	"context"
	"io"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Feed is a process's standard input, shared by the stdin sources that read
// it one after the other: the versions of a pipeline that a hot reload
// hands over from one to the next. A source reads from where the one before
// it finished: what that one read ahead but did not finish (the read under
// way when it stopped, the rest of its buffer, its unfinished batches) is
// given back, so that the next one starts exactly after the last line whose
// record was written and nothing is lost or read twice.
//
// The Feed reads its reader only when a source asks for more, so a source
// without credit leaves the input unread. Make one Feed per input and pass
// it as operators.BuildEnv.Stdin; a stdin source given any other reader
// reads it through a Feed of its own, which a later source does not share.
type Feed struct {
	r io.Reader

	mu sync.Mutex
	// buf holds the bytes read from r and not yet released (finished by
	// the source reading them): they start at offset base. pos is the
	// offset of the next byte handed out.
	buf  []byte
	base int64
	pos  int64
	// err is what r returned last (io.EOF at its end): sticky, returned
	// once buf is read to its end.
	err error
	// filling is closed when the read of r under way ends; nil when none.
	filling chan struct{}
	scratch []byte
	empty   int // reads in a row that returned nothing
	// readers counts the sources reading now. The last one to stop leaves
	// finished, which tells the next one where to start, and the csv
	// header it read, which ended at headerEnd.
	readers   int
	finished  func() int64
	header    []string
	headerEnd int64
}

// NewFeed returns a Feed reading r.
func NewFeed(r io.Reader) *Feed { return &Feed{r: r} }

// take starts a source's reading: it returns the offset the source starts
// at, with the csv header of the input when the source before it read one
// ending there or before. When sources overlap (two pipelines reading stdin
// at once), each takes its lines from where the feed is.
func (f *Feed) take() (int64, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.finished != nil && f.readers == 0 {
		if at := f.finished(); at >= f.base && at <= f.pos {
			f.pos = at
		}
	}
	f.finished = nil
	f.readers++
	if f.header != nil && f.headerEnd <= f.pos {
		return f.pos, f.header
	}
	return f.pos, nil
}

// give ends a source's reading. finished returns how far the source's input
// is finished, read when the next source takes over (after the pipeline
// has drained, so that it counts every record written); header is the csv
// header the source read, which ended at headerEnd (nil if none).
func (f *Feed) give(finished func() int64, header []string, headerEnd int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readers--
	f.finished = nil
	if f.readers == 0 {
		f.finished = finished
	}
	if header != nil {
		f.header, f.headerEnd = header, headerEnd
	}
}

// release lets go of the bytes before off: finished, never to be read again.
func (f *Feed) release(off int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	off = min(off, f.pos)
	if off <= f.base {
		return
	}
	f.buf = f.buf[off-f.base:]
	f.base = off
	if len(f.buf) == 0 {
		f.buf = f.buf[:0:0] // let go of the array too
	}
}

// Read reads from where the feed is, as a source does, but with no source
// to stop it: it waits until there is input or r fails.
func (f *Feed) Read(p []byte) (int, error) { return f.read(context.Background(), p) }

// read reads into p from where the feed is, reading r when it has nothing
// left, until ctx ends.
func (f *Feed) read(ctx context.Context, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	for {
		if f.pos < f.base+int64(len(f.buf)) {
			n := copy(p, f.buf[f.pos-f.base:])
			f.pos += int64(n)
			f.mu.Unlock()
			return n, nil
		}
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return 0, err
		}
		if f.filling == nil {
			f.filling = make(chan struct{})
			go f.fill(len(p))
		}
		filling := f.filling
		f.mu.Unlock()
		select {
		case <-filling:
		case <-ctx.Done():
			// The read under way goes on; what it reads is kept for the
			// next read, of this source or the next.
			return 0, ctx.Err()
		}
		f.mu.Lock()
	}
}

// fill reads r once, up to n bytes, into the feed.
func (f *Feed) fill(n int) {
	f.mu.Lock()
	if cap(f.scratch) < n {
		f.scratch = make([]byte, n)
	}
	buf := f.scratch[:n]
	f.mu.Unlock()
	n, err := f.r.Read(buf)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, buf[:n]...)
	switch {
	case err != nil:
		f.err = err
	case n == 0:
		if f.empty++; f.empty >= 100 {
			f.err = io.ErrNoProgress
		}
	default:
		f.empty = 0
	}
	close(f.filling)
	f.filling = nil
}

// feedReader is one source's reading of a Feed, as an io.Reader: it gives
// up when ctx ends, and lets go of what done counts as finished as it reads
// on.
type feedReader struct {
	ctx  context.Context
	feed *Feed
	done *flowruntime.Checkpoint
}

func (r *feedReader) Read(p []byte) (int, error) {
	r.feed.release(r.done.Committed())
	return r.feed.read(r.ctx, p)
}
