package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrLineTooLong is what a [LineTooLongError] is (errors.Is).
var ErrLineTooLong = errors.New("line too long")

// LineTooLongError is returned by [LineReader.Next] and [LineReader.Rest]
// for a line longer than the reader's limit, together with the line's first
// Max bytes. The rest of the line is read past, not kept, and the next call
// returns the line after it.
type LineTooLongError struct {
	// Length is the line's length in bytes, without its line ending.
	Length int64
	// Max is the reader's limit.
	Max int
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line too long: %d bytes, more than the limit of %d", e.Length, e.Max)
}

// Is makes errors.Is(err, ErrLineTooLong) hold.
func (e *LineTooLongError) Is(target error) bool { return target == ErrLineTooLong }

// LineReader splits a stream into lines and tracks the byte offset of each.
// A line's bytes are valid until the next call. At the end of the input an
// unterminated last line is kept back (a followed file may still be writing
// it): Next returns io.EOF and the caller may read again later, once the
// stream has grown, or take the partial line with Rest. A line longer than
// the limit is returned cut to the limit with a *LineTooLongError; memory
// stays bounded by about twice the limit whatever the input.
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
	// long is set while the reader reads past the rest of a line over the
	// limit: its first max bytes, offset and length so far, and whether the
	// last byte passed was a carriage return.
	long    bool
	head    []byte
	longOff int64
	longLen int64
	longCR  bool
}

// NewLineReader reads r, which is at offset in its stream, accepting lines
// of at most max bytes (without the line ending).
func NewLineReader(r io.Reader, offset int64, max int) *LineReader {
	if max <= 0 {
		max = 1 << 20
	}
	return &LineReader{r: r, buf: make([]byte, min(64<<10, max+2)), offset: offset, max: max}
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
// offset. It returns io.EOF when no whole line is left, and the line's first
// bytes with a *LineTooLongError for a line over the limit.
func (l *LineReader) Next() ([]byte, int64, error) {
	for {
		if l.long {
			if err := l.skipLong(); err != nil {
				return nil, l.offset, err
			}
			return l.head, l.longOff, l.tooLong()
		}
		if i := l.newline(); i >= 0 {
			line := l.buf[l.start : l.start+i]
			off := l.offset
			l.start += i + 1
			l.offset += int64(i + 1)
			l.scanned = 0
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > l.max {
				return line[:l.max], off, &LineTooLongError{Length: int64(len(line)), Max: l.max}
			}
			return line, off, nil
		}
		// No newline yet. Past the limit (a last byte \r may still be the
		// line ending's), the line is too long: keep its head and read on
		// to its end.
		if n := l.end - l.start; n > l.max+1 || (n == l.max+1 && l.buf[l.end-1] != '\r') {
			l.head = append(l.head[:0], l.buf[l.start:l.start+l.max]...)
			l.long, l.longOff, l.longLen = true, l.offset, 0
			continue
		}
		if err := l.fill(); err != nil {
			return nil, l.offset, err
		}
	}
}

// skipLong reads past the rest of a line over the limit, up to and with its
// newline; it returns the error of a read that found no more input, and may
// be called again once there is more.
func (l *LineReader) skipLong() error {
	for {
		i := l.newline()
		n := i
		if i < 0 {
			n = l.end - l.start
		}
		if n > 0 {
			l.longCR = l.buf[l.start+n-1] == '\r'
		}
		l.longLen += int64(n)
		l.offset += int64(n)
		l.start += n
		l.scanned = 0
		if i >= 0 {
			l.start++
			l.offset++
			l.long = false
			if l.longCR {
				l.longLen--
			}
			return nil
		}
		if err := l.fill(); err != nil {
			return err
		}
	}
}

func (l *LineReader) tooLong() error {
	return &LineTooLongError{Length: l.longLen, Max: l.max}
}

// Rest returns the unterminated last line kept back at the end of input and
// consumes it: nil, or a *LineTooLongError with the line's first bytes as
// from Next, or io.EOF when no line is kept back.
func (l *LineReader) Rest() ([]byte, int64, error) {
	if l.long {
		n := l.end - l.start
		if n > 0 {
			l.longCR = l.buf[l.end-1] == '\r'
		}
		l.longLen += int64(n)
		l.offset += int64(n)
		l.start, l.end, l.scanned = 0, 0, 0
		l.long = false
		if l.longCR {
			l.longLen--
		}
		return l.head, l.longOff, l.tooLong()
	}
	if l.start == l.end {
		return nil, l.offset, io.EOF
	}
	line := l.buf[l.start:l.end]
	off := l.offset
	l.offset += int64(len(line))
	l.start, l.end, l.scanned = 0, 0, 0
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > l.max {
		return line[:l.max], off, &LineTooLongError{Length: int64(len(line)), Max: l.max}
	}
	return line, off, nil
}

// fill reads more input; it returns io.EOF when there is none now.
func (l *LineReader) fill() error {
	if l.start > 0 {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if l.end == len(l.buf) {
		grown := make([]byte, min(2*len(l.buf), l.max+2))
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
