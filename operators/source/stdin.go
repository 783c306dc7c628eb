package source

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var stdinKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "stdin",
		Doc:     "Reads records from standard input until it ends. A line it cannot decode follows on_error; under stop (the default) every line before it is written, then the run fails naming stdin:LINE.",
		Options: codecOptions(),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkCodec(&p, o)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		feed, ok := env.Stdin.(*Feed)
		if !ok {
			in := env.Stdin
			if in == nil {
				in = os.Stdin
			}
			feed = NewFeed(in)
		}
		return &flowruntime.Node{Source: &Stdin{stream: newStream(st, env), feed: feed}}, nil
	},
}

// Stdin is the stdin source. A record is handed on as soon as its line is
// read, unless more lines are already waiting. It reads its input through a
// Feed: a source that stops (at a hot reload's handover) leaves the input
// at the end of its last finished line, where the next version's source
// goes on.
type Stdin struct {
	stream
	feed *Feed
}

// Run reads standard input to its end, or until ctx ends.
func (s *Stdin) Run(ctx context.Context, out flowruntime.Emitter) error {
	off, header := s.feed.take()
	done := s.positions.track("", off)
	r := s.newReader(&feedReader{ctx: ctx, feed: s.feed, done: done}, "", off, done)
	if s.codec == "csv" {
		r.header = header
	}
	defer func() {
		header := r.header
		if r.headerEnd == 0 {
			header = nil // not read here: the feed keeps the one it has
		}
		s.feed.give(done.Committed, header, r.headerEnd)
	}()
	err := r.pump(ctx, out)
	if errors.Is(err, io.EOF) {
		if err = r.finish(); err == nil {
			err = r.flush(ctx, out)
		}
	}
	if errors.Is(err, errStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}
