package source

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

var (
	_ flowruntime.Resumer      = (*File)(nil)
	_ flowruntime.Checkpointer = (*File)(nil)
	_ flowruntime.Resumer      = (*Generate)(nil)
	_ flowruntime.Checkpointer = (*Generate)(nil)
)

// Resume makes the next Run start each file named in checkpoint at its
// offset instead of at its beginning (or its end, with start_at = "end"),
// in follow mode too. checkpoint is what Checkpoint returned: a []Position,
// or the same decoded from JSON. A file is started at its offset only the
// first time it is opened: after a rotation the new file is read from its
// start.
func (f *File) Resume(checkpoint any) error {
	positions, err := asPositions(checkpoint)
	if err != nil {
		return fmt.Errorf("file source %q: resume: %w", f.stage, err)
	}
	f.resume = make(map[string]int64, len(positions))
	for _, p := range positions {
		if p.Offset < 0 {
			return fmt.Errorf("file source %q: resume: negative offset %d for %s", f.stage, p.Offset, p.File)
		}
		f.resume[p.File] = p.Offset
		// Until the file is opened its checkpoint is the resumed one, so
		// a snapshot taken before then keeps it.
		f.positions.track(p.File, p.Offset)
	}
	return nil
}

// startAt positions fh, just opened at path, where reading starts: at the
// resumed offset of path if there is one (used once), else at the end when
// atEnd, else at the start. It returns the offset.
func (f *File) startAt(fh *os.File, path string, atEnd bool) (int64, error) {
	off, resumed := f.resume[path]
	if resumed {
		delete(f.resume, path)
		if _, err := fh.Seek(off, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek %s to %d: %w", path, off, err)
		}
		return off, nil
	}
	if !atEnd {
		return 0, nil
	}
	off, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("seek: %w", err)
	}
	return off, nil
}

// asPositions reads a file source checkpoint: []Position, or a JSON
// decoding of one ([]any of objects with file and offset).
func asPositions(cp any) ([]Position, error) {
	switch v := cp.(type) {
	case nil:
		return nil, nil
	case []Position:
		return v, nil
	case []any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %v: %w", cp, err)
		}
		var ps []Position
		if err := json.Unmarshal(b, &ps); err != nil {
			return nil, fmt.Errorf("checkpoint is not a list of {file, offset}: %w", err)
		}
		return ps, nil
	}
	return nil, fmt.Errorf("checkpoint of type %T is not a list of file positions", cp)
}

// Checkpoint returns the next sequence number to generate: every record
// before it is finished (an int64).
func (g *Generate) Checkpoint() any { return g.done.committed(g.start) }

// Resume makes the next Run start at seq = checkpoint (what Checkpoint
// returned: an integer, or a whole float64 decoded from JSON). With a count,
// the sequence still ends before count.
func (g *Generate) Resume(checkpoint any) error {
	var seq int64
	switch v := checkpoint.(type) {
	case int64:
		seq = v
	case int:
		seq = int64(v)
	case float64:
		if v != math.Trunc(v) || v > math.MaxInt64 {
			return fmt.Errorf("generate source %q: resume: %v is not a sequence number", g.stage, v)
		}
		seq = int64(v)
	default:
		return fmt.Errorf("generate source %q: resume: checkpoint of type %T is not a sequence number", g.stage, checkpoint)
	}
	if seq < 0 {
		return fmt.Errorf("generate source %q: resume: negative sequence number %d", g.stage, seq)
	}
	g.start = seq
	return nil
}

// seqCheckpoint holds a generate source's checkpoint, made when Run starts
// and read from other goroutines.
type seqCheckpoint struct {
	mu sync.Mutex
	cp *flowruntime.Checkpoint
}

// reset starts tracking from start.
func (s *seqCheckpoint) reset(start int64) *flowruntime.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cp = flowruntime.NewCheckpoint(start)
	return s.cp
}

// committed returns the finished position, or start before Run.
func (s *seqCheckpoint) committed(start int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cp == nil {
		return start
	}
	return s.cp.Committed()
}
