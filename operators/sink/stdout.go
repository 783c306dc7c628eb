package sink

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var stdoutKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "stdout",
		Doc: "Writes each record to standard output, one per line.",
		Options: []planner.OptionSpec{
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "json writes each record as one JSON object with sorted keys; lines writes the string of one field."},
			{Name: "field", Type: planner.String, Default: "line",
				Doc: "For lines: the field written; a record without it is written as JSON."},
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		w := env.Stdout
		if w == nil {
			w = os.Stdout
		}
		s := &Stdout{w: w, line: lineEncoder{codec: st.Options.String("codec"), field: st.Options.String("field")}}
		if s.line.field == "" {
			s.line.field = "line"
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// stdoutMu keeps the lines of different stdout sinks of a process whole.
var stdoutMu sync.Mutex

// Stdout writes records to standard output, one whole line per record; a
// batch is written with one call.
type Stdout struct {
	w    io.Writer
	line lineEncoder
	buf  []byte
}

// Write writes recs.
func (s *Stdout) Write(_ context.Context, recs []flowruntime.Record) error {
	buf, failed := s.line.appendLines(s.buf[:0], recs)
	s.buf = buf
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return failed.Err()
}

// Close does nothing: standard output stays open.
func (s *Stdout) Close() error { return nil }
