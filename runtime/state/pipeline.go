package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// snapshotName is the snapshot file in a pipeline's directory, and
// tempPrefix starts the name of one being written.
const (
	snapshotName = "snapshot"
	tempPrefix   = snapshotName + ".tmp-"
)

// Pipeline is the state of one pipeline in a Dir.
type Pipeline struct {
	dir  *Dir
	name string
	// path is the pipeline's directory; "" for an empty name.
	path string

	mu sync.Mutex
	// checked is set once the file on disk is known to be one Save may
	// replace: absent, read whole by Load, written by Save, or reset.
	checked bool
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// File returns the path of the pipeline's snapshot file.
func (p *Pipeline) File() string { return filepath.Join(p.path, snapshotName) }

// begin locks p and its Dir for one operation; end undoes it.
func (p *Pipeline) begin() error {
	p.mu.Lock()
	p.dir.mu.RLock()
	switch {
	case p.dir.lock == nil:
		p.end()
		return fmt.Errorf("state dir %s: %w", p.dir.path, ErrClosed)
	case p.name == "":
		p.end()
		return fmt.Errorf("state dir %s: empty pipeline name", p.dir.path)
	}
	return nil
}

func (p *Pipeline) end() {
	p.dir.mu.RUnlock()
	p.mu.Unlock()
}

// Load returns the pipeline's latest snapshot, or the empty Snapshot when
// it has none. A snapshot file that cannot be used is an error (a
// *FileError naming the file), never an empty state; Save then refuses to
// replace it until Reset. Load removes the temporary files of a Save that
// a crash cut short: they were never a snapshot.
func (p *Pipeline) Load() (Snapshot, error) {
	if err := p.begin(); err != nil {
		return Snapshot{}, err
	}
	defer p.end()
	if err := p.removeTemps(); err != nil {
		return Snapshot{}, err
	}
	s, err := readSnapshot(p.File(), p.name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.checked = true
		return Snapshot{}, nil
	case err != nil:
		p.checked = false
		return Snapshot{}, err
	}
	p.checked = true
	return s, nil
}

// readSnapshot reads and decodes the snapshot file path of pipeline. A
// missing file is an error wrapping fs.ErrNotExist.
func readSnapshot(path, pipeline string) (Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, err
	}
	owner, s, err := decode(data)
	if err != nil {
		return Snapshot{}, &FileError{Path: path, Err: err}
	}
	if owner != pipeline {
		return Snapshot{}, &FileError{Path: path, Err: fmt.Errorf("%w: it holds the state of pipeline %q, not of %q", ErrCorrupt, owner, pipeline)}
	}
	return s, nil
}

// removeTemps removes the temporary files left in p's directory.
func (p *Pipeline) removeTemps() error {
	entries, err := os.ReadDir(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state of pipeline %q: %w", p.name, err)
	}
	removed := false
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(p.path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state of pipeline %q: remove a partial snapshot: %w", p.name, err)
		}
		removed = true
	}
	if removed {
		return syncDir(p.path)
	}
	return nil
}

// Save replaces the pipeline's snapshot with s, atomically: it writes a
// temporary file in the pipeline's directory, fsyncs it, renames it over
// the snapshot and fsyncs the directory, so a crash at any moment leaves
// the old snapshot or the new one. It refuses to replace a snapshot file
// that cannot be used (see Load): the error then wraps that file's
// *FileError, and only Reset clears the way.
func (p *Pipeline) Save(s Snapshot) error {
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	if !p.checked {
		_, err := readSnapshot(p.File(), p.name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state of pipeline %q not saved, so as not to overwrite what cannot be read (reset it to start afresh): %w", p.name, err)
		}
		p.checked = true
	}
	data, err := encode(p.name, s)
	if err != nil {
		return fmt.Errorf("state of pipeline %q: %w", p.name, err)
	}
	if err := p.mkdir(); err != nil {
		return err
	}
	if err := p.write(data); err != nil {
		return fmt.Errorf("state of pipeline %q: save %s: %w", p.name, p.File(), err)
	}
	return nil
}

// mkdir creates the pipeline's directory if needed, durably.
func (p *Pipeline) mkdir() error {
	err := os.Mkdir(p.path, 0o700)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("state of pipeline %q: %w", p.name, err)
	}
	return syncDir(p.dir.path)
}

// write puts data in place of the snapshot file through a temporary one.
func (p *Pipeline) write(data []byte) (err error) {
	f, err := os.CreateTemp(p.path, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), p.File()); err != nil {
		return err
	}
	return syncDir(p.path)
}

// Reset removes the pipeline's state, whatever its snapshot file holds,
// so that the pipeline starts afresh. A pipeline without state is left as
// it is.
func (p *Pipeline) Reset() error {
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	if err := os.RemoveAll(p.path); err != nil {
		return fmt.Errorf("state of pipeline %q: reset: %w", p.name, err)
	}
	if err := syncDir(p.dir.path); err != nil {
		return fmt.Errorf("state of pipeline %q: reset: %w", p.name, err)
	}
	p.checked = true
	return nil
}
