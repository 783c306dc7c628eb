package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is returned for a line longer than the reader's limit.
var ErrLineTooLong = errors.New("line too long")

// LineReader splits a stream into lines and tracks the byte offset of each.
// A line's bytes are valid until the next call. At the end of the input an
// unterminated last line is kept back (a followed file may still be writing
// it): Next returns io.EOF and the caller may read again later, once the
// stream has grown, or take the partial line with Rest.
type LineReader struct {
	r     io.Reader
	buf   []byte
	start int // first unread byte
	end   int // end of the valid bytes
	// scanned is how far past start no newline was found.
	scanned int
	// offset is the stream offset of buf[start].
	offset int64
	max    int
}

// NewLineReader reads r, which is at offset in its stream, accepting lines
// of at most max bytes (without the newline).
func NewLineReader(r io.Reader, offset int64, max int) *LineReader {
	if max <= 0 {
		max = 1 << 20
	}
	return &LineReader{r: r, buf: make([]byte, min(64<<10, max+1)), offset: offset, max: max}
}

// Offset is the stream offset of the next unread byte.
func (l *LineReader) Offset() int64 { return l.offset }

// Buffered reports whether a whole line can be returned without reading.
func (l *LineReader) Buffered() bool {
	return l.newline() >= 0
}

func (l *LineReader) newline() int {
	if i := bytes.IndexByte(l.buf[l.start+l.scanned:l.end], '\n'); i >= 0 {
		return l.scanned + i
	}
	l.scanned = l.end - l.start
	return -1
}

// Next returns the next line without its line ending (\n or \r\n) and its
// offset. It returns io.EOF when no whole line is left.
func (l *LineReader) Next() ([]byte, int64, error) {
	for {
		if i := l.newline(); i >= 0 {
			if i > l.max {
				return nil, l.offset, fmt.Errorf("at byte %d: %w (more than %d bytes)", l.offset, ErrLineTooLong, l.max)
			}
			line := l.buf[l.start : l.start+i]
			off := l.offset
			l.start += i + 1
			l.offset += int64(i + 1)
			l.scanned = 0
			return bytes.TrimSuffix(line, []byte{'\r'}), off, nil
		}
		if l.end-l.start > l.max {
			return nil, l.offset, fmt.Errorf("at byte %d: %w (more than %d bytes)", l.offset, ErrLineTooLong, l.max)
		}
		if err := l.fill(); err != nil {
			return nil, l.offset, err
		}
	}
}

// Rest returns the unterminated last line kept back at the end of input, if
// any, and consumes it.
func (l *LineReader) Rest() ([]byte, int64, bool) {
	if l.start == l.end {
		return nil, l.offset, false
	}
	line := l.buf[l.start:l.end]
	off := l.offset
	l.offset += int64(len(line))
	l.start, l.end, l.scanned = 0, 0, 0
	return bytes.TrimSuffix(line, []byte{'\r'}), off, true
}

// fill reads more input; it returns io.EOF when there is none now.
func (l *LineReader) fill() error {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if l.end == len(l.buf) {
		grown := make([]byte, min(2*len(l.buf), l.max+1))
		copy(grown, l.buf[:l.end])
		l.buf = grown
	}
	for tries := 0; tries < 100; tries++ {
		n, err := l.r.Read(l.buf[l.end:])
		l.end += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}
