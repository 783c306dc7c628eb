package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
				Doc: "Append to the file instead of truncating it when the pipeline starts."},
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
// twice and no line is ever partial. The file is opened by the first Write
// (or by Close, so a pipeline that wrote nothing leaves an empty file).
type File struct {
	path   string
	append bool
	sync   bool
	line   lineEncoder
	f      *os.File
	// size is the file's length after the last successful Write.
	size int64
	buf  []byte
}

func (s *File) open() error {
	if s.f != nil {
		return nil
	}
	if dir := filepath.Dir(s.path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	flags := os.O_WRONLY | os.O_CREATE
	if !s.append {
		flags |= os.O_TRUNC
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
	if size > 0 {
		s.line.header = false
	}
	s.f, s.size = f, size
	return nil
}

// Write appends the lines of recs to the file.
func (s *File) Write(_ context.Context, recs []flowruntime.Record) error {
	if err := s.open(); err != nil {
		return err
	}
	header := s.line.header
	buf, failed := s.line.appendLines(s.buf[:0], recs)
	s.buf = buf
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
	return failed.Err()
}

// Close creates the file if nothing was written and closes it.
func (s *File) Close() error {
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
