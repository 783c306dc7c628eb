package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var fileKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "file",
		Doc: "Reads records from files matching a path or glob, optionally following them as they grow; JSON lines are decoded on every core and emitted in file order. A line it cannot decode follows on_error; under stop (the default) every line before it is written, then the run fails naming FILE:LINE (the byte offset when reading resumed mid-file).",
		Options: append([]planner.OptionSpec{
			{Name: "path", Type: planner.String, Required: true,
				Doc: "The file to read, or a glob (logs/*.jsonl) whose matches are read in name order."},
			{Name: "follow", Type: planner.Bool, Default: false,
				Doc: "Keep reading as the files grow (tail -f), picking up new matches of the glob, instead of ending at their end."},
			{Name: "start_at", Type: planner.Enum, Enum: []string{"beginning", "end"}, Default: "beginning",
				Doc: "Where reading starts in the files present at start: their beginning, or their end (only new lines)."},
			{Name: "poll_interval", Type: planner.Duration, Default: 250 * time.Millisecond,
				Doc: "How often followed files are checked for new data, truncation and rotation."},
		}, codecOptions()...),
		Check: func(o planner.Options) error {
			var p operators.Problems
			switch path := o.String("path"); {
			case path == "":
				p.Add("path", "the path is empty: name a file or a glob")
			default:
				if _, err := filepath.Match(path, ""); err != nil {
					p.Add("path", "the path %q is not a valid glob: %v", path, err)
				}
			}
			p.MinDuration(o, "poll_interval", 0, true)
			checkCodec(&p, o)
			return p.Err()
		},
	},
	Build: buildFile,
}

func buildFile(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
	f := &File{
		stream:  newStream(st, env),
		pattern: env.Path(st.Options.String("path")),
		follow:  st.Options.Bool("follow"),
		atEnd:   st.Options.String("start_at") == "end",
		poll:    st.Options.Duration("poll_interval"),
	}
	if f.follow && !env.KeepsState && !env.Resume && env.Logger != nil {
		env.Logger.Warn("a followed file's position is not kept: a restarted run reads it again from the start (or its end, with start_at = \"end\"); run with --state-dir to resume where it stopped", "path", f.pattern)
	}
	return &flowruntime.Node{Source: f}, nil
}

// File is the file source: it reads the files matching a glob in name
// order, reading only while the pipeline has credit for more.
type File struct {
	stream
	pattern string
	follow  bool
	atEnd   bool
	poll    time.Duration
	// saved holds the positions a resumed run starts from, until Run
	// matches them to files (restore); starts then holds where each
	// matched file is read from, the first time it is opened.
	saved  []Position
	starts map[string]start
}

// tailed is a followed file.
type tailed struct {
	path string
	info os.FileInfo
	in   *input
	r    *reader
}

func (f *File) glob() ([]string, error) {
	if !strings.ContainsAny(f.pattern, "*?[") {
		return []string{f.pattern}, nil
	}
	m, err := filepath.Glob(f.pattern)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", f.pattern, err)
	}
	sort.Strings(m)
	return m, nil
}

// Run reads the files; without follow it returns at the end of the last.
// JSON lines are decoded on every core, in batches emitted in file order.
func (f *File) Run(ctx context.Context, out flowruntime.Emitter) error {
	if f.codec == "json" {
		f.parallel = newOrdered(ctx)
	}
	err := f.run(ctx, out)
	if f.parallel != nil {
		// A batch's error is about lines read before where the reader
		// stopped, so it comes first.
		if werr := f.parallel.Wait(); err == nil || (werr != nil && !errors.Is(werr, errStopped)) {
			err = werr
		}
		f.parallel = nil
	}
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}

func (f *File) run(ctx context.Context, out flowruntime.Emitter) error {
	paths, err := f.glob()
	if err != nil {
		return err
	}
	var rotated []string
	f.starts, rotated = f.restore(paths)
	if !f.follow && len(paths) == 0 {
		return fmt.Errorf("no file matches %q", f.pattern)
	}
	// The rest of the files rotated while flowrun was stopped comes first.
	var last *reader
	for _, p := range rotated {
		if last, err = f.readAll(ctx, out, p, last, true); err != nil {
			return err
		}
	}
	f.positions.dropRotated()
	if f.follow {
		if last != nil {
			if err := last.flush(ctx, out); err != nil {
				return err
			}
		}
		return f.tail(ctx, out, paths)
	}
	for _, p := range paths {
		if last, err = f.readAll(ctx, out, p, last, false); err != nil {
			return err
		}
	}
	return last.flush(ctx, out)
}

