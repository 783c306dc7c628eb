// Package optest builds operators from .flow snippets through the real
// parser and planner (or from options given directly) and runs them by
// hand, for the operator packages' tests; it also builds the flowrun
// binary and polls conditions, for tests that run whole processes or
// servers. It imports lang, planner, operators/all and runtime; only tests
// import it.
package optest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Stage returns a planned stage of the given block and kind, named name,
// with opts decoded as the planner would: schema defaults applied and the
// source text of Expr and Predicate options (and of the fields of a Fields
// option, given as [][2]string) compiled.
func Stage(t testing.TB, block, kind, name string, opts map[string]any) *planner.Stage {
	t.Helper()
	schema, ok := all.Registry().Lookup(block, kind)
	if !ok {
		t.Fatalf("no %s kind %q", block, kind)
	}
	o := planner.Options{}
	for _, spec := range schema.Options {
		if spec.Default != nil {
			o[spec.Name] = spec.Default
		}
	}
	for k, v := range opts {
		spec := schema.Option(k)
		if spec == nil {
			t.Fatalf("%s %s has no option %q", block, kind, k)
		}
		switch spec.Type {
		case planner.Expr:
			o[k] = Compile(t, v.(string), expression.Any)
		case planner.Predicate:
			o[k] = Compile(t, v.(string), expression.Bool)
		case planner.Fields:
			var fs []planner.Field
			for _, f := range v.([][2]string) {
				fs = append(fs, planner.Field{Name: f[0], Expr: Compile(t, f[1], expression.Any)})
			}
			o[k] = fs
		case planner.Int:
			if n, ok := v.(int); ok {
				v = int64(n)
			}
			o[k] = v
		default:
			o[k] = v
		}
	}
	return &planner.Stage{Name: name, Block: block, Kind: kind, Options: o,
		OnError: planner.ErrorPolicy{Policy: onerror.Default(onerror.Other)}}
}

// Compile compiles an expression or fails the test.
func Compile(t testing.TB, src string, want expression.Kind) *expression.Program {
	t.Helper()
	p, diags := expression.Compile(src, diag.Range{Filename: "test.flow"}, nil, want)
	if diags.HasErrors() {
		t.Fatalf("compile %q: %v", src, diags)
	}
	return p
}

// Env returns a build environment on clock with a null logger.
func Env(clock flowruntime.Clock) operators.BuildEnv {
	if clock == nil {
		clock = flowruntime.RealClock{}
	}
	return operators.BuildEnv{Pipeline: "test", Clock: clock, Logger: hclog.NewNullLogger()}
}

// Build builds st with the registry of every kind.
func Build(t testing.TB, st *planner.Stage, env operators.BuildEnv) *flowruntime.Node {
	t.Helper()
	n, err := all.Registry().Build(st, env)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return n
}

// Start starts g with the default options; the execution is killed when
// the test ends if it still runs.
func Start(t testing.TB, g *flowruntime.Graph) *flowruntime.Execution {
	t.Helper()
	ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ex.Kill()
		_ = ex.Wait()
	})
	return ex
}

// Records wraps fields as records.
func Records(fields ...map[string]any) []flowruntime.Record {
	out := make([]flowruntime.Record, len(fields))
	for i, f := range fields {
		out[i] = flowruntime.Record{Fields: f, Meta: flowruntime.Meta{Position: int64(i)}}
	}
	return out
}

// Process runs recs through p, then flushes it if it holds records, and
// returns the fields of everything emitted. The first error fails the test.
func Process(t testing.TB, p flowruntime.Processor, recs ...flowruntime.Record) []map[string]any {
	t.Helper()
	var out []map[string]any
	emit := func(r flowruntime.Record) { out = append(out, r.Fields) }
	for _, r := range recs {
		if err := p.Process(r, emit); err != nil {
			t.Fatalf("process %v: %v", r.Fields, err)
		}
	}
	if h, ok := p.(flowruntime.Holder); ok {
		if err := h.Flush(emit); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	return out
}

// Emitter collects what a source emits. When Credit is not nil, every
// record emitted takes one value from it first: the source blocks in Emit
// until the test grants more.
type Emitter struct {
	Credit chan struct{}
	mu     sync.Mutex
	recs   []flowruntime.Record
	calls  int
}

// Emit implements runtime.Emitter.
func (e *Emitter) Emit(ctx context.Context, recs []flowruntime.Record, done func()) error {
	if e.Credit != nil {
		for range recs {
			select {
			case <-e.Credit:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	e.mu.Lock()
	e.recs = append(e.recs, recs...)
	e.calls++
	e.mu.Unlock()
	if done != nil {
		done()
	}
	return nil
}

// Records returns what was emitted so far.
func (e *Emitter) Records() []flowruntime.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]flowruntime.Record(nil), e.recs...)
}

// Fields returns the fields of what was emitted so far.
func (e *Emitter) Fields() []map[string]any {
	var out []map[string]any
	for _, r := range e.Records() {
		out = append(out, r.Fields)
	}
	return out
}

// Calls is how many times Emit was called.
func (e *Emitter) Calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls
}

// Clock is a virtual clock for operator tests: Sleep moves time forward at
// once instead of waiting, and After fires at once, moving time too.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// After moves the clock by d and returns a channel holding the new time.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.Advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// Sleep moves the clock by d, unless ctx is done.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.Advance(d)
	}
	return nil
}
