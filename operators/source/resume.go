package source

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	flowruntime "github.com/flowrun/flowrun/runtime"
)

var (
	_ flowruntime.Resumer      = (*File)(nil)
	_ flowruntime.Checkpointer = (*File)(nil)
	_ flowruntime.Resumer      = (*Generate)(nil)
	_ flowruntime.Checkpointer = (*Generate)(nil)
)

// Resume makes the next Run start each file of checkpoint at its offset
// instead of at its beginning (or its end, with start_at = "end"), in
// follow mode too. checkpoint is what Checkpoint returned: a []Position,
// or the same decoded from JSON, or a list of {file, offset} saved before
// positions kept the files' identity (its relative paths are resolved
// against the working directory). Run matches each position to a file
// (see restore); a file is started at its offset only the first time it is
// opened: after a rotation the new file is read from its start.
func (f *File) Resume(checkpoint any) error {
	positions, err := asPositions(checkpoint)
	if err != nil {
		return fmt.Errorf("file source %q: resume: %w", f.stage, err)
	}
	saved := make([]Position, len(positions))
	for i, p := range positions {
		if p.Offset < 0 {
			return fmt.Errorf("file source %q: resume: negative offset %d for %s", f.stage, p.Offset, p.File)
		}
		saved[i] = p
		saved[i].File = absPath(p.File)
	}
	if positions != nil {
		f.saved = saved
	}
	// Until Run has matched them to files, the checkpoint is the one
	// resumed, so a snapshot taken before then keeps it.
	f.positions.resumeFrom(positions)
	return nil
}

