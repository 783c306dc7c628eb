package call

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{bufferedKind} }

var bufferedKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "buffered", Kind: "buffered",
		Doc: "Runs a command or an HTTP request per record, several at once, and merges the result into the record.",
		Options: []planner.OptionSpec{
			{Name: "call", Type: planner.Enum, Enum: []string{"exec", "http"}, Required: true,
				Doc: "What is called per record: exec runs command, http sends a request to url."},
			{Name: "command", Type: planner.StringList,
				Doc: "For exec: the program and its arguments; it reads the record as JSON on stdin and writes the result on stdout."},
			{Name: "url", Type: planner.Expr,
				Doc: "For http: an expression yielding the request URL, e.g. \"http://geo/\" + ip."},
			{Name: "method", Type: planner.String, Default: "GET",
				Doc: "For http: the request method."},
			{Name: "body", Type: planner.Expr,
				Doc: "For http: an expression yielding the request body (a string is sent as is, anything else as JSON); by default methods other than GET and HEAD send the record as JSON."},
			{Name: "headers", Type: planner.Value,
				Doc: "For http: an object of request headers, e.g. {Authorization = \"Bearer ...\"}."},
			{Name: "response", Type: planner.Enum, Enum: []string{"auto", "json", "text"}, Default: "auto",
				Doc: "How the output is read: json must parse, text is kept as a string without surrounding space, auto parses JSON and falls back to text."},
			{Name: "as", Type: planner.String, Default: "result",
				Doc: "The field that receives the result."},
			{Name: "timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "The longest one call may take; a slower call fails and on_error applies."},
			{Name: "concurrency", Type: planner.Int, Default: int64(10),
				Doc: "How many calls run at once."},
			{Name: "ordered", Type: planner.Bool, Default: true,
				Doc: "Emit results in input order; false emits each as soon as it is done."},
			{Name: "persistent", Type: planner.Bool, Default: false,
				Doc: "For exec: keep up to concurrency copies of the command running and exchange one line per record with them (the record as a JSON line on stdin, the result as one line on stdout) instead of starting it per record."},
		},
		InFlight: func(o planner.Options) int { return int(o.Int("concurrency")) },
		Check:    checkBuffered,
	},
	Build: buildBuffered,
}

func checkBuffered(o planner.Options) error {
	var p operators.Problems
	if o.String("as") == "" {
		p.Add("as", "the as option must name the field that receives the result")
	}
	p.Min(o, "concurrency", 1)
	p.MinDuration(o, "timeout", 0, true)
	command, _ := o["command"].([]string)
	switch o.String("call") {
	case "exec":
		if len(command) == 0 || command[0] == "" {
			p.Add("call", "an exec call needs a command, e.g. command = [\"jq\", \"-c\", \".\"]")
		}
		for _, name := range []string{"url", "body", "headers"} {
			if o[name] != nil {
				p.Add(name, "the %s option is for call = \"http\": remove it", name)
			}
		}
		if o.String("method") != "GET" {
			p.Add("method", "the method option is for call = \"http\": remove it")
		}
	case "http":
		if len(command) > 0 {
			p.Add("command", "the command option is for call = \"exec\": remove it")
		}
		if o.Bool("persistent") {
			p.Add("persistent", "the persistent option is for call = \"exec\": remove it")
		}
		if o.Expr("url") == nil {
			p.Add("call", "an http call needs a url, e.g. url = \"http://geo.local/\" + ip")
		}
		if h := o["headers"]; h != nil {
			if _, ok := h.(map[string]any); !ok {
				p.Add("headers", "the headers must be an object of header names to values, e.g. { Accept = \"application/json\" }")
			}
		}
	}
	return p.Err()
}

func buildBuffered(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
	o := st.Options
	b := &Buffered{
		as:          o.String("as"),
		response:    o.String("response"),
		timeout:     o.Duration("timeout"),
		concurrency: int(o.Int("concurrency")),
		ordered:     o.Bool("ordered"),
	}
	if b.response == "" {
		b.response = "auto"
	}
	switch o.String("call") {
	case "exec":
		command, _ := o["command"].([]string)
		if o.Bool("persistent") {
			b.do = &coprocs{argv: command, dir: env.Dir}
		} else {
			b.do = &execCall{argv: command, dir: env.Dir}
		}
	case "http":
		b.do = newHTTPCall(o, env.Clock)
	default:
		return nil, fmt.Errorf("unknown call %q", o.String("call"))
	}
	b.states.New = func() any { return &state{} }
	return &flowruntime.Node{Caller: b}, nil
}

// Buffered is the buffered stage: one call per record, run by the runtime up
// to Concurrency at once, the result stored in the record's field as.
type Buffered struct {
	as          string
	response    string
	timeout     time.Duration
	concurrency int
	ordered     bool
	do          caller
	// states holds what one call needs for itself: a runner and buffers.
	states sync.Pool
	watch  sync.Once
}

// caller is what differs between exec and http.
type caller interface {
	// call returns the raw output for rec.
	call(ctx context.Context, s *state, rec map[string]any) ([]byte, error)
}

// state is the scratch space of one call at a time.
type state struct {
	run expression.Runner
	enc codec.Encoder
	dec codec.Decoder
	buf []byte
	// out holds the output of a persistent command's copy.
	out []byte
}

// maxOutput bounds what one call may return.
const maxOutput = 16 << 20

// Call runs the call for rec and merges its result.
func (b *Buffered) Call(ctx context.Context, rec flowruntime.Record) (flowruntime.Record, error) {
	if c, ok := b.do.(io.Closer); ok {
		// What the calls keep running lives as long as their context.
		b.watch.Do(func() { context.AfterFunc(ctx, func() { c.Close() }) })
	}
	s := b.states.Get().(*state)
	defer b.states.Put(s)
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	out, err := b.do.call(ctx, s, rec.Fields)
	if err != nil {
		// The pipe's deadline (the context's) may pass a moment before
		// the context says so.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return rec, fmt.Errorf("timed out after %s: %w", b.timeout, err)
		}
		return rec, err
	}
	v, err := b.parse(s, out)
	if err != nil {
		return rec, onerror.Permanent(err)
	}
	if rec.Fields == nil {
		rec.Fields = make(map[string]any, 1)
	}
	rec.Fields[b.as] = v
	return rec, nil
}

func (b *Buffered) parse(s *state, out []byte) (any, error) {
	trimmed := bytes.TrimSpace(out)
	switch b.response {
	case "text":
		return string(trimmed), nil
	case "json":
		v, err := s.dec.Decode(trimmed)
		if err != nil {
			return nil, fmt.Errorf("response: %w", err)
		}
		return v, nil
	}
	if len(trimmed) == 0 {
		return "", nil
	}
	if v, err := s.dec.Decode(trimmed); err == nil {
		return v, nil
	}
	return string(trimmed), nil
}

// Close stops the copies of a persistent command. They are stopped as well
// when the context given to the calls ends.
func (b *Buffered) Close() error {
	if c, ok := b.do.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Concurrency is how many calls may run at once.
func (b *Buffered) Concurrency() int { return b.concurrency }

// Ordered says whether results keep the input order.
func (b *Buffered) Ordered() bool { return b.ordered }

// limitedBuffer keeps at most max bytes and reports whether more came.
type limitedBuffer struct {
	buf  []byte
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.buf); room < len(p) {
		l.over = true
		p = p[:max(room, 0)]
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}
