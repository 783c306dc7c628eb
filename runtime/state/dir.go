package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrLocked is wrapped by the error of Open when another process, or
// another Open in this one, holds the state directory.
var ErrLocked = errors.New("already in use")

// ErrClosed is returned by the methods of a Dir, and of its Pipelines,
// after Close.
var ErrClosed = errors.New("state directory closed")

// Dir is a state directory held by this process. Its methods, and those of
// its Pipelines, are safe for concurrent use.
type Dir struct {
	path string

	// mu is held for reading while a Pipeline works on the directory and
	// for writing by Close, which so waits for that work to end.
	mu   sync.RWMutex
	lock *os.File // nil once closed

	pmu       sync.Mutex
	pipelines map[string]*Pipeline
}

// Open creates dir if needed and takes its lock, which it keeps until
// Close. When another process, or another Open in this process, holds it,
// Open fails at once with an error wrapping ErrLocked that names dir and,
// when it can be read, the pid holding it.
func Open(dir string) (*Dir, error) {
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: lock: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("state dir %s: %w by %s (lock file %s)", dir, ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("state dir %s: lock %s: %w", dir, path, err)
	}
	if err := writePid(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("state dir %s: lock: %w", dir, err)
	}
	return &Dir{path: dir, lock: f, pipelines: make(map[string]*Pipeline)}, nil
}

// lockHolder describes who holds the lock, from the pid in its file.
func lockHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	switch {
	case err != nil || pid <= 0:
		return "another process"
	case pid == os.Getpid():
		return fmt.Sprintf("this process (pid %d), which opened it before", pid)
	default:
		return fmt.Sprintf("another process (pid %d)", pid)
	}
}

// writePid replaces the content of the lock file with this process's pid.
func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// Path returns the state directory's path.
func (d *Dir) Path() string { return d.path }

// Close releases the lock, after any Load, Save or Reset under way has
// ended. Closing a closed Dir does nothing.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return nil
	}
	f := d.lock
	d.lock = nil
	// The pid goes, so that a reader of a free lock file learns nothing
	// false; the file stays, since removing it while others may have it
	// open would let two processes each lock a file of that name.
	terr := f.Truncate(0)
	if err := f.Close(); err != nil {
		return fmt.Errorf("state dir %s: unlock: %w", d.path, err)
	}
	if terr != nil {
		return fmt.Errorf("state dir %s: unlock: %w", d.path, terr)
	}
	return nil
}

// Pipeline returns the state of the pipeline named name. Any non-empty
// name is accepted: it is escaped into one path component (a name whose
// escaped form is longer than the file system allows, 255 bytes on most,
// fails in Save with the system's error). The methods of the Pipeline of
// an empty name fail. Every call with the same name returns the same
// *Pipeline.
func (d *Dir) Pipeline(name string) *Pipeline {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if p, ok := d.pipelines[name]; ok {
		return p
	}
	p := &Pipeline{dir: d, name: name}
	if name != "" {
		p.path = filepath.Join(d.path, escapeName(name))
	}
	d.pipelines[name] = p
	return p
}

// Reset removes the state of the pipeline named name, as
// d.Pipeline(name).Reset() does.
func (d *Dir) Reset(name string) error { return d.Pipeline(name).Reset() }

// syncDir fsyncs the directory dir, so that the entries created, renamed
// or removed in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// PipelineState is what List found of one pipeline.
type PipelineState struct {
	// Pipeline is the pipeline's name.
	Pipeline string
	// File is the path of its snapshot file.
	File string
	// Snapshot is the snapshot read; it is empty when Err is set. Its Time
	// tells the checkpoint's age.
	Snapshot Snapshot
	// Err is set when the snapshot file cannot be used (a *FileError) or
	// read.
	Err error
}

// List returns the state kept in the state directory dir, one entry per
// pipeline that has a snapshot, sorted by pipeline name. It only reads,
// and does not take the lock, so it works while another process uses dir:
// snapshots are replaced by renames, so each is seen whole. A pipeline
// whose snapshot cannot be used is listed with Err set; entries of dir
// that are not pipeline directories are passed over. The error is about
// dir itself.
func List(dir string) ([]PipelineState, error) {
	dir = filepath.Clean(dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	var out []PipelineState
	for _, e := range entries {
		name, ok := unescapeName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		ps := PipelineState{Pipeline: name, File: filepath.Join(dir, e.Name(), snapshotName)}
		ps.Snapshot, err = readSnapshot(ps.File, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			ps.Err = err
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b PipelineState) int { return strings.Compare(a.Pipeline, b.Pipeline) })
	return out, nil
}