// asPositions reads a file source checkpoint: []Position, or a JSON
// decoding of one ([]any of objects with file and offset, and dev, inode
// and fingerprint when saved by a flowrun that keeps them).
func asPositions(cp any) ([]Position, error) {
	switch v := cp.(type) {
	case nil:
		return nil, nil
	case []Position:
		return append([]Position(nil), v...), nil
	case []any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %v: %w", cp, err)
		}
		var ps []Position
		if err := json.Unmarshal(b, &ps); err != nil {
			return nil, fmt.Errorf("checkpoint is not a list of {file, offset, dev, inode, fingerprint}: %w", err)
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

// A start is where a resumed run reads a file it matched a saved position
// to (or a rotation's new file, from 0): used when the file opened under
// path is still the one matched (id).
type start struct {
	offset int64
	id     fileID
}

// A candidate is a file a saved position may be matched to: one the glob
// matches, or one beside a saved file.
type candidate struct {
	path, abs string
	info      os.FileInfo
	id        fileID
	// glob is set for the files the glob matches; claimed once a position
	// (or a rotation's new file) took it.
	glob, claimed bool
	head          []byte
	read          bool
}

// newCandidate returns the file at path, or nil when there is none.
func newCandidate(path string) *candidate {
	info, err := os.Stat(path)
	if err != nil || !info.Mode().IsRegular() {
		return nil
	}
	return &candidate{path: path, abs: absPath(path), info: info, id: idOf(info)}
}

// firstBytes returns the candidate's first bytes, up to fingerprintSize.
func (c *candidate) firstBytes() []byte {
	if !c.read {
		c.read = true
		if fh, err := os.Open(c.path); err == nil {
			c.head, _ = readHead(fh)
			fh.Close()
		}
	}
	return c.head
}

// fits reports whether the candidate's first bytes are those p's
// fingerprint covers; a position without one fits every file.
func (c *candidate) fits(p Position) bool {
	if p.Fingerprint == "" {
		return true
	}
	n := int(min(p.Offset, fingerprintSize))
	head := c.firstBytes()
	return len(head) >= n && fingerprint(head[:n]) == p.Fingerprint
}

// absPath returns path made absolute, or path when it cannot be.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// restore matches the positions Resume kept to the files on disk: paths,
// which the glob matches now, and the files beside each saved one. It
// returns where reading starts in the files it matched (by the path they
// are opened under), and the rotated files whose rest is read before every
// other file, in order; it tracks them all from those offsets at once. A
// position goes to the first of:
//
//   - a file the glob matches with the position's device, inode and
//     fingerprint: the same file, perhaps renamed, or under another path
//     (a run from another working directory);
//   - a file with them in the saved file's directory, which the glob does
//     not match: a file rotated while flowrun was stopped (app.log.1),
//     whose rest is read first, as follow does at a rotation;
//   - the file the glob matches at the position's path when its first
//     bytes have the fingerprint (a copy or a restore gave it another
//     inode), or when the position has no identity (saved by a flowrun
//     that kept none).
//
// A file of the same identity shorter than its offset was truncated: it is
// read from its start, with a warning. A file at a saved path that is not
// the saved file (a rotation's new file) is read from its start whatever
// start_at says. A saved file found nowhere is named in a warning and
// forgotten.
func (f *File) restore(paths []string) (map[string]start, []string) {
	saved := f.saved
	f.saved = nil
	if saved == nil {
		return nil, nil
	}
	var cands []*candidate
	globIDs := map[fileID]bool{}
	for _, p := range paths {
		if c := newCandidate(p); c != nil {
			c.glob = true
			cands = append(cands, c)
			globIDs[c.id] = true
		}
	}
	dirs := map[string][]*candidate{}
	beside := func(dir string) []*candidate {
		if cs, ok := dirs[dir]; ok {
			return cs
		}
		entries, _ := os.ReadDir(dir)
		var cs []*candidate
		for _, e := range entries {
			if c := newCandidate(filepath.Join(dir, e.Name())); c != nil && !globIDs[c.id] {
				cs = append(cs, c)
			}
		}
		dirs[dir] = cs
		return cs
	}
	byID := func(cs []*candidate, p Position) *candidate {
		for _, c := range cs {
			if !c.claimed && c.id == p.id() && (c.fits(p) || c.info.Size() < p.Offset) {
				return c
			}
		}
		return nil
	}
	// By identity first, then by path.
	matched := make([]*candidate, len(saved))
	for i, p := range saved {
		if !p.id().known() {
			continue
		}
		c := byID(cands, p)
		if c == nil {
			c = byID(beside(filepath.Dir(p.File)), p)
		}
		if c != nil {
			c.claimed = true
			matched[i] = c
		}
	}
	var successors []*candidate
	for i, p := range saved {
		if matched[i] != nil && matched[i].glob {
			continue
		}
		var at *candidate
		for _, c := range cands {
			if !c.claimed && c.abs == p.File {
				at = c
				break
			}
		}
		switch {
		case at != nil && matched[i] == nil && at.fits(p):
			if p.id().known() {
				f.log.Info("file has another inode than saved but the same first bytes: resuming it at its offset", "file", at.path, "offset", p.Offset)
			}
			matched[i] = at
		case at != nil:
			successors = append(successors, at)
		}
		if at != nil {
			at.claimed = true
		}
		if matched[i] == nil {
			f.log.Warn("a file read before is gone: its position is forgotten", "file", p.File, "offset", p.Offset)
		}
	}
	starts := map[string]start{}
	var rest []string
	var refs []fileRef
	var offsets []int64
	for i, p := range saved {
		c := matched[i]
		if c == nil {
			continue
		}
		off := p.Offset
		switch {
		case c.info.Size() < off:
			f.log.Warn("file truncated while flowrun was stopped: reading it from the start", "file", c.path, "offset", off, "size", c.info.Size())
			off = 0
		case !c.glob:
			f.log.Info("file rotated while flowrun was stopped: reading the rest of it first", "file", c.path, "saved_as", p.File, "offset", off)
		case c.abs != p.File && p.id().known():
			f.log.Info("file renamed while flowrun was stopped: resuming it under its new name", "file", c.path, "saved_as", p.File, "offset", off)
		}
		if !c.glob {
			rest = append(rest, c.path)
		}
		starts[c.path] = start{offset: off, id: c.id}
		refs = append(refs, fileRef{path: c.path, abs: c.abs, id: c.id, head: c.firstBytes()})
		offsets = append(offsets, off)
	}
	for _, c := range successors {
		f.log.Info("a new file took the path of a file read before: reading it from its start", "file", c.path)
		starts[c.path] = start{offset: 0, id: c.id}
		refs = append(refs, fileRef{path: c.path, abs: c.abs, id: c.id, head: c.firstBytes()})
		offsets = append(offsets, 0)
	}
	f.positions.restore(refs, offsets)
	return starts, rest
}