// open opens the file at path and positions it where reading starts: where
// a resumed run matched it to start (used once), where it was read to when
// it was rotated away and is matched again under another name, else at its
// end when atEnd, else at its start. It returns the file, tracked from
// there, with what it was when opened and that offset.
func (f *File) open(path string, atEnd bool) (*input, os.FileInfo, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open: %w", err)
	}
	info, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, 0, fmt.Errorf("stat %s: %w", path, err)
	}
	ref := fileRef{path: path, abs: absPath(path), id: idOf(info), fh: fh}
	st, planned := f.starts[path]
	delete(f.starts, path)
	var in *input
	var off int64
	switch {
	case planned && (st.id == ref.id || !st.id.known()):
		off = st.offset
	default:
		if in, off = f.positions.reopen(ref); in != nil && off > info.Size() {
			in, off = nil, 0 // truncated since: read again from the start
		}
		if in == nil && atEnd {
			off = info.Size()
		}
	}
	if in == nil {
		in = f.positions.trackFile(ref, off)
	}
	if _, err := fh.Seek(off, io.SeekStart); err != nil {
		f.positions.close(in, -1)
		return nil, nil, 0, fmt.Errorf("seek %s to %d: %w", path, off, err)
	}
	return in, info, off, nil
}

// readAll reads one whole file, carrying the pending batch over from prev.
// A rotated file is not read again: it is forgotten once its lines are
// finished, unless the glob matches it.
func (f *File) readAll(ctx context.Context, out flowruntime.Emitter, path string, prev *reader, rotated bool) (*reader, error) {
	in, _, off, err := f.open(path, false)
	if err != nil {
		return prev, err
	}
	r := f.newReader(in.fh, path, off, in.done)
	defer func() {
		end := int64(-1)
		if rotated {
			end = r.lines.Offset()
		}
		f.positions.close(in, end)
	}()
	if prev != nil {
		r.carryFrom(prev)
	}
	if err := r.pump(ctx, out); !errors.Is(err, io.EOF) {
		return r, err
	}
	return r, r.finish()
}

// tail follows the files matching the pattern: it reads each to its end,
// then polls for growth, truncation (read again from the start), rotation
// (the old file is read to its end, then the new one from its start) and new
// matches of the glob. A rotated file the glob matches under its new name
// goes on from where it was read to.
func (f *File) tail(ctx context.Context, out flowruntime.Emitter, initial []string) error {
	files := map[string]*tailed{}
	defer func() {
		for _, t := range files {
			f.positions.close(t.in, -1)
		}
	}()
	open := func(path string, atEnd bool) error {
		in, info, off, err := f.open(path, atEnd)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // not there yet, or rotated away: try again later
			}
			return err
		}
		files[path] = &tailed{path: path, info: info, in: in, r: f.newReader(in.fh, path, off, in.done)}
		return nil
	}
	for _, p := range initial {
		if err := open(p, f.atEnd); err != nil {
			return err
		}
	}
	for {
		names := make([]string, 0, len(files))
		for p := range files {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			t := files[p]
			if err := t.r.pump(ctx, out); !errors.Is(err, io.EOF) {
				return err
			}
			if err := t.r.flush(ctx, out); err != nil {
				return err
			}
			switch now, err := os.Stat(p); {
			case err != nil || !os.SameFile(now, t.info):
				// Rotated or removed: what was written to the old file is
				// read; the new one is opened from its start.
				if line, off, err := t.r.lines.Rest(); !errors.Is(err, io.EOF) {
					if err := t.r.take(line, off, err); err != nil {
						return err
					}
					if err := t.r.flush(ctx, out); err != nil {
						return err
					}
				}
				f.positions.close(t.in, t.r.lines.Offset())
				delete(files, p)
				if err := open(p, false); err != nil {
					return err
				}
			case now.Size() < t.r.lines.Offset():
				f.log.Info("file truncated, reading it from the start", "file", p)
				if _, err := t.in.fh.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("seek %s: %w", p, err)
				}
				t.in = f.positions.trackFile(fileRef{path: p, abs: t.in.abs, id: t.in.id, fh: t.in.fh}, 0)
				t.r = f.newReader(t.in.fh, p, 0, t.in.done)
			}
		}
		if err := f.clock.Sleep(ctx, f.poll); err != nil {
			return errStopped
		}
		paths, err := f.glob()
		if err != nil {
			return err
		}
		reading := map[fileID]bool{}
		for _, t := range files {
			reading[idOf(t.info)] = true
		}
		for _, p := range paths {
			if _, ok := files[p]; ok {
				continue
			}
			if info, err := os.Stat(p); err == nil && reading[idOf(info)] {
				continue // a file read under another name: its rotation is seen next time
			}
			if err := open(p, false); err != nil {
				return err
			}
		}
		f.positions.dropRotated()
	}
}

// Checkpoint returns, for every file read so far or to be read from a
// resumed position, its identity and the offset before which every line is
// finished ([]Position). A file rotated away is left out once all of it is
// finished, unless the glob still matches it.
func (f *File) Checkpoint() any { return f.positions.Checkpoint() }
