package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var fileKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "file",
		Doc: "Writes records to a file, one whole line per record, creating its directory if needed.",
		Options: []planner.OptionSpec{
			{Name: "path", Type: planner.String, Required: true,
				Doc: "The file written."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"jsonl", "csv"}, Default: "jsonl",
				Doc: "jsonl writes one JSON object per line with sorted keys; csv one row per record under a header row."},
			{Name: "columns", Type: planner.StringList,
				Doc: "For csv: the columns in order (other fields are left out, missing ones are empty); by default the sorted fields of the first record."},
			{Name: "append", Type: planner.Bool, Default: false,
				Doc: "Append to the file instead of replacing it. Without append the file is truncated (or created) only when the first record arrives, or at the end of a run that wrote none, so a run whose source fails (cannot open its input or connect) or that is killed before the first record leaves the previous output untouched. With append, a file whose last line is incomplete (a process killed mid-write) gets a newline first, so no record is glued onto it, and a warning is logged once."},
			{Name: "sync", Type: planner.Bool, Default: false,
				Doc: "Call fsync after every write, so records count as finished only once they are on disk."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			if o.String("path") == "" {
				p.Add("path", "the path is empty: name the file to write")
			}
			if o["columns"] != nil && o.String("codec") != "csv" {
				p.Add("columns", "the columns option is for codec = \"csv\": remove it or set the codec")
			}
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		columns, _ := st.Options["columns"].([]string)
		f := &File{
			path:   env.Path(st.Options.String("path")),
			append: st.Options.Bool("append") || env.Resume,
			sync:   st.Options.Bool("sync"),
			line:   lineEncoder{codec: st.Options.String("codec"), columns: columns},
			log:    env.Logger,
		}
		if f.log == nil {
			f.log = hclog.NewNullLogger()
		}
		if f.line.codec == "csv" {
			f.line.header = true
		}
		return &flowruntime.Node{Sink: f}, nil
	},
}

// File writes records to a file. Each Write is all or nothing: its lines
// are written with one system call per buffer and, if writing fails, the
// file is cut back to where it was, so a retried batch is never written
// twice and no line is ever partial.
//
// The file is opened (and, without append, truncated) by the first Write,
// or by Close when the run ended without failing, so a successful run
// that wrote nothing leaves an empty file while a run that failed or was
// killed before its first record leaves the previous output as it was.
type File struct {
	path   string
	append bool
	sync   bool
	line   lineEncoder
	log    hclog.Logger
	// failed is set when the runtime told the sink that the run failed or
	// was killed (runtime.FailureAware).
	failed bool
	// restored is the committed length a restored state gives: the file is
	// cut back to it when opened, whatever append says. opened is set once
	// the file was opened, and stays set after Close.
	restored *int64
	opened   bool
	f        *os.File
	// size is the file's length after the last successful Write.
	size int64
	// newline is set while an appended file ends in an incomplete line:
	// the next Write starts with a newline, written (or cut back) with its
	// records.
	newline bool
	buf     []byte
}

var _ flowruntime.FailureAware = (*File)(nil)

// RunFailed tells Close that the run failed or was killed: a file not
// written yet is then left as it was.
func (s *File) RunFailed() { s.failed = true }

func (s *File) open() error {
	if s.f != nil {
		return nil
	}
	if dir := filepath.Dir(s.path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	// An appending sink reads its file's last byte, to see whether it ends
	// in an incomplete line.
	flags := os.O_RDWR | os.O_CREATE
	if !s.append && s.restored == nil {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(s.path, flags, 0o644)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return fmt.Errorf("seek: %w", err)
	}
	if s.restored != nil {
		if err := s.cutBack(f, size); err != nil {
			f.Close()
			return err
		}
		size = *s.restored
	}
	if size > 0 {
		s.line.header = false
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err != nil {
			f.Close()
			return fmt.Errorf("read the last byte: %w", err)
		}
		if last[0] != '\n' {
			s.newline = true
			s.log.Warn("the file ends in an incomplete line (an earlier run stopped mid-write): appending from a new line", "path", s.path, "size", size)
		}
	}
	s.f, s.size, s.opened = f, size, true
	return nil
}

// cutBack truncates f, of size bytes, to the restored committed length:
// what was written after the snapshot is written again.
func (s *File) cutBack(f *os.File, size int64) error {
	want := *s.restored
	if size < want {
		return fmt.Errorf("%s is %d bytes, shorter than the %d bytes its saved state says were written: it was changed outside flowrun (reset the pipeline's state to start over)", s.path, size, want)
	}
	if size > want {
		if err := f.Truncate(want); err != nil {
			return fmt.Errorf("cut back to the committed length %d: %w", want, err)
		}
	}
	return nil
}

// fileState is a file sink's saved state: the length of what it wrote, or
// nil when it has not opened its file yet (a restored sink then starts as
// a new one would).
type fileState struct {
	Size *int64 `json:"size"`
}

var _ flowruntime.Stateful = (*File)(nil)

// SaveState makes what was written durable (fsync) and returns its length.
func (s *File) SaveState() ([]byte, error) {
	var st fileState
	switch {
	case s.opened:
		if s.f != nil && !s.sync {
			if err := s.f.Sync(); err != nil {
				return nil, fmt.Errorf("sync %s: %w", s.path, err)
			}
		}
		size := s.size
		st.Size = &size
	case s.restored != nil:
		st.Size = s.restored
	}
	return json.Marshal(st)
}

// KeepOutput makes the sink append to what an earlier run wrote, however
// much that is.
func (s *File) KeepOutput() { s.append, s.restored = true, nil }

// RestoreState makes the sink cut its file back to the saved length when it
// opens it, and append from there.
func (s *File) RestoreState(b []byte) error {
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("file sink %s: saved state %q: %w", s.path, b, err)
	}
	if st.Size != nil && *st.Size < 0 {
		return fmt.Errorf("file sink %s: saved state: negative length %d", s.path, *st.Size)
	}
	s.restored = st.Size
	return nil
}

// Write appends the lines of recs to the file.
func (s *File) Write(_ context.Context, recs []flowruntime.Record) error {
	if err := s.open(); err != nil {
		return err
	}
	header := s.line.header
	buf := s.buf[:0]
	if s.newline {
		buf = append(buf, '\n')
	}
	buf, failed := s.line.appendLines(buf, recs)
	s.buf = buf
	if s.newline && len(buf) == 1 {
		// No record could be encoded: leave the line for a later Write.
		return failed.Err()
	}
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		s.line.header = header
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("write %s: %w (and cutting back failed: %v)", s.path, err, terr)
		}
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	if s.sync {
		if err := s.f.Sync(); err != nil {
			s.line.header = header
			if terr := s.f.Truncate(s.size); terr != nil {
				return fmt.Errorf("sync %s: %w (and cutting back failed: %v)", s.path, err, terr)
			}
			return fmt.Errorf("sync %s: %w", s.path, err)
		}
	}
	s.size += int64(len(buf))
	s.newline = false
	return failed.Err()
}

// Close closes the file. When nothing was written it creates (or, without
// append, truncates) the file, unless the run failed or was killed.
func (s *File) Close() error {
	if s.f == nil && s.failed {
		return nil
	}
	if err := s.open(); err != nil {
		return err
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}
