package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// DefaultDebounce is how long a Watcher waits after the last change of a
// burst (an editor's save is often several events) before it reports.
const DefaultDebounce = 50 * time.Millisecond

// Watcher reports changes to .flow files. It watches directories, not
// files, so that an editor's atomic save (write a temporary file, rename it
// over the old one), a new file and a deleted one are all seen.
type Watcher struct {
	w        *fsnotify.Watcher
	debounce time.Duration
	log      hclog.Logger
	// files are the FILE arguments (cleaned); dirs the DIR arguments.
	files map[string]bool
	dirs  []string
	c     chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// NewWatcher watches the FILE|DIR arguments of `flowrun run`: for a file,
// changes to that file (through its directory); for a directory, changes to
// any .flow file in it or in its subdirectories (hidden ones skipped, new
// ones added as they appear). A burst of changes is reported once on C,
// debounce after the last of them (DefaultDebounce when debounce is 0).
func NewWatcher(args []string, debounce time.Duration, log hclog.Logger) (*Watcher, error) {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{
		w: fw, debounce: debounce, log: log,
		files: map[string]bool{},
		c:     make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	for _, arg := range args {
		arg, err := filepath.Abs(arg)
		if err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch: %w", err)
		}
		info, err := os.Stat(arg)
		if err != nil {
			fw.Close()
			return nil, fmt.Errorf("watch %s: %w", arg, err)
		}
		if !info.IsDir() {
			file := filepath.Clean(arg)
			w.files[file] = true
			if err := fw.Add(filepath.Dir(file)); err != nil {
				fw.Close()
				return nil, fmt.Errorf("watch %s: %w", filepath.Dir(file), err)
			}
			continue
		}
		w.dirs = append(w.dirs, filepath.Clean(arg))
		if err := w.addTree(arg); err != nil {
			fw.Close()
			return nil, err
		}
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// addTree watches dir and its subdirectories, skipping hidden ones.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// C receives one value per debounced burst of changes; it is closed once
// the watcher is closed.
func (w *Watcher) C() <-chan struct{} { return w.c }

// Close stops watching and waits for the watcher's goroutine to end.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.w.Close()
		w.wg.Wait()
	})
	return err
}

// relevant says whether ev concerns a watched .flow file; a directory
// created under a watched directory is watched from now on.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	name, err := filepath.Abs(ev.Name)
	if err != nil {
		return false
	}
	if w.files[name] {
		return true
	}
	for _, d := range w.dirs {
		if name != d && !strings.HasPrefix(name, d+string(filepath.Separator)) {
			continue
		}
		if strings.HasPrefix(filepath.Base(name), ".") {
			return false
		}
		if ev.Has(fsnotify.Create) {
			if info, err := os.Stat(name); err == nil && info.IsDir() {
				if err := w.addTree(name); err != nil {
					w.log.Warn("cannot watch a new directory", "dir", name, "error", err)
				}
				return true
			}
		}
		return strings.HasSuffix(name, ".flow")
	}
	return false
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	defer close(w.c)
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !w.relevant(ev) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
			} else {
				timer.Reset(w.debounce)
			}
			fire = timer.C
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.log.Warn("watch error", "error", err)
		case <-fire:
			fire = nil
			select {
			case w.c <- struct{}{}:
			default: // one report is already pending
			}
		}
	}
}

// Follow reloads s on every change w reports, until w is closed; the
// returned channel is closed then. An invalid edit leaves the pipelines
// running (see Supervisor.Reload).
func (s *Supervisor) Follow(w *Watcher) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range w.C() {
			if err := s.Reload(); err != nil && !errors.Is(err, ErrStopped) {
				s.log.Error("reload failed", "error", err)
			}
		}
	}()
	return done
}
