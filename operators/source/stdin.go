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
		s := newStream(st, env)
		in := env.Stdin
		if in == nil {
			in = os.Stdin
		}
		return &flowruntime.Node{Source: &Stdin{stream: s, in: in}}, nil
	},
}

// Stdin is the stdin source. A record is handed on as soon as its line is
// read, unless more lines are already waiting.
type Stdin struct {
	stream
	in io.Reader
}

// Run reads standard input to its end.
func (s *Stdin) Run(ctx context.Context, out flowruntime.Emitter) error {
	cr := &ctxReader{ctx: ctx, r: s.in}
	defer cr.close()
	r := s.newReader(cr, "", 0, s.positions.track("", 0))
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

// ctxReader makes a blocking reader give up when ctx ends. A read still
// blocked then finishes in the background and its data is dropped. It is
// used by one goroutine at a time.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	buf  []byte
	reqs chan []byte
	resp chan readResult
	err  error
}

type readResult struct {
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.reqs == nil {
		c.reqs = make(chan []byte)
		c.resp = make(chan readResult, 1)
		go func(reqs <-chan []byte, resp chan<- readResult) {
			for buf := range reqs {
				n, err := c.r.Read(buf)
				resp <- readResult{n, err}
			}
		}(c.reqs, c.resp)
	}
	if len(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	buf := c.buf[:len(p)]
	select {
	case c.reqs <- buf:
	case <-c.ctx.Done():
		return 0, c.stop(c.ctx.Err())
	}
	select {
	case res := <-c.resp:
		n := copy(p, buf[:res.n])
		if res.err != nil {
			c.stop(res.err)
		}
		return n, res.err
	case <-c.ctx.Done():
		// The pending read owns buf now; never hand it out again.
		c.buf = nil
		return 0, c.stop(c.ctx.Err())
	}
}

// close ends the reading goroutine, if it runs, once its read returns: Run
// may return (at a line it cannot decode) before the input ends.
func (c *ctxReader) close() {
	if c.reqs != nil && c.err == nil {
		c.stop(errStopped)
	}
}

// stop ends the reading goroutine (once its read returns) and makes err
// sticky.
func (c *ctxReader) stop(err error) error {
	c.err = err
	close(c.reqs)
	return err
}
